//go:build mmplug_legacy_hooks

package main

// For server/public modules without Environment.HooksForPluginWithRPCErr (v0.4.0 and older;
// the version matrix in conformance/matrix sets the mmplug_legacy_hooks tag for them). Their
// hooks client logs a transport failure and answers zero values, which is what a server of
// that release does, so the cases see it as a wrong answer (a nil response fails every check
// that wants one) rather than as a separate RPC error.

import (
	"reflect"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

func (t *caseT) command(text string) (*model.CommandResponse, *model.AppError) {
	h, err := t.env.HooksForPlugin(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	return h.ExecuteCommand(t.pluginContext(), &model.CommandArgs{
		Command: text, UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID,
	})
}

// hooksForFidelity returns the plain hooks client: it has no *WithRPCErr methods, so the
// fidelity sweep calls every hook plainly.
func hooksForFidelity(env *plugin.Environment, id string) (reflect.Value, error) {
	h, err := env.HooksForPlugin(id)
	if err != nil {
		return reflect.Value{}, err
	}
	return reflect.ValueOf(h), nil
}

// messageWillBePosted runs the hook; a transport failure shows as the zero answer (nil, "").
func (t *caseT) messageWillBePosted(c *plugin.Context, post *model.Post) (*model.Post, string, error) {
	h, err := t.env.HooksForPlugin(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	got, reason := h.MessageWillBePosted(c, post)
	return got, reason, nil
}

// tryCommand runs a slash command; a transport failure shows as the zero answer.
func (t *caseT) tryCommand(text string) (*model.CommandResponse, *model.AppError, error) {
	resp, appErr := t.command(text)
	return resp, appErr, nil
}

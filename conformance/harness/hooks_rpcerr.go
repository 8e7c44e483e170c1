//go:build !mmplug_legacy_hooks

package main

// The hooks client with transport errors kept apart from a hook's own answer
// (Environment.HooksForPluginWithRPCErr: in server/public v0.4.3 and the pinned module, not in
// v0.4.0 or older; those build hooks_legacy.go instead, see conformance/matrix).

import (
	"reflect"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

func (t *caseT) hooks() plugin.HooksWithRPCErr {
	h, err := t.env.HooksForPluginWithRPCErr(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	return h
}

func (t *caseT) command(text string) (*model.CommandResponse, *model.AppError) {
	resp, appErr, rpcErr := t.hooks().ExecuteCommandWithRPCErr(t.pluginContext(), &model.CommandArgs{
		Command: text, UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID,
	})
	if rpcErr != nil {
		t.fatalf("ExecuteCommand %q: RPC error: %v", text, rpcErr)
	}
	return resp, appErr
}

// hooksForFidelity returns the hooks client whose *WithRPCErr methods the fidelity sweep calls
// where they exist.
func hooksForFidelity(env *plugin.Environment, id string) (reflect.Value, error) {
	h, err := env.HooksForPluginWithRPCErr(id)
	if err != nil {
		return reflect.Value{}, err
	}
	return reflect.ValueOf(h), nil
}

// messageWillBePosted runs the hook, with a transport failure kept apart from its answer.
func (t *caseT) messageWillBePosted(c *plugin.Context, post *model.Post) (*model.Post, string, error) {
	return t.hooks().MessageWillBePostedWithRPCErr(c, post)
}

// tryCommand runs a slash command, with a transport failure returned instead of ending the case.
func (t *caseT) tryCommand(text string) (*model.CommandResponse, *model.AppError, error) {
	return t.hooks().ExecuteCommandWithRPCErr(t.pluginContext(), &model.CommandArgs{
		Command: text, UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID,
	})
}

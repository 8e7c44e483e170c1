package main

// The in-memory server's direct channels, posts by id and interactive dialogs: what a plugin
// with buttons and dialogs (examples/remind, cases_remind.go) calls. Each answers as the
// server does for the same request, including its error ids and statuses.

import (
	"net/http"

	"github.com/mattermost/mattermost/server/public/model"
)

// interactive is the state behind these methods (memAPI embeds it; guarded by memAPI.mu).
type interactive struct {
	// triggerIDs are the trigger ids the harness handed out with a command or an action, as the
	// server signs its own; OpenInteractiveDialog accepts only those.
	triggerIDs map[string]string // trigger id -> user id
	dialogs    []model.OpenDialogRequest
}

// newTriggerID hands out a trigger id for userID, as the server does for each slash command
// and action request.
func (m *memAPI) newTriggerID(userID string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.triggerIDs == nil {
		m.triggerIDs = map[string]string{}
	}
	id := model.NewId() + model.NewId()
	m.triggerIDs[id] = userID
	return id
}

// openedDialogs returns the dialogs opened so far, oldest first.
func (m *memAPI) openedDialogs() []model.OpenDialogRequest {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]model.OpenDialogRequest(nil), m.dialogs...)
}

// GetDirectChannel returns the direct channel of two users, creating it the first time (its
// name is the server's: the two ids, sorted, joined by "__").
func (m *memAPI) GetDirectChannel(userID1, userID2 string) (*model.Channel, *model.AppError) {
	defer m.guard("GetDirectChannel")
	m.rec.call("GetDirectChannel")
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range []string{userID1, userID2} {
		if _, ok := m.users[id]; !ok {
			return nil, notFound("app.user.missing_account.const", "GetDirectChannel")
		}
	}
	name := model.GetDMNameFromIds(userID1, userID2)
	for _, c := range m.channels {
		if c.Name == name {
			return c, nil
		}
	}
	c := &model.Channel{Id: model.NewId(), Name: name, Type: model.ChannelTypeDirect, CreateAt: model.GetMillis()}
	m.channels[c.Id] = c
	return c, nil
}

// GetPost returns a stored post.
func (m *memAPI) GetPost(postID string) (*model.Post, *model.AppError) {
	defer m.guard("GetPost")
	m.rec.call("GetPost")
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.posts[postID]
	if !ok {
		return nil, notFound("app.post.get.app_error", "GetPost")
	}
	return p.Clone(), nil
}

// OpenInteractiveDialog records the dialog if its trigger id is one the harness handed out
// (the server verifies its signature and refuses others with this id and status).
func (m *memAPI) OpenInteractiveDialog(request model.OpenDialogRequest) *model.AppError {
	defer m.guard("OpenInteractiveDialog")
	m.rec.call("OpenInteractiveDialog")
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.triggerIDs[request.TriggerId]; !ok {
		return &model.AppError{
			Id: "interactive_message.decode_trigger_id.verify_signature_failed", Message: "Failed to verify signature of trigger ID for interactive dialog.",
			StatusCode: http.StatusBadRequest, Where: "DecodeAndVerifyTriggerId",
		}
	}
	m.dialogs = append(m.dialogs, request)
	return nil
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// The other examples a team would run, a freshly scaffolded plugin, and a flood.

// examples/moderation deployed with mmplug, configured through the config API as the System
// Console does (PUT /api/v4/config/patch), then: a post with a banned word rejected, a clean one
// accepted, an edit bringing the word in rejected (MessageWillBeUpdated), the same edit with
// props nested 100 levels rejected too, and the plugin's bot created.
func caseModeration(e *env, c *caseState) error {
	p := e.moderation
	if err := e.deployToken(p); err != nil {
		return fmt.Errorf("mmplug deploy: %w", err)
	}
	defer func() { _ = e.disable(p) }()
	if _, err := must(e.w.admin.putJSON("/api/v4/config/patch", map[string]any{
		"PluginSettings": map[string]any{"Plugins": map[string]any{p.id: map[string]any{
			"bannedwords": "badword, worse phrase", "action": "reject", "matchwholewords": true,
			"logchannel": "", "exemptusers": "", "exemptroles": "system_admin",
		}}},
	}))(200); err != nil {
		return fmt.Errorf("saving the plugin's settings: %w", err)
	}
	var problems []string
	// OnConfigurationChange runs after the config is saved; wait until the words apply.
	var first *reply
	_ = eventually(10*time.Second, func() error {
		r, err := e.w.post(e.w.user1, "this has a badword in it", nil)
		if err != nil {
			return err
		}
		first = r
		if !rejected(r) {
			return errors.New("not rejected yet")
		}
		return nil
	})
	if first == nil || !rejected(first) {
		problems = append(problems, fmt.Sprintf("a post with a banned word set through the config API was not rejected within 10 s (last: %s)", first))
	} else if !strings.Contains(first.appErrorMessage(), "not allowed here") {
		problems = append(problems, fmt.Sprintf("the rejection does not tell why: %q", first.appErrorMessage()))
	}
	clean, err := must(e.w.post(e.w.user1, "a clean post", nil))(http.StatusCreated)
	if err != nil {
		return fmt.Errorf("a clean post: %w", err)
	}
	var post struct {
		ID string `json:"id"`
	}
	if err := clean.json(&post); err != nil {
		return err
	}
	edit := func(body map[string]any) (*reply, error) {
		return e.w.user1.putJSON("/api/v4/posts/"+post.ID+"/patch", body)
	}
	r, err := edit(map[string]any{"message": "edited to say badword"})
	if err != nil {
		return err
	}
	if !rejected(r) {
		problems = append(problems, fmt.Sprintf("an edit bringing in a banned word answered %s (MessageWillBeUpdated did not reject it)", r))
	}
	r, err = edit(map[string]any{"message": "edited to say badword, deeply", "props": map[string]any{"deep": nest(dictNest, 100)}})
	if err != nil {
		return err
	}
	if !rejected(r) {
		problems = append(problems, fmt.Sprintf("the same edit with props nested 100 levels answered %s", r))
	}
	r, err = e.w.admin.get("/api/v4/users/username/moderation-bot")
	if err != nil {
		return err
	}
	var bot struct {
		IsBot bool `json:"is_bot"`
	}
	if r.status != 200 || r.json(&bot) != nil || !bot.IsBot {
		problems = append(problems, fmt.Sprintf("no moderation-bot bot user: %s", r))
	}
	if err := e.alive2(p, "/moderation"); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// alive2 checks a plugin's slash command answers (any plugin; alive is hello's).
func (e *env) alive2(p *plugin, command string) error {
	r, err := e.w.command(e.w.user1, command)
	if err != nil {
		return err
	}
	if r.status != 200 {
		return fmt.Errorf("%s answered %s", command, r)
	}
	return nil
}

// A plugin as `mmplug new` scaffolds it, bundled and deployed: its route and its slash command
// answer.
func caseScaffold(e *env, _ *caseState) error {
	p := e.scaffold
	if err := e.deployToken(p); err != nil {
		return fmt.Errorf("mmplug deploy: %w", err)
	}
	defer func() { _ = e.disable(p) }()
	r, err := e.w.user1.get("/plugins/" + p.id + "/greeting")
	if err != nil {
		return err
	}
	if r.status != 200 {
		return fmt.Errorf("GET /greeting answered %s", r)
	}
	return e.alive2(p, "/e2e-scaffold")
}

// floodShape is issue 16's flood post: about 279 KB of props, lists nested 40 deep.
func floodProps() map[string]any {
	items := make([]any, 3250)
	for i := range items {
		var v any = 100000 + i
		for d := 0; d < 40; d++ {
			v = []any{v}
		}
		items[i] = v
	}
	return map[string]any{"flood": items}
}

// floodBystanderLimit is the longest another user's post may wait during the flood: a third
// of the default 30 s hook limit, so a stall is caught long before it could make a hook time
// out (and a content hook fail closed for an innocent post).
const floodBystanderLimit = 10 * time.Second

// flood-deep-lists: one user keeps 16 posts with a banned word and 279 KB of deep props in
// flight (32 in all) while another user posts clean messages, beside the Go twin and beside the
// Python plugin (floodBesideGo): every banned post rejected by the plugin itself, none of the
// other user's posts failed or waiting past floodBystanderLimit.
func caseFlood(e *env, c *caseState) error {
	props := floodProps()
	c.note("posts of %d KB", jsonSize(props)/1000)
	return e.floodBesideGo(c, e.postJSONBody("forbidden flood", props))
}

// jsonSize is the size of v as JSON (for notes).
func jsonSize(v any) int {
	b, _ := json.Marshal(v)
	return len(b)
}

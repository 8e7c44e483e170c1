package main

// examples/remind on the real server (issue 15): its bundle uploaded and enabled over REST, and
// what its users do: a reminder set by the slash command arrives once, as the bot's direct
// message with buttons; clicking them (POST /api/v4/posts/{id}/actions/{action id}, the server
// calling the plugin's integration URL) updates the post; /remind new's dialog is opened with
// the command's trigger id and submitted through POST /api/v4/actions/dialogs/submit (a field
// error, then a reminder); a reminder due while the plugin is disabled arrives once it is
// enabled again.

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

const remindReminder = "⏰ Reminder: "

type e2ePost struct {
	ID        string         `json:"id"`
	UserID    string         `json:"user_id"`
	ChannelID string         `json:"channel_id"`
	Message   string         `json:"message"`
	Props     map[string]any `json:"props"`
}

// actions are the buttons of a post as clients see them: id and name (the server strips the
// integration URL and context before a post reaches a client).
func (p e2ePost) actions() map[string]string {
	out := map[string]string{}
	attachments, _ := p.Props["attachments"].([]any)
	for _, a := range attachments {
		m, _ := a.(map[string]any)
		list, _ := m["actions"].([]any)
		for _, act := range list {
			am, _ := act.(map[string]any)
			name, _ := am["name"].(string)
			id, _ := am["id"].(string)
			out[name] = id
		}
	}
	return out
}

// remindDM is user1's direct channel with the plugin's bot (POST /api/v4/channels/direct
// answers the existing one).
func (e *env) remindDM() (string, error) {
	r, err := must(e.w.admin.get("/api/v4/users/username/remind-bot"))(200)
	if err != nil {
		return "", fmt.Errorf("the plugin's bot: %w", err)
	}
	var bot struct {
		ID    string `json:"id"`
		IsBot bool   `json:"is_bot"`
	}
	if err := r.json(&bot); err != nil {
		return "", err
	}
	if !bot.IsBot {
		return "", fmt.Errorf("remind-bot is not a bot account")
	}
	r, err = must(e.w.user1.postJSON("/api/v4/channels/direct", []string{e.w.user1ID, bot.ID}))(200, http.StatusCreated)
	if err != nil {
		return "", fmt.Errorf("user1's direct channel with the bot: %w", err)
	}
	var ch struct {
		ID string `json:"id"`
	}
	return ch.ID, r.json(&ch)
}

// remindPosts are the posts of the direct channel delivering text.
func (e *env) remindPosts(dm, text string) ([]e2ePost, error) {
	r, err := must(e.w.user1.get("/api/v4/channels/" + dm + "/posts?per_page=200"))(200)
	if err != nil {
		return nil, err
	}
	var list struct {
		Order []string           `json:"order"`
		Posts map[string]e2ePost `json:"posts"`
	}
	if err := r.json(&list); err != nil {
		return nil, err
	}
	var out []e2ePost
	for _, id := range list.Order {
		if p := list.Posts[id]; p.Message == remindReminder+text {
			out = append(out, p)
		}
	}
	return out, nil
}

// awaitReminder waits for the reminder of text to arrive, then checks for 3 s that it arrived
// once.
func (e *env) awaitReminder(dm, text string, within time.Duration) (e2ePost, error) {
	var posts []e2ePost
	if err := eventually(within, func() error {
		var err error
		if posts, err = e.remindPosts(dm, text); err != nil {
			return err
		}
		if len(posts) == 0 {
			return fmt.Errorf("the reminder %q did not arrive within %s", text, within)
		}
		return nil
	}); err != nil {
		return e2ePost{}, err
	}
	time.Sleep(3 * time.Second)
	posts, err := e.remindPosts(dm, text)
	if err != nil {
		return e2ePost{}, err
	}
	if len(posts) != 1 {
		return e2ePost{}, fmt.Errorf("the reminder %q arrived %d times, want once", text, len(posts))
	}
	return posts[0], nil
}

// clickButton is what the webapp sends when user1 clicks the button name on post.
func (e *env) clickButton(post e2ePost, name string) error {
	id, ok := post.actions()[name]
	if !ok || id == "" {
		return fmt.Errorf("post %s has no button %q (it has %v)", post.ID, name, post.actions())
	}
	if _, err := must(e.w.user1.postJSON("/api/v4/posts/"+post.ID+"/actions/"+id, map[string]any{}))(200); err != nil {
		return fmt.Errorf("clicking %q: %w", name, err)
	}
	return nil
}

func (e *env) getPost(id string) (e2ePost, error) {
	var p e2ePost
	r, err := must(e.w.user1.get("/api/v4/posts/" + id))(200)
	if err != nil {
		return p, err
	}
	return p, r.json(&p)
}

func caseRemind(e *env, c *caseState) error {
	p := e.remind
	if err := e.install(p); err != nil {
		return err
	}
	defer func() { _ = e.disable(p) }()

	// A reminder set by the slash command arrives once, with its buttons.
	text, err := e.commandText(e.w.user1, "/remind me in 3s to water the plants")
	if err != nil {
		return err
	}
	if !strings.HasPrefix(text, "I will remind you in 3s") {
		return fmt.Errorf("/remind me answered %q", text)
	}
	dm, err := e.remindDM()
	if err != nil {
		return err
	}
	post, err := e.awaitReminder(dm, "water the plants", 30*time.Second)
	if err != nil {
		return err
	}
	if got := post.actions(); len(got) != 3 || got["Done"] == "" || got["Snooze 10m"] == "" || got["Snooze 1h"] == "" {
		return fmt.Errorf("the reminder's buttons are %v, want Snooze 10m, Snooze 1h and Done", got)
	}

	// Done: the server calls the plugin and applies its answer to the post.
	if err := e.clickButton(post, "Done"); err != nil {
		return err
	}
	done, err := e.getPost(post.ID)
	if err != nil {
		return err
	}
	if done.Message != "✅ Done: water the plants" || len(done.actions()) != 0 {
		return fmt.Errorf("after Done the post reads %q with buttons %v", done.Message, done.actions())
	}

	// Snooze: the post says so and the reminder is pending again.
	if _, err := e.commandText(e.w.user1, "/remind me in 2s to stretch"); err != nil {
		return err
	}
	post, err = e.awaitReminder(dm, "stretch", 30*time.Second)
	if err != nil {
		return err
	}
	if err := e.clickButton(post, "Snooze 10m"); err != nil {
		return err
	}
	snoozed, err := e.getPost(post.ID)
	if err != nil {
		return err
	}
	if snoozed.Message != "💤 Snoozed for 10m: stretch" || len(snoozed.actions()) != 0 {
		return fmt.Errorf("after Snooze the post reads %q with buttons %v", snoozed.Message, snoozed.actions())
	}
	if list, err := e.commandText(e.w.user1, "/remind list"); err != nil || !strings.Contains(list, "stretch") || !strings.Contains(list, "in 9m") && !strings.Contains(list, "in 10m") {
		return fmt.Errorf("/remind list after the snooze: %q %v", list, err)
	}

	// The dialog: opened with the command's trigger id, submitted through the server.
	if _, err := e.commandText(e.w.user1, "/remind new"); err != nil {
		return fmt.Errorf("/remind new (OpenInteractiveDialog with the command's trigger id): %w", err)
	}
	submit := func(values map[string]any) (map[string]any, error) {
		r, err := must(e.w.user1.postJSON("/api/v4/actions/dialogs/submit", map[string]any{
			"url": "/plugins/" + p.id + "/mmplug/dialogs/new", "channel_id": e.w.channel,
			"team_id": e.w.team, "submission": values,
		}))(200)
		if err != nil {
			return nil, err
		}
		var doc map[string]any
		if len(r.body) > 0 {
			err = r.json(&doc)
		}
		return doc, err
	}
	answer, err := submit(map[string]any{"text": "tea", "when": "later"})
	if err != nil {
		return fmt.Errorf("submitting the dialog: %w", err)
	}
	if errs, _ := answer["errors"].(map[string]any); errs == nil || !strings.Contains(fmt.Sprint(errs["when"]), "not a delay") {
		return fmt.Errorf("a bad delay in the dialog answered %v, want a field error under when", answer)
	}
	if answer, err = submit(map[string]any{"text": "tea from the dialog", "when": "1h"}); err != nil || answer["errors"] != nil || answer["error"] != nil {
		return fmt.Errorf("a good dialog answered %v %v", answer, err)
	}
	if list, err := e.commandText(e.w.user1, "/remind list"); err != nil || !strings.Contains(list, "tea from the dialog") {
		return fmt.Errorf("/remind list after the dialog: %q %v", list, err)
	}

	// A reminder due while the plugin is disabled arrives, once, when it is enabled again.
	if _, err := e.commandText(e.w.user1, "/remind me in 4s to survive the restart"); err != nil {
		return err
	}
	if err := e.disable(p); err != nil {
		return err
	}
	time.Sleep(6 * time.Second)
	if early, err := e.remindPosts(dm, "survive the restart"); err != nil || len(early) != 0 {
		return fmt.Errorf("%d reminders arrived while the plugin was disabled (%v)", len(early), err)
	}
	if err := e.enable(p); err != nil {
		return err
	}
	if _, err := e.awaitReminder(dm, "survive the restart", 30*time.Second); err != nil {
		return fmt.Errorf("after the restart: %w", err)
	}
	c.notes = append(c.notes, "fired once, Done, Snooze, dialog, restart")
	return nil
}

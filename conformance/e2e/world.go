package main

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// world is what setup creates on the server: a system admin with a personal access token, two
// ordinary users logged in, a team and a channel all three belong to.
type world struct {
	local   *client // the local-mode socket: no credentials
	anon    *client // TCP, no credentials
	admin   *client // TCP, the admin's personal access token
	user1   *client // TCP, user1's session token
	user2   *client
	team    string
	channel string

	adminID, user1ID, user2ID string
	adminToken                string
}

const password = "E2e-passw0rd!"

// createWorld creates the users, team and channel through the local-mode socket, as an
// administrator on the server host would (mmctl --local does the same), then logs the
// ordinary users in over TCP as they would from a browser.
func createWorld(m *mattermost) (*world, error) {
	w := &world{local: localClient(m.socket()), anon: tcpClient(m.siteURL(), "")}
	mkUser := func(name string) (string, error) {
		r, err := must(w.local.postJSON("/api/v4/users", map[string]any{
			"username": name, "email": name + "@e2e.invalid", "password": password,
		}))(http.StatusCreated)
		if err != nil {
			return "", fmt.Errorf("creating user %s: %w", name, err)
		}
		var u struct {
			ID string `json:"id"`
		}
		return u.ID, r.json(&u)
	}
	var err error
	if w.adminID, err = mkUser("e2eadmin"); err != nil {
		return nil, err
	}
	if _, err := must(w.local.putJSON("/api/v4/users/"+w.adminID+"/roles",
		map[string]string{"roles": "system_admin system_user"}))(200); err != nil {
		return nil, fmt.Errorf("making e2eadmin a system admin: %w", err)
	}
	if w.user1ID, err = mkUser("e2euser1"); err != nil {
		return nil, err
	}
	if w.user2ID, err = mkUser("e2euser2"); err != nil {
		return nil, err
	}
	r, err := must(w.local.postJSON("/api/v4/users/"+w.adminID+"/tokens", map[string]string{"description": "make e2e"}))(200)
	if err != nil {
		return nil, fmt.Errorf("creating the admin's access token: %w", err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := r.json(&tok); err != nil {
		return nil, err
	}
	w.adminToken = tok.Token
	w.admin = tcpClient(m.siteURL(), tok.Token)

	r, err = must(w.local.postJSON("/api/v4/teams", map[string]string{"name": "e2e", "display_name": "e2e", "type": "O"}))(http.StatusCreated)
	if err != nil {
		return nil, fmt.Errorf("creating the team: %w", err)
	}
	var obj struct {
		ID string `json:"id"`
	}
	if err := r.json(&obj); err != nil {
		return nil, err
	}
	w.team = obj.ID
	for _, id := range []string{w.adminID, w.user1ID, w.user2ID} {
		if _, err := must(w.local.postJSON("/api/v4/teams/"+w.team+"/members",
			map[string]string{"team_id": w.team, "user_id": id}))(http.StatusCreated); err != nil {
			return nil, fmt.Errorf("adding %s to the team: %w", id, err)
		}
	}
	r, err = must(w.local.postJSON("/api/v4/channels", map[string]string{
		"team_id": w.team, "name": "e2e-channel", "display_name": "e2e channel", "type": "O",
	}))(http.StatusCreated)
	if err != nil {
		return nil, fmt.Errorf("creating the channel: %w", err)
	}
	if err := r.json(&obj); err != nil {
		return nil, err
	}
	w.channel = obj.ID
	for _, id := range []string{w.adminID, w.user1ID, w.user2ID} {
		if _, err := must(w.local.postJSON("/api/v4/channels/"+w.channel+"/members",
			map[string]string{"user_id": id}))(http.StatusCreated); err != nil {
			return nil, fmt.Errorf("adding %s to the channel: %w", id, err)
		}
	}
	if w.user1, err = login(m, "e2euser1"); err != nil {
		return nil, err
	}
	if w.user2, err = login(m, "e2euser2"); err != nil {
		return nil, err
	}
	return w, nil
}

// login is POST /api/v4/users/login; the session token comes back in the Token header.
func login(m *mattermost, username string) (*client, error) {
	c := tcpClient(m.siteURL(), "")
	r, err := must(c.postJSON("/api/v4/users/login", map[string]string{"login_id": username, "password": password}))(200)
	if err != nil {
		return nil, fmt.Errorf("logging in as %s: %w", username, err)
	}
	tok := r.header.Get("Token")
	if tok == "" {
		return nil, fmt.Errorf("logging in as %s: no Token header", username)
	}
	return c.as(tok), nil
}

// post creates a post in the e2e channel as c and returns the answer (201, or the rejection).
func (w *world) post(c *client, message string, props map[string]any) (*reply, error) {
	body := map[string]any{"channel_id": w.channel, "message": message}
	if props != nil {
		body["props"] = props
	}
	return c.postJSON("/api/v4/posts", body)
}

// command runs a slash command in the e2e channel as c (POST /api/v4/commands/execute).
func (w *world) command(c *client, command string) (*reply, error) {
	return c.postJSON("/api/v4/commands/execute", map[string]string{"channel_id": w.channel, "team_id": w.team, "command": command})
}

// rejected tells whether a post answer is the server's "Post rejected by plugin" answer.
func rejected(r *reply) bool {
	return r.status == http.StatusBadRequest && strings.Contains(string(r.body), "Post rejected by plugin")
}

// postVerdict names what the server did with a post, for comparing the twins.
func postVerdict(r *reply) string {
	switch {
	case rejected(r):
		return "rejected"
	case r.status == http.StatusCreated:
		return "accepted"
	default:
		return "answered " + r.String()
	}
}

// permanent marks an error retrying cannot change (eventually stops at once).
type permanent struct{ error }

// eventually retries f until it succeeds, fails permanently, or the time is up, and answers
// its last error.
func eventually(d time.Duration, f func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := f()
		if p, ok := err.(permanent); ok {
			return p.error
		}
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

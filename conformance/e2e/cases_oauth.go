package main

// examples/oauth-connect on the real server (issue 15): its bundle (with cryptography's wheels)
// uploaded and enabled over REST, its settings saved through the config API, the test kit's
// OAuth2 provider on localhost (python -m mattermost_plugin.testing.oauth from the venv that
// holds mmplug), and the whole flow as a user does it: the slash command's link, the plugin's
// redirect through the server's /plugins/ route with the user's session, the provider's
// redirect back, then status (a refresh each time), disconnect; forged, other user's, anonymous
// and replayed callbacks refused.

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

type e2eOAuthProvider struct {
	BaseURL      string `json:"base_url"`
	AuthorizeURL string `json:"authorize_url"`
	TokenURL     string `json:"token_url"`
	RevokeURL    string `json:"revoke_url"`
	UserInfoURL  string `json:"userinfo_url"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// startProvider runs the provider with a 5 s token lifetime (under the SDK's 10 s expiry
// margin, so every use of a stored token refreshes it); stop ends it.
func (e *env) startProvider() (p *e2eOAuthProvider, stop func() error, err error) {
	python := filepath.Join(filepath.Dir(e.mmplug), "python")
	cmd := exec.Command(python, "-m", "mattermost_plugin.testing.oauth", "--token-lifetime", "5")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("starting the OAuth2 provider: %w", err)
	}
	stop = func() error {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			return errors.New("the OAuth2 provider did not stop within 10 s of its stdin closing")
		}
	}
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case s := <-line:
		p = &e2eOAuthProvider{}
		if err := json.Unmarshal([]byte(s), p); err != nil || p.AuthorizeURL == "" {
			_ = stop()
			return nil, nil, fmt.Errorf("the OAuth2 provider's first line %q: %v", s, err)
		}
		return p, stop, nil
	case <-time.After(30 * time.Second):
		_ = stop()
		return nil, nil, errors.New("the OAuth2 provider did not start within 30 s")
	}
}

func (p *e2eOAuthProvider) grantTypes() (string, error) {
	resp, err := http.Get(p.BaseURL + "/_test/token_requests")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var doc struct {
		GrantTypes []string `json:"grant_types"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		return "", err
	}
	return strings.Join(doc.GrantTypes, ","), nil
}

// commandText runs a slash command as c and answers the text of its (ephemeral) reply.
func (e *env) commandText(c *client, line string) (string, error) {
	r, err := must(e.w.command(c, line))(http.StatusOK)
	if err != nil {
		return "", fmt.Errorf("%s: %w", line, err)
	}
	var resp struct {
		Text string `json:"text"`
	}
	if err := r.json(&resp); err != nil {
		return "", fmt.Errorf("%s: %w", line, err)
	}
	return resp.Text, nil
}

var connectLinkRE = regexp.MustCompile(`^\[Connect your account\]\((\S+)\)`)

func caseOAuthConnect(e *env, c *caseState) error {
	p := e.oauthConnect
	provider, stop, err := e.startProvider()
	if err != nil {
		return err
	}
	defer func() { _ = stop() }()
	if err := e.install(p); err != nil {
		return err
	}
	defer func() { _ = e.disable(p) }()
	if _, err := must(e.w.admin.putJSON("/api/v4/config/patch", map[string]any{
		"PluginSettings": map[string]any{"Plugins": map[string]any{p.id: map[string]any{
			"clientid": provider.ClientID, "clientsecret": provider.ClientSecret,
			"authorizeurl": provider.AuthorizeURL, "tokenurl": provider.TokenURL,
			"revokeurl": provider.RevokeURL, "userinfourl": provider.UserInfoURL,
			"encryptionkey": "Zk3u0rPq1xS8mW2aT9vB4nC7eL5yH6dJ",
		}}},
	}))(200); err != nil {
		return fmt.Errorf("saving the plugin's settings: %w", err)
	}
	site := e.mm.siteURL()
	connectURL := site + "/plugins/" + p.id + "/oauth2/connect"
	// OnConfigurationChange runs after the save; until then the plugin is unconfigured.
	var text string
	if err := eventually(10*time.Second, func() error {
		text, err = e.commandText(e.w.user1, "/oauth-demo connect")
		if err != nil {
			return err
		}
		if m := connectLinkRE.FindStringSubmatch(text); m == nil || m[1] != connectURL {
			return fmt.Errorf("/oauth-demo connect answered %q, want a link to %s", text, connectURL)
		}
		return nil
	}); err != nil {
		return err
	}
	if text, err = e.commandText(e.w.user1, "/oauth-demo status"); err != nil {
		return err
	} else if !strings.HasPrefix(text, "You are not connected.") {
		return fmt.Errorf("status before connecting: %q", text)
	}

	// The user's browser: the plugin's route with the user's session, then the provider.
	r, err := must(e.w.user1.get("/plugins/" + p.id + "/oauth2/connect"))(http.StatusFound)
	if err != nil {
		return fmt.Errorf("GET /oauth2/connect: %w", err)
	}
	authorize := r.header.Get("Location")
	if !strings.HasPrefix(authorize, provider.AuthorizeURL+"?") {
		return fmt.Errorf("the plugin redirected to %q, want the provider's %s", authorize, provider.AuthorizeURL)
	}
	browser := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := browser.Get(authorize)
	if err != nil {
		return err
	}
	resp.Body.Close()
	back := resp.Header.Get("Location")
	want := site + "/plugins/" + p.id + "/oauth2/complete?"
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(back, want) {
		return fmt.Errorf("the provider answered %d to %s, redirecting to %q; want a 302 to %s...", resp.StatusCode, authorize, back, want)
	}
	callback := strings.TrimPrefix(back, site)
	forged, _ := url.Parse(callback)
	q := forged.Query()
	q.Set("state", "ybndrfg8ejkmcpq_"+e.w.user1ID)
	forged.RawQuery = q.Encode()

	var problems []string
	for _, try := range []struct {
		what   string
		c      *client
		target string
	}{
		{"a forged state", e.w.user1, forged.String()},
		{"another user's session", e.w.user2, callback},
		{"no session", e.w.anon, callback},
	} {
		r, err := try.c.get(try.target)
		if err != nil {
			return err
		}
		if r.status != http.StatusUnauthorized {
			problems = append(problems, fmt.Sprintf("the callback with %s answered %s, want 401", try.what, r))
		}
	}
	r, err = must(e.w.user1.get(callback))(http.StatusOK)
	if err != nil {
		return fmt.Errorf("the callback: %w", err)
	}
	if !strings.Contains(string(r.body), "Successfully connected") {
		problems = append(problems, fmt.Sprintf("the callback's page: %s", r))
	}
	if r, err := e.w.user1.get(callback); err != nil {
		return err
	} else if r.status != http.StatusUnauthorized {
		problems = append(problems, fmt.Sprintf("the callback replayed answered %s, want 401", r))
	}
	for range 2 {
		if text, err := e.commandText(e.w.user1, "/oauth-demo status"); err != nil {
			return err
		} else if text != "Connected as **alice**." {
			problems = append(problems, fmt.Sprintf("status after connecting: %q", text))
		}
	}
	if text, err := e.commandText(e.w.user2, "/oauth-demo status"); err != nil {
		return err
	} else if !strings.HasPrefix(text, "You are not connected.") {
		problems = append(problems, fmt.Sprintf("user2's status: %q (the connection is user1's)", text))
	}
	if grants, err := provider.grantTypes(); err != nil {
		return err
	} else if grants != "authorization_code,refresh_token,refresh_token" {
		problems = append(problems, fmt.Sprintf("the provider's token endpoint saw %s, want one code exchange, then a refresh per status", grants))
	}
	if text, err := e.commandText(e.w.user1, "/oauth-demo disconnect"); err != nil {
		return err
	} else if text != "Disconnected." {
		problems = append(problems, fmt.Sprintf("disconnect: %q", text))
	}
	if text, err := e.commandText(e.w.user1, "/oauth-demo status"); err != nil {
		return err
	} else if !strings.HasPrefix(text, "You are not connected.") {
		problems = append(problems, fmt.Sprintf("status after disconnecting: %q", text))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	c.note("connect, 3 refused callbacks, 2 refreshes, disconnect")
	return nil
}

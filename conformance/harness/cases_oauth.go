package main

// examples/oauth-connect under the real supervisor (issue 15): the whole "connect your account"
// flow against the test kit's OAuth2 provider, run on localhost as its own process
// (python -m mattermost_plugin.testing.oauth). The harness plays the server (slash commands,
// /plugins/{id}/... requests with the Mattermost-User-Id it sets) and the user's browser (it
// follows the plugin's redirect to the provider and the provider's back to the plugin); the
// plugin reaches the provider over HTTP as it would a real one.

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const oauthConnectID = "com.mmplug.oauth-connect"

// exampleCases are the cases of an example whose behaviour is not the hello one, chosen by the
// manifest id; nil for the others (they run allCases).
func exampleCases(id string) []harnessCase {
	if id == remindID {
		return remindCases() // cases_remind.go
	}
	if id == oauthConnectID {
		return []harnessCase{
			{"oauth_connect_flow_refresh_disconnect", caseOAuthConnectFlow},
			{"oauth_connect_forged_replayed_other_users_state_refused", caseOAuthConnectStateRefused},
		}
	}
	return nil
}

// oauthStateRE is the state's format, Go oauther's: 15 characters of model.NewId's alphabet,
// "_", the user id.
var oauthStateRE = regexp.MustCompile(`^[ybndrfg8ejkmcpqxot1uwisza345h769]{15}_` + harnessUserID + `$`)

type oauthProvider struct {
	BaseURL      string `json:"base_url"`
	AuthorizeURL string `json:"authorize_url"`
	TokenURL     string `json:"token_url"`
	RevokeURL    string `json:"revoke_url"`
	UserInfoURL  string `json:"userinfo_url"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
}

// startOAuthProvider runs the test kit's provider from the -venv Python; it stops when the case
// ends (its stdin closes). A token lifetime under the SDK's 10 s expiry margin makes every
// stored token due for refresh, so each use of a token goes through a refresh.
func startOAuthProvider(t *caseT, tokenLifetime string) *oauthProvider {
	if t.opts.venv == "" {
		t.fatalf("the OAuth2 provider runs from the SDK's venv: give -plugin DIR -bridge PATH (and -venv)")
	}
	cmd := exec.Command(filepath.Join(t.opts.venv, "bin", "python"), "-m", "mattermost_plugin.testing.oauth",
		"--token-lifetime", tokenLifetime)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.fatalf("provider stdin: %v", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.fatalf("provider stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.fatalf("starting the OAuth2 provider: %v", err)
	}
	t.cleanups = append(t.cleanups, func() {
		_ = stdin.Close()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.errorf("the OAuth2 provider exited with %v", err)
			}
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.errorf("the OAuth2 provider did not stop within 10 s of its stdin closing")
		}
	})
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(stdout).ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, stdout)
	}()
	var p oauthProvider
	select {
	case s := <-line:
		if err := json.Unmarshal([]byte(s), &p); err != nil || p.AuthorizeURL == "" {
			t.fatalf("the OAuth2 provider's first line %q: %v", s, err)
		}
	case <-time.After(30 * time.Second):
		t.fatalf("the OAuth2 provider did not start within 30 s")
	}
	return &p
}

func (p *oauthProvider) settings(encryptionKey string) map[string]any {
	return map[string]any{
		"ClientID":      p.ClientID,
		"ClientSecret":  p.ClientSecret,
		"AuthorizeURL":  p.AuthorizeURL,
		"TokenURL":      p.TokenURL,
		"RevokeURL":     p.RevokeURL,
		"UserInfoURL":   p.UserInfoURL,
		"EncryptionKey": encryptionKey,
	}
}

// grantTypes is what the provider's token endpoint has been sent, in order.
func (p *oauthProvider) grantTypes(t *caseT) []string {
	resp, err := http.Get(p.BaseURL + "/_test/token_requests")
	if err != nil {
		t.fatalf("asking the provider for its token requests: %v", err)
	}
	defer resp.Body.Close()
	var doc struct {
		GrantTypes []string `json:"grant_types"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.fatalf("the provider's token requests: %v", err)
	}
	return doc.GrantTypes
}

// browserGet is the user's browser at the provider: one GET, the redirect not followed.
func browserGet(t *caseT, target string) *url.URL {
	client := &http.Client{
		Timeout:       10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Get(target)
	if err != nil {
		t.fatalf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(resp.Body)
		t.fatalf("the provider answered %d %q to the authorize request, want a 302", resp.StatusCode, clip(string(body)))
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.fatalf("the provider's redirect %q: %v", resp.Header.Get("Location"), err)
	}
	return loc
}

// pluginRequest sends a GET for target (a URL below the site) through ServeHTTP as the server
// does for user: "/plugins/{id}" stripped, Mattermost-User-Id set (none for "": anonymous).
func (t *caseT) pluginRequest(target, user string) (int, http.Header, string) {
	prefix := harnessSiteURL + "/plugins/" + t.id
	if !strings.HasPrefix(target, prefix) {
		t.fatalf("%q is not a URL of the plugin (%s/...)", target, prefix)
	}
	r, err := http.NewRequest(http.MethodGet, strings.TrimPrefix(target, prefix), nil)
	if err != nil {
		t.fatalf("request %q: %v", target, err)
	}
	r.RequestURI = r.URL.RequestURI()
	if user != "" {
		r.Header.Set("Mattermost-User-Id", user)
	}
	h, herr := t.env.HooksForPlugin(t.id)
	if herr != nil {
		t.fatalf("no hooks for the plugin: %v", herr)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(t.pluginContext(), w, r)
	return w.Code, w.Header(), w.Body.String()
}

// connectStart runs /oauth-demo connect and follows its link as user: the plugin's redirect to
// the provider, then the provider's back. It returns the plugin callback URL and the state.
func connectStart(t *caseT, p *oauthProvider, user string) (string, string) {
	resp, appErr := t.command("/oauth-demo connect")
	if appErr != nil {
		t.fatalf("/oauth-demo connect: %v", appErr)
	}
	link := regexp.MustCompile(`^\[Connect your account\]\((\S+)\)`).FindStringSubmatch(resp.Text)
	want := harnessSiteURL + "/plugins/" + oauthConnectID + "/oauth2/connect"
	if link == nil || link[1] != want {
		t.fatalf("/oauth-demo connect answered %q, want a link to %s", resp.Text, want)
	}
	code, header, body := t.pluginRequest(link[1], user)
	if code != http.StatusFound {
		t.fatalf("GET /oauth2/connect: %d %q, want 302", code, clip(body))
	}
	authorize, err := url.Parse(header.Get("Location"))
	if err != nil || !strings.HasPrefix(authorize.String(), p.AuthorizeURL+"?") {
		t.fatalf("the plugin redirected to %q, want the provider's authorize URL %s", header.Get("Location"), p.AuthorizeURL)
	}
	q := authorize.Query()
	if got := q.Get("redirect_uri"); got != harnessSiteURL+"/plugins/"+oauthConnectID+"/oauth2/complete" {
		t.errorf("redirect_uri = %q", got)
	}
	if q.Get("client_id") != p.ClientID || q.Get("response_type") != "code" {
		t.errorf("authorize query %v", q)
	}
	callback := browserGet(t, authorize.String())
	return callback.String(), q.Get("state")
}

func commandText(t *caseT, line string) string {
	resp, appErr := t.command(line)
	if appErr != nil {
		t.fatalf("%s: %v", line, appErr)
	}
	return resp.Text
}

const oauthTestKey = "Zk3u0rPq1xS8mW2aT9vB4nC7eL5yH6dJ"

func caseOAuthConnectFlow(t *caseT) {
	p := startOAuthProvider(t, "5")
	t.api.setConfig(p.settings(oauthTestKey))
	t.activate()
	if got := commandText(t, "/oauth-demo status"); !strings.HasPrefix(got, "You are not connected.") {
		t.fatalf("status before connecting: %q", got)
	}
	callback, state := connectStart(t, p, harnessUserID)
	if !oauthStateRE.MatchString(state) {
		t.errorf("state %q is not <15 characters>_<user id>", state)
	}
	stored, _ := t.api.kvValue("oauth_state_" + harnessUserID)
	if want, _ := json.Marshal(state); string(stored) != string(want) {
		t.errorf("oauth_state_%s holds %q, want %s", harnessUserID, stored, want)
	}
	t.api.mu.Lock()
	expiry, hasExpiry := t.api.kvExpiry["oauth_state_"+harnessUserID]
	t.api.mu.Unlock()
	if left := time.Until(expiry); !hasExpiry || left <= 4*time.Minute || left > 5*time.Minute {
		t.errorf("the state expires in %v, want 5 minutes", left)
	}
	code, _, body := t.pluginRequest(callback, harnessUserID)
	if code != http.StatusOK || !strings.Contains(body, "Successfully connected") {
		t.fatalf("callback: %d %q", code, clip(body))
	}
	sealed, _ := t.api.kvValue("oauth_token_" + harnessUserID)
	if len(sealed) < 29 || sealed[0] != 1 || json.Valid(sealed) {
		t.errorf("oauth_token_%s is not a sealed token: %q", harnessUserID, clip(string(sealed)))
	}
	if _, gone := t.api.kvValue("oauth_state_" + harnessUserID); gone {
		t.errorf("the state is still stored after the callback used it")
	}
	if !t.waitLog("info", "connected their account") {
		t.errorf("no log line for the connection")
	}
	// Each status call uses the token; with a 5 s lifetime each first refreshes it (the provider
	// rotates refresh tokens, so the second refresh only works with the stored new one).
	for range 2 {
		if got := commandText(t, "/oauth-demo status"); got != "Connected as **alice**." {
			t.fatalf("status: %q", got)
		}
	}
	if got := p.grantTypes(t); strings.Join(got, ",") != "authorization_code,refresh_token,refresh_token" {
		t.errorf("the provider's token endpoint saw %v, want the code then two refreshes", got)
	}
	if got := commandText(t, "/oauth-demo disconnect"); got != "Disconnected." {
		t.errorf("disconnect: %q", got)
	}
	if _, still := t.api.kvValue("oauth_token_" + harnessUserID); still {
		t.errorf("the token is still stored after disconnect")
	}
	if got := commandText(t, "/oauth-demo status"); !strings.HasPrefix(got, "You are not connected.") {
		t.errorf("status after disconnect: %q", got)
	}
}

func caseOAuthConnectStateRefused(t *caseT) {
	p := startOAuthProvider(t, "3600")
	t.api.setConfig(p.settings(oauthTestKey))
	t.activate()
	callback, _ := connectStart(t, p, harnessUserID)
	forged, err := url.Parse(callback)
	if err != nil {
		t.fatalf("callback %q: %v", callback, err)
	}
	q := forged.Query()
	q.Set("state", "ybndrfg8ejkmcpq_"+harnessUserID)
	forged.RawQuery = q.Encode()
	refused := []struct{ what, target, user string }{
		{"a forged state", forged.String(), harnessUserID},
		{"another user", callback, model.NewId()},
		{"no logged-in user", callback, ""},
	}
	for _, r := range refused {
		if code, _, body := t.pluginRequest(r.target, r.user); code != http.StatusUnauthorized {
			t.errorf("callback with %s: %d %q, want 401", r.what, code, clip(body))
		}
	}
	if code, _, body := t.pluginRequest(callback, harnessUserID); code != http.StatusOK {
		t.fatalf("the real callback after the refused ones: %d %q, want 200", code, clip(body))
	}
	if code, _, body := t.pluginRequest(callback, harnessUserID); code != http.StatusUnauthorized {
		t.errorf("the callback replayed: %d %q, want 401", code, clip(body))
	}
	if got := p.grantTypes(t); strings.Join(got, ",") != "authorization_code" {
		t.errorf("the provider's token endpoint saw %v, want one code exchange", got)
	}
}

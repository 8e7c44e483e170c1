package main

// The compatibility suite (issue 14, docs/upstream.md): plugins in conformance/upstream/,
// written only from the documented surface of Mattermost's own Python SDK, bundled unchanged
// by `mmplug bundle` and run here under the real supervisor (-upstream -bundle FILE.tar.gz; or
// -upstream -plugin DIR -bridge PATH, which installs the directory's copy with its manifest
// rewritten as `mmplug bundle` does, upstream_manifest.go).
// Each plugin's cases check the behaviour its code documents; the plugin is picked by its
// manifest id.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

const (
	upstreamHelloID = "com.mmplug.upstream.hello"
	upstreamGuideID = "com.mmplug.upstream.guide"
)

func upstreamCases(id string) []harnessCase {
	switch id {
	case upstreamHelloID:
		return []harnessCase{
			{"upstream_bundle_manifest_starts_the_bridge", caseUpstreamBundleManifest("plugin.py")},
			{"upstream_hello_lifecycle", caseUpstreamHelloLifecycle},
			{"upstream_hello_message_filter_shapes", caseUpstreamHelloMessageFilter},
			{"upstream_hello_command_dicts", caseUpstreamHelloCommand},
			{"upstream_hello_http_writer_helpers", caseUpstreamHelloHTTP},
		}
	case upstreamGuideID:
		return []harnessCase{
			{"upstream_bundle_manifest_starts_the_bridge", caseUpstreamBundleManifest("server/plugin.py")},
			{"upstream_guide_activation", caseUpstreamGuideActivation},
			{"upstream_guide_activation_failure_message", caseUpstreamGuideActivationFailure},
			{"upstream_guide_hook_return_shapes", caseUpstreamGuideHooks},
			{"upstream_guide_http_dict_answers", caseUpstreamGuideHTTP},
		}
	}
	return nil
}

// runUpstream runs the cases of the upstream-SDK plugin in b (a bundle from `mmplug bundle`).
func runUpstream(b *bundle, o options) int {
	cases := upstreamCases(b.manifest.Id)
	if cases == nil {
		fmt.Fprintf(os.Stderr, "harness: -upstream knows the plugins of conformance/upstream (%s, %s), not %s\n", upstreamHelloID, upstreamGuideID, b.manifest.Id)
		return 2
	}
	passed, failed := 0, 0
	for _, c := range cases {
		res := runCase(b, o, c)
		if len(res.failures) == 0 {
			passed++
			fmt.Printf("ok   %-44s (%s)\n", c.name, res.elapsed.Round(time.Millisecond))
			continue
		}
		failed++
		fmt.Printf("FAIL %s: %s\n", c.name, strings.Join(strings.Fields(strings.Join(res.failures, "; ")), " "))
		for _, l := range res.logs {
			if l.pluginLine() {
				fmt.Printf("     %s\n", l)
			}
		}
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}

// caseUpstreamBundleManifest: the manifest `mmplug bundle` shipped names the bridge as the
// executable and nothing a Python-running server would start instead, and Python ran from the
// bundle's own wheels.
func caseUpstreamBundleManifest(entry string) func(t *caseT) {
	return func(t *caseT) {
		raw, err := os.ReadFile(filepath.Join(t.b.dir, "plugin.json"))
		if err != nil {
			t.fatalf("reading the installed manifest: %v", err)
		}
		var doc struct {
			Server map[string]any `json:"server"`
			Props  struct {
				Mmplug map[string]any `json:"mmplug"`
			} `json:"props"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.fatalf("the installed manifest: %v", err)
		}
		for _, key := range []string{"runtime", "executable", "python"} {
			if _, ok := doc.Server[key]; ok {
				t.errorf("the shipped manifest keeps server.%s (a server running Python plugins itself would start the .py, not the bridge)", key)
			}
		}
		if got := doc.Props.Mmplug["entry"]; got != entry {
			t.errorf("props.mmplug.entry = %v, want %q", got, entry)
		}
		t.activate()
		if t.opts.bundle == "" {
			return // -plugin DIR -bridge: Python is the -venv one, not the bundle's wheels
		}
		envs, _ := filepath.Glob(filepath.Join(t.b.dir, ".mmplug", "envs", "*", "mmplug-env.json"))
		if len(envs) == 0 {
			t.errorf("the bridge did not set up Python from the bundle's wheels (no .mmplug/envs/*/mmplug-env.json)")
		}
	}
}

func caseUpstreamHelloLifecycle(t *caseT) {
	t.activate()
	h, err := t.env.HooksForPlugin(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	impl, err := h.Implemented()
	if err != nil {
		t.fatalf("Implemented: %v", err)
	}
	sort.Strings(impl)
	want := []string{"ExecuteCommand", "MessageWillBePosted", "OnActivate", "OnDeactivate", "ServeHTTP"}
	if !slices.Equal(impl, want) {
		t.errorf("Implemented = %v, want %v", impl, want)
	}
	if c := t.api.command("hello"); c == nil {
		t.errorf("OnActivate did not register /hello")
	} else if !c.AutoComplete || c.AutoCompleteDesc != "Say hello from Python" {
		t.errorf("/hello registered as %+v", c)
	}
	if !t.waitLog("info", "Hello Python plugin activated!") {
		t.errorf("no info line from self.logger in OnActivate")
	}
	if !t.waitLog("info", "Connected to Mattermost server version: "+t.opts.serverVersion) {
		t.errorf("no info line with self.api.get_server_version()")
	}
	if !t.env.Deactivate(t.id) {
		t.fatalf("Deactivate returned false")
	}
	if !t.waitLog("info", "Hello Python plugin deactivated!") {
		t.errorf("OnDeactivate did not run")
	}
}

func caseUpstreamHelloMessageFilter(t *caseT) {
	t.activate()
	cases := []struct {
		message, wantMessage, wantReason string
		wantNil                          bool
	}{
		{"a badword here", "", "Message blocked: contains prohibited content", true},
		{"buy spam now", "", "Spam detected", true}, // a bare reason
		{"as is", "", "", true},                     // None: unchanged
		{"shout hello", "HELLO", "", false},
		{"plain", "plain", "", false},
	}
	for _, c := range cases {
		post := &model.Post{Id: model.NewId(), ChannelId: harnessChannelID, UserId: harnessUserID, Message: c.message}
		post.AddProp("kept", "as sent")
		got, reason, err := t.messageWillBePosted(t.pluginContext(), post)
		if err != nil {
			t.errorf("MessageWillBePosted(%q): RPC error %v", c.message, err)
			continue
		}
		if reason != c.wantReason {
			t.errorf("MessageWillBePosted(%q): reason %q, want %q", c.message, reason, c.wantReason)
		}
		if c.wantNil {
			if got != nil {
				t.errorf("MessageWillBePosted(%q): post %q, want nil", c.message, got.Message)
			}
			continue
		}
		if got == nil || got.Message != c.wantMessage {
			t.errorf("MessageWillBePosted(%q): post %+v, want message %q", c.message, got, c.wantMessage)
		} else if got.GetProp("kept") != "as sent" {
			t.errorf("MessageWillBePosted(%q): props %v lost", c.message, got.GetProps())
		}
	}
}

func caseUpstreamHelloCommand(t *caseT) {
	t.activate()
	for _, c := range []struct{ command, responseType, text string }{
		{"/hello world", model.CommandResponseTypeEphemeral, "Hello, World! :earth_americas:"},
		{"/hello", model.CommandResponseTypeInChannel, "Hello from Python! :wave:"},
	} {
		resp, appErr := t.command(c.command)
		if appErr != nil {
			t.errorf("%s: %v", c.command, appErr)
			continue
		}
		if resp == nil || resp.ResponseType != c.responseType || resp.Text != c.text {
			t.errorf("%s answered %+v, want %s %q", c.command, resp, c.responseType, c.text)
		}
	}
}

func caseUpstreamHelloHTTP(t *caseT) {
	t.activate()
	header := http.Header{"Content-Type": {"text/plain"}, "X-Tag": {"a", "b"}}
	w := t.serveHTTPAsServer("POST", "/echo", []byte("ping"), header)
	t.expectStatus("POST /echo", w, http.StatusCreated)
	if got := w.Header().Values("Set-Cookie"); !slices.Equal(got, []string{"first=1", "second=2"}) {
		t.errorf("Set-Cookie = %v, want both add_header values", got)
	}
	if got := w.Header().Get("Content-Type"); got != "application/json" {
		t.errorf("Content-Type = %q (set_header)", got)
	}
	var echo map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &echo); err != nil {
		t.fatalf("POST /echo body %q: %v", w.Body.String(), err)
	}
	want := map[string]any{
		"method": "POST", "body": "ping", "content_type": "text/plain",
		"tags": []any{"a", "b"}, "missing": "none", "user": harnessUserID,
	}
	for k, v := range want {
		if fmt.Sprint(echo[k]) != fmt.Sprint(v) {
			t.errorf("echo[%q] = %v, want %v", k, echo[k], v)
		}
	}
	stream := t.serveHTTPAsServer("GET", "/stream", nil, nil)
	t.expectStatus("GET /stream", stream, http.StatusOK)
	if stream.Body.String() != "one\ntwo\nthree\n" {
		t.errorf("GET /stream body %q", stream.Body.String())
	}
	t.expectStatus("GET /nothing", t.serveHTTPAsServer("GET", "/nothing", nil, nil), http.StatusNotFound)
}

// serveHTTPAsServer sends a request through the supervisor's ServeHTTP as the server's plugin
// handler forwards it: the URL is path and query only ("/plugins/{id}" stripped), which is what
// request.url holds, and a body's Content-Length header is there.
func (t *caseT) serveHTTPAsServer(method, target string, body []byte, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, bytes.NewReader(body))
	if body != nil {
		// A server's request keeps the header (Go's server leaves it in r.Header).
		r.Header.Set("Content-Length", strconv.Itoa(len(body)))
	}
	return t.serveRequest(r, header)
}

func (t *caseT) kvString(key string) string {
	v, _ := t.api.kvValue(key)
	return string(v)
}

func caseUpstreamGuideActivation(t *caseT) {
	t.activate()
	if got := t.kvString("activated"); got != "yes" {
		t.errorf("KV activated = %q: OnActivate did not finish", got)
	}
	if got := t.kvString("version_seen"); got != t.opts.serverVersion {
		t.errorf("KV version_seen = %q: PluginAPIClient() as a context manager did not reach the API", got)
	}
	if got := t.kvString("runtime_plugin_id"); got != t.id {
		t.errorf("load_runtime_config().plugin_id = %q, want %q", got, t.id)
	}
	found := false
	for _, l := range t.rec.logLines() {
		if l.Msg == "lookup failed as expected" {
			found = slices.Contains(l.KV, "status=404") && slices.Contains(l.KV, "error_id=app.user.missing_account.const")
		}
	}
	if !found {
		t.errorf("no LogInfo line with the NotFoundError's error_id and status_code (log_info keyword fields)")
	}
	if !t.waitLog("info", "My plugin activated!") {
		t.errorf("no self.logger line from OnActivate")
	}
}

func caseUpstreamGuideActivationFailure(t *caseT) {
	if appErr := t.api.KVSet("fail_activation", []byte("1")); appErr != nil {
		t.fatalf("KVSet: %v", appErr)
	}
	_, activated, err := t.env.Activate(t.id)
	if err == nil || activated {
		t.fatalf("Activate succeeded although OnActivate returned an error message")
	}
	if !strings.Contains(err.Error(), "activation refused: fail_activation is set") {
		t.errorf("Activate error %q does not carry the returned message", err)
	}
}

func caseUpstreamGuideHooks(t *caseT) {
	t.activate()
	h, err := t.env.HooksForPlugin(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	if got := h.UserWillLogIn(t.pluginContext(), &model.User{Id: model.NewId(), Username: "blocked"}); got != "Login blocked by plugin" {
		t.errorf("UserWillLogIn(blocked) = %q", got)
	}
	if got := h.UserWillLogIn(t.pluginContext(), &model.User{Id: model.NewId(), Username: "alice"}); got != "" {
		t.errorf("UserWillLogIn(alice) = %q, want \"\"", got)
	}
	kept := h.MessagesWillBeConsumed([]*model.Post{{Id: model.NewId(), Message: "a"}, {Id: model.NewId(), Message: "b"}})
	if len(kept) != 2 || kept[0].Message != "a" || kept[1].Message != "b" {
		t.errorf("MessagesWillBeConsumed returning None changed the posts: %v", kept)
	}
	redacted := h.MessagesWillBeConsumed([]*model.Post{{Id: model.NewId(), Message: "redact me"}})
	if len(redacted) != 1 || redacted[0].Message != "[redacted]" {
		t.errorf("MessagesWillBeConsumed = %v, want one [redacted] post", redacted)
	}
	count, err := h.RunDataRetention(0, 100)
	if err != nil || count < 3 {
		t.errorf("RunDataRetention(0, 100) = (%d, %v), want the KV key count and no error", count, err)
	}
	if _, err := h.RunDataRetention(0, 0); err == nil || !strings.Contains(err.Error(), "retention is switched off") {
		t.errorf("RunDataRetention(0, 0) error = %v, want the (count, err) message", err)
	}
	if _, err := h.ConfigurationWillBeSaved(&model.Config{}); err == nil || !strings.Contains(err.Error(), "frozen") {
		t.errorf("ConfigurationWillBeSaved error = %v, want the (None, err) message", err)
	}
	if !h.OnSharedChannelsPing(&model.RemoteCluster{RemoteId: model.NewId()}) {
		t.errorf("OnSharedChannelsPing returning None answered unhealthy")
	}
	if t.kvString("pinged") != "yes" {
		t.errorf("OnSharedChannelsPing did not run")
	}
	files, err := h.GenerateSupportData(t.pluginContext())
	if err != nil || len(files) != 1 || files[0].Filename != "guide.txt" || string(files[0].Body) != "support data" {
		t.errorf("GenerateSupportData = (%v, %v), want guide.txt", files, err)
	}
	_, appErr := t.command("/guide invalid")
	if appErr == nil || appErr.StatusCode != http.StatusBadRequest || appErr.Id != "guide.invalid" || appErr.Message != "that is not a valid request" {
		t.errorf("/guide invalid: AppError %+v, want the ValidationError (400, guide.invalid)", appErr)
	}
	resp, appErr := t.command("/guide")
	if appErr != nil || resp == nil || resp.Text != "Hello from Python!" {
		t.errorf("/guide = (%+v, %v)", resp, appErr)
	}
	h.MessageHasBeenPosted(t.pluginContext(), &model.Post{Id: model.NewId(), Message: "posted!"})
	if !t.waitFor(func() bool { return t.kvString("last_posted") == "posted!" }) {
		t.errorf("the async MessageHasBeenPosted handler (AsyncPluginAPIClient) did not store the post")
	}
}

func caseUpstreamGuideHTTP(t *caseT) {
	t.activate()
	hello := t.serveHTTPAsServer("GET", "/api/hello", nil, nil)
	t.expectStatus("GET /api/hello", hello, http.StatusOK)
	if hello.Header().Get("Content-Type") != "application/json" || hello.Body.String() != `{"message": "Hello from Python!"}` {
		t.errorf("GET /api/hello: %q %q", hello.Header().Get("Content-Type"), hello.Body.String())
	}
	data := t.serveHTTPAsServer("POST", "/api/data", []byte(`{"n": 1}`), http.Header{"Content-Type": {"application/json"}})
	t.expectStatus("POST /api/data", data, http.StatusOK)
	if data.Body.String() != `{"received": {"n": 1}, "method": "POST"}` {
		t.errorf("POST /api/data body %q", data.Body.String())
	}
	missing := t.serveHTTPAsServer("GET", "/elsewhere", nil, nil)
	t.expectStatus("GET /elsewhere", missing, http.StatusNotFound)
	if missing.Body.String() != "Not found" {
		t.errorf("GET /elsewhere body %q", missing.Body.String())
	}
}

package main

// The ASGI and WSGI examples (examples/fastapi, examples/flask) under the real supervisor and
// the bridge: their routes answer, call the server's API, stream request bodies and stream
// responses.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/mattermost/mattermost/server/public/plugin"
)

func appRequest(t *caseT, hooks plugin.Hooks, method, path string, body io.Reader, user string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://mattermost.test"+path, body)
	if user != "" {
		r.Header.Set("Mattermost-User-Id", user)
	}
	w := httptest.NewRecorder()
	hooks.ServeHTTP(t.pluginContext(), w, r)
	return w
}

func caseASGIExample(t *caseT) {
	pluginWorld(t, "examples/fastapi", nil, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		w := appRequest(t, hooks, http.MethodGet, "/api/me", nil, harnessUserID)
		var me map[string]string
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &me) != nil || me["username"] != "harness" || me["server_version"] != t.opts.serverVersion {
			t.errorf("GET /api/me: %d %q", w.Code, clip(w.Body.String()))
		}
		if w := appRequest(t, hooks, http.MethodGet, "/api/me", nil, ""); w.Code != http.StatusUnauthorized {
			t.errorf("GET /api/me without a user: %d, want 401", w.Code)
		}
		sent := payload(5<<20 + 3)
		w = appRequest(t, hooks, http.MethodPost, "/sha256", strings.NewReader(string(sent)), harnessUserID)
		var sum map[string]any
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &sum) != nil || sum["sha256"] != sha(sent) || sum["bytes"] != float64(len(sent)) {
			t.errorf("POST /sha256: %d %q", w.Code, clip(w.Body.String()))
		}
		// Server-sent events over a real server: read them as they come.
		srv := realServer(t, hooks)
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/events?count=3&interval=0")
		if err != nil {
			t.fatalf("GET /events: %v", err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Type") != "text/event-stream; charset=utf-8" {
			t.errorf("GET /events content-type %q", resp.Header.Get("Content-Type"))
		}
		events := 0
		lines := bufio.NewScanner(resp.Body)
		for lines.Scan() {
			if strings.HasPrefix(lines.Text(), "id: ") {
				if lines.Text() != fmt.Sprintf("id: %d", events) {
					t.errorf("event %d arrived as %q", events, lines.Text())
				}
				events++
			}
		}
		if events != 3 {
			t.errorf("%d events, want 3", events)
		}
	})
}

func caseWSGIExample(t *caseT) {
	pluginWorld(t, "examples/flask", nil, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		w := appRequest(t, hooks, http.MethodGet, "/api/me", nil, harnessUserID)
		var me map[string]any
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &me) != nil || me["username"] != "harness" {
			t.errorf("GET /api/me: %d %q", w.Code, clip(w.Body.String()))
		}
		sent := payload(3<<20 + 1)
		w = appRequest(t, hooks, http.MethodPost, "/echo", strings.NewReader(string(sent)), harnessUserID)
		want := string(sent) + "\nsha256=" + sha(sent) + "\n"
		if w.Code != http.StatusOK || w.Body.String() != want {
			t.errorf("POST /echo: %d, %d bytes (want %d)", w.Code, w.Body.Len(), len(want))
		}
		w = appRequest(t, hooks, http.MethodGet, "/countdown?n=3&interval=0", nil, harnessUserID)
		if w.Code != http.StatusOK || w.Body.String() != "3\n2\n1\nliftoff\n" {
			t.errorf("GET /countdown: %d %q", w.Code, w.Body.String())
		}
	})
}

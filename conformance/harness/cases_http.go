package main

// ServeHTTP cases that need the streaming plugin (testdata/streams): body sizes around the
// 64 KiB chunk boundary up to 100 MiB in both directions, an early answer with the body unread,
// server-sent events that provably arrive one by one, a client disconnect reaching the Python
// handler, invalid status codes, handler exceptions, multi-value headers both ways, and a
// handler that runs longer than 60 s. Some go through a real net/http server and client, as a
// browser would reach the server.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/plugin"
)

func (m *memAPI) putKV(key string, value []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.kv[key] = value
}

func (m *memAPI) getKV(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.kv[key]
}

// httpBodySizes are the request/response sizes exercised: empty, one byte, exactly one chunk,
// one chunk and a byte, several MiB, and 100 MiB.
var httpBodySizes = []int{0, 1, 64 << 10, 64<<10 + 1, 5 << 20, 100 << 20}

func caseHTTPBodySizes(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		for _, n := range httpBodySizes {
			sent := payload(n)
			doc := streamsHTTP(t, hooks, "/sink", sent)
			if doc["size"] != float64(n) || doc["sha256"] != sha(sent) {
				t.errorf("request body of %d bytes reached Python as %v bytes sha256 %v; want sha256 %s", n, doc["size"], doc["sha256"], sha(sent))
			}
			r := httptest.NewRequest(http.MethodGet, fmt.Sprintf("http://mattermost.test/source?size=%d", n), nil)
			w := httptest.NewRecorder()
			hooks.ServeHTTP(t.pluginContext(), w, r)
			if want := patternPrefix(n); w.Code != http.StatusOK || w.Body.Len() != n || sha(w.Body.Bytes()) != sha(want) {
				t.errorf("response body of %d bytes: status %d, %d bytes sha256 %s; want %s", n, w.Code, w.Body.Len(), sha(w.Body.Bytes()), sha(want))
			}
		}
	})
}

// patternPrefix is what /source sends: the plugin's 64 KiB pattern repeated.
func patternPrefix(n int) []byte {
	unit := payload(64 << 10)
	out := make([]byte, 0, n)
	for len(out) < n {
		out = append(out, unit[:min(len(unit), n-len(out))]...)
	}
	return out
}

func caseHTTPEarlyResponse(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		body := &countingReader{r: bytes.NewReader(payload(100 << 20))}
		r := httptest.NewRequest(http.MethodPost, "http://mattermost.test/early", body)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(t.pluginContext(), w, r)
		if w.Code != http.StatusRequestEntityTooLarge {
			t.errorf("early answer: status %d body %q, want 413", w.Code, clip(w.Body.String()))
		}
		// The plugin never read the body. What the server handed out is bounded by what was in
		// flight when the answer came: the gRPC stream's flow-control window toward Python plus
		// a few 64 KiB pieces (about 1.5 MiB measured); 8 MiB leaves room, 100 MiB would fail.
		if body.n > 8<<20 {
			t.errorf("%d bytes of the unread 100 MiB body were pulled from the server", body.n)
		}
	})
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// realServer serves the plugin's ServeHTTP over a real net/http server.
func realServer(t *caseT, hooks plugin.Hooks) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hooks.ServeHTTP(t.pluginContext(), w, r)
	}))
}

func caseHTTPServerSentEvents(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		srv := realServer(t, hooks)
		defer srv.Close()
		const events = 4
		resp, err := http.Get(srv.URL + fmt.Sprintf("/sse?events=%d", events))
		if err != nil {
			t.fatalf("GET /sse: %v", err)
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
			t.fatalf("GET /sse: status %d content-type %q", resp.StatusCode, ct)
		}
		lines := bufio.NewReader(resp.Body)
		for i := range events {
			// Each event must arrive while the handler is still running: the plugin writes the
			// next one only after this acknowledgement reaches it through the KV store.
			var got []string
			for {
				line, err := lines.ReadString('\n')
				if err != nil {
					t.fatalf("event %d: %v after %q", i, err, got)
				}
				if line == "\n" {
					break
				}
				got = append(got, strings.TrimSpace(line))
			}
			if want := []string{fmt.Sprintf("id: %d", i), fmt.Sprintf("data: event %d", i)}; strings.Join(got, "|") != strings.Join(want, "|") {
				t.errorf("event %d = %q, want %q", i, got, want)
			}
			api.putKV(fmt.Sprintf("sse/ack/%d", i), []byte("1"))
		}
		if rest, _ := io.ReadAll(lines); len(rest) != 0 {
			t.errorf("after the events: %q", rest)
		}
	})
}

func caseHTTPClientDisconnect(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		srv := realServer(t, hooks)
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/disconnect")
		if err != nil {
			t.fatalf("GET /disconnect: %v", err)
		}
		if _, err := io.ReadFull(resp.Body, make([]byte, 64<<10)); err != nil {
			t.fatalf("reading the first chunk: %v", err)
		}
		// Go away mid-response, as a closed browser tab does.
		resp.Body.Close()
		srv.CloseClientConnections()
		deadline := time.Now().Add(30 * time.Second)
		for string(api.getKV("disconnect/seen")) == "" && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if seen := string(api.getKV("disconnect/seen")); seen != "yes" {
			t.errorf("the Python handler did not see the client disconnect (disconnect/seen = %q)", seen)
		}
	})
}

func caseHTTPStatusAndErrors(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		for _, tc := range []struct {
			path string
			want int
		}{
			{"/status?code=42", http.StatusInternalServerError},
			{"/status?code=1000", http.StatusInternalServerError},
			{"/status?code=299", 299},
			{"/raise", http.StatusInternalServerError},
		} {
			r := httptest.NewRequest(http.MethodGet, "http://mattermost.test"+tc.path, nil)
			w := httptest.NewRecorder()
			hooks.ServeHTTP(t.pluginContext(), w, r)
			if w.Code != tc.want {
				t.errorf("GET %s: status %d, want %d (body %q)", tc.path, w.Code, tc.want, clip(w.Body.String()))
			}
		}
		if !t.waitLog("error", "the /raise route fails on purpose") {
			t.errorf("the handler's exception was not logged with its message")
		}
	})
}

func caseHTTPMultiValueHeaders(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		r := httptest.NewRequest(http.MethodGet, "http://mattermost.test/headers", nil)
		r.Header.Add("X-Multi", "first")
		r.Header.Add("X-Multi", "second, with comma")
		w := httptest.NewRecorder()
		hooks.ServeHTTP(t.pluginContext(), w, r)
		if w.Code != http.StatusNoContent {
			t.fatalf("status %d", w.Code)
		}
		if got := w.Header().Values("X-Multi"); strings.Join(got, "|") != "first|second, with comma" {
			t.errorf("request multi-value header came back as %q", got)
		}
		if got := w.Header().Values("X-Out"); strings.Join(got, "|") != "one|two" {
			t.errorf("response multi-value header X-Out = %q", got)
		}
	})
}

func caseHTTPLongHandler(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		// Longer than the 60 s some runtimes cut handlers at; nothing in the path may.
		r := httptest.NewRequest(http.MethodGet, "http://mattermost.test/slow?seconds=61", nil)
		w := httptest.NewRecorder()
		hooks.ServeHTTP(t.pluginContext(), w, r)
		var doc map[string]any
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc["slept"] != "61" {
			t.errorf("61 s handler: status %d body %q", w.Code, clip(w.Body.String()))
		}
	})
}

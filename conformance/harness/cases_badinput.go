package main

// Bad input from the Python side (issue 6): each kind must give a clear line in the server
// log, a sane HTTP status, and lose nothing (a post behind a bad reply is stored unchanged).
// They use testdata/badinput, which sends bad input through the SDK's public API (the SDK must
// refuse it) and raw, past the SDK's checks (the bridge must refuse it), as a plugin author
// who bypasses the SDK could.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// badinputBody is what testdata/badinput writes after its init part (BODY).
const badinputBody = "body after a bad init\n"

// overMessageLimit is one byte past the 256 MiB message limit of docs/internals.md §8.
const overMessageLimit = 256<<20 + 1

// statusKiB reads a "Name:   N kB" line of /proc/PID/status (0 if absent).
func statusKiB(pid int, name string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, name+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

func badinputWorld(t *caseT, run func(api *memAPI, hooks plugin.Hooks)) {
	pluginWorld(t, "conformance/harness/testdata/badinput", nil, func(api *memAPI, hooks plugin.Hooks, _ string) {
		run(api, hooks)
	})
}

// hooksGet sends a GET through the supervisor's ServeHTTP to the plugin behind hooks.
func hooksGet(t *caseT, hooks plugin.Hooks, path string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "http://mattermost.test"+path, nil)
	w := httptest.NewRecorder()
	hooks.ServeHTTP(t.pluginContext(), w, r)
	return w
}

// badinputOutcome runs one of the plugin's API-call routes and returns its report (result or
// error_type and error), checking that the plugin's API still answered afterwards.
func badinputOutcome(t *caseT, hooks plugin.Hooks, path string) map[string]any {
	w := hooksGet(t, hooks, path)
	var doc map[string]any
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &doc) != nil {
		t.fatalf("%s: status %d body %q", path, w.Code, clip(w.Body.String()))
	}
	if doc["version_after"] != t.opts.serverVersion {
		t.errorf("%s: the API did not answer afterwards: %v", path, doc)
	}
	return doc
}

// expectRefused checks that a response the plugin started badly became the bridge's (or the
// SDK's) plain 500: nothing of what the plugin sent reached the client.
func expectRefused(t *caseT, what string, w *httptest.ResponseRecorder, leaked ...string) {
	if w.Code != http.StatusInternalServerError {
		t.errorf("%s: status %d, want 500 (body %q)", what, w.Code, clip(w.Body.String()))
	}
	if strings.Contains(w.Body.String(), badinputBody) {
		t.errorf("%s: the plugin's body reached the client after a refused init", what)
	}
	for _, h := range leaked {
		if vs, ok := w.Header()[h]; ok {
			t.errorf("%s: header %q reached the client: %q", what, h, clip(strings.Join(vs, ", ")))
		}
	}
	for name, vs := range w.Header() {
		for _, v := range vs {
			if strings.ContainsAny(name+v, "\r\n\x00") {
				t.errorf("%s: the client got the header %q: %q", what, name, clip(v))
			}
		}
	}
}

// caseBadInputStatus: a status outside 100–999 sent raw reaches the bridge, which answers 500
// and logs the code; through the SDK, write_header raises and the SDK answers 500.
func caseBadInputStatus(t *caseT) {
	badinputWorld(t, func(_ *memAPI, hooks plugin.Hooks) {
		for _, code := range []int{42, 1000} {
			w := hooksGet(t, hooks, fmt.Sprintf("/raw?case=status-%d", code))
			expectRefused(t, fmt.Sprintf("raw status %d", code), w)
			if !t.waitLog("error", fmt.Sprintf("the plugin wrote the invalid HTTP status code %d; answering 500", code)) {
				t.errorf("raw status %d: no error log line naming the code", code)
			}
		}
		// An unusual status inside the range is the plugin's to choose.
		if w := hooksGet(t, hooks, "/raw?case=status-299"); w.Code != 299 || w.Body.String() != badinputBody {
			t.errorf("raw status 299: status %d body %q, want 299 and the body", w.Code, clip(w.Body.String()))
		}
		w := hooksGet(t, hooks, "/sdk?case=status-42")
		expectRefused(t, "status 42 through the SDK", w)
		if !waitLogAny(t, "invalid HTTP status code 42: must be within 100..999") {
			t.errorf("status 42 through the SDK: the SDK's ValueError is not in the log")
		}
	})
}

// caseBadInputHeaders: CR, LF or NUL in a header value, or a name that is not an HTTP token,
// would let a response split or smuggle headers. Raw, the bridge refuses the whole response
// with a 500 and logs the header; through the SDK, setting such a header raises.
func caseBadInputHeaders(t *caseT) {
	badinputWorld(t, func(_ *memAPI, hooks plugin.Hooks) {
		for _, tc := range []struct{ name, log string }{
			{"crlf-value", `header "X-Note" has a value with CR, LF or NUL`},
			{"lf-value", `header "X-Note" has a value with CR, LF or NUL`},
			{"nul-value", `header "X-Note" has a value with CR, LF or NUL`},
			{"crlf-name", `header name "X-Note\r\nSet-Cookie: session=stolen" is not an HTTP token`},
			{"space-name", `header name "X Note" is not an HTTP token`},
			{"empty-name", `header name "" is not an HTTP token`},
		} {
			w := hooksGet(t, hooks, "/raw?case="+tc.name)
			expectRefused(t, "raw "+tc.name, w, "X-Note", "Set-Cookie", "X-Injected")
			if !waitLogAny(t, tc.log) {
				t.errorf("raw %s: no log line saying %s", tc.name, tc.log)
			}
		}
		for _, tc := range []struct{ name, log string }{
			{"crlf-value", "header 'X-Note' value contains CR, LF or NUL"},
			{"crlf-name", "header name 'X-Note\\r\\nSet-Cookie: session=stolen' is not an HTTP token"},
			{"space-name", "header name 'X Note' is not an HTTP token"},
		} {
			w := hooksGet(t, hooks, "/sdk?case="+tc.name)
			expectRefused(t, "through the SDK: "+tc.name, w, "X-Note", "Set-Cookie")
			if !waitLogAny(t, tc.log) {
				t.errorf("through the SDK: %s: the SDK's error %q is not in the log", tc.name, tc.log)
			}
		}
		// A request to another plugin (PluginHTTP) would hand such a header to that plugin as
		// it is: the bridge refuses the request and the plugin gets the reason.
		doc := badinputOutcome(t, hooks, "/pluginhttp-bad-header")
		if e, _ := doc["error"].(string); !strings.Contains(e, `PluginHTTP: the request header "X-Note" has a value with CR, LF or NUL`) {
			t.errorf("PluginHTTP with CR/LF in a header value: %v; want the bridge's refusal", doc)
		}
	})
}

// caseBadInputHeaderSize: a response header block over 1 MiB (name, value and the 4 bytes of
// ": " and CRLF per value, as on the HTTP/1.1 wire; Go's default MaxHeaderBytes for requests)
// is refused with a 500 and a log line; one under it passes whole.
func caseBadInputHeaderSize(t *caseT) {
	badinputWorld(t, func(_ *memAPI, hooks plugin.Hooks) {
		for _, name := range []string{"big-header", "many-headers"} {
			w := hooksGet(t, hooks, "/raw?case="+name)
			expectRefused(t, "raw "+name, w, "X-Big", "X-Many-0")
		}
		if !waitLogAny(t, "response headers of 1048585 bytes exceed the limit of 1048576") {
			t.errorf("raw big-header: no log line with the header size and the limit")
		}
		if !waitLogAny(t, "exceed the limit of 1048576") {
			t.errorf("raw many-headers: no log line with the limit")
		}
		w := hooksGet(t, hooks, "/raw?case=large-header-ok")
		if w.Code != http.StatusOK || len(w.Header().Get("X-Large")) != 512<<10 || w.Body.String() != badinputBody {
			t.errorf("a 512 KiB header: status %d, header of %d bytes, body %q", w.Code, len(w.Header().Get("X-Large")), clip(w.Body.String()))
		}
		w = hooksGet(t, hooks, "/sdk?case=big-header")
		expectRefused(t, "through the SDK: big-header", w, "X-Big")
		if !waitLogAny(t, "response headers of 1048585 bytes exceed the limit of 1048576") {
			t.errorf("through the SDK: big-header: the SDK's error is not in the log")
		}
	})
}

// caseBadInputImplemented: Python reports a hook name no server has, and one name twice. The
// server must get only hooks it knows, once each, and the log must name what was dropped.
func caseBadInputImplemented(t *caseT) {
	badinputWorld(t, func(_ *memAPI, hooks plugin.Hooks) {
		impl, err := hooks.Implemented()
		if err != nil {
			t.fatalf("Implemented: %v", err)
		}
		got := slices.Clone(impl)
		slices.Sort(got)
		want := []string{"ExecuteCommand", "MessageWillBePosted", "ServeHTTP"}
		if !slices.Equal(got, want) {
			t.errorf("Implemented = %v, want exactly %v", got, want)
		}
		if !waitLogAny(t, "NoSuchHook") {
			t.errorf("no log line names the unknown hook NoSuchHook")
		}
	})
}

// caseBadInputWrongReplyTypes: a handler returning the wrong type. The SDK refuses the reply
// and sends the hook's error; for MessageWillBePosted (no error result) the bridge answers
// "unchanged", so the post is stored as it was; ExecuteCommand's error reaches the server.
func caseBadInputWrongReplyTypes(t *caseT) {
	badinputWorld(t, func(api *memAPI, hooks plugin.Hooks) {
		post, reason, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "wrong-type"})
		if appErr != nil || reason != "" {
			t.fatalf("the post behind a wrong reply was refused: %q %v", reason, appErr)
		}
		if stored := api.post(post.Id); stored == nil || stored.Message != "wrong-type" || stored.GetProp("seen_by") != nil {
			t.errorf("the post behind a wrong reply was stored as %+v", stored)
		}
		if !t.waitLog("error", "MessageWillBePosted failed in Python; the server proceeds as if the hook changed nothing") {
			t.errorf("no error log line from the bridge about the failed hook")
		}
		if !waitLogAny(t, "MessageWillBePosted handler returned set {'spam'}") {
			t.errorf("the log does not say what the handler returned")
		}
		resp, cmdErr := hooks.ExecuteCommand(t.pluginContext(), &model.CommandArgs{Command: "/badinput wrong-type", UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID})
		if cmdErr == nil || !strings.Contains(cmdErr.Message, "ExecuteCommand handler returned int 42") {
			t.errorf("ExecuteCommand returning an int: response %+v, error %v; want an AppError naming the wrong reply", resp, cmdErr)
		}
		after, _, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "after"})
		if appErr != nil || after.GetProp("seen_by") != "badinput" {
			t.errorf("the next post did not go through the hook: %v %v", appErr, after)
		}
	})
}

// caseBadInputOverLimit: messages over the 256 MiB limit, each way. A hook reply over it
// (Python → bridge) fails that hook only: the post is stored unchanged. An API request over it
// (Python → bridge) fails in Python with a clear error. An API reply over it (server → bridge)
// fails that call only. A hook call over it (server → bridge) is answered with an RPC error,
// which the supervisor logs before going on with the post unchanged. After each, the plugin
// still answers on the same connections.
func caseBadInputOverLimit(t *caseT) {
	badinputWorld(t, func(api *memAPI, hooks plugin.Hooks) {
		// Server → bridge, on the API connection: the KVGet reply is read past and fails
		// that call; the calls after it on the same connection are answered.
		api.putKV("huge", make([]byte, overMessageLimit))
		api.putKV("small", []byte("fits"))
		doc := badinputOutcome(t, hooks, "/kv-get?key=huge")
		if e, _ := doc["error"].(string); doc["error_type"] != "PluginAPIError" || !strings.Contains(e, "KVGet: the reply was a gob message of") || !strings.Contains(e, "over the limit of 268435456 bytes, and was dropped unread") {
			t.errorf("KVGet of a value over the limit: %v; want a PluginAPIError naming the reply's size and the limit", doc)
		}
		if !t.waitLog("error", "the reply to Plugin.KVGet (seq ") || !waitLogAny(t, "over the limit of 268435456 bytes: it was dropped unread and that call fails") {
			t.errorf("no error log line naming the oversized KVGet reply, its size and the limit")
		}
		if doc := badinputOutcome(t, hooks, "/kv-get?key=small"); doc["result"] != float64(len("fits")) {
			t.errorf("KVGet after the oversized reply: %v; want the 4-byte value", doc)
		}

		// Server → bridge, on the hooks connection: the supervisor's hooks client gets an RPC
		// error for MessageWillBePosted, logs it and keeps the post it sent (Go's
		// hooksRPCClient.MessageWillBePosted returns its argument on error). Python never
		// sees the post, so it carries no seen_by.
		huge, reason, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: strings.Repeat("h", overMessageLimit)})
		if appErr != nil || reason != "" {
			t.errorf("a post over the limit was refused: %q %v", reason, appErr)
		} else if stored := api.post(huge.Id); stored == nil || len(stored.Message) != overMessageLimit || stored.GetProp("seen_by") != nil {
			t.errorf("a post over the limit was not stored unchanged")
		}
		if !t.waitLog("error", "the request Plugin.MessageWillBePosted (seq ") {
			t.errorf("no error log line from the bridge naming the oversized hook call")
		}
		if !t.waitLog("error", "RPC call MessageWillBePosted to plugin failed.") || !waitLogAny(t, "rpc: Plugin.MessageWillBePosted: the request was a gob message of") {
			t.errorf("the supervisor did not log the hook's RPC error with the bridge's reason")
		}
		// Both were read past, never held: the bridge's peak memory so far is far below one
		// such message (the Python → bridge parts below may raise it, so it is read here).
		if bridge, _, err := soakProcesses(); err != nil {
			t.errorf("finding the bridge: %v", err)
		} else if peak := statusKiB(bridge.PID, "VmHWM"); peak <= 0 || peak > overMessageLimit/2/1024 {
			t.errorf("the bridge's peak RSS after reading past two 256 MiB messages is %d KiB, want under %d KiB", peak, overMessageLimit/2/1024)
		}

		// A reply the bridge cannot take is its failure, not the plugin's decision: the post
		// is refused (fail closed) and nothing is stored.
		before := len(api.allPosts())
		_, reason, appErr = api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "too-big"})
		if want := "com.mmplug.badinput" + failClosedReason; appErr == nil || reason != want {
			t.errorf("the post behind an oversized reply: reason %q, error %v; want it refused with %q", reason, appErr, want)
		} else if n := len(api.allPosts()); n != before {
			t.errorf("the post behind an oversized reply was stored")
		}
		if !t.waitLog("error", "MessageWillBePosted: the bridge could not get the plugin's decision, so it was rejected") {
			t.errorf("no error log line about the oversized hook reply")
		}

		outcome := func(path string) map[string]any { return badinputOutcome(t, hooks, path) }
		// Through the SDK, its carrier refuses to send the request (the lane's words, or
		// grpcio's with MMPLUG_TRANSPORT=grpc).
		doc = outcome("/kv-set-too-big")
		e, _ := doc["error"].(string)
		tooBig := strings.Contains(e, "over the limit of 268435456 bytes") || strings.Contains(e, "Sent message larger than max")
		if doc["error_type"] != "PluginAPIError" || !tooBig || !strings.Contains(e, "RESOURCE_EXHAUSTED") {
			t.errorf("KVSet over the limit through the SDK: %v; want a PluginAPIError saying the message is over the limit", doc)
		}
		// Past the SDK, the bridge refuses to take it.
		doc = outcome("/kv-set-too-big-raw")
		if e, _ := doc["error"].(string); !strings.Contains(e, "OUT_OF_RANGE") || !strings.Contains(e, "the limit is: 268435456 bytes") {
			t.errorf("KVSet over the limit on a channel without the SDK's limit: %v; want the bridge's refusal naming the limit", doc)
		}
		if _, ok := api.kvValue("too-big"); ok {
			t.errorf("an oversized KVSet reached the server")
		}
		after, _, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "after"})
		if appErr != nil || after.GetProp("seen_by") != "badinput" {
			t.errorf("the next post did not go through the hook: %v %v", appErr, after)
		}
	})
}

package main

// Hostile input a user or an anonymous client can put in front of a plugin (issue 16): the
// same cases run against the native Go twin (conformance/hellogo) and the Python example, so
// Go's answer is the bar. Each case ends by checking that the plugin still answers.

import (
	"fmt"
	"net/http"
	"reflect"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

// stillAnswers fails the case unless the plugin still rejects a banned post, serves a route and
// runs a command: what a plugin that silently lost its connection would no longer do.
func stillAnswers(t *caseT, after string) {
	_, reason, rpcErr := t.messageWillBePosted(t.pluginContext(), &model.Post{
		ChannelId: harnessChannelID, UserId: harnessUserID, Message: "forbidden after " + after,
	})
	if rpcErr != nil || reason != "not allowed here" {
		t.fatalf("after %s, a banned post got reason %q (RPC error %v): the filter no longer works", after, reason, rpcErr)
	}
	w := t.serveHTTP(http.MethodGet, "/version", nil, nil)
	t.expectStatus("GET /version after "+after, w, http.StatusOK)
	resp, appErr := t.command("/hello")
	if appErr != nil || resp == nil || !strings.HasPrefix(resp.Text, "Hello from") {
		t.fatalf("after %s, /hello answered %+v, %v", after, resp, appErr)
	}
}

// caseHostileNonUTF8 sends strings that are not UTF-8 wherever a client controls them: a
// header of a plugin route, the User-Agent and Accept-Language of a hook's plugin.Context, a
// raw query string, a post's message. Go strings carry any bytes, and so must we.
func caseHostileNonUTF8(t *caseT) {
	t.activate()
	w := t.serveHTTP(http.MethodGet, "/version", nil, http.Header{"X-Any": {"caf\xe9"}})
	t.expectStatus("GET /version with a header value that is not UTF-8", w, http.StatusOK)
	stillAnswers(t, "a header value that is not UTF-8")

	w = t.serveHTTP(http.MethodGet, "/version?q=caf%E9&r=\xe9", nil, nil)
	t.expectStatus("GET /version with a query that is not UTF-8", w, http.StatusOK)
	stillAnswers(t, "a query that is not UTF-8")

	ctx := t.pluginContext()
	ctx.UserAgent = "Mozilla caf\xe9"
	ctx.AcceptLanguage = "\xff\xfe"
	_, reason, rpcErr := t.messageWillBePosted(ctx, &model.Post{
		ChannelId: harnessChannelID, UserId: harnessUserID, Message: "forbidden \xe9",
	})
	if rpcErr != nil || reason != "not allowed here" {
		t.errorf("a banned post from a User-Agent that is not UTF-8: reason %q, RPC error %v", reason, rpcErr)
	}
	// An allowed post whose message is not UTF-8 comes back with its bytes unchanged.
	message := "fine caf\xe9 \xff"
	got, reason, rpcErr := t.messageWillBePosted(ctx, &model.Post{
		ChannelId: harnessChannelID, UserId: harnessUserID, Message: message,
	})
	if rpcErr != nil || reason != "" || got == nil {
		t.fatalf("an allowed post whose message is not UTF-8: reason %q, RPC error %v, post %v", reason, rpcErr, got)
	}
	if got.Message != message {
		t.errorf("the message came back as %q, want the bytes sent (%q)", got.Message, message)
	}
	if got.GetProp("checked_by") != "hello" {
		t.errorf("the post's props came back as %v, want checked_by=hello", got.GetProps())
	}
	stillAnswers(t, "a plugin.Context and a message that are not UTF-8")
}

// deepProps nests `depth` levels of kind "dict", "list" or "mixed" (alternating), with a string
// at the bottom. Strings only, so that Go's own gob round trip (ints become int64) is no
// concern of this case.
func deepProps(kind string, depth int) any {
	var v any = "bottom"
	for i := 0; i < depth; i++ {
		asList := kind == "list" || (kind == "mixed" && i%2 == 1)
		if asList {
			v = []any{v}
		} else {
			v = map[string]any{"k": v}
		}
	}
	return v
}

type propsShape struct {
	kind  string
	depth int
}

// caseHostileDeepProps posts a banned word with deeply nested props: every one must be
// rejected, and an allowed post with the same props must come back whole.
func caseHostileDeepProps(t *caseT) {
	checkDeepProps(t, []propsShape{
		{"dict", 33}, {"dict", 100}, {"dict", 1000},
		{"list", 49}, {"list", 100}, {"list", 1000},
		{"mixed", 20}, {"mixed", 1000},
	})
}

// caseHostileDeepPropsServerMax does the same at the depth the server accepts (its JSON
// decoder stops near 10,000 levels): 30,000 protobuf messages deep on the way to Python.
func caseHostileDeepPropsServerMax(t *caseT) {
	checkDeepProps(t, []propsShape{{"dict", 9990}, {"list", 9990}, {"mixed", 9990}})
}

func checkDeepProps(t *caseT, shapes []propsShape) {
	t.activate()
	for _, s := range shapes {
		what := fmt.Sprintf("props nested %d levels (%s)", s.depth, s.kind)
		props := model.StringInterface{"deep": deepProps(s.kind, s.depth)}
		_, reason, rpcErr := t.messageWillBePosted(t.pluginContext(), &model.Post{
			ChannelId: harnessChannelID, UserId: harnessUserID, Message: "forbidden words", Props: props,
		})
		if rpcErr != nil || reason != "not allowed here" {
			t.errorf("a banned post with %s: reason %q, RPC error %v (the server would let it through)", what, reason, rpcErr)
			continue
		}
		got, reason, rpcErr := t.messageWillBePosted(t.pluginContext(), &model.Post{
			ChannelId: harnessChannelID, UserId: harnessUserID, Message: "fine", Props: props,
		})
		if rpcErr != nil || reason != "" || got == nil {
			t.errorf("an allowed post with %s: reason %q, RPC error %v", what, reason, rpcErr)
			continue
		}
		if !reflect.DeepEqual(got.GetProp("deep"), props["deep"]) {
			t.errorf("an allowed post with %s came back with other props", what)
		}
	}
	stillAnswers(t, "posts with deep props")
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Issue 16's findings, each side by side with the Go twin (sideBySide).

// nonUTF8 is a Latin-1 "café": its last byte, 0xE9, is not UTF-8. Go strings carry any bytes;
// the server passes such a header, query or name on to the plugin untouched.
const nonUTF8 = "caf\xe9"

// A header value with a non-UTF-8 byte on a plugin route, anonymously.
func caseNonUTF8Header(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := raw(e.mm.addr(), "GET", "/plugins/"+p.id+"/version", [][2]string{{"X-Any", nonUTF8}}, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("GET /version with the header answered %d", r.status), nil
	})
}

// A logged-in user's User-Agent with a non-UTF-8 byte: every hook's plugin.Context carries it.
func caseNonUTF8UserAgent(e *env, _ *caseState) error {
	return nonUTF8ContextHeader(e, "User-Agent")
}

func caseNonUTF8AcceptLanguage(e *env, _ *caseState) error {
	return nonUTF8ContextHeader(e, "Accept-Language")
}

// nonUTF8ContextHeader posts, as user1 with the header set to a non-UTF-8 value, a message
// containing "forbidden" (the plugin must reject it) and a clean one (accepted and stamped).
func nonUTF8ContextHeader(e *env, name string) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		h := http.Header{"Content-Type": {"application/json"}, name: {nonUTF8}}
		send := func(msg string) (*reply, error) {
			b, _ := json.Marshal(map[string]any{"channel_id": e.w.channel, "message": msg})
			return e.w.user1.do(http.MethodPost, "/api/v4/posts", bytes.NewReader(b), h)
		}
		bad, err := send("a forbidden word, " + name + " not UTF-8")
		if err != nil {
			return "", err
		}
		good, err := send("a clean post, " + name + " not UTF-8")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("the forbidden post was %s, the clean one %s", postVerdict(bad), stamped(good)), nil
	})
}

// stamped describes a created post: accepted with or without hello's checked_by prop.
func stamped(r *reply) string {
	v := postVerdict(r)
	if v != "accepted" {
		return v
	}
	var post struct {
		Props map[string]any `json:"props"`
	}
	if err := r.json(&post); err != nil {
		return "accepted (unreadable answer)"
	}
	if post.Props["checked_by"] == "hello" {
		return "accepted with checked_by=hello"
	}
	return "accepted without checked_by (the hook did not run or its answer was dropped)"
}

// A percent-encoded non-UTF-8 byte in a plugin route's query.
func caseNonUTF8QueryEscaped(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := raw(e.mm.addr(), "GET", "/plugins/"+p.id+"/version?q=caf%E9", nil, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("GET /version?q=caf%%E9 answered %d", r.status), nil
	})
}

// The raw byte in the request target's query (Go's server accepts it).
func caseNonUTF8QueryRaw(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := raw(e.mm.addr(), "GET", "/plugins/"+p.id+"/version?q="+nonUTF8, nil, nil)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("GET /version?q=caf<0xE9> answered %d", r.status), nil
	})
}

// A file uploaded under a non-UTF-8 name, then attached to a forbidden and to a clean post.
// hello and hellogo implement no file hook (FileWillBeUploaded), so the name reaches them only
// in what the server puts in the posts; and with PostgreSQL the server itself refuses to save
// such a name (500 app.file_info.save.app_error, the column is UTF-8 text), before any post.
// The verdict is then the server's, the same for both; the case still checks the plugin
// answers afterwards.
func caseNonUTF8Filename(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := e.w.user1.uploadFile(e.w.channel, []byte(nonUTF8+".txt"), []byte("hello"))
		if err != nil {
			return "", err
		}
		if r.status != http.StatusCreated {
			return fmt.Sprintf("the upload answered %d %s", r.status, r.appErrorID()), nil
		}
		var up struct {
			FileInfos []struct {
				ID string `json:"id"`
			} `json:"file_infos"`
		}
		if err := r.json(&up); err != nil || len(up.FileInfos) != 1 {
			return "", fmt.Errorf("uploading the file: %s", r)
		}
		bad, err := e.w.user1.postJSON("/api/v4/posts", map[string]any{
			"channel_id": e.w.channel, "message": "forbidden attachment", "file_ids": []string{up.FileInfos[0].ID},
		})
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("the upload answered 201, the forbidden post with the file was %s", postVerdict(bad)), nil
	})
}

// Nesting shapes for deep props: n levels of dicts, n levels of lists, or n dict/list pairs
// (2n levels, dict first).
type nestKind int

const (
	dictNest nestKind = iota
	listNest
	altNest
)

func nest(kind nestKind, n int) any {
	if kind == altNest {
		n *= 2
	}
	var v any = "leaf"
	for i := n - 1; i >= 0; i-- {
		dict := kind == dictNest || (kind == altNest && i%2 == 0)
		if dict {
			v = map[string]any{"k": v}
		} else {
			v = []any{v}
		}
	}
	return v
}

// deepProps posts a forbidden message with deeply nested props (the plugin must reject it) and
// a clean one with the same props (accepted, stamped, the props read back unchanged). Only
// posts: neither hello nor hellogo implements MessageWillBeUpdated, so an edit through
// PUT /api/v4/posts/{id}/patch reaches no hook of theirs.
func deepProps(kind nestKind, n int) func(e *env, _ *caseState) error {
	return func(e *env, _ *caseState) error {
		deep := nest(kind, n)
		want, _ := json.Marshal(deep)
		return sideBySide(e, func(p *plugin) (string, error) {
			props := map[string]any{"deep": deep}
			bad, err := e.w.post(e.w.user1, "deep and forbidden", props)
			if err != nil {
				return "", err
			}
			good, err := e.w.post(e.w.user1, "deep and clean", props)
			if err != nil {
				return "", err
			}
			desc := fmt.Sprintf("the forbidden post was %s, the clean one %s", postVerdict(bad), stamped(good))
			if good.status == http.StatusCreated {
				var post struct {
					Props map[string]json.RawMessage `json:"props"`
				}
				if err := good.json(&post); err == nil && !jsonEqual(post.Props["deep"], want) {
					desc += ", its props changed on the way"
				}
			}
			return desc, nil
		})
	}
}

// jsonEqual compares two JSON texts by value.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ca, _ := json.Marshal(x)
	cb, _ := json.Marshal(y)
	return bytes.Equal(ca, cb)
}

// forgedHeaders are header names the server neither removes nor sets (it strips and sets
// Mattermost-User-Id and Mattermost-Plugin-ID only), spelled so that a rewrite of '_' to '-'
// or of '-' to '_' (CGI/WSGI environ keys) lands on the real ones.
func forgedHeaders(e *env) [][2]string {
	return [][2]string{{"Mattermost_User_Id", e.w.adminID}, {"Mattermost_Plugin_Id", "com.mmplug.hello"}}
}

// The Flask app (WSGI): an anonymous request claiming the admin's identity. The scratch copy
// scripts/e2e/run.sh bundles adds GET /e2e/headers, answering what request.headers holds for
// Mattermost-User-Id and Mattermost-Plugin-Id; a Go plugin's r.Header.Get sees "" for both.
func caseHeaderForgeWSGI(e *env, _ *caseState) error {
	return forgeApp(e, e.flaskDeps)
}

// The FastAPI app (ASGI), the same way.
func caseHeaderForgeASGI(e *env, _ *caseState) error {
	return forgeApp(e, e.fastapiDeps)
}

func forgeApp(e *env, p *plugin) error {
	if s, err := e.status(p); err != nil || s.State != stateRunning {
		return fmt.Errorf("%s is not running (state %d: %s), see setup's log", p.id, s.State, shortError(s.Error))
	}
	type seen struct {
		UserID   string `json:"user_id"`
		PluginID string `json:"plugin_id"`
	}
	r, err := must(raw(e.mm.addr(), "GET", "/plugins/"+p.id+"/e2e/headers", forgedHeaders(e), nil))(200)
	if err != nil {
		return err
	}
	var anon seen
	if err := r.json(&anon); err != nil {
		return err
	}
	var problems []string
	if anon.UserID != "" {
		problems = append(problems, fmt.Sprintf("an anonymous request with the header Mattermost_User_Id: <admin's id> made the app see Mattermost-User-Id %q (a Go plugin sees \"\")", anon.UserID))
	}
	if anon.PluginID != "" {
		problems = append(problems, fmt.Sprintf("Mattermost_Plugin_Id made the app see Mattermost-Plugin-Id %q", anon.PluginID))
	}
	// A logged-in user is still recognised: the route does read the server's header.
	r, err = must(e.w.user1.get("/plugins/" + p.id + "/e2e/headers"))(200)
	if err != nil {
		return err
	}
	var user seen
	if err := r.json(&user); err != nil {
		return err
	}
	if user.UserID != e.w.user1ID {
		problems = append(problems, fmt.Sprintf("as e2euser1 the app saw Mattermost-User-Id %q, not e2euser1's id", user.UserID))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// hello's and hellogo's /echo report the Mattermost-User-Id they saw in X-User-Id.
func caseHeaderForgeHello(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := raw(e.mm.addr(), "POST", "/plugins/"+p.id+"/echo", forgedHeaders(e), []byte("x"))
		if err != nil {
			return "", err
		}
		if r.status != 200 {
			return fmt.Sprintf("/echo answered %s", r), nil
		}
		return fmt.Sprintf("X-User-Id %q", r.header.Get("X-User-Id")), nil
	})
}

// A percent-encoded route path: Go's r.URL.Path is decoded, so hellogo stores the key "café x".
// The key each plugin stored is read from the database itself.
func casePathDecoded(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		value := "path-decoded " + p.id
		if _, err := must(e.w.user1.do(http.MethodPost, "/plugins/"+p.id+"/kv/caf%C3%A9%20x", strings.NewReader(value), nil))(204); err != nil {
			return "", fmt.Errorf("POST /kv/caf%%C3%%A9%%20x: %w", err)
		}
		key, err := e.pg.psql(dbName, fmt.Sprintf(
			"SELECT pkey FROM pluginkeyvaluestore WHERE pluginid = '%s' AND pvalue = convert_to('%s', 'UTF8')", p.id, value))
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("stored the key %q", key), nil
	})
}

// Go's strings.Fields splits on Unicode white space only; \x1c-\x1f are not, so
// "/hello \x1cfail" is an unknown sub-command, not "fail".
func caseCommandSeparators(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := e.w.command(e.w.user1, "/hello \x1cfail")
		if err != nil {
			return "", err
		}
		return describeCommand(r), nil
	})
}

// describeCommand reduces a command's answer to its kind.
func describeCommand(r *reply) string {
	if r.status != 200 {
		return fmt.Sprintf("answered an error (%d %q)", r.status, r.appErrorMessage())
	}
	var resp struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(r.body, &resp)
	if strings.HasPrefix(resp.Text, "Unknown subcommand") {
		return "answered \"Unknown subcommand ...\""
	}
	return fmt.Sprintf("answered %q", resp.Text)
}

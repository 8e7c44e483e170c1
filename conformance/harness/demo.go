package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

// runDemo shows the plugin at work under the real supervisor, for people rather than CI: the
// same calls the cases make, narrated. It fails (non-zero exit) if a step does not work.
func runDemo(out io.Writer, b *bundle, o options) (err error) {
	rec := newRecorder()
	logger, sink, err := newCaptureLogger(rec)
	if err != nil {
		return err
	}
	api, env, err := newWorld(b, o, rec, logger)
	if err != nil {
		return err
	}
	t := &caseT{b: b, id: b.manifest.Id, api: api, env: env, rec: rec, logger: logger, opts: o, timeout: o.caseTimeout}
	defer func() {
		teardown(env, rec)
		_ = logger.Flush()
		_ = logger.Shutdown()
		sink.close()
		if r := recover(); r != nil && r != errFatal {
			err = fmt.Errorf("demo panicked: %v", r)
		}
		if err == nil {
			if f := rec.failureList(); len(f) > 0 {
				err = fmt.Errorf("%s", strings.Join(f, "; "))
			}
		}
	}()

	step := func(format string, args ...any) { fmt.Fprintf(out, "\n▸ "+format+"\n", args...) }
	say := func(format string, args ...any) { fmt.Fprintf(out, "  "+format+"\n", args...) }

	fmt.Fprintf(out, "%s %s under Mattermost's own plugin supervisor (server/public %s)\n", b.manifest.Name, b.manifest.Version, serverPublicVersion())
	fmt.Fprintf(out, "in-memory server %s; executable %s\n", o.serverVersion, strings.TrimPrefix(b.executable, b.dir+"/"))

	step("Activating %s", b.manifest.Id)
	start := time.Now()
	t.activate()
	h, err := env.HooksForPlugin(t.id)
	if err != nil {
		return err
	}
	impl, err := h.Implemented()
	if err != nil {
		return err
	}
	slices.Sort(impl)
	say("active after %s; hooks: %s", time.Since(start).Round(time.Millisecond), strings.Join(impl, ", "))
	if c := api.command("hello"); c != nil {
		say("registered slash command /%s (%s)", c.Trigger, c.AutoCompleteDesc)
	}

	props := model.StringInterface{"priority": "high", "votes": int64(3), "tags": []any{"demo", "python"}}
	step("A user posts %q with props %s", "Hello, team!", jsonText(props))
	post := &model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "Hello, team!"}
	post.SetProps(props)
	created, reason, appErr := api.createPost(post)
	switch {
	case appErr != nil:
		t.fatalf("the post was refused: %s %v", reason, appErr)
	default:
		say("MessageWillBePosted let it through; stored with props %s", jsonText(created.GetProps()))
	}

	step("A user posts %q", "this is forbidden")
	_, reason, appErr = api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "this is forbidden"})
	if appErr == nil {
		t.fatalf("the forbidden post was accepted")
	}
	say("rejected by the plugin: %q (the user sees %d %q)", reason, appErr.StatusCode, appErr.Message)

	for _, cmd := range []string{"/hello", "/hello fail"} {
		step("%s", cmd)
		resp, appErr := t.command(cmd)
		if appErr != nil {
			say("error %d from %s: %s (id %s, detail %q)", appErr.StatusCode, appErr.Where, appErr.Message, appErr.Id, appErr.DetailedError)
		} else if resp != nil {
			say("%s reply: %s", resp.ResponseType, resp.Text)
		}
	}

	step("GET /plugins/%s/version", t.id)
	w := t.serveHTTP(http.MethodGet, "/version", nil, nil)
	say("%d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body.String())

	step("POST /plugins/%s/echo with body %q", t.id, "ping")
	w = t.serveHTTP(http.MethodPost, "/echo", []byte("ping"), http.Header{"Content-Type": {"text/plain"}})
	say("%d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	say("X-Sha256: %s", w.Header().Get("X-Sha256"))
	say("X-Multi: %s", strings.Join(w.Header().Values("X-Multi"), ", "))

	step("Deactivating")
	env.Deactivate(t.id)
	say("done; active = %v", env.IsActive(t.id))

	t.waitLog("info", "hello deactivated")
	step("What the plugin logged")
	for _, l := range rec.logLines() {
		if l.pluginLine() {
			say("%-5s %s", l.Level, l.Msg)
		}
	}
	return nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return string(b)
}

// serverPublicVersion names the Mattermost module the supervisor code comes from.
func serverPublicVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, d := range info.Deps {
			if d.Path == "github.com/mattermost/mattermost/server/public" {
				return d.Version
			}
		}
	}
	return "(unknown version)"
}

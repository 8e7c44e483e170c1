package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// runSmoke checks what holds for any plugin, whatever it does: it activates under the real
// supervisor with its settings' defaults, reports its hooks, answers each slash command it
// registered, lets a post through MessageWillBePosted if it implements it, and deactivates
// leaving no process behind. It is how a freshly scaffolded plugin's bundle is judged.
func runSmoke(out io.Writer, b *bundle, o options) error {
	rec := newRecorder()
	logger, sink, err := newCaptureLogger(rec)
	if err != nil {
		return err
	}
	defer func() {
		_ = logger.Flush()
		_ = logger.Shutdown()
		sink.close()
	}()
	api, env, err := newWorld(b, o, rec, logger)
	if err != nil {
		return err
	}
	api.setConfig(settingDefaults(b.manifest))
	t := &caseT{b: b, id: b.manifest.Id, api: api, env: env, rec: rec, logger: logger, opts: o, timeout: o.caseTimeout}
	err = smokeSteps(out, t, env)
	running := pluginProcesses()
	teardown(env, rec)
	if left := waitGone(running, 5*time.Second); len(left) > 0 && err == nil {
		err = fmt.Errorf("still running after the server shut the plugin down: %v", left)
	}
	if err == nil {
		if f := rec.failureList(); len(f) > 0 {
			err = fmt.Errorf("%s", strings.Join(f, "; "))
		}
	}
	if err != nil {
		for _, l := range rec.logLines() {
			if l.pluginLine() {
				fmt.Fprintf(out, "     %s\n", l.brief())
			}
		}
	}
	return err
}

func smokeSteps(out io.Writer, t *caseT, env *plugin.Environment) (err error) {
	defer func() {
		if r := recover(); r != nil {
			if r != errFatal {
				panic(r)
			}
			err = fmt.Errorf("%s", strings.Join(t.rec.failureList(), "; "))
		}
	}()
	start := time.Now()
	if _, activated, err := env.Activate(t.id); err != nil || !activated {
		return fmt.Errorf("activation failed: activated=%v err=%v", activated, err)
	}
	h, err := env.HooksForPlugin(t.id)
	if err != nil {
		return err
	}
	impl, err := h.Implemented()
	if err != nil {
		return fmt.Errorf("Implemented: %w", err)
	}
	slices.Sort(impl)
	fmt.Fprintf(out, "ok   activated in %s; hooks: %s\n", time.Since(start).Round(time.Millisecond), strings.Join(impl, ", "))

	for _, trigger := range t.api.triggers() {
		resp, appErr := t.command("/" + trigger)
		if appErr != nil {
			return fmt.Errorf("/%s answered with an error: %v", trigger, appErr)
		}
		text := ""
		if resp != nil {
			text = resp.Text
		}
		fmt.Fprintf(out, "ok   /%s answers %q\n", trigger, text)
	}
	if slices.Contains(impl, "MessageWillBePosted") {
		post, reason, appErr := t.api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "smoke test post"})
		switch {
		case appErr != nil:
			fmt.Fprintf(out, "ok   MessageWillBePosted rejected a post: %q\n", reason)
		default:
			fmt.Fprintf(out, "ok   MessageWillBePosted let a post through (props %s)\n", jsonText(post.GetProps()))
		}
	}
	if !env.Deactivate(t.id) || env.IsActive(t.id) {
		return fmt.Errorf("the plugin did not deactivate")
	}
	fmt.Fprintln(out, "ok   deactivated")
	return nil
}

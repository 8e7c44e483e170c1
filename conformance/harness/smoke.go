package main

import (
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// runSmoke checks what holds for any plugin, whatever it does: it activates under the real
// supervisor with its settings' defaults, reports its hooks, answers each slash command it
// registered, decides on a post if it implements MessageWillBePosted (a post it lets through
// keeps the props the harness gave it, each value of its Go type), and deactivates leaving no
// process behind. It is how a freshly scaffolded plugin's bundle is judged. For the plugins it
// knows (smokeDecisions), it also checks the decisions they must make.
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
		post, reason, appErr := t.api.createPost(smokePost("smoke test post"))
		switch {
		case appErr != nil:
			fmt.Fprintf(out, "ok   MessageWillBePosted rejected a post: %q\n", reason)
		default:
			// Whatever the plugin adds, the props it was given come back as they were.
			if diffs := propsDiff(post.GetProps(), smokeProps(), true); len(diffs) > 0 {
				return fmt.Errorf("MessageWillBePosted let a post through with its props changed: %s", strings.Join(diffs, "; "))
			}
			fmt.Fprintf(out, "ok   MessageWillBePosted let a post through, its props intact (props %s)\n", jsonText(post.GetProps()))
		}
		for _, d := range smokeDecisions[t.id] {
			if err := d.check(out, t, h); err != nil {
				return err
			}
		}
	}
	if !env.Deactivate(t.id) || env.IsActive(t.id) {
		return fmt.Errorf("the plugin did not deactivate")
	}
	fmt.Fprintln(out, "ok   deactivated")
	return nil
}

// smokeProps are the props of every post the smoke sends: one value of each kind props hold,
// integers as a Go plugin sets them (an int, an int64 beyond 2^53, which a float64 cannot
// hold), nested too. A post that comes back must have them with the same values and Go types.
func smokeProps() model.StringInterface {
	return model.StringInterface{
		"mmplug_smoke_int":   42,
		"mmplug_smoke_int64": int64(1<<53 + 1),
		"mmplug_smoke_float": 2.5,
		"mmplug_smoke_text":  "text",
		"mmplug_smoke_bool":  true,
		"mmplug_smoke_list":  []any{"a", int64(-7)},
		"mmplug_smoke_map":   map[string]any{"n": 3, "s": "x"},
	}
}

func smokePost(message string) *model.Post {
	post := &model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: message}
	post.SetProps(smokeProps())
	return post
}

// propsDiff lists how props got differ from want, values and Go types compared: a key of want
// that is missing or different, and unless allowExtra, a key want does not have.
func propsDiff(got, want map[string]any, allowExtra bool) []string {
	var diffs []string
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s missing, want %s", k, typedText(w)))
		case !reflect.DeepEqual(g, w):
			diffs = append(diffs, fmt.Sprintf("%s is %s, want %s", k, typedText(g), typedText(w)))
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok && !allowExtra {
			diffs = append(diffs, fmt.Sprintf("%s is %s, want no such prop", k, typedText(g)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// typedText shows a props value with the Go type of each scalar in it: int(-7), not -7.
func typedText(v any) string {
	switch v := v.(type) {
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = typedText(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		parts := make([]string, 0, len(v))
		for _, k := range slices.Sorted(maps.Keys(v)) {
			parts = append(parts, k+":"+typedText(v[k]))
		}
		return "{" + strings.Join(parts, " ") + "}"
	case string:
		return strconv.Quote(v)
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}

// smokeDecision is a post a known plugin must decide on in a certain way, with its settings
// (on top of their defaults) saved first, as an admin would.
type smokeDecision struct {
	settings map[string]any
	message  string
	// rejected is the reason the plugin must give; "" means the post must go through, its
	// props then exactly smokeProps and added.
	rejected string
	added    map[string]any
}

// smokeDecisions are the known plugins' decisions, by plugin id.
var smokeDecisions = map[string][]smokeDecision{
	// examples/moderation: a banned word rejects the post, or flags it in its props. The
	// harness user is a system admin, exempt by default: only team admins are here.
	"com.mmplug.moderation": {
		{
			settings: map[string]any{"BannedWords": "smokeword", "ExemptRoles": "team_admin"},
			message:  "a post with smokeword in it",
			rejected: "Your message contains words that are not allowed here: `smokeword`.",
		},
		{
			settings: map[string]any{"BannedWords": "smokeword", "ExemptRoles": "team_admin", "Action": "flag"},
			message:  "a post with smokeword in it",
			added:    map[string]any{"moderation_flagged": true, "moderation_words": []any{"smokeword"}},
		},
		{
			settings: map[string]any{"BannedWords": "smokeword", "ExemptRoles": "team_admin"},
			message:  "a post with nothing banned in it",
		},
	},
}

func (d smokeDecision) check(out io.Writer, t *caseT, h plugin.Hooks) error {
	settings := settingDefaults(t.b.manifest)
	maps.Copy(settings, d.settings)
	t.api.setConfig(settings)
	if err := h.OnConfigurationChange(); err != nil {
		return fmt.Errorf("OnConfigurationChange with %s: %v", jsonText(d.settings), err)
	}
	post, reason, appErr := t.api.createPost(smokePost(d.message))
	what := fmt.Sprintf("MessageWillBePosted (settings %s) on %q", jsonText(d.settings), d.message)
	if d.rejected != "" {
		if appErr == nil {
			return fmt.Errorf("%s let the post through; want it rejected with %q", what, d.rejected)
		}
		if reason != d.rejected {
			return fmt.Errorf("%s rejected the post with %q; want %q", what, reason, d.rejected)
		}
		fmt.Fprintf(out, "ok   %s: rejected with %q\n", what, reason)
		return nil
	}
	if appErr != nil {
		return fmt.Errorf("%s rejected the post (%q); want it let through", what, reason)
	}
	want := smokeProps()
	maps.Copy(want, d.added)
	if diffs := propsDiff(post.GetProps(), want, false); len(diffs) > 0 {
		return fmt.Errorf("%s let the post through with the wrong props: %s", what, strings.Join(diffs, "; "))
	}
	if post.Message != d.message {
		return fmt.Errorf("%s changed the message to %q", what, post.Message)
	}
	fmt.Fprintf(out, "ok   %s: let through, props %s\n", what, jsonText(post.GetProps()))
	return nil
}

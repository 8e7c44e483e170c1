package main

// Fault cases: what the server sees when the Python side hangs, crashes or never starts, and
// that a plugin restarted many times leaves nothing behind. They use testdata/faults, a plugin
// that misbehaves on request.

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// faultsHookLimit is testdata/faults' hook_timeouts.MessageWillBePosted.
const faultsHookLimit = 3 * time.Second

// faultsWorld installs testdata/faults in a world of its own (sharing the case's recorder).
func faultsWorld(t *caseT) (*bundle, *memAPI, *plugin.Environment, func()) {
	root, err := repoRoot()
	if err != nil {
		t.fatalf("%v", err)
	}
	b, err := prepareBundle(bundleOptions{pluginDir: filepath.Join(root, "conformance/harness/testdata/faults"), bridge: t.opts.bridge, venv: t.opts.venv})
	if err != nil {
		t.fatalf("preparing the faults bundle: %v", err)
	}
	api, env, err := newWorld(b, t.opts, t.rec, t.logger)
	if err != nil {
		b.remove()
		t.fatalf("creating the environment: %v", err)
	}
	return b, api, env, func() {
		teardown(env, t.rec)
		b.remove()
	}
}

// failClosedReason follows the plugin id in a gating hook's answer when the bridge could not
// get the plugin's decision (docs/operations.md, "fail closed or open").
const failClosedReason = " could not check this and did not let it through"

func activateFaults(t *caseT, env *plugin.Environment, id string) {
	if _, activated, err := env.Activate(id); err != nil || !activated {
		t.fatalf("activating the faults plugin: activated=%v err=%v", activated, err)
	}
}

// caseHookTimeout: a hook that hangs holds the server no longer than its limit from plugin.json;
// MessageWillBePosted then fails closed (the post is refused, with a reason naming the plugin:
// the bridge could not get its decision) and later hooks still run.
func caseHookTimeout(t *caseT) {
	b, api, env, done := faultsWorld(t)
	defer done()
	activateFaults(t, env, b.manifest.Id)

	start := time.Now()
	_, reason, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "hang"})
	elapsed := time.Since(start)
	if want := b.manifest.Id + failClosedReason; appErr == nil || reason != want {
		t.fatalf("the post behind a hung hook: reason %q, error %v; want it refused with %q", reason, appErr, want)
	}
	if elapsed < faultsHookLimit || elapsed > faultsHookLimit+3*time.Second {
		t.errorf("the hung hook held the post for %s; the limit is %s", elapsed.Round(time.Millisecond), faultsHookLimit)
	}
	if n := len(api.allPosts()); n != 0 {
		t.errorf("%d posts stored behind the hung hook, want none", n)
	}
	if !t.waitLog("error", "MessageWillBePosted: the bridge could not get the plugin's decision, so it was rejected") {
		t.errorf("no error log line about the hook that timed out")
	}
	if !waitLogAny(t, "did not answer within 3 s") {
		t.errorf("the log does not say which limit the hook exceeded")
	}
	after, _, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "after"})
	if appErr != nil || after.GetProp("seen_by") != "faults" {
		t.errorf("the next post did not go through the hook: %v %v", appErr, after)
	}
}

// casePythonCrashDuringHook: Python dying inside a hook gives the server its answer at once (not
// after the hook limit): MessageWillBePosted fails closed, nothing is stored.
func casePythonCrashDuringHook(t *caseT) {
	tmp := privateTMPDIR(t)
	defer os.RemoveAll(tmp)
	b, api, env, done := faultsWorld(t)
	defer done()
	activateFaults(t, env, b.manifest.Id)
	procs := pluginProcesses()

	start := time.Now()
	_, reason, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "crash"})
	elapsed := time.Since(start)
	if want := b.manifest.Id + failClosedReason; appErr == nil || reason != want {
		t.fatalf("the post when Python crashed: reason %q, error %v; want it refused with %q", reason, appErr, want)
	}
	// Well under the 3 s hook limit: the crash itself must end the wait.
	if elapsed > 2*time.Second {
		t.errorf("the server waited %s for a crashed Python", elapsed.Round(time.Millisecond))
	}
	if n := len(api.allPosts()); n != 0 {
		t.errorf("%d posts stored when Python crashed, want none", n)
	}
	if !waitLogAny(t, "crashing inside MessageWillBePosted") {
		t.errorf("Python's last words are not in the server log")
	}
	// The bridge restarts its Python (and replays the activation): the next post is checked
	// by the new process, and the crashed one is gone. The bridge stays; one socket directory.
	var after *model.Post
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if p, reason, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "after"}); appErr == nil && reason == "" {
			after = p
			break
		}
	}
	if after == nil || after.GetProp("seen_by") != "faults" {
		t.errorf("no post went through the restarted Python's hook: %v", after)
	}
	var python []proc
	for _, p := range procs {
		if strings.Contains(p.Cmdline, "mattermost_plugin") {
			python = append(python, p)
		}
	}
	if left := waitGone(python, 5*time.Second); len(left) > 0 {
		t.errorf("the crashed Python is still running: %v", left)
	}
	if n := rendezvousDirs(); n != 1 {
		t.errorf("%d socket directories with the bridge running, want 1", n)
	}
}

// privateTMPDIR points TMPDIR (inherited by the bridge) at a fresh directory for the rest of
// the case, so rendezvousDirs counts only this case's bridges.
func privateTMPDIR(t *caseT) string {
	tmp, err := os.MkdirTemp("", "mmplug-harness-tmp-")
	if err != nil {
		t.fatalf("%v", err)
	}
	t.setenv("TMPDIR", tmp)
	return tmp
}

// casePythonExitsAtStart: a plugin whose Python exits during import fails activation promptly
// with the tail of its stderr in the error.
func casePythonExitsAtStart(t *caseT) {
	b, _, env, done := faultsWorld(t)
	defer done()
	// The manifest opts this variable in (props.mmplug.env); the bridge inherits the server's.
	t.setenv("MMPLUG_FAULTS_EXIT_AT_START", "1")
	start := time.Now()
	_, activated, err := env.Activate(b.manifest.Id)
	elapsed := time.Since(start)
	if activated || err == nil {
		t.fatalf("activation succeeded although Python exited")
	}
	if !strings.Contains(err.Error(), "missing license key") || !strings.Contains(err.Error(), "exited during startup") {
		t.errorf("the activation error does not carry Python's stderr: %v", err)
	}
	if elapsed > 20*time.Second {
		t.errorf("activation took %s to notice Python had exited", elapsed.Round(time.Millisecond))
	}
}

// caseRestart100: the server restarting a plugin 100 times leaves no process, socket directory
// or descriptor behind.
func caseRestart100(t *caseT) {
	tmp := privateTMPDIR(t)
	defer os.RemoveAll(tmp)
	b, api, env, done := faultsWorld(t)
	defer done()
	fdsBefore := openFDs()
	dirsBefore := rendezvousDirs()
	for i := 0; i < 100; i++ {
		activateFaults(t, env, b.manifest.Id)
		if i%25 == 0 {
			post, _, appErr := api.createPost(&model.Post{ChannelId: harnessChannelID, UserId: harnessUserID, Message: "ping"})
			if appErr != nil || post.GetProp("seen_by") != "faults" {
				t.fatalf("restart %d: the hook did not run: %v", i, appErr)
			}
		}
		if err := env.Deactivate(b.manifest.Id); !err {
			t.fatalf("restart %d: Deactivate reported the plugin was not active", i)
		}
	}
	if left := waitGone(pluginProcesses(), 5*time.Second); len(left) > 0 {
		t.errorf("processes left after 100 restarts: %v", left)
	}
	if dirs := rendezvousDirs() - dirsBefore; dirs > 0 {
		t.errorf("%d socket directories left after 100 restarts", dirs)
	}
	// A few descriptors may come and go with the Go runtime (epoll, timers); 100 leaked
	// connections would not hide in that.
	if grew := openFDs() - fdsBefore; grew > 10 {
		t.errorf("the server process holds %d more descriptors after 100 restarts", grew)
	}
}

// waitLogAny waits, as waitLog does, for a log line at any level whose message or fields
// contain text.
func waitLogAny(t *caseT, text string) bool {
	return t.waitFor(func() bool {
		for _, l := range t.rec.logLines() {
			if strings.Contains(l.String(), text) {
				return true
			}
		}
		return false
	})
}

// setenv sets a variable of the harness (the "server") for the rest of the case.
func (t *caseT) setenv(key, value string) {
	old, had := os.LookupEnv(key)
	_ = os.Setenv(key, value)
	t.cleanups = append(t.cleanups, func() {
		if had {
			_ = os.Setenv(key, old)
		} else {
			_ = os.Unsetenv(key)
		}
	})
}

func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0
	}
	return len(entries)
}

// rendezvousDirs counts the bridges' private socket directories ($TMPDIR/mmplug-*, not the
// harness's own mmplug-harness-*); os.TempDir reads TMPDIR at each call.
func rendezvousDirs() int {
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "mmplug-*"))
	n := 0
	for _, m := range matches {
		if !strings.HasPrefix(filepath.Base(m), "mmplug-harness-") {
			n++
		}
	}
	return n
}

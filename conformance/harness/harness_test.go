package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
)

func TestCatchAllRecordsAndAnswersWithAnAppError(t *testing.T) {
	rec := newRecorder()
	api := newMemAPI(rec, "1.2.3", t.TempDir())
	teams, appErr := api.GetTeams()
	if teams != nil {
		t.Errorf("teams = %v, want nil", teams)
	}
	if appErr == nil || appErr.Id != "mmplug.harness.not_implemented" || appErr.StatusCode != 501 || !strings.Contains(appErr.Message, "GetTeams") {
		t.Fatalf("appErr = %#v", appErr)
	}
	if err := api.UnregisterCommand("team", "hello"); err != nil {
		t.Errorf("implemented method returned %v", err)
	}
	f := rec.failureList()
	if len(f) != 1 || !strings.Contains(f[0], "GetTeams") {
		t.Fatalf("failures = %q, want one naming GetTeams", f)
	}
	if rec.callCount("GetTeams") != 1 {
		t.Errorf("GetTeams call not counted")
	}
}

func TestGuardTurnsAPanicIntoAFailure(t *testing.T) {
	rec := newRecorder()
	api := newMemAPI(rec, "1.2.3", t.TempDir())
	// A nil map would make KVSet panic; guard must record it and return normally.
	api.kv = nil
	if appErr := api.KVSet("k", []byte("v")); appErr != nil {
		t.Fatalf("unexpected AppError %v", appErr)
	}
	f := rec.failureList()
	if len(f) != 1 || !strings.Contains(f[0], "KVSet panicked") {
		t.Fatalf("failures = %q", f)
	}
}

func TestCreatePostWithoutEnvironmentStoresAndValidates(t *testing.T) {
	api := newMemAPI(newRecorder(), "1.2.3", t.TempDir())
	if _, appErr := api.CreatePost(&model.Post{Message: "no channel"}); appErr == nil || appErr.StatusCode != 400 {
		t.Fatalf("post without channel: %v", appErr)
	}
	created, appErr := api.CreatePost(&model.Post{ChannelId: harnessChannelID, Message: "hi"})
	if appErr != nil || created.Id == "" || api.post(created.Id) == nil {
		t.Fatalf("CreatePost: %+v %v", created, appErr)
	}
}

// A real plugin calling an unimplemented method through the real supervisor: the case fails
// with a recorded reason, the plugin gets an AppError, and the harness keeps running.
func TestUnimplementedCallThroughTheSupervisorFailsTheCaseCleanly(t *testing.T) {
	b, err := prepareBundle(bundleOptions{pluginDir: "testdata/unimplemented"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.remove()
	o := options{serverVersion: "1.2.3", caseTimeout: time.Minute}
	res := runCase(b, o, harnessCase{name: "probe", run: func(c *caseT) {
		_, _, err := c.env.Activate(c.id)
		if err == nil || !strings.Contains(err.Error(), "not implemented by the conformance harness") {
			c.errorf("Activate error %v does not carry the harness's AppError", err)
		}
	}})
	var recorded, other []string
	for _, f := range res.failures {
		if strings.Contains(f, "API method GetTeams") {
			recorded = append(recorded, f)
		} else {
			other = append(other, f)
		}
	}
	if len(recorded) != 1 || len(other) != 0 {
		t.Fatalf("failures = %q, want exactly the recorded GetTeams call", res.failures)
	}
}

func TestPrepareBundleRejectsBadInput(t *testing.T) {
	if _, err := prepareBundle(bundleOptions{pluginDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "manifest") {
		t.Errorf("empty dir: %v", err)
	}
	if _, err := prepareBundle(bundleOptions{pluginDir: "../../examples/hello"}); err == nil || !strings.Contains(err.Error(), "-bridge") {
		t.Errorf("Python plugin without a bridge: %v", err)
	}
	if _, err := prepareBundle(bundleOptions{pluginDir: "../../examples/hello", bridge: "/bin/true", venv: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "not a Python environment") {
		t.Errorf("bad venv: %v", err)
	}
}

package main

// examples/remind's cases under the real supervisor (chosen by its manifest id, see
// exampleCases), and the cluster cases of the SDK's jobs: two plugin processes over one
// in-memory server, as two servers of a cluster share one database. Requests that the server
// makes for a button or a dialog are built as the server builds them (model types, JSON, the
// "/plugins/<id>" prefix stripped, Mattermost-User-Id set); records are read and written with
// Go's own pluginapi/cluster types, so the Python SDK's are proved to be Go's.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/pluginapi/cluster"
)

const (
	remindID       = "com.mmplug.remind"
	remindReminder = "⏰ Reminder: "
	// A second user, for clicks on someone else's reminder.
	otherUserID = "harnessuser00000000000000b"
)

func remindCases() []harnessCase {
	return []harnessCase{
		{"remind_set_by_command_fires_once", caseRemindFiresOnce},
		{"remind_buttons_update_the_post", caseRemindButtons},
		{"remind_dialog_creates_one", caseRemindDialog},
		{"remind_survives_a_plugin_restart", caseRemindRestart},
		{"cluster_one_shot_jobs_fire_once_in_two_processes", caseClusterOneShot},
		{"cluster_recurring_job_once_per_interval_in_two_processes", caseClusterRecurring},
	}
}

// remindCommand runs a slash command as the harness user with a fresh trigger id, as the
// server does.
func remindCommand(t *caseT, env *plugin.Environment, text string) *model.CommandResponse {
	hooks, err := env.HooksForPlugin(remindID)
	if err != nil {
		t.fatalf("no hooks for %s: %v", remindID, err)
	}
	resp, appErr := hooks.ExecuteCommand(t.pluginContext(), &model.CommandArgs{
		Command: text, UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID,
		TriggerId: t.api.newTriggerID(harnessUserID),
	})
	if appErr != nil || resp == nil {
		t.fatalf("%s: %v", text, appErr)
	}
	return resp
}

// reminderPosts are the posts delivering the reminder text, oldest first.
func reminderPosts(api *memAPI, text string) []*model.Post {
	var out []*model.Post
	for _, p := range api.allPosts() {
		if p.Message == remindReminder+text {
			out = append(out, p)
		}
	}
	return out
}

// waitReminder waits for exactly n posts delivering text, then checks for 2 s that no more come.
func waitReminder(t *caseT, api *memAPI, text string, n int) []*model.Post {
	if !t.waitFor(func() bool { return len(reminderPosts(api, text)) >= n }) {
		t.fatalf("%d reminder posts for %q after 10 s, want %d", len(reminderPosts(api, text)), text, n)
	}
	time.Sleep(2 * time.Second)
	posts := reminderPosts(api, text)
	if len(posts) != n {
		t.fatalf("%d reminder posts for %q, want %d (a one-shot job fired more than once)", len(posts), text, n)
	}
	return posts
}

// onceJobs are the stored one-shot jobs, read as Go's JobOnceScheduler reads them.
func onceJobs(t *caseT, api *memAPI) map[string]cluster.JobOnceMetadata {
	api.mu.Lock()
	defer api.mu.Unlock()
	out := map[string]cluster.JobOnceMetadata{}
	for key, raw := range api.kv {
		if !strings.HasPrefix(key, "once_") {
			continue
		}
		var meta cluster.JobOnceMetadata
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.errorf("%s is not Go's JobOnceMetadata: %v (%q)", key, err, clip(string(raw)))
			continue
		}
		if "once_"+meta.Key != key {
			t.errorf("%s holds the key %q", key, meta.Key)
		}
		out[meta.Key] = meta
	}
	return out
}

// checkReminderPost checks a delivered reminder as the server would show it: from the bot, in
// the direct channel of the bot and the user, with three valid actions routed to the plugin.
func checkReminderPost(t *caseT, api *memAPI, post *model.Post) {
	api.mu.Lock()
	bot, isUser := api.users[post.UserId]
	channel := api.channels[post.ChannelId]
	api.mu.Unlock()
	if !isUser || !bot.IsBot {
		t.errorf("the reminder is posted by %q, not by the plugin's bot", post.UserId)
	}
	if channel == nil || channel.Type != model.ChannelTypeDirect || channel.Name != model.GetDMNameFromIds(harnessUserID, post.UserId) {
		t.errorf("the reminder is not in the direct channel of the bot and the user: %+v", channel)
	}
	attachments := post.Attachments()
	if len(attachments) != 1 {
		t.fatalf("the reminder has %d attachments, want 1", len(attachments))
	}
	var names []string
	for _, a := range attachments[0].Actions {
		names = append(names, a.Name)
		if err := a.IsValid(); err != nil {
			t.errorf("action %q is not valid for the server: %v", a.Name, err)
		}
		if !strings.HasPrefix(a.Integration.URL, "/plugins/"+remindID+"/mmplug/actions/") {
			t.errorf("action %q leads to %q, not to the plugin", a.Name, a.Integration.URL)
		}
	}
	if strings.Join(names, ",") != "Snooze 10m,Snooze 1h,Done" {
		t.errorf("the reminder's buttons are %v", names)
	}
}

// click sends what the server sends when userID clicks the button named name on post:
// the PostActionIntegrationRequest to the action's integration URL, through ServeHTTP.
func click(t *caseT, env *plugin.Environment, post *model.Post, name, userID string) (int, model.PostActionIntegrationResponse) {
	var found *model.PostAction
	for _, a := range post.Attachments()[0].Actions {
		if a.Name == name {
			found = a
		}
	}
	if found == nil {
		t.fatalf("no button %q on post %s", name, post.Id)
	}
	body, err := json.Marshal(model.PostActionIntegrationRequest{
		UserId: userID, UserName: "harness", ChannelId: post.ChannelId, PostId: post.Id,
		TriggerId: t.api.newTriggerID(userID), Type: found.Type, Context: found.Integration.Context,
	})
	if err != nil {
		t.fatalf("encoding the action request: %v", err)
	}
	w := pluginPost(t, env, found.Integration.URL, body, userID)
	var resp model.PostActionIntegrationResponse
	if w.Code == http.StatusOK {
		if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
			t.fatalf("the answer to %q is not a PostActionIntegrationResponse: %v (%q)", name, err, clip(w.Body.String()))
		}
	}
	return w.Code, resp
}

// pluginPost sends a POST to a "/plugins/<id>/..." URL as the server's doPluginRequest does.
func pluginPost(t *caseT, env *plugin.Environment, target string, body []byte, userID string) *httptest.ResponseRecorder {
	prefix := "/plugins/" + remindID
	if !strings.HasPrefix(target, prefix+"/") {
		t.fatalf("%q does not lead to %s", target, remindID)
	}
	r := httptest.NewRequest(http.MethodPost, strings.TrimPrefix(target, prefix), bytes.NewReader(body))
	if userID != "" {
		r.Header.Set("Mattermost-User-Id", userID)
	}
	hooks, err := env.HooksForPlugin(remindID)
	if err != nil {
		t.fatalf("no hooks for %s: %v", remindID, err)
	}
	w := httptest.NewRecorder()
	hooks.ServeHTTP(t.pluginContext(), w, r)
	return w
}

// caseRemindFiresOnce: /remind me in 2s sets a one-shot job stored as Go's JobOnceMetadata; it
// fires once, as a bot's direct message with three buttons the server accepts.
func caseRemindFiresOnce(t *caseT) {
	t.activate()
	before := time.Now()
	resp := remindCommand(t, t.env, "/remind me in 2s to stretch")
	if !strings.HasPrefix(resp.Text, "I will remind you in 2s") || resp.ResponseType != model.CommandResponseTypeEphemeral {
		t.fatalf("/remind me answered %q (%s)", resp.Text, resp.ResponseType)
	}
	jobs := onceJobs(t, t.api)
	if len(jobs) != 1 {
		t.fatalf("%d one-shot jobs stored, want 1", len(jobs))
	}
	for key, meta := range jobs {
		if !strings.HasPrefix(key, "remind_"+harnessUserID+"_") {
			t.errorf("the job's key %q is not remind_<user id>_<id>", key)
		}
		if due := meta.RunAt.Sub(before); due < 1500*time.Millisecond || due > 3*time.Second {
			t.errorf("the job runs %v after the command, want 2 s", due)
		}
		if props, _ := meta.Props.(map[string]any); props["text"] != "stretch" {
			t.errorf("the job's props are %v", meta.Props)
		}
	}
	posts := waitReminder(t, t.api, "stretch", 1)
	checkReminderPost(t, t.api, posts[0])
	if left := onceJobs(t, t.api); len(left) != 0 {
		t.errorf("the fired job is still stored: %v", left)
	}
}

// caseRemindButtons: Snooze and Done answer with an update of the post (no more buttons) and
// reschedule or drop the job; a click by another user, or without a user, touches nothing.
func caseRemindButtons(t *caseT) {
	t.api.addUser(&model.User{Id: otherUserID, Username: "other", Email: "other@example.com", Roles: "system_user"})
	t.activate()
	remindCommand(t, t.env, "/remind me in 1s to stretch")
	post := waitReminder(t, t.api, "stretch", 1)[0]

	if code, resp := click(t, t.env, post, "Done", otherUserID); code != http.StatusOK || resp.Update != nil || resp.EphemeralText != "That button is not one of mine." {
		t.errorf("another user's click on Done: %d %+v, want the refusal and no update", code, resp)
	}
	if w := pluginPost(t, t.env, "/plugins/"+remindID+"/mmplug/actions/done", []byte(`{"user_id":"`+harnessUserID+`"}`), ""); w.Code != http.StatusUnauthorized {
		t.errorf("a click without Mattermost-User-Id (the body naming the user): %d, want 401", w.Code)
	}

	start := time.Now()
	code, resp := click(t, t.env, post, "Snooze 10m", harnessUserID)
	if code != http.StatusOK || resp.Update == nil || resp.Update.Message != "💤 Snoozed for 10m: stretch" {
		t.fatalf("Snooze 10m: %d %+v", code, resp)
	}
	if len(resp.Update.Attachments()) != 0 {
		t.errorf("the snoozed post still has buttons: %v", resp.Update.GetProps())
	}
	jobs := onceJobs(t, t.api)
	if len(jobs) != 1 {
		t.fatalf("%d jobs after the snooze, want 1", len(jobs))
	}
	for _, meta := range jobs {
		if due := meta.RunAt.Sub(start); due < 9*time.Minute || due > 11*time.Minute {
			t.errorf("the snoozed reminder is due in %v, want 10m", due)
		}
	}

	remindCommand(t, t.env, "/remind me in 1s to rest")
	post = waitReminder(t, t.api, "rest", 1)[0]
	code, resp = click(t, t.env, post, "Done", harnessUserID)
	if code != http.StatusOK || resp.Update == nil || resp.Update.Message != "✅ Done: rest" || len(resp.Update.Attachments()) != 0 {
		t.fatalf("Done: %d %+v", code, resp)
	}
	if len(onceJobs(t, t.api)) != 1 {
		t.errorf("Done changed the other reminder's job")
	}
}

// caseRemindDialog: /remind new opens a dialog the server accepts (trigger id, Dialog.IsValid),
// submitting it to the plugin: a bad delay comes back as a field error, a good one schedules
// a reminder for the user of the header, whoever the body names.
func caseRemindDialog(t *caseT) {
	t.activate()
	remindCommand(t, t.env, "/remind new")
	dialogs := t.api.openedDialogs()
	if len(dialogs) != 1 {
		t.fatalf("%d dialogs opened, want 1", len(dialogs))
	}
	opened := dialogs[0]
	if err := opened.Dialog.IsValid(); err != nil {
		t.errorf("the dialog is not valid for the server: %v", err)
	}
	if opened.URL != "/plugins/"+remindID+"/mmplug/dialogs/new" {
		t.errorf("the dialog submits to %q", opened.URL)
	}
	submit := func(values map[string]any) (int, model.SubmitDialogResponse) {
		body, _ := json.Marshal(model.SubmitDialogRequest{
			Type: "dialog_submission", CallbackId: opened.Dialog.CallbackId, State: opened.Dialog.State,
			UserId: otherUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID, Submission: values,
		})
		w := pluginPost(t, t.env, opened.URL, body, harnessUserID)
		var resp model.SubmitDialogResponse
		if w.Body.Len() > 0 {
			if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil {
				t.fatalf("the dialog's answer is not a SubmitDialogResponse: %v (%q)", err, clip(w.Body.String()))
			}
		}
		if err := resp.IsValid(); err != nil {
			t.errorf("the dialog's answer is not valid for the server: %v", err)
		}
		return w.Code, resp
	}
	if code, resp := submit(map[string]any{"text": "tea", "when": "later"}); code != http.StatusOK || !strings.Contains(resp.Errors["when"], "not a delay") {
		t.errorf("a bad delay: %d %+v, want a field error under when", code, resp)
	}
	if len(onceJobs(t, t.api)) != 0 {
		t.errorf("a refused submission scheduled a reminder")
	}
	if code, resp := submit(map[string]any{"text": "tea", "when": "1h"}); code != http.StatusOK || resp.Error != "" || len(resp.Errors) != 0 {
		t.fatalf("a good submission: %d %+v", code, resp)
	}
	jobs := onceJobs(t, t.api)
	if len(jobs) != 1 {
		t.fatalf("%d reminders after the dialog, want 1", len(jobs))
	}
	for key := range jobs {
		if !strings.HasPrefix(key, "remind_"+harnessUserID+"_") {
			t.errorf("the reminder %q is not the header's user's", key)
		}
	}
}

// caseRemindRestart: a reminder that falls due while the plugin is deactivated is delivered
// once when it is activated again.
func caseRemindRestart(t *caseT) {
	t.activate()
	remindCommand(t, t.env, "/remind me in 2s to survive")
	t.env.Deactivate(t.id)
	time.Sleep(3 * time.Second)
	if n := len(reminderPosts(t.api, "survive")); n != 0 {
		t.fatalf("%d reminders delivered while the plugin was deactivated", n)
	}
	if len(onceJobs(t, t.api)) != 1 {
		t.fatalf("the reminder is not stored while the plugin is down")
	}
	t.activate()
	waitReminder(t, t.api, "survive", 1)
}

// twoProcesses installs dir twice and activates it in two Environments over one memAPI: two
// servers of a cluster, one database. prepare runs on the server before either starts.
func twoProcesses(t *caseT, dir string, prepare func(api *memAPI)) (*memAPI, [2]*plugin.Environment, string) {
	root, err := repoRoot()
	if err != nil {
		t.fatalf("%v", err)
	}
	var bundles [2]*bundle
	for i := range bundles {
		b, err := prepareBundle(bundleOptions{pluginDir: filepath.Join(root, dir), bridge: t.opts.bridge, venv: t.opts.venv})
		if err != nil {
			t.fatalf("preparing %s: %v", dir, err)
		}
		t.cleanups = append(t.cleanups, b.remove)
		bundles[i] = b
	}
	api, first, err := newWorld(bundles[0], t.opts, t.rec, t.logger)
	if err != nil {
		t.fatalf("creating the first server: %v", err)
	}
	second, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, bundles[1].pluginsDir, bundles[1].webappDir, t.logger, nil)
	if err != nil {
		t.fatalf("creating the second server: %v", err)
	}
	envs := [2]*plugin.Environment{first, second}
	t.cleanups = append(t.cleanups, func() { teardownBoth(envs, t.rec) })
	if prepare != nil {
		prepare(api)
	}
	id := bundles[0].manifest.Id
	for i, env := range envs {
		if _, activated, err := env.Activate(id); err != nil || !activated {
			t.fatalf("activating %s on server %d: activated=%v err=%v", id, i+1, activated, err)
		}
	}
	return api, envs, id
}

// teardownBoth shuts both servers down at once and checks that every plugin process is gone
// (teardown, for one Environment, would take the other's processes for leftovers).
func teardownBoth(envs [2]*plugin.Environment, rec *recorder) {
	before := pluginProcesses()
	var wg sync.WaitGroup
	for _, env := range envs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					rec.fail("Environment.Shutdown panicked: %v", r)
				}
			}()
			env.Shutdown()
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rec.fail("Environment.Shutdown did not return within 30s")
	}
	if survivors := waitGone(before, 10*time.Second); len(survivors) > 0 {
		rec.fail("plugin processes left running after shutdown: %v", survivors)
		killAll(survivors)
	}
}

// caseClusterOneShot: ten reminders stored (as Go's JobOnceScheduler stores them) before two
// processes of remind start: both learn of every one and race for each when it is due; each
// is delivered exactly once and then gone.
func caseClusterOneShot(t *caseT) {
	const jobs = 10
	start := time.Now()
	runAt := start.Add(8 * time.Second)
	api, _, _ := twoProcesses(t, "examples/remind", func(api *memAPI) {
		for i := range jobs {
			key := fmt.Sprintf("remind_%s_%08x", harnessUserID, i)
			raw, err := json.Marshal(cluster.JobOnceMetadata{Key: key, RunAt: runAt, Props: map[string]any{"user_id": harnessUserID, "text": fmt.Sprintf("job %d", i)}})
			if err != nil {
				t.fatalf("encoding job %d: %v", i, err)
			}
			if appErr := api.KVSet("once_"+key, raw); appErr != nil {
				t.fatalf("storing job %d: %v", i, appErr)
			}
		}
	})
	if time.Now().After(runAt) {
		t.fatalf("the two processes took %v to start, past the jobs' time: the race was not run", time.Since(start).Round(time.Millisecond))
	}
	for i := range jobs {
		text := fmt.Sprintf("job %d", i)
		if !t.waitFor(func() bool { return len(reminderPosts(api, text)) > 0 }) {
			t.fatalf("%q was not delivered", text)
		}
	}
	time.Sleep(2 * time.Second)
	for i := range jobs {
		text := fmt.Sprintf("job %d", i)
		if n := len(reminderPosts(api, text)); n != 1 {
			t.errorf("%q delivered %d times, want once", text, n)
		}
	}
	if left := onceJobs(t, api); len(left) != 0 {
		t.errorf("%d fired jobs still stored", len(left))
	}
}

// beat is one run of testdata/jobs' recurring job: when it started and ended, in which process.
type beat struct {
	start, end float64
	pid        int
}

func readBeats(t *caseT, api *memAPI) []beat {
	raw, _ := api.kvValue("beats")
	var rows [][3]float64
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &rows); err != nil {
			t.fatalf("beats is not a list of [start, end, pid]: %v (%q)", err, clip(string(raw)))
		}
	}
	out := make([]beat, len(rows))
	for i, r := range rows {
		out[i] = beat{r[0], r[1], int(r[2])}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].start < out[j].start })
	return out
}

// caseClusterRecurring: testdata/jobs' job every second, in two processes over one server,
// runs once per interval: never two runs at once, each at least the interval after the
// previous one finished (wherever it ran), none missed, none after OnDeactivate; its last-run
// record is Go's cluster.JobMetadata.
func caseClusterRecurring(t *caseT) {
	const window = 8 * time.Second
	api, envs, id := twoProcesses(t, "conformance/harness/testdata/jobs", nil)
	time.Sleep(window)
	for _, env := range envs {
		env.Deactivate(id)
	}
	stopped := float64(time.Now().UnixNano()) / 1e9
	time.Sleep(1500 * time.Millisecond)
	beats := readBeats(t, api)
	// At most once per interval is the gap check below; at least once per interval is the gap
	// check's upper bound, from the first run to the last, which ended shortly before the stop.
	if len(beats) < 5 {
		t.fatalf("%d runs in %v with a 1 s interval, want about 8", len(beats), window)
	}
	if last := beats[len(beats)-1]; stopped-last.end > 2.5 {
		t.errorf("the last run ended %.3f s before the processes stopped: the job stopped running", stopped-last.end)
	}
	pids := map[int]int{}
	for i, b := range beats {
		pids[b.pid]++
		if b.end > stopped {
			t.errorf("a run ended at %.3f, after both processes were deactivated (%.3f)", b.end, stopped)
		}
		if i == 0 {
			continue
		}
		prev := beats[i-1]
		if gap := b.start - prev.end; gap < 0.99 {
			t.errorf("run %d started %.3f s after run %d ended (pids %d, %d): want at least the 1 s interval", i, gap, i-1, b.pid, prev.pid)
		}
		if gap := b.start - prev.end; gap > 2.5 {
			t.errorf("run %d started %.3f s after run %d ended: an interval was missed", i, gap, i-1)
		}
	}
	raw, _ := api.kvValue("cron_beat")
	var meta cluster.JobMetadata
	if err := json.Unmarshal(raw, &meta); err != nil || meta.LastFinished.IsZero() {
		t.errorf("cron_beat is not Go's JobMetadata: %v (%q)", err, clip(string(raw)))
	} else if last := beats[len(beats)-1]; meta.LastFinished.Before(time.Unix(0, int64(last.end*1e9)).Add(-time.Millisecond)) {
		t.errorf("cron_beat's LastFinished %v is before the last run's end", meta.LastFinished)
	}
	if t.opts.verbose {
		fmt.Printf("     %d runs, by process: %v\n", len(beats), pids)
	}
}

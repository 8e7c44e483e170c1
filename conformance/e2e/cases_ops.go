package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Lifecycle: disabling and enabling, processes killed, the server restarted.

// `mmplug disable` and `mmplug enable` over the token: the plugin stops answering, then does
// its job again.
func caseDisableEnable(e *env, c *caseState) error {
	if err := e.solo(e.hello); err != nil {
		return err
	}
	res, err := e.runMmplug(false, "disable", e.hello.id)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("mmplug disable: %s", res)
	}
	r, err := e.w.anon.get("/plugins/" + e.hello.id + "/version")
	if err != nil {
		return err
	}
	if r.status == 200 {
		return fmt.Errorf("the route still answers 200 after mmplug disable")
	}
	t0 := time.Now()
	res, err = e.runMmplug(false, "enable", "--wait", "60", e.hello.id)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("mmplug enable: %s", res)
	}
	c.note("enabled in %.1f s", time.Since(t0).Seconds())
	return e.alive(e.hello)
}

// recovery watches a plugin after one of its processes was killed: every 200 ms it posts a
// message containing "forbidden" (none may be accepted if failClosed) and checks GET /version,
// until the plugin does its whole job again (alive) or limit passes.
func (e *env) recovery(p *plugin, limit time.Duration, failClosed bool) (time.Duration, []string, error) {
	t0 := time.Now()
	var leaks []string
	for time.Since(t0) < limit {
		if failClosed {
			r, err := e.w.post(e.w.user1, "forbidden, while the plugin recovers", nil)
			if err == nil && r.status == 201 {
				leaks = append(leaks, fmt.Sprintf("%.1f s", time.Since(t0).Seconds()))
			}
		}
		if r, err := e.w.anon.get("/plugins/" + p.id + "/version"); err == nil && r.status == 200 {
			if err := e.alive(p); err == nil {
				return time.Since(t0), leaks, nil
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, leaks, fmt.Errorf("%s did not do its job again within %s of the kill", p.id, limit)
}

// kill -9 of the plugin's Python process: the bridge should start Python again by itself
// (issue 12 item 5), quickly, and no post containing "forbidden" may get through meanwhile
// (MessageWillBePosted fails closed when the cause is ours, issue 16). No process is left over.
func caseKillPython(e *env, c *caseState) error {
	if err := e.solo(e.hello); err != nil {
		return err
	}
	bridge, python, err := e.bridgeAndPython(e.hello)
	if err != nil {
		return err
	}
	if err := kill9(python.pid); err != nil {
		return err
	}
	const limit = 10 * time.Second
	took, leaks, rerr := e.recovery(e.hello, 70*time.Second, true)
	var problems []string
	if rerr != nil {
		problems = append(problems, rerr.Error())
	} else {
		c.note("recovered in %.1f s", took.Seconds())
		if took > limit {
			problems = append(problems, fmt.Sprintf("recovered only after %.1f s (the server's health check, not the bridge, restarted it; limit %s)", took.Seconds(), limit))
		}
	}
	if len(leaks) > 0 {
		problems = append(problems, fmt.Sprintf("%d posts containing \"forbidden\" were accepted while Python was down (%s to %s after the kill)", len(leaks), leaks[0], leaks[len(leaks)-1]))
	}
	if alivePid(python.pid) {
		problems = append(problems, fmt.Sprintf("the killed Python (pid %d) is still there", python.pid))
	}
	if rerr == nil {
		if b, _, err := e.bridgeAndPython(e.hello); err == nil && b.pid != bridge.pid {
			problems = append(problems, fmt.Sprintf("the bridge was replaced (pid %d, now %d): the server restarted the whole plugin; the bridge did not restart Python itself", bridge.pid, b.pid))
		}
		if p := e.orphans(e.hello); p != "" {
			problems = append(problems, p)
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// orphans reports plugin processes that are not the current bridge and its one Python child.
func (e *env) orphans(p *plugin) string {
	procs := e.pluginProcs(p)
	b, py, err := e.bridgeAndPython(p)
	if err != nil {
		return "after recovery: " + err.Error()
	}
	var extra []string
	for _, q := range procs {
		if q.pid != b.pid && q.pid != py.pid {
			extra = append(extra, fmt.Sprintf("pid %d (parent %d): %s", q.pid, q.ppid, q.cmdline))
		}
	}
	if len(extra) > 0 {
		return "processes left over: " + strings.Join(extra, ", ")
	}
	return ""
}

// kill -9 of the bridge itself, and at the same moment of the Go twin's process: only the
// server's health check (every 30 s) can restart either. Python must die with its bridge at
// once (no orphan), and the Python plugin must be back no later than the Go twin plus 5 s.
func caseKillBridge(e *env, c *caseState) error {
	if err := e.both(); err != nil {
		return err
	}
	bridge, python, err := e.bridgeAndPython(e.hello)
	if err != nil {
		return err
	}
	goProcs := e.pluginProcs(e.hellogo)
	if len(goProcs) != 1 {
		return fmt.Errorf("the Go twin has %d processes, not 1: %v (a broken test)", len(goProcs), goProcs)
	}
	_ = kill9(goProcs[0].pid)
	if err := kill9(bridge.pid); err != nil {
		return err
	}
	t0 := time.Now()
	var problems []string
	if err := eventually(3*time.Second, func() error {
		if alivePid(python.pid) {
			return fmt.Errorf("Python (pid %d) outlived its killed bridge by 3 s", python.pid)
		}
		return nil
	}); err != nil {
		problems = append(problems, err.Error())
	}
	// Both come back through the health check: wait for routes, then check the whole job
	// (the hook check needs each alone, as alive's post check is per plugin).
	back := func(p *plugin) (time.Duration, error) {
		err := eventually(75*time.Second-time.Since(t0), func() error {
			r, err := e.w.anon.get("/plugins/" + p.id + "/version")
			if err != nil {
				return err
			}
			if r.status != 200 {
				return fmt.Errorf("%s did not answer again within 75 s of the kill (last: %s)", p.id, r)
			}
			return nil
		})
		return time.Since(t0), err
	}
	goTook, goErr := back(e.hellogo)
	pyTook, pyErr := back(e.hello)
	if goErr != nil {
		return fmt.Errorf("the Go twin (a broken test?): %w", goErr)
	}
	c.note("Go twin back after %.1f s, Python after %.1f s", goTook.Seconds(), pyTook.Seconds())
	if pyErr != nil {
		problems = append(problems, pyErr.Error())
	} else {
		if pyTook > goTook+5*time.Second {
			problems = append(problems, fmt.Sprintf("Python came back %.1f s after the Go twin", (pyTook-goTook).Seconds()))
		}
		if p := e.orphans(e.hello); p != "" {
			problems = append(problems, p)
		}
		if err := e.solo(e.hello); err == nil {
			if err := e.alive(e.hello); err != nil {
				problems = append(problems, "after the restart "+err.Error())
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// The server restarted (SIGTERM, as a service manager stops it): the enabled plugins come back
// by themselves and do their job.
func caseServerRestart(e *env, c *caseState) error {
	if err := e.both(); err != nil {
		return err
	}
	e.mm.stop()
	if left := e.pluginProcs(e.hello); len(left) > 0 {
		return fmt.Errorf("after the server stopped, processes of %s remain: %v", e.hello.id, left)
	}
	t0 := time.Now()
	if err := e.mm.start(); err != nil {
		return err
	}
	for _, p := range []*plugin{e.hellogo, e.hello} {
		if err := e.waitRunning(p, 60*time.Second); err != nil {
			return err
		}
	}
	c.note("both running %.1f s after the start", time.Since(t0).Seconds())
	if err := e.solo(e.hello); err != nil {
		return err
	}
	return e.alive(e.hello)
}

// The per-launch token the bridge gives Python must not stay readable in the Python process's
// initial environment block (/proc/PID/environ), where any process of the same user reads it
// (issue 16 item 7).
func caseTokenEnviron(e *env, _ *caseState) error {
	if err := e.solo(e.hello); err != nil {
		return err
	}
	bridge, python, err := e.bridgeAndPython(e.hello)
	if err != nil {
		return err
	}
	var problems []string
	for _, p := range []*proc{bridge, python} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.pid))
		if err != nil {
			return err
		}
		for _, kv := range strings.Split(string(b), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && k == "MMPLUG_TOKEN" && v != "" {
				problems = append(problems, fmt.Sprintf("MMPLUG_TOKEN (%d characters) is in /proc/%d/environ (%s)", len(v), p.pid, p.cmdline))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

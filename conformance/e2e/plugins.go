package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// plugin is one plugin the run installs: its id and where its bundle is.
type plugin struct {
	id     string
	bundle string
}

// Plugin states in GET /api/v4/plugins/statuses (model.PluginState*).
const (
	stateNotRunning = 0
	stateStarting   = 1
	stateRunning    = 2
	stateFailed     = 3
)

type pluginStatus struct {
	PluginID string `json:"plugin_id"`
	State    int    `json:"state"`
	Error    string `json:"error"`
}

// status is the plugin's state on the (single) node, or -1 when the server lists none.
func (e *env) status(p *plugin) (pluginStatus, error) {
	r, err := must(e.w.admin.get("/api/v4/plugins/statuses"))(200)
	if err != nil {
		return pluginStatus{}, err
	}
	var all []pluginStatus
	if err := r.json(&all); err != nil {
		return pluginStatus{}, err
	}
	for _, s := range all {
		if s.PluginID == p.id {
			return s, nil
		}
	}
	return pluginStatus{PluginID: p.id, State: -1}, nil
}

// install uploads the bundle over REST as the admin and enables the plugin.
func (e *env) install(p *plugin) error {
	if _, err := must(e.w.admin.uploadPlugin(p.bundle))(http.StatusCreated); err != nil {
		return fmt.Errorf("uploading %s: %w", filepath.Base(p.bundle), err)
	}
	return e.enable(p)
}

func (e *env) enable(p *plugin) error {
	if _, err := must(e.w.admin.do(http.MethodPost, "/api/v4/plugins/"+p.id+"/enable", nil, nil))(200); err != nil {
		return fmt.Errorf("enabling %s: %w", p.id, err)
	}
	return e.waitRunning(p, 60*time.Second)
}

func (e *env) disable(p *plugin) error {
	if _, err := must(e.w.admin.do(http.MethodPost, "/api/v4/plugins/"+p.id+"/disable", nil, nil))(200); err != nil {
		return fmt.Errorf("disabling %s: %w", p.id, err)
	}
	return eventually(30*time.Second, func() error {
		s, err := e.status(p)
		if err != nil {
			return err
		}
		if s.State != stateNotRunning {
			return fmt.Errorf("%s is still in state %d after disable", p.id, s.State)
		}
		return nil
	})
}

// waitRunning waits until the server reports the plugin running and its HTTP handler answers
// (a route answering is what users see; the status alone turns to running a moment earlier).
func (e *env) waitRunning(p *plugin, d time.Duration) error {
	return eventually(d, func() error {
		s, err := e.status(p)
		if err != nil {
			return err
		}
		switch s.State {
		case stateRunning:
		case stateFailed:
			return permanent{fmt.Errorf("%s failed to start: %s", p.id, shortError(s.Error))}
		default:
			return fmt.Errorf("%s is in state %d (not running) after %s: %s", p.id, s.State, d, s.Error)
		}
		r, err := e.w.anon.get("/plugins/" + p.id + "/version")
		if err != nil {
			return err
		}
		// Any answer from the plugin counts (an app may have no /version); the server itself
		// answers 404 with an AppError and 503 while the plugin is not active.
		if r.status >= 500 || strings.Contains(string(r.body), "api.plugin") {
			return fmt.Errorf("%s is running but its HTTP handler answers %s", p.id, r)
		}
		return nil
	})
}

// solo leaves p as the only enabled plugin of the hello pair, freshly started: hook cases must
// see one plugin decide (the server runs MessageWillBePosted of every plugin in no set order,
// and stops at the first rejection), and a case must not inherit what an earlier one broke.
func (e *env) solo(p *plugin) error {
	if err := e.noHelloPlugin(); err != nil {
		return err
	}
	return e.enable(p)
}

// noHelloPlugin disables both plugins of the hello pair (neither decides on posts).
func (e *env) noHelloPlugin() error {
	for _, q := range []*plugin{e.hello, e.hellogo} {
		s, err := e.status(q)
		if err != nil {
			return err
		}
		if s.State != stateNotRunning {
			if err := e.disable(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// both leaves both plugins of the pair enabled (HTTP-only cases need no isolation).
func (e *env) both() error {
	for _, q := range []*plugin{e.hellogo, e.hello} {
		s, err := e.status(q)
		if err != nil {
			return err
		}
		if s.State != stateRunning {
			if err := e.enable(q); err != nil {
				return err
			}
		}
	}
	return nil
}

// alive checks that the plugin (the only one of the pair enabled) still does its job for a
// user: a post containing "forbidden" is rejected, /hello answers, GET /version answers 200.
func (e *env) alive(p *plugin) error {
	r, err := e.w.post(e.w.user1, "this is forbidden (liveness check)", nil)
	if err != nil {
		return err
	}
	if !rejected(r) {
		return fmt.Errorf("a post containing \"forbidden\" was %s (the plugin's MessageWillBePosted did not reject it)", postVerdict(r))
	}
	r, err = e.w.command(e.w.user1, "/hello")
	if err != nil {
		return err
	}
	if r.status != 200 || !strings.Contains(string(r.body), "Hello from") {
		return fmt.Errorf("/hello answered %s", r)
	}
	r, err = e.w.anon.get("/plugins/" + p.id + "/version")
	if err != nil {
		return err
	}
	if r.status != 200 {
		return fmt.Errorf("GET /plugins/%s/version answered %s", p.id, r)
	}
	return nil
}

// proc is one process of a plugin, found under the server's plugin directory.
type proc struct {
	pid     int
	ppid    int
	cmdline string
}

// pluginProcs lists the processes whose command line or executable lies under the plugin's
// directory: the bridge (the plugin executable) and the Python process it starts (its entry
// module is there), or the Go twin's executable.
func (e *env) pluginProcs(p *plugin) []proc {
	dir := filepath.Join(e.mm.pluginsDir(), p.id) + "/"
	entries, _ := os.ReadDir("/proc")
	var out []proc
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || len(b) == 0 {
			continue
		}
		cmdline := strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if !strings.Contains(cmdline, dir) && !strings.HasPrefix(exe, dir) && !strings.HasPrefix(cwd+"/", dir) {
			continue
		}
		out = append(out, proc{pid: pid, ppid: ppidOf(pid), cmdline: cmdline})
	}
	return out
}

func ppidOf(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	// The command name is in parentheses and may hold spaces: fields start after the last ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return 0
	}
	n, _ := strconv.Atoi(f[1])
	return n
}

func alivePid(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	return len(f) > 0 && f[0] != "Z"
}

// bridgeAndPython splits a Python plugin's processes: the bridge is the server's child, Python
// the bridge's.
func (e *env) bridgeAndPython(p *plugin) (bridge, python *proc, err error) {
	procs := e.pluginProcs(p)
	serverPid := e.mm.cmd.Process.Pid
	for i := range procs {
		if procs[i].ppid == serverPid {
			bridge = &procs[i]
		}
	}
	if bridge == nil {
		return nil, nil, fmt.Errorf("no process of %s is a child of the server: %v", p.id, procs)
	}
	for i := range procs {
		if procs[i].ppid == bridge.pid && strings.Contains(procs[i].cmdline, "python") {
			python = &procs[i]
		}
	}
	if python == nil {
		return bridge, nil, fmt.Errorf("the bridge of %s (pid %d) has no Python child: %v", p.id, bridge.pid, procs)
	}
	return bridge, python, nil
}

func kill9(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc identifies a process across PID reuse: the kernel start time (in clock ticks since boot)
// differs for a new process that got the same PID.
type proc struct {
	PID       int
	PPID      int
	StartTime uint64
	State     byte
	Cmdline   string
}

func (p proc) String() string {
	return fmt.Sprintf("pid %d (%s)", p.PID, p.Cmdline)
}

// readProc parses /proc/PID/stat. The command name (field 2) is in parentheses and may itself
// contain spaces and parentheses, so fields are counted from the last ')'.
func readProc(pid int) (proc, error) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return proc{}, err
	}
	s := string(raw)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return proc{}, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	fields := strings.Fields(s[end+1:])
	// fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19] field 22 (starttime).
	if len(fields) < 20 {
		return proc{}, fmt.Errorf("short /proc/%d/stat", pid)
	}
	ppid, err := strconv.Atoi(fields[1])
	if err != nil {
		return proc{}, fmt.Errorf("/proc/%d/stat ppid: %w", pid, err)
	}
	start, err := strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return proc{}, fmt.Errorf("/proc/%d/stat starttime: %w", pid, err)
	}
	cmd, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return proc{
		PID:       pid,
		PPID:      ppid,
		StartTime: start,
		State:     fields[0][0],
		Cmdline:   strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " ")),
	}, nil
}

func allProcs() []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readProc(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// descendants lists the live (non-zombie) processes below pid, parents before children.
func descendants(pid int) []proc {
	byParent := map[int][]proc{}
	for _, p := range allProcs() {
		byParent[p.PPID] = append(byParent[p.PPID], p)
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		next := queue[0]
		queue = queue[1:]
		for _, c := range byParent[next] {
			if c.State == 'Z' || c.State == 'X' {
				continue
			}
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out
}

// alive reports whether the process still runs (same PID and start time, not a zombie).
func (p proc) alive() bool {
	now, err := readProc(p.PID)
	if err != nil {
		return false
	}
	return now.StartTime == p.StartTime && now.State != 'Z' && now.State != 'X'
}

// pluginProcesses are the processes the supervisor started for us: our descendants.
func pluginProcesses() []proc {
	return descendants(os.Getpid())
}

// killTarget picks the process whose death must be detected by the health check: for a Python
// plugin the interpreter (the bridge's children), for a native plugin the plugin itself.
func killTarget() ([]proc, error) {
	var direct []proc
	for _, p := range pluginProcesses() {
		if p.PPID == os.Getpid() {
			direct = append(direct, p)
		}
	}
	if len(direct) != 1 {
		return nil, fmt.Errorf("expected exactly one plugin process below the harness, found %d: %v", len(direct), direct)
	}
	var children []proc
	for _, p := range descendants(direct[0].PID) {
		if p.PPID == direct[0].PID {
			children = append(children, p)
		}
	}
	if len(children) > 0 {
		return children, nil
	}
	return direct, nil
}

// waitGone polls until none of procs is alive or the deadline passes (a generous bound that
// turns a leak into a failure instead of a hang); it returns the survivors.
func waitGone(procs []proc, within time.Duration) []proc {
	deadline := time.Now().Add(within)
	for {
		var survivors []proc
		for _, p := range procs {
			if p.alive() {
				survivors = append(survivors, p)
			}
		}
		if len(survivors) == 0 || time.Now().After(deadline) {
			return survivors
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// killAll SIGKILLs procs that are still the same processes we saw.
func killAll(procs []proc) {
	for _, p := range procs {
		if p.alive() {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
	}
}

// pluginProcessOf is the process the supervisor launched for plugin id (for a Python
// plugin, its bridge).
func pluginProcessOf(t *caseT, id string) proc {
	for _, p := range pluginProcesses() {
		// The plugin's directory: a bare id would match the ids it is a prefix of too.
		if p.PPID == os.Getpid() && strings.Contains(p.Cmdline, "/"+id+"/") {
			return p
		}
	}
	t.fatalf("the process of %s is not among %v", id, pluginProcesses())
	return proc{}
}

// pythonOf is the Python process a bridge launched.
func pythonOf(t *caseT, bridge proc) proc {
	for _, c := range descendants(bridge.PID) {
		if c.PPID == bridge.PID {
			return c
		}
	}
	t.fatalf("the bridge %v has no Python child", bridge)
	return proc{}
}

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// caseBridgeAndPythonShareOneCPU checks plugin.json's default cpu_placement, "together"
// (crates/bridge/src/cpu.rs; docs/operations.md "Where the bridge and Python run"): once
// Python is ready, every thread of the bridge and of Python may run on one CPU only, the
// same for all. The kernel's own record of each thread's affinity is the witness. The restart
// of Python (pythonRestartedByTheBridge, in health_check_detects_dead_plugin) checks the same
// for the new process.
//
// Then the operator's way out: with MMPLUG_CPU_PLACEMENT=any in the server's environment, a
// new bridge leaves its threads and Python's where the harness's may run.
func caseBridgeAndPythonShareOneCPU(t *caseT) {
	t.activate()
	// Readiness (where the bridge gathers them) came before activation finished.
	expectOneCPU(t, "after activation")

	allowed := harnessCPUs(t)
	if !strings.ContainsAny(allowed, ",-") {
		return // the harness may use one CPU only: "any" is that CPU too
	}
	if !t.env.Deactivate(t.id) {
		t.fatalf("Deactivate returned false")
	}
	t.setenv("MMPLUG_CPU_PLACEMENT", "any")
	t.activate()
	placed := pairCPUs(t, "with MMPLUG_CPU_PLACEMENT=any")
	if len(placed) != 1 || placed[allowed] == nil {
		t.errorf("with MMPLUG_CPU_PLACEMENT=any, the bridge's and Python's threads by CPU list: %v; want all on the harness's %s", placed, allowed)
	}
}

// expectOneCPU fails unless every thread of the bridge and of its Python is restricted to the
// same single CPU (or, if the harness itself may use one CPU only, to the harness's).
func expectOneCPU(t *caseT, when string) {
	placed := pairCPUs(t, when)
	var cpu string
	for l := range placed {
		cpu = l
	}
	if len(placed) != 1 || strings.ContainsAny(cpu, ",-") {
		t.fatalf("%s: the bridge's and Python's threads by CPU list: %v; want one CPU for all", when, placed)
	}
	// A harness confined to one CPU (taskset) confines the plugin to it too.
	if harness := harnessCPUs(t); !strings.ContainsAny(harness, ",-") && harness != cpu {
		t.fatalf("%s: the harness may use CPU %s only, yet the plugin's threads are on %s", when, harness, cpu)
	}
}

// harnessCPUs is the harness's own Cpus_allowed_list (its main thread's).
func harnessCPUs(t *caseT) string {
	cpus, err := threadCPUs(os.Getpid())
	if err != nil {
		t.fatalf("%v", err)
	}
	return cpus[strconv.Itoa(os.Getpid())]
}

// pairCPUs maps each Cpus_allowed_list among the threads of the bridge and its Python to the
// threads ("pid/tid") that have it.
func pairCPUs(t *caseT, when string) map[string][]string {
	bridge, python, err := soakProcesses()
	if err != nil {
		t.fatalf("%s: %v", when, err)
	}
	placed := map[string][]string{}
	for _, p := range []proc{bridge, python} {
		cpus, err := threadCPUs(p.PID)
		if err != nil {
			t.fatalf("%s: %v", when, err)
		}
		for tid, list := range cpus {
			placed[list] = append(placed[list], fmt.Sprintf("%d/%s", p.PID, tid))
		}
	}
	return placed
}

// threadCPUs maps each thread of process pid to its Cpus_allowed_list.
func threadCPUs(pid int) (map[string]string, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, task := range tasks {
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			continue // the thread ended since the listing
		}
		for _, line := range strings.Split(string(status), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
				out[task.Name()] = strings.TrimSpace(v)
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no thread of process %d has a Cpus_allowed_list", pid)
	}
	return out, nil
}

package main

// The bridge's own share of a hook: the same Python benchmark bundle, launched with
// MMPLUG_BRIDGE_ECHO_HOOKS=1, so the bridge answers MessageWillBePosted itself (gob → protobuf
// bytes → gob, every step of a real call except the gRPC hop and Python). Measured
// interleaved against the native Go plugin in a world of their own: the difference of the
// two round trips is the time the bridge adds over a Go plugin (BRIEF.md's latency bar).

import (
	"os"

	"github.com/mattermost/mattermost/server/public/plugin"
)

// echoHooksEnv is the bridge's switch (crates/bridge/src/run.rs ECHO_HOOKS_ENV).
const echoHooksEnv = "MMPLUG_BRIDGE_ECHO_HOOKS"

func benchBridgeEcho(t *caseT, figures map[string]benchFigure) {
	// The supervisor hands its own environment to the plugins it launches; only the launch
	// reads it, so it is unset again once both plugins run.
	if err := os.Setenv(echoHooksEnv, "1"); err != nil {
		t.fatalf("%v", err)
	}
	unset := func() { _ = os.Unsetenv(echoHooksEnv) }
	defer unset()
	pluginWorld(t, "bench/plugin-python", []string{"bench/plugin-go"}, func(api *memAPI, echoHooks plugin.Hooks, _ string) {
		unset()
		goHooks, err := api.env.HooksForPlugin(benchGoID)
		if err != nil {
			t.fatalf("%s: %v", benchGoID, err)
		}
		goProc, bridge, _ := benchProcesses(t)
		if !waitLogAny(t, "unary hooks are answered by the bridge itself") {
			t.fatalf("the bridge did not switch to answering hooks itself")
		}
		sides := []*benchSide{
			{name: "go", id: benchGoID, hooks: goHooks, procs: []proc{goProc}},
			{name: "echo", id: benchPythonID, hooks: echoHooks, procs: []proc{bridge}},
		}
		call := func(s *benchSide) {
			if s.name == "go" {
				callHook(t, s)
				return
			}
			sent := benchPost()
			got, reason := s.hooks.MessageWillBePosted(t.pluginContext(), sent)
			if got == nil || got.Id != sent.Id || got.Message != sent.Message || reason != "" {
				t.fatalf("the echoing bridge answered %+v, %q; want the post it was sent", got, reason)
			}
		}
		runs := measureSerial(sides, nil, call)
		calls := float64(serialRounds * serialPerRound)
		g, e := us(percentile(runs["go"].times, 50)), us(percentile(runs["echo"].times, 50))
		figures["hook_bridge_echo_p50"] = benchFigure{Unit: "µs", Go: ptr(g), MMPlug: e, Ratio: ptr(e / g)}
		figures["hook_bridge_added_p50"] = benchFigure{Unit: "µs", MMPlug: e - g, Target: "≤ 15 µs", Met: ptr(e-g <= 15)}
		goCPU, echoCPU := us(runs["go"].cpu)/calls, us(runs["echo"].cpu)/calls
		figures["hook_bridge_echo_cpu_per_call"] = benchFigure{Unit: "µs", Go: ptr(goCPU), MMPlug: echoCPU, Ratio: ptr(echoCPU / goCPU)}
	})
}

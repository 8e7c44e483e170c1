package main

// The least a Python process adds behind the bridge: bench/plugin-python-floor, a Python
// process without the SDK that answers MessageWillBePosted on one thread with the bytes it
// built for the first one and makes KVGets as bare frames (its docstring), beside the native
// Go plugin and bench/plugin-python, measured interleaved in a world of their own. What the
// floor takes over Go is the transport and the two wake-ups a call through Python adds
// (for a hook bridge → Python and Python → bridge; for an API call Python → bridge and
// bridge → Python), which no SDK work removes; what bench/plugin-python takes over the floor
// is the SDK's share, the part its work can shrink.

import (
	"fmt"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const benchPythonFloorID = "com.mmplug.bench.pythonfloor"

func benchPythonFloor(t *caseT, figures map[string]benchFigure) {
	others := []string{"bench/plugin-go", "bench/plugin-python"}
	pluginWorld(t, "bench/plugin-python-floor", others, func(api *memAPI, floorHooks plugin.Hooks, _ string) {
		hooksOf := func(id string) plugin.Hooks {
			h, err := api.env.HooksForPlugin(id)
			if err != nil {
				t.fatalf("%s: %v", id, err)
			}
			return h
		}
		floorBridge := pluginProcessOf(t, benchPythonFloorID)
		sdkBridge := pluginProcessOf(t, benchPythonID)
		floorPython, sdkPython := pythonOf(t, floorBridge), pythonOf(t, sdkBridge)
		sides := []*benchSide{
			{name: "go", id: benchGoID, hooks: hooksOf(benchGoID), procs: []proc{pluginProcessOf(t, benchGoID)}},
			{name: "mmplug", id: benchPythonID, hooks: hooksOf(benchPythonID), procs: []proc{sdkPython}},
			{name: "floor", id: benchPythonFloorID, hooks: floorHooks, procs: []proc{floorPython}},
		}
		runs := measureSerial(sides, nil, func(s *benchSide) { callHook(t, s) })
		g := us(percentile(runs["go"].times, 50))
		sdk, floor := us(percentile(runs["mmplug"].times, 50)), us(percentile(runs["floor"].times, 50))
		figures["hook_python_floor_p50"] = benchFigure{Unit: "µs", Go: ptr(g), MMPlug: floor, Ratio: ptr(floor / g)}
		figures["hook_sdk_over_floor_p50"] = benchFigure{Unit: "µs", MMPlug: sdk - floor}
		calls := float64(serialRounds * serialPerRound)
		figures["hook_python_floor_cpu_python_per_call"] = benchFigure{Unit: "µs", MMPlug: us(runs["floor"].cpu) / calls}
		benchAPIFloor(t, sides, figures)
	})
}

// benchAPIFloor: benchAPI's kv_get; the floor takes its turn through ExecuteCommand
// /bench-kv-floor N (it serves no HTTP) and times each call around its frames' write and read.
func benchAPIFloor(t *caseT, sides []*benchSide, figures map[string]benchFigure) {
	times := apiCallTimes(t, sides, func(s *benchSide, n int) string {
		if s.name != "floor" {
			return apiTimesOverHTTP(t, s, "kv_get", n)
		}
		resp, appErr := s.hooks.ExecuteCommand(t.pluginContext(), &model.CommandArgs{Command: fmt.Sprintf("/bench-kv-floor %d", n)})
		if appErr != nil || resp == nil {
			t.fatalf("floor: /bench-kv-floor: %v", appErr)
		}
		return resp.Text
	})
	g := us(percentile(times["go"], 50))
	sdk, floor := us(percentile(times["mmplug"], 50)), us(percentile(times["floor"], 50))
	figures["api_kv_get_floor_p50"] = benchFigure{Unit: "µs", Go: ptr(g), MMPlug: floor, Ratio: ptr(floor / g)}
	figures["api_kv_get_sdk_over_floor_p50"] = benchFigure{Unit: "µs", MMPlug: sdk - floor}
}

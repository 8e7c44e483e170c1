package main

// The figures of -bench measured in one server with both benchmark plugins active
// (bench/plugin-python through the bridge, bench/plugin-go natively). Every Go/Python pair is
// measured interleaved, Go then Python, round after round, so drift of the machine hits both
// alike. bench/README.md says what each figure means and how it is taken.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const (
	benchPythonID = "com.mmplug.bench.python"
	benchGoID     = "com.mmplug.bench.go"
)

// benchSide is one of the two plugins under measurement.
type benchSide struct {
	name  string // "go" or "mmplug"
	id    string
	hooks plugin.Hooks
	procs []proc // the processes whose CPU time a call costs (the bridge alone for mmplug)
}

// benchPlugins runs the measurements that need both plugins active.
func benchPlugins(t *caseT, selected *regexp.Regexp, figures map[string]benchFigure) {
	pluginWorld(t, "bench/plugin-python", []string{"bench/plugin-go"}, func(api *memAPI, pyHooks plugin.Hooks, _ string) {
		goHooks, err := api.env.HooksForPlugin(benchGoID)
		if err != nil {
			t.fatalf("%s: %v", benchGoID, err)
		}
		goProc, bridge, python := benchProcesses(t)
		goSide := &benchSide{name: "go", id: benchGoID, hooks: goHooks, procs: []proc{goProc}}
		pySide := &benchSide{name: "mmplug", id: benchPythonID, hooks: pyHooks, procs: []proc{bridge}}
		sides := []*benchSide{goSide, pySide}

		// Idle: activation's garbage settled, nothing in flight.
		time.Sleep(time.Second)
		goRSS, bridgeRSS, pyRSS := mb(rssKiB(goProc.PID)), mb(rssKiB(bridge.PID)), mb(rssKiB(python.PID))
		figures["rss_idle_bridge"] = benchFigure{Unit: "MB", Go: ptr(goRSS), MMPlug: bridgeRSS, Ratio: ptr(bridgeRSS / goRSS), Target: "≤ 15 MB", Met: ptr(bridgeRSS <= 15)}
		figures["rss_idle_python"] = benchFigure{Unit: "MB", MMPlug: pyRSS, Target: "≤ 35 MB", Met: ptr(pyRSS <= 35)}
		figures["rss_idle_plugin_total"] = benchFigure{Unit: "MB", Go: ptr(goRSS), MMPlug: bridgeRSS + pyRSS, Ratio: ptr((bridgeRSS + pyRSS) / goRSS)}

		// -run selects groups by name (for profiling one of them); the idle RSS is always taken.
		groups := []struct {
			name string
			run  func()
		}{
			{"hook_serial", func() { benchHookSerial(t, sides, bridge, python, figures) }},
			{"hook_async", func() { benchHookAsync(t, sides, python, figures) }},
			{"hook_in_flight", func() { benchHookInFlight(t, sides, figures) }},
			{"api_in_flight", func() { benchAPIInFlight(t, sides, figures) }},
			{"hook_deep_post", func() { benchHookDeepPost(t, sides, python, figures) }},
			{"api_kv_get", func() { benchAPI(t, sides, "kv_get", figures) }},
			{"api_get_user", func() { benchAPI(t, sides, "get_user", figures) }},
			{"http_throughput", func() { benchHTTPThroughput(t, sides, figures) }},
			{"sse", func() { benchSSE(t, sides, figures) }},
			{"upload_1gib", func() { benchUpload1GiB(t, pySide, bridge, figures) }},
			{"activation", func() { benchActivation(t, api.env, sides, figures) }},
		}
		for _, g := range groups {
			if selected.MatchString(g.name) {
				g.run()
			}
		}
	})
}

// benchProcesses finds the native plugin, the bridge, and the bridge's Python child.
func benchProcesses(t *caseT) (goProc, bridge, python proc) {
	goProc, bridge = pluginProcessOf(t, benchGoID), pluginProcessOf(t, benchPythonID)
	return goProc, bridge, pythonOf(t, bridge)
}

// benchPost is the 1 KiB post the hook benchmarks send.
func benchPost() *model.Post {
	return &model.Post{Id: model.NewId(), ChannelId: model.NewId(), UserId: harnessUserID, Message: strings.Repeat("x", 1024)}
}

// callHookAsync edits a post through MessageWillBeUpdated, whose Python handler is async def.
func callHookAsync(t *caseT, s *benchSide) {
	got, reason := s.hooks.MessageWillBeUpdated(t.pluginContext(), benchPost(), benchPost())
	if got == nil || !strings.HasSuffix(got.Message, " [checked]") || got.GetProp("checked_by") != "bench" {
		t.fatalf("%s: MessageWillBeUpdated answered %+v, %q", s.name, got, reason)
	}
}

func callHook(t *caseT, s *benchSide) {
	got, reason := s.hooks.MessageWillBePosted(t.pluginContext(), benchPost())
	if got == nil || !strings.HasSuffix(got.Message, " [checked]") || got.GetProp("checked_by") != "bench" {
		t.fatalf("%s: MessageWillBePosted answered %+v, %q", s.name, got, reason)
	}
}

// Serial calls per side: 20 rounds of 250, interleaved, after 200 warm-up calls each.
const serialRounds, serialPerRound, serialWarmUp = 20, 250, 200

// serialRun is what measureSerial saw of one side.
type serialRun struct {
	times     []time.Duration
	cpu, user time.Duration // of the side's own processes
	alsoCPU   time.Duration // of the processes also[side] names
}

// measureSerial makes calls one at a time, the sides taking turns round by round so drift of
// the machine hits them alike, and times each; it also takes the CPU time each side's
// processes (and also[side.name]) spend meanwhile.
func measureSerial(sides []*benchSide, also map[string][]proc, call func(*benchSide)) map[string]*serialRun {
	for _, s := range sides {
		for range serialWarmUp { // warm up both ends (connections, caches, the interpreter's imports)
			call(s)
		}
	}
	runs := map[string]*serialRun{}
	for _, s := range sides {
		runs[s.name] = &serialRun{}
	}
	for range serialRounds {
		for _, s := range sides {
			r := runs[s.name]
			before, userBefore, alsoBefore := cpuTime(s.procs), userTime(s.procs), cpuTime(also[s.name])
			for range serialPerRound {
				start := time.Now()
				call(s)
				r.times = append(r.times, time.Since(start))
			}
			r.cpu += cpuTime(s.procs) - before
			r.user += userTime(s.procs) - userBefore
			r.alsoCPU += cpuTime(also[s.name]) - alsoBefore
		}
	}
	return runs
}

// benchHookSerial: one MessageWillBePosted at a time, each modifying a 1 KiB post; p50 and p99
// of the round trip as the server sees it, and the CPU time each plugin's own process spends
// per call (for mmplug, the bridge alone: its share of the call).
func benchHookSerial(t *caseT, sides []*benchSide, bridge, python proc, figures map[string]benchFigure) {
	runs := measureSerial(sides, map[string][]proc{"mmplug": {python}}, func(s *benchSide) { callHook(t, s) })
	goRun, py := runs["go"], runs["mmplug"]
	calls := float64(serialRounds * serialPerRound)
	g, p := percentile(goRun.times, 50), percentile(py.times, 50)
	figures["hook_round_trip_p50"] = ratioFigure("µs", us(g), us(p), 1.6)
	g, p = percentile(goRun.times, 99), percentile(py.times, 99)
	figures["hook_round_trip_p99"] = ratioFigure("µs", us(g), us(p), 2.5)
	goCPU, bridgeCPU := us(goRun.cpu)/calls, us(py.cpu)/calls
	figures["hook_cpu_bridge_per_call"] = benchFigure{Unit: "µs", Go: ptr(goCPU), MMPlug: bridgeCPU, Ratio: ptr(bridgeCPU / goCPU)}
	// The user-mode part: the bridge's work without the kernel's (socket I/O, wake-ups,
	// scheduling), both of its connections included. The brief's bar on the bridge's own
	// added time is hook_bridge_added_p50 (bench_echo.go), which leaves out the hop to Python.
	goUser, bridgeUser := us(goRun.user)/calls, us(py.user)/calls
	figures["hook_user_cpu_bridge_per_call"] = benchFigure{Unit: "µs", Go: ptr(goUser), MMPlug: bridgeUser, Ratio: ptr(bridgeUser / goUser)}
	figures["hook_cpu_python_per_call"] = benchFigure{Unit: "µs", MMPlug: us(py.alsoCPU) / calls}
}

// benchHookAsync: benchHookSerial's calls as MessageWillBeUpdated, whose Python handler is
// `async def` (the plugin author's choice for a hook that does not block); p50 and p99.
func benchHookAsync(t *caseT, sides []*benchSide, python proc, figures map[string]benchFigure) {
	runs := measureSerial(sides, map[string][]proc{"mmplug": {python}}, func(s *benchSide) { callHookAsync(t, s) })
	calls := float64(serialRounds * serialPerRound)
	figures["hook_async_cpu_python_per_call"] = benchFigure{Unit: "µs", MMPlug: us(runs["mmplug"].alsoCPU) / calls}
	figures["hook_async_cpu_bridge_per_call"] = benchFigure{Unit: "µs", MMPlug: us(runs["mmplug"].cpu) / calls}
	g, p := percentile(runs["go"].times, 50), percentile(runs["mmplug"].times, 50)
	figures["hook_async_round_trip_p50"] = ratioFigure("µs", us(g), us(p), 1.4)
	g, p = percentile(runs["go"].times, 99), percentile(runs["mmplug"].times, 99)
	figures["hook_async_round_trip_p99"] = ratioFigure("µs", us(g), us(p), 2.5)
}

// ratioFigure is a figure whose target is mmplug within `bar` × Go's.
func ratioFigure(unit string, goValue, mmplug, bar float64) benchFigure {
	return benchFigure{Unit: unit, Go: ptr(goValue), MMPlug: mmplug, Ratio: ptr(mmplug / goValue), Target: fmt.Sprintf("≤ %g × Go", bar), Met: ptr(mmplug/goValue <= bar)}
}

// benchAPIInFlight: the plugin makes 6,400 KVGets with 64 in flight at once (Go: 64
// goroutines; Python: 64 coroutines on self.aapi, from an async def ExecuteCommand), timed
// inside the plugin; calls per second over 3 rounds, sides interleaved, after a warm-up.
func benchAPIInFlight(t *caseT, sides []*benchSide, figures map[string]benchFigure) {
	const workers, calls, rounds = 64, 6400, 3
	seconds := map[string]float64{}
	for round := range rounds + 1 {
		for _, s := range sides {
			command := fmt.Sprintf("/bench-kv-in-flight %d %d", workers, calls)
			resp, appErr := s.hooks.ExecuteCommand(t.pluginContext(), &model.CommandArgs{Command: command})
			if appErr != nil || resp == nil {
				t.fatalf("%s: %s answered %v, %v", s.name, command, resp, appErr)
			}
			var doc struct{ Seconds float64 }
			if err := json.Unmarshal([]byte(resp.Text), &doc); err != nil || doc.Seconds <= 0 {
				t.fatalf("%s: %s answered %q: %v", s.name, command, resp.Text, err)
			}
			if round > 0 { // round 0 warms both up
				seconds[s.name] += doc.Seconds
			}
		}
	}
	rate := func(name string) float64 { return calls * rounds / seconds[name] }
	g, p := rate("go"), rate("mmplug")
	met := p >= 10000 && p/g >= 0.5
	figures["api_kv_get_64_in_flight"] = benchFigure{Unit: "calls/s", Go: ptr(g), MMPlug: p, Ratio: ptr(p / g), Target: "≥ 10000/s and ≥ 0.5 × Go", Met: &met}
}

// benchHookInFlight: 64 goroutines calling MessageWillBePosted at once; calls per second.
func benchHookInFlight(t *caseT, sides []*benchSide, figures map[string]benchFigure) {
	const workers, perWorker, rounds = 64, 40, 3
	elapsed := map[string]time.Duration{}
	for range rounds {
		for _, s := range sides {
			var wg sync.WaitGroup
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range perWorker {
						callHook(t, s)
					}
				}()
			}
			wg.Wait()
			elapsed[s.name] += time.Since(start)
		}
	}
	rate := func(name string) float64 { return workers * perWorker * rounds / elapsed[name].Seconds() }
	g, p := rate("go"), rate("mmplug")
	figures["hook_64_in_flight"] = benchFigure{Unit: "calls/s", Go: ptr(g), MMPlug: p, Ratio: ptr(p / g), Target: "≥ 0.5 × Go", Met: ptr(p/g >= 0.5)}
}

// benchAPI: the plugin makes n calls of method from inside ServeHTTP and times each one around
// the API call alone; p50 latency and calls per second.
func benchAPI(t *caseT, sides []*benchSide, method string, figures map[string]benchFigure) {
	times := apiCallTimes(t, sides, func(s *benchSide, n int) string { return apiTimesOverHTTP(t, s, method, n) })
	g, p := percentile(times["go"], 50), percentile(times["mmplug"], 50)
	figures["api_"+method+"_p50"] = ratioFigure("µs", us(g), us(p), 1.6)
	rate := func(ts []time.Duration) float64 {
		var total time.Duration
		for _, d := range ts {
			total += d
		}
		return float64(len(ts)) / total.Seconds()
	}
	gr, pr := rate(times["go"]), rate(times["mmplug"])
	figures["api_"+method+"_rate"] = benchFigure{Unit: "calls/s", Go: ptr(gr), MMPlug: pr, Ratio: ptr(pr / gr)}
}

// apiCallTimes: 3 rounds of 2,000 API calls per side after a warm-up round, the sides taking
// turns; timesOf has a side make n calls and answers its {"ns": [...]}, each call timed
// around the call alone. The times by side name.
func apiCallTimes(t *caseT, sides []*benchSide, timesOf func(s *benchSide, n int) string) map[string][]time.Duration {
	const rounds, n = 3, 2000
	times := map[string][]time.Duration{}
	for round := range rounds + 1 {
		for _, s := range sides {
			body := timesOf(s, n)
			var doc struct{ NS []int64 }
			if json.Unmarshal([]byte(body), &doc) != nil || len(doc.NS) != n {
				t.fatalf("%s: %d API calls answered %q", s.name, n, clip(body))
			}
			if round == 0 {
				continue // warm-up
			}
			for _, ns := range doc.NS {
				times[s.name] = append(times[s.name], time.Duration(ns))
			}
		}
	}
	return times
}

// apiTimesOverHTTP: the plugin's GET /api?method=METHOD&n=N (bench/README.md).
func apiTimesOverHTTP(t *caseT, s *benchSide, method string, n int) string {
	w := benchRequest(t, s, http.MethodGet, fmt.Sprintf("/api?method=%s&n=%d&user_id=%s", method, n, harnessUserID), nil)
	if w.Code != http.StatusOK {
		t.fatalf("%s /api %s: status %d, body %q", s.name, method, w.Code, clip(w.Body.String()))
	}
	return w.Body.String()
}

func benchRequest(t *caseT, s *benchSide, method, path string, body io.Reader) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://mattermost.test"+path, body)
	r.Header.Set("Mattermost-User-Id", harnessUserID)
	w := httptest.NewRecorder()
	s.hooks.ServeHTTP(t.pluginContext(), w, r)
	return w
}

// benchHTTPThroughput: ServeHTTP bodies of 1 MiB and 100 MiB into the plugin (POST /sink, which
// reads the body as it arrives) and out of it (GET /source); MB/s of the median request.
func benchHTTPThroughput(t *caseT, sides []*benchSide, figures map[string]benchFigure) {
	for _, sz := range []struct {
		name   string
		size   int
		rounds int
	}{{"1mib", 1 << 20, 30}, {"100mib", 100 << 20, 4}} {
		up, down := map[string][]time.Duration{}, map[string][]time.Duration{}
		for range sz.rounds {
			for _, s := range sides {
				start := time.Now()
				w := benchRequest(t, s, http.MethodPost, "/sink", io.LimitReader(patternReader{}, int64(sz.size)))
				up[s.name] = append(up[s.name], time.Since(start))
				var doc struct{ Size int }
				if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc.Size != sz.size {
					t.fatalf("%s: POST /sink of %d bytes: status %d, body %q", s.name, sz.size, w.Code, clip(w.Body.String()))
				}
				start = time.Now()
				w = benchRequest(t, s, http.MethodGet, fmt.Sprintf("/source?size=%d", sz.size), nil)
				down[s.name] = append(down[s.name], time.Since(start))
				if w.Code != http.StatusOK || w.Body.Len() != sz.size {
					t.fatalf("%s: GET /source of %d bytes: status %d, %d bytes", s.name, sz.size, w.Code, w.Body.Len())
				}
			}
		}
		for dir, times := range map[string]map[string][]time.Duration{"upload": up, "download": down} {
			mbps := func(ts []time.Duration) float64 { return float64(sz.size) / 1e6 / percentile(ts, 50).Seconds() }
			g, p := mbps(times["go"]), mbps(times["mmplug"])
			figures["serve_http_"+dir+"_"+sz.name] = benchFigure{Unit: "MB/s", Go: ptr(g), MMPlug: p, Ratio: ptr(p / g), Target: "≥ 0.70 × Go", Met: ptr(p/g >= 0.70)}
		}
	}
}

// benchSSE: a real HTTP server in front of ServeHTTP, as the server's router is; the time from
// sending GET /sse to reading the first event's data line.
func benchSSE(t *caseT, sides []*benchSide, figures map[string]benchFigure) {
	const rounds = 40
	urls := map[string]string{}
	for _, s := range sides {
		srv := realServer(t, s.hooks)
		defer srv.Close()
		urls[s.name] = srv.URL + "/sse"
		firstEvent(t, s.name, urls[s.name]) // warm-up: the connection and the route
	}
	times := map[string][]time.Duration{}
	for range rounds {
		for _, s := range sides {
			times[s.name] = append(times[s.name], firstEvent(t, s.name, urls[s.name]))
		}
	}
	g, p := percentile(times["go"], 50), percentile(times["mmplug"], 50)
	figures["sse_first_event"] = benchFigure{Unit: "ms", Go: ptr(ms(g)), MMPlug: ms(p), Ratio: ptr(ms(p) / ms(g))}
}

// firstEvent times one GET of url until the first "data:" line has arrived, then drains the
// rest of the stream.
func firstEvent(t *caseT, name, url string) time.Duration {
	start := time.Now()
	resp, err := http.Get(url)
	if err != nil {
		t.fatalf("%s: GET /sse: %v", name, err)
	}
	defer resp.Body.Close()
	lines := bufio.NewReader(resp.Body)
	line, err := lines.ReadString('\n')
	for err == nil && !strings.HasPrefix(line, "data:") {
		line, err = lines.ReadString('\n')
	}
	took := time.Since(start)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.fatalf("%s: GET /sse: status %d, first data line %q, %v", name, resp.StatusCode, line, err)
	}
	_, _ = io.Copy(io.Discard, lines)
	return took
}

// benchUpload1GiB streams a 1 GiB request body through the bridge into Python's /sink while
// sampling the bridge's resident set every 5 ms.
func benchUpload1GiB(t *caseT, s *benchSide, bridge proc, figures map[string]benchFigure) {
	idle := rssKiB(bridge.PID)
	peak := idle
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				peak = max(peak, rssKiB(bridge.PID))
			}
		}
	}()
	const size = 1 << 30
	start := time.Now()
	w := benchRequest(t, s, http.MethodPost, "/sink", io.LimitReader(patternReader{}, size))
	elapsed := time.Since(start)
	close(done)
	<-sampled
	var doc map[string]any
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc["size"] != float64(size) {
		t.fatalf("1 GiB upload: status %d body %q", w.Code, clip(w.Body.String()))
	}
	growth := mb(peak - idle)
	figures["bridge_rss_growth_1gib_upload"] = benchFigure{Unit: "MB", MMPlug: growth, Target: "flat (≤ 16 MB above idle)", Met: ptr(growth <= 16)}
	figures["serve_http_upload_1gib"] = benchFigure{Unit: "MB/s", MMPlug: float64(size) / 1e6 / elapsed.Seconds()}
}

// benchActivation: Activate as the server calls it, from launching the executable to
// OnActivate having returned; the median of 5, each plugin deactivated before.
func benchActivation(t *caseT, env *plugin.Environment, sides []*benchSide, figures map[string]benchFigure) {
	// 11 rounds: Python's start swings far more than Go's from one activation to the next on
	// the bench machine (116-184 ms against 51-56 ms within one run of 5).
	const rounds = 11
	times := map[string][]time.Duration{}
	for range rounds {
		for _, s := range sides {
			env.Deactivate(s.id)
			start := time.Now()
			_, activated, err := env.Activate(s.id)
			took := time.Since(start)
			if err != nil || !activated {
				t.fatalf("%s: Activate: activated=%v, %v", s.name, activated, err)
			}
			times[s.name] = append(times[s.name], took)
		}
	}
	g, p := percentile(times["go"], 50), percentile(times["mmplug"], 50)
	figures["activation"] = ratioFigure("ms", ms(g), ms(p), 2.5)
}

// cpuTime sums the time the processes' threads have been on a CPU (/proc/PID/task/*/schedstat,
// nanoseconds: finer than the clock ticks of /proc/PID/stat).
func cpuTime(procs []proc) time.Duration {
	var total time.Duration
	for _, p := range procs {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.PID))
		for _, task := range tasks {
			raw, err := os.ReadFile(task)
			if err != nil {
				continue
			}
			if fields := strings.Fields(string(raw)); len(fields) > 0 {
				ns, _ := strconv.ParseInt(fields[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// userTime sums the user-mode CPU time of the processes (/proc/PID/stat utime, in clock ticks
// of 10 ms: fine enough over the thousands of calls it divides).
func userTime(procs []proc) time.Duration {
	var total time.Duration
	for _, p := range procs {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.PID))
		if err != nil {
			continue
		}
		s := string(raw)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 11 {
			ticks, _ := strconv.ParseInt(fields[11], 10, 64) // field 14, utime
			total += time.Duration(ticks) * 10 * time.Millisecond
		}
	}
	return total
}

func percentile(ts []time.Duration, p int) time.Duration {
	if len(ts) == 0 {
		return 0
	}
	sorted := append([]time.Duration(nil), ts...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	return sorted[min(len(sorted)-1, len(sorted)*p/100)]
}

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
func ms(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }
func mb(kib int64) float64       { return float64(kib) / 1024 }

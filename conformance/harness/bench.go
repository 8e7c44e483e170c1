package main

// The -bench mode: ServeHTTP throughput of examples/hello (Python, through the bridge) beside
// its native Go twin conformance/hellogo, both active in one server and measured interleaved
// (Go, Python, Go, Python...) so machine drift hits both alike; and the bridge's resident
// memory while a 1 GiB request body streams through it. Prints a table and writes
// bench/results.json. The benchmark issue extends this with hooks, API calls and more figures.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mattermost/mattermost/server/public/plugin"
)

type benchFigure struct {
	Unit   string   `json:"unit"`
	Go     *float64 `json:"go"`
	MMPlug float64  `json:"mmplug"`
	Ratio  *float64 `json:"ratio"`
	Target string   `json:"target,omitempty"`
	Met    *bool    `json:"met,omitempty"`
}

type benchResults struct {
	Machine string                 `json:"machine"`
	Figures map[string]benchFigure `json:"figures"`
}

func runBench(o options) int {
	if o.bridge == "" {
		fmt.Fprintln(os.Stderr, "harness: -bench needs -bridge (a release build: target/release/mmplug-bridge)")
		return 2
	}
	results := benchResults{Machine: machineDescription(), Figures: map[string]benchFigure{}}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	// runCase wants a bundle for its own (unused) world; the benchmarks build theirs.
	b, err := prepareBundle(bundleOptions{pluginDir: filepath.Join(root, "conformance/hellogo")})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	defer b.remove()
	res := runCase(b, o, harnessCase{name: "bench_serve_http", run: func(t *caseT) { benchServeHTTP(t, results.Figures) }})
	res2 := runCase(b, o, harnessCase{name: "bench_bridge_rss", run: func(t *caseT) { benchBridgeRSS(t, results.Figures) }})
	failures := append(res.failures, res2.failures...)
	if hs, err := benchHandshake(o.bridge); err != nil {
		failures = append(failures, "handshake: "+err.Error())
	} else {
		results.Figures["handshake_after_exec"] = benchFigure{Unit: "ms", MMPlug: hs, Target: "≤ 50 ms", Met: ptr(hs <= 50)}
	}
	for _, f := range failures {
		fmt.Printf("FAIL %s\n", strings.Join(strings.Fields(f), " "))
	}
	names := make([]string, 0, len(results.Figures))
	for n := range results.Figures {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("%-34s %-6s %12s %12s %7s  %s\n", "figure", "unit", "go", "mmplug", "ratio", "target")
	for _, n := range names {
		f := results.Figures[n]
		goText, ratioText, met := "-", "-", ""
		if f.Go != nil {
			goText = fmt.Sprintf("%.1f", *f.Go)
		}
		if f.Ratio != nil {
			ratioText = fmt.Sprintf("%.2f", *f.Ratio)
		}
		if f.Met != nil {
			met = map[bool]string{true: " (met)", false: " (NOT met)"}[*f.Met]
		}
		fmt.Printf("%-34s %-6s %12s %12.1f %7s  %s%s\n", n, f.Unit, goText, f.MMPlug, ratioText, f.Target, met)
	}
	{
		out, _ := json.MarshalIndent(results, "", "  ")
		path := filepath.Join(root, "bench", "results.json")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
			err = os.WriteFile(path, append(out, '\n'), 0o644)
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "harness: writing bench/results.json: %v\n", err)
			return 1
		}
		fmt.Printf("wrote %s\n", path)
	}
	if len(failures) > 0 {
		return 1
	}
	return 0
}

func machineDescription() string {
	cpu := "unknown cpu"
	if raw, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			if name, ok := strings.CutPrefix(line, "model name\t: "); ok {
				cpu = name
				break
			}
		}
	}
	return fmt.Sprintf("%s/%s, %d cores, %s, %s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, runtime.Version())
}

func ptr[T any](v T) *T { return &v }

// benchServeHTTP: POST /echo of 1 MiB and 100 MiB to both plugins, interleaved; the figure is
// bytes moved (request plus response) per second of the median call.
func benchServeHTTP(t *caseT, figures map[string]benchFigure) {
	pluginWorld(t, "examples/hello", []string{"conformance/hellogo"}, func(api *memAPI, pyHooks plugin.Hooks, _ string) {
		goHooks, err := api.env.HooksForPlugin("com.mmplug.hellogo")
		if err != nil {
			t.fatalf("hellogo: %v", err)
		}
		for _, sz := range []struct {
			name   string
			size   int
			rounds int
		}{{"1mib", 1 << 20, 30}, {"100mib", 100 << 20, 4}} {
			body := payload(sz.size)
			var goTimes, pyTimes []time.Duration
			for range sz.rounds {
				for _, side := range []struct {
					hooks plugin.Hooks
					times *[]time.Duration
				}{{goHooks, &goTimes}, {pyHooks, &pyTimes}} {
					r := httptest.NewRequest(http.MethodPost, "http://mattermost.test/echo", bytes.NewReader(body))
					r.Header.Set("Content-Type", "application/octet-stream")
					w := httptest.NewRecorder()
					start := time.Now()
					side.hooks.ServeHTTP(t.pluginContext(), w, r)
					*side.times = append(*side.times, time.Since(start))
					if w.Code != http.StatusOK || w.Body.Len() != sz.size {
						t.fatalf("echo of %d bytes: status %d, %d bytes back", sz.size, w.Code, w.Body.Len())
					}
				}
			}
			mbps := func(ts []time.Duration) float64 {
				sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
				return 2 * float64(sz.size) / 1e6 / ts[len(ts)/2].Seconds()
			}
			g, p := mbps(goTimes), mbps(pyTimes)
			figures["serve_http_echo_"+sz.name] = benchFigure{Unit: "MB/s", Go: ptr(g), MMPlug: p, Ratio: ptr(p / g), Target: "≥ 0.70 × Go", Met: ptr(p/g >= 0.70)}
		}
	})
}

// benchBridgeRSS streams a 1 GiB request body through the bridge to the streams plugin's /sink
// (which reads it piece by piece) while sampling the bridge's resident set.
func benchBridgeRSS(t *caseT, figures map[string]benchFigure) {
	pluginWorld(t, "conformance/harness/testdata/streams", nil, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		var bridge *proc
		for _, p := range pluginProcesses() {
			if p.PPID == os.Getpid() && strings.Contains(p.Cmdline, "com.mmplug.streams") {
				bridge = &p
			}
		}
		if bridge == nil {
			t.fatalf("no bridge process for com.mmplug.streams among %v", pluginProcesses())
		}
		idle := rssKiB(bridge.PID)
		peak := idle
		done := make(chan struct{})
		go func() {
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
		r := httptest.NewRequest(http.MethodPost, "http://mattermost.test/sink", io.LimitReader(patternReader{}, size))
		w := httptest.NewRecorder()
		start := time.Now()
		hooks.ServeHTTP(t.pluginContext(), w, r)
		elapsed := time.Since(start)
		close(done)
		var doc map[string]any
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &doc) != nil || doc["size"] != float64(size) {
			t.fatalf("1 GiB upload: status %d body %q", w.Code, clip(w.Body.String()))
		}
		figures["bridge_rss_idle"] = benchFigure{Unit: "MB", MMPlug: float64(idle) / 1024, Target: "≤ 15 MB", Met: ptr(float64(idle)/1024 <= 15)}
		growth := float64(peak-idle) / 1024
		figures["bridge_rss_growth_1gib_upload"] = benchFigure{Unit: "MB", MMPlug: growth, Target: "flat (≤ 16 MB above idle)", Met: ptr(growth <= 16)}
		figures["serve_http_upload_1gib"] = benchFigure{Unit: "MB/s", MMPlug: float64(size) / 1e6 / elapsed.Seconds()}
	})
}

// patternReader yields the payload pattern forever.
type patternReader struct{}

func (patternReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i * 7)
	}
	return len(p), nil
}

func rssKiB(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// benchHandshake launches the bridge as the server does (cookie in the environment, no
// arguments) and times the go-plugin handshake line on its stdout: the median of 15 launches.
func benchHandshake(bridge string) (float64, error) {
	dir, err := os.MkdirTemp("", "mmplug-handshake-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	exe := filepath.Join(dir, "server", "dist", "plugin-linux-amd64")
	if err := copyFile(bridge, exe, 0o755); err != nil {
		return 0, err
	}
	if err := os.WriteFile(filepath.Join(dir, "plugin.json"), []byte(`{"id":"com.mmplug.handshake"}`), 0o644); err != nil {
		return 0, err
	}
	var times []float64
	for range 15 {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "MATTERMOST_PLUGIN=Securely message teams, anywhere.", "PLUGIN_PROTOCOL_VERSIONS=1")
		out, err := cmd.StdoutPipe()
		if err != nil {
			return 0, err
		}
		start := time.Now()
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		elapsed := time.Since(start)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if err != nil || !strings.HasPrefix(line, "1|1|unix|") {
			return 0, fmt.Errorf("no handshake line (got %q, %v)", line, err)
		}
		times = append(times, float64(elapsed.Microseconds())/1000)
	}
	sort.Float64s(times)
	return times[len(times)/2], nil
}

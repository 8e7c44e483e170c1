package main

// The -bench mode: bench/plugin-python (through the bridge) beside its native Go twin
// bench/plugin-go, both active in one server under the real supervisor and measured
// interleaved (bench_figures.go), plus the bridge's handshake time on its own. Prints a table
// of Go, mmplug and their ratio per figure and writes bench/results.json; bench/README.md
// describes every figure.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
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
	groups, err := regexp.Compile(o.run) // "" matches every group
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: -run: %v\n", err)
		return 2
	}
	results := benchResults{Machine: machineDescription(), Figures: map[string]benchFigure{}}
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	// runCase wants a bundle for its own (unused) world; the benchmarks build theirs.
	b, err := prepareBundle(bundleOptions{pluginDir: filepath.Join(root, "bench/plugin-go")})
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	defer b.remove()
	res := runCase(b, o, harnessCase{name: "bench_plugins", run: func(t *caseT) { benchPlugins(t, groups, results.Figures) }})
	failures := res.failures
	if groups.MatchString("bridge_echo") {
		res := runCase(b, o, harnessCase{name: "bench_bridge_echo", run: func(t *caseT) { benchBridgeEcho(t, results.Figures) }})
		failures = append(failures, res.failures...)
	}
	if groups.MatchString("python_floor") {
		res := runCase(b, o, harnessCase{name: "bench_python_floor", run: func(t *caseT) { benchPythonFloor(t, results.Figures) }})
		failures = append(failures, res.failures...)
	}
	if groups.MatchString("grpcio_floor") {
		if err := benchGrpcioFloor(o.venv, root, results.Figures); err != nil {
			failures = append(failures, "grpcio floor: "+err.Error())
		}
	}
	if groups.MatchString("handshake") {
		if hs, err := benchHandshake(o.bridge); err != nil {
			failures = append(failures, "handshake: "+err.Error())
		} else {
			results.Figures["handshake_after_exec"] = benchFigure{Unit: "ms", MMPlug: hs, Target: "≤ 50 ms", Met: ptr(hs <= 50)}
		}
	}
	for _, f := range failures {
		fmt.Printf("FAIL %s\n", strings.Join(strings.Fields(f), " "))
	}
	names := make([]string, 0, len(results.Figures))
	for n := range results.Figures {
		names = append(names, n)
	}
	sort.Strings(names)
	fmt.Printf("%-40s %-6s %12s %12s %7s  %s\n", "figure", "unit", "go", "mmplug", "ratio", "target")
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
		fmt.Printf("%-40s %-6s %12s %12.1f %7s  %s%s\n", n, f.Unit, goText, f.MMPlug, ratioText, f.Target, met)
	}
	if o.run != "" {
		fmt.Println("-run measured a part: bench/results.json is left as it was")
	} else {
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

// benchGrpcioFloor runs bench/grpcio_floor.py: the Python side of a hook alone, layer by
// layer (a trivial grpcio echo; the SDK's runtime with a sync handler; with an async one). Each
// p50 is set beside the native hook's p50, so the echo's ratio is the best a grpcio-based
// Python hook could reach here, and the SDK's two show what its dispatch adds.
func benchGrpcioFloor(venv, root string, figures map[string]benchFigure) error {
	out, err := exec.Command(filepath.Join(venv, "bin", "python"), filepath.Join(root, "bench", "grpcio_floor.py")).Output()
	if err != nil {
		return fmt.Errorf("%v (%s)", err, out)
	}
	type layer struct {
		P50      float64 `json:"p50_us"`
		CPU      float64 `json:"server_cpu_us_per_call"`
		Switches float64 `json:"server_context_switches_per_call"`
	}
	var layers map[string]layer
	if err := json.Unmarshal(out, &layers); err != nil {
		return fmt.Errorf("output %q: %v", out, err)
	}
	for _, l := range []struct{ key, figure string }{
		{"echo", "grpcio_echo_floor"},
		{"sdk_sync", "python_sdk_sync_hook"},
		{"sdk_async", "python_sdk_async_hook"},
	} {
		got, ok := layers[l.key]
		if !ok {
			return fmt.Errorf("output %q has no %q", out, l.key)
		}
		f := benchFigure{Unit: "µs", MMPlug: got.P50}
		if hook, ok := figures["hook_round_trip_p50"]; ok && hook.Go != nil {
			f.Go, f.Ratio = hook.Go, ptr(got.P50 / *hook.Go)
		}
		figures[l.figure+"_p50"] = f
		figures[l.figure+"_cpu_per_call"] = benchFigure{Unit: "µs", MMPlug: got.CPU}
		figures[l.figure+"_switches_per_call"] = benchFigure{Unit: "count", MMPlug: got.Switches}
	}
	return nil
}

package main

// The post latency a user sees on the real server (issue 12): POST /api/v4/posts with no
// plugin, with the native Go hello plugin (conformance/hellogo) and with the Python one
// (examples/hello), interleaved round by round so that the machine's drift touches all three
// alike; then the post rate of 16 concurrent posters in the same three configurations
// (rateFigure). `make bench` runs it after the supervisor benchmarks (scripts/e2e/run.sh
// -bench-out) and adds its figures to bench/results.json; bench/README.md says what each
// means. Then the floods of issue 16 (floodFigures), beside the Go twin.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"sync"
	"time"
)

// benchRounds × benchPostsPerRound posts are measured per configuration.
const (
	benchRounds        = 10
	benchPostsPerRound = 100
	benchWarmup        = 20
)

// benchConfig is one of the three configurations posts are measured in, and how to set it up.
type benchConfig struct {
	name string
	set  func() error
}

// benchConfigs: no plugin, the native Go hello plugin, the Python one, in the order round
// `round` measures them: the order turns by one each round, so that what drifts within a
// round (the channel and the posts table grow with every post) favours none of them.
func (e *env) benchConfigs(round int) []benchConfig {
	configs := []benchConfig{
		{"none", func() error { return e.noHelloPlugin() }},
		{"go", func() error { return e.solo(e.hellogo) }},
		{"mmplug", func() error { return e.solo(e.hello) }},
	}
	k := round % len(configs)
	return slices.Concat(configs[k:], configs[:k])
}

// runBench measures and merges the figures into the results file at path.
func runBench(e *env, path string) error {
	samples := map[string][]time.Duration{}
	for round := range benchRounds {
		for _, c := range e.benchConfigs(round) {
			if err := c.set(); err != nil {
				return fmt.Errorf("round %d, %s: %w", round, c.name, err)
			}
			for i := range benchWarmup + benchPostsPerRound {
				message := fmt.Sprintf("bench post %d of round %d", i, round)
				t0 := time.Now()
				r, err := e.w.post(e.w.user1, message, map[string]any{"n": i})
				took := time.Since(t0)
				if err != nil {
					return err
				}
				if r.status != http.StatusCreated {
					return fmt.Errorf("%s: a clean post answered %s", c.name, r)
				}
				if i >= benchWarmup {
					samples[c.name] = append(samples[c.name], took)
				}
			}
		}
		logf("bench: round %d of %d done", round+1, benchRounds)
	}
	figs := postFigures(samples)
	rate, err := e.rateFigure()
	if err != nil {
		return err
	}
	figs["real_server_post_rate_16"] = rate
	floods, err := e.floodFigures()
	if err != nil {
		return err
	}
	for name, f := range floods {
		figs[name] = f
	}
	return mergeFigures(path, figs)
}

// rateRounds × ratePosters × ratePostsEach posts are measured per configuration.
const (
	rateRounds    = 6
	ratePosters   = 16
	ratePostsEach = 40
)

// rateLossTarget is issue 11's bar: 16 concurrent posters lose at most 5% of the rate they
// have with no plugin.
const rateLossTarget = 0.05

// rateFigure: ratePosters users' worth of concurrent clean posts (one client, 16 in flight)
// with no plugin, with the Go hello plugin and with the Python one, rateRounds times each,
// interleaved (in turning order); posts per second over each configuration's rounds.
func (e *env) rateFigure() (figure, error) {
	posts, took := map[string]int{}, map[string]time.Duration{}
	for round := range rateRounds {
		for _, c := range e.benchConfigs(round) {
			if err := c.set(); err != nil {
				return figure{}, fmt.Errorf("rate round %d, %s: %w", round, c.name, err)
			}
			n, d, err := e.concurrentPosts(fmt.Sprintf("rate %s %d", c.name, round))
			if err != nil {
				return figure{}, fmt.Errorf("rate round %d, %s: %w", round, c.name, err)
			}
			posts[c.name] += n
			took[c.name] += d
		}
		logf("bench: rate round %d of %d done", round+1, rateRounds)
	}
	rate := func(name string) float64 { return float64(posts[name]) / took[name].Seconds() }
	none, goRate, py := rate("none"), rate("go"), rate("mmplug")
	met := py >= (1-rateLossTarget)*none
	return figure{
		Unit: "posts/s", None: none, Go: goRate, MMPlug: py,
		Ratio: py / goRate, GoVsNone: goRate / none, MMPlugVsNone: py / none,
		Samples: posts["mmplug"], Target: fmt.Sprintf("≥ %.2f × none", 1-rateLossTarget), Met: &met,
	}, nil
}

// concurrentPosts makes ratePosters × ratePostsEach clean posts, ratePosters in flight; every
// one must be created. It answers how many and how long they took.
func (e *env) concurrentPosts(tag string) (int, time.Duration, error) {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	t0 := time.Now()
	for p := range ratePosters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ratePostsEach {
				r, err := e.w.post(e.w.user1, fmt.Sprintf("%s: poster %d, post %d", tag, p, i), nil)
				if err == nil && r.status != http.StatusCreated {
					err = fmt.Errorf("a clean post answered %s", r)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	return ratePosters * ratePostsEach, time.Since(t0), first
}

// floodRounds floods are measured per shape and plugin, interleaved.
const floodRounds = 3

// floodTarget is the bar for the flood figures: the Go twin's numbers (issue 16), with room
// for the difference of one flood to the next on a busy 2-core machine.
const floodTarget = 1.5

// floodFigures runs issue 16's floods (flood-deep-lists' and flood-flat-numbers' shapes: one
// user keeps 16 heavy banned posts in flight, 32 in all, while another posts a clean message
// every 0.5 s) beside the Go twin and beside the Python plugin, floodRounds times each,
// interleaved. Per shape: the flood's wall time and the bystander's slowest post, each the
// median of the rounds. Every banned post must be rejected by the plugin, as in the cases.
func (e *env) floodFigures() (map[string]figure, error) {
	flat, _ := e.flatNumbersBody()
	shapes := []struct {
		name string
		body []byte
	}{
		{"deep_lists", e.postJSONBody("forbidden flood", floodProps())},
		{"flat_numbers", flat},
	}
	sides := []struct {
		name   string
		plugin *plugin
	}{{"go", e.hellogo}, {"mmplug", e.hello}}
	out := map[string]figure{}
	for _, shape := range shapes {
		took, bystander := map[string][]time.Duration{}, map[string][]time.Duration{}
		for round := range floodRounds {
			for _, side := range sides {
				if err := e.solo(side.plugin); err != nil {
					return nil, err
				}
				r := e.flood([][]byte{shape.body})
				if r.rejected != floodPosts || r.failClosed != 0 || r.bystanderFailed != 0 {
					return nil, fmt.Errorf("flood %s, %s, round %d: %s", shape.name, side.name, round, r)
				}
				took[side.name] = append(took[side.name], r.took)
				bystander[side.name] = append(bystander[side.name], r.bystander)
			}
		}
		logf("bench: flood %s done", shape.name)
		for name, d := range map[string]map[string][]time.Duration{"seconds": took, "bystander_seconds": bystander} {
			g, py := quantile(d["go"], 0.5).Seconds(), quantile(d["mmplug"], 0.5).Seconds()
			met := py <= floodTarget*g
			out["real_server_flood_"+shape.name+"_"+name] = figure{
				Unit: "s", Go: g, MMPlug: py, Ratio: py / g, Samples: floodRounds,
				Target: fmt.Sprintf("≤ %.1f × Go", floodTarget), Met: &met,
			}
		}
	}
	return out, nil
}

// figure is one entry of bench/results.json's "figures", in the harness's shape (go, mmplug,
// ratio = mmplug / go) plus the configuration without a plugin and both ratios to it.
type figure struct {
	Unit         string  `json:"unit"`
	None         float64 `json:"none,omitempty"` // no "none" for a flood: nothing would reject
	Go           float64 `json:"go"`
	MMPlug       float64 `json:"mmplug"`
	Ratio        float64 `json:"ratio"`
	GoVsNone     float64 `json:"go_vs_none,omitempty"`
	MMPlugVsNone float64 `json:"mmplug_vs_none,omitempty"`
	Samples      int     `json:"samples"`
	// For figures with a bar, as the harness's figures have.
	Target string `json:"target,omitempty"`
	Met    *bool  `json:"met,omitempty"`
}

// addedTarget is issue 11's bar for the time the Python hook adds to a post: at most 1.5 × what
// the Go hook adds (the p50s with the plugin minus the p50 with none).
const addedTarget = 1.5

func postFigures(samples map[string][]time.Duration) map[string]figure {
	out := map[string]figure{}
	{
		ms := func(config string) float64 { return quantile(samples[config], 0.5).Seconds() * 1000 }
		none := ms("none")
		goAdded, pyAdded := ms("go")-none, ms("mmplug")-none
		met := pyAdded <= addedTarget*goAdded
		out["real_server_post_added_p50"] = figure{
			Unit: "ms", Go: goAdded, MMPlug: pyAdded, Ratio: pyAdded / goAdded,
			Samples: len(samples["mmplug"]), Target: fmt.Sprintf("≤ %.1f × Go", addedTarget), Met: &met,
		}
	}
	for _, q := range []struct {
		name string
		p    float64
	}{{"real_server_post_p50", 0.50}, {"real_server_post_p99", 0.99}} {
		ms := func(config string) float64 { return quantile(samples[config], q.p).Seconds() * 1000 }
		none, goMS, py := ms("none"), ms("go"), ms("mmplug")
		out[q.name] = figure{
			Unit: "ms", None: none, Go: goMS, MMPlug: py,
			Ratio: py / goMS, GoVsNone: goMS / none, MMPlugVsNone: py / none,
			Samples: len(samples["mmplug"]),
		}
	}
	return out
}

// quantile is the q-th quantile of ds (nearest rank).
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// benchResults is bench/results.json as the harness's bench writes it; figures are kept as
// written (json.RawMessage), so merging ours changes no byte of theirs.
type benchResults struct {
	Machine json.RawMessage            `json:"machine,omitempty"`
	Figures map[string]json.RawMessage `json:"figures"`
}

// mergeFigures adds figs to the "figures" of the JSON file at path (the harness's bench writes
// the rest of it), replacing earlier values of the same names and keeping everything else.
func mergeFigures(path string, figs map[string]figure) error {
	var doc benchResults
	if raw, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(raw, &doc); err != nil {
			return fmt.Errorf("%s is not JSON: %w", path, err)
		}
	}
	if doc.Figures == nil {
		doc.Figures = map[string]json.RawMessage{}
	}
	names := make([]string, 0, len(figs))
	for name, f := range figs {
		raw, err := json.Marshal(f)
		if err != nil {
			return err
		}
		doc.Figures[name] = raw
		names = append(names, name)
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		f := figs[name]
		if f.None != 0 && f.Target != "" {
			fmt.Printf("%-48s none %7.1f %s   go %7.1f (%.2f× none)   mmplug %7.1f (%.2f× none; target %s, met %v)\n",
				name, f.None, f.Unit, f.Go, f.GoVsNone, f.MMPlug, f.MMPlugVsNone, f.Target, *f.Met)
			continue
		}
		if f.Target != "" {
			fmt.Printf("%-48s go %7.2f %s   mmplug %7.2f %s (%.2f× go; target %s, met %v)\n",
				name, f.Go, f.Unit, f.MMPlug, f.Unit, f.Ratio, f.Target, *f.Met)
			continue
		}
		fmt.Printf("%-24s none %7.2f ms   go %7.2f ms (%.2f× none)   mmplug %7.2f ms (%.2f× none, %.2f× go)\n",
			name, f.None, f.Go, f.GoVsNone, f.MMPlug, f.MMPlugVsNone, f.Ratio)
	}
	return os.WriteFile(path, append(out, '\n'), 0o644)
}

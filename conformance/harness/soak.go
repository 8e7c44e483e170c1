package main

// The -soak mode: examples/hello under the real supervisor takes N mixed calls from a few
// goroutines at once (MessageWillBePosted that modifies and that rejects, ServeHTTP /echo,
// /kv/ set then get, which make API calls from Python, and ExecuteCommand /hello, which makes an
// async API call), every answer checked, while the resident memory and open descriptors of
// the bridge and of its Python child are sampled. The run fails if any answer is wrong or
// missing, if either process restarts, if an error is logged, or if memory or descriptors are
// not flat (soakVerdict says exactly what flat means).
//
//	go run ./conformance/harness -soak 50000 -plugin examples/hello -bridge target/debug/mmplug-bridge
//	make soak                      # 1,000,000 calls with the release bridge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const (
	// soakWorkers calls run at once: enough that hooks overlap in the bridge and in Python's
	// worker threads (hello's handlers are sync, so they run in its thread pool) and that API
	// calls from Python interleave with hooks on the server's one yamux session.
	soakWorkers = 4
	// soakSamples is how many measurements are taken after the warm-up, evenly spaced by calls.
	soakSamples = 40
	// soakMinCalls keeps the run long enough for a warm-up and a last quarter of several
	// samples each.
	soakMinCalls = 4000

	// The bounds of "flat", for growth from the first sample after the warm-up to the largest
	// sample of the last quarter of the run (see soakVerdict). Between those two points lie at
	// least 67.5% of the calls: 675,000 in the 1,000,000-call run, 33,750 in the 50,000 one.
	//
	// The bridge holds nothing per call once the call is answered, so any growth is either
	// allocator noise (tokio's task and buffer pools, the allocator's arenas settling) or a
	// leak; measured, it does not move by a single KiB. 4 MiB fails a leak of 7 bytes per call
	// in the long run and of 125 bytes per call in the short one.
	soakBridgeGrowthKiB = 4 * 1024
	// Python's heap is noisier: pymalloc returns an arena to the OS only when it is entirely
	// free, and each of the executor's worker threads has its own glibc arena whose high-water
	// mark rises in steps as request sizes vary (about 1 MiB over the short run, measured).
	// 16 MiB absorbs that and still fails a leak of 25 bytes per call in the long run (one
	// leaked small Python object is about 50) and of 500 bytes per call in the short one.
	soakPythonGrowthKiB = 16 * 1024
	// Descriptors do not drift: both processes keep their sockets for the life of the plugin
	// and per-call streams live inside the one yamux session and the HTTP/2 connections. One
	// extra descriptor is allowed for a transient one (a pipe or eventfd opened by a runtime
	// at the moment of sampling); a leak of one per N calls blows through it at once.
	soakFDGrowth = 1
)

// soakSample is one measurement of both plugin processes.
type soakSample struct {
	calls     int64
	bridgeRSS int64 // KiB
	pythonRSS int64 // KiB
	bridgeFDs int
	pythonFDs int
}

// runSoak runs the soak as a case of its own (a fresh world, the usual teardown checks) and
// prints its verdict and summary line.
func runSoak(b *bundle, o options) int {
	if o.bridge == "" {
		fmt.Fprintln(os.Stderr, "harness: -soak needs -bridge (the plugin is examples/hello through the bridge)")
		return 2
	}
	if b.manifest.Id != "com.mmplug.hello" {
		fmt.Fprintf(os.Stderr, "harness: -soak drives examples/hello's hooks and routes; -plugin is %s\n", b.manifest.Id)
		return 2
	}
	if o.soak < soakMinCalls {
		fmt.Fprintf(os.Stderr, "harness: -soak %d is too short to judge flatness; give at least %d calls\n", o.soak, soakMinCalls)
		return 2
	}
	// A hang guard, not a speed bound: ten minutes plus 5 ms per call is several times what
	// the slowest build (a debug bridge on a loaded machine) takes.
	if guard := 10*time.Minute + time.Duration(o.soak)*5*time.Millisecond; o.caseTimeout < guard {
		o.caseTimeout = guard
	}
	var summary string
	res := runCase(b, o, harnessCase{name: "soak", run: func(t *caseT) { summary = soak(t, int64(o.soak)) }})
	if summary != "" {
		fmt.Println(summary)
	}
	if len(res.failures) > 0 {
		fmt.Printf("FAIL soak: %s\n", strings.Join(strings.Fields(strings.Join(res.failures, "; ")), " "))
		return 1
	}
	fmt.Printf("ok   soak %d calls (%s)\n", o.soak, res.elapsed.Round(time.Second))
	return 0
}

// soakProcesses finds the bridge (the harness's one child) and its Python child.
func soakProcesses() (bridge, python proc, err error) {
	var direct []proc
	for _, p := range pluginProcesses() {
		if p.PPID == os.Getpid() {
			direct = append(direct, p)
		}
	}
	if len(direct) != 1 {
		return proc{}, proc{}, fmt.Errorf("expected the bridge as the one plugin process below the harness, found %v", direct)
	}
	var children []proc
	for _, p := range descendants(direct[0].PID) {
		if p.PPID == direct[0].PID {
			children = append(children, p)
		}
	}
	if len(children) != 1 {
		return proc{}, proc{}, fmt.Errorf("expected one Python child of the bridge, found %v", children)
	}
	return direct[0], children[0], nil
}

func fdsOf(pid int) int {
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(entries)
}

// soakPayload is a deterministic body of size bytes for call i (every byte value occurs).
func soakPayload(i int64, size int) []byte {
	out := make([]byte, size)
	x := uint32(i)*2654435761 + 1
	for k := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[k] = byte(x)
	}
	return out
}

// soakCall makes call i of worker w and returns what was wrong with its answer ("" if right).
// Each worker walks the same cycle of kinds, so its /kv/ get follows its own set of that key.
type soakCaller struct {
	t       *caseT
	hooks   plugin.Hooks
	version string
}

func (s *soakCaller) http(method, path string, body []byte) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, "http://mattermost.test"+path, bytes.NewReader(body))
	r.Header.Set("Mattermost-User-Id", harnessUserID)
	w := httptest.NewRecorder()
	s.hooks.ServeHTTP(s.t.pluginContext(), w, r)
	return w
}

// step is the worker's own call counter; it picks the kind of call.
func (s *soakCaller) call(w int, step int64) (calls int64, problem string) {
	ctx := s.t.pluginContext()
	switch step % 5 {
	case 0: // MessageWillBePosted that modifies: the props come back with checked_by added.
		msg := fmt.Sprintf("soak post %d/%d", w, step)
		post := &model.Post{Id: model.NewId(), ChannelId: harnessChannelID, UserId: harnessUserID, Message: msg}
		post.AddProp("seq", step)
		got, reason := s.hooks.MessageWillBePosted(ctx, post)
		if got == nil || reason != "" {
			return 1, fmt.Sprintf("MessageWillBePosted %q: post %v, reason %q (the post would be lost)", msg, got, reason)
		}
		if got.Message != msg || got.GetProp("checked_by") != "hello" || got.GetProp("seq") != step {
			return 1, fmt.Sprintf("MessageWillBePosted %q came back as %q with props %v", msg, got.Message, got.GetProps())
		}
	case 1: // MessageWillBePosted that rejects: the reason is what the server acts on (the
		// supervisor's client hands back the original post alongside it).
		got, reason := s.hooks.MessageWillBePosted(ctx, &model.Post{Id: model.NewId(), ChannelId: harnessChannelID, UserId: harnessUserID, Message: fmt.Sprintf("forbidden %d", step)})
		if reason != "not allowed here" || got != nil && got.GetProp("checked_by") != nil {
			return 1, fmt.Sprintf("a forbidden post got reason %q (post %v)", reason, got)
		}
	case 2: // ServeHTTP /echo with a body of 1 B to 8 KiB.
		body := soakPayload(step*soakWorkers+int64(w), 1+int(step*7919%8192))
		resp := s.http(http.MethodPost, "/echo", body)
		sum := sha256.Sum256(body)
		if resp.Code != http.StatusOK || !bytes.Equal(resp.Body.Bytes(), body) || resp.Header().Get("X-Sha256") != hex.EncodeToString(sum[:]) {
			return 1, fmt.Sprintf("POST /echo (%d bytes): status %d, %d bytes back, X-Sha256 %q", len(body), resp.Code, resp.Body.Len(), resp.Header().Get("X-Sha256"))
		}
	case 3: // /kv/ set then get (KVSet and KVGet from Python): two calls.
		key := fmt.Sprintf("soak-%d-%d", w, step/5%16)
		value := []byte("value " + strconv.FormatInt(step, 10))
		if resp := s.http(http.MethodPost, "/kv/"+key, value); resp.Code != http.StatusNoContent {
			return 1, fmt.Sprintf("POST /kv/%s: status %d (%q)", key, resp.Code, clip(resp.Body.String()))
		}
		resp := s.http(http.MethodGet, "/kv/"+key, nil)
		if resp.Code != http.StatusOK || !bytes.Equal(resp.Body.Bytes(), value) {
			return 2, fmt.Sprintf("GET /kv/%s after setting %q: status %d body %q", key, value, resp.Code, clip(resp.Body.String()))
		}
		return 2, ""
	case 4: // ExecuteCommand /hello, which asks the server's version from Python.
		resp, appErr := s.hooks.ExecuteCommand(ctx, &model.CommandArgs{Command: "/hello", UserId: harnessUserID, ChannelId: harnessChannelID, TeamId: harnessTeamID})
		if appErr != nil || resp == nil || resp.Text != "Hello from "+s.version {
			return 1, fmt.Sprintf("/hello: response %+v, error %v", resp, appErr)
		}
	}
	return 1, ""
}

func soak(t *caseT, n int64) string {
	t.activate()
	bridge, python, err := soakProcesses()
	if err != nil {
		t.fatalf("%v", err)
	}
	hooks, err := t.env.HooksForPlugin(t.id)
	if err != nil {
		t.fatalf("no hooks for the plugin: %v", err)
	}
	caller := &soakCaller{t: t, hooks: hooks, version: t.opts.serverVersion}

	// The first tenth warms up: thread pools fill, buffers and caches reach their working
	// size. Then a sample every 1/soakSamples of the rest, taken by the worker whose call
	// crossed the mark (the others keep calling meanwhile).
	warmup := n / 10
	every := (n - warmup) / soakSamples
	var (
		done     atomic.Int64
		mu       sync.Mutex
		samples  []soakSample
		problems atomic.Int64
		restart  atomic.Bool
	)
	nextMark := warmup
	sample := func(calls int64) {
		if !bridge.alive() || !python.alive() {
			restart.Store(true)
			return
		}
		s := soakSample{calls: calls, bridgeRSS: rssKiB(bridge.PID), pythonRSS: rssKiB(python.PID), bridgeFDs: fdsOf(bridge.PID), pythonFDs: fdsOf(python.PID)}
		mu.Lock()
		samples = append(samples, s)
		mu.Unlock()
	}
	var marks sync.Mutex
	crossed := func(total int64) {
		marks.Lock()
		defer marks.Unlock()
		if total >= nextMark && nextMark <= n {
			sample(total)
			for nextMark <= total {
				nextMark += every
			}
		}
	}

	start := time.Now()
	var wg sync.WaitGroup
	for w := range soakWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := int64(0); ; step++ {
				if done.Load() >= n || restart.Load() {
					return
				}
				calls, problem := caller.call(w, step)
				if problem != "" {
					if problems.Add(1) <= 10 {
						t.errorf("call %d: %s", done.Load(), problem)
					}
				}
				crossed(done.Add(calls))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := done.Load()

	if restart.Load() {
		t.errorf("the bridge or its Python process was replaced during the soak (was %v and %v)", bridge, python)
	}
	if p := problems.Load(); p > 10 {
		t.errorf("%d calls in all had a wrong or missing answer", p)
	}
	// Nothing in these calls is an error: a plugin-side error line means something failed
	// quietly (a hook answered "unchanged" after a failure would still pass the checks above).
	_ = t.logger.Flush()
	for _, l := range t.rec.logLines() {
		if strings.EqualFold(l.Level, "error") {
			t.errorf("error logged during the soak: %s", l)
			break
		}
	}
	verdict := soakVerdict(samples, warmup, n)
	for _, v := range verdict.failures {
		t.errorf("%s", v)
	}
	return soakSummary(total, elapsed, samples, verdict)
}

type soakJudgement struct {
	bridgeGrowthKiB, pythonGrowthKiB int64
	bridgeFDGrowth, pythonFDGrowth   int
	failures                         []string
}

// soakVerdict decides flatness. The baseline is the first sample after the warm-up; the
// judged value is the largest sample of the last quarter of the measured calls (the largest,
// so a leak cannot hide behind one sample taken just after a release). Flat means:
//
//	bridge RSS growth  <= soakBridgeGrowthKiB
//	Python RSS growth  <= soakPythonGrowthKiB
//	descriptor growth  <= soakFDGrowth, for each process
func soakVerdict(samples []soakSample, warmup, n int64) soakJudgement {
	var j soakJudgement
	if len(samples) < 8 {
		j.failures = append(j.failures, fmt.Sprintf("only %d samples were taken; flatness cannot be judged", len(samples)))
		return j
	}
	base := samples[0]
	lastQuarter := warmup + (n-warmup)*3/4
	var peak soakSample
	for _, s := range samples {
		if s.calls < lastQuarter {
			continue
		}
		peak.bridgeRSS = max(peak.bridgeRSS, s.bridgeRSS)
		peak.pythonRSS = max(peak.pythonRSS, s.pythonRSS)
		peak.bridgeFDs = max(peak.bridgeFDs, s.bridgeFDs)
		peak.pythonFDs = max(peak.pythonFDs, s.pythonFDs)
	}
	j.bridgeGrowthKiB = peak.bridgeRSS - base.bridgeRSS
	j.pythonGrowthKiB = peak.pythonRSS - base.pythonRSS
	j.bridgeFDGrowth = peak.bridgeFDs - base.bridgeFDs
	j.pythonFDGrowth = peak.pythonFDs - base.pythonFDs
	if j.bridgeGrowthKiB > soakBridgeGrowthKiB {
		j.failures = append(j.failures, fmt.Sprintf("the bridge's RSS grew by %d KiB (bound %d KiB)", j.bridgeGrowthKiB, soakBridgeGrowthKiB))
	}
	if j.pythonGrowthKiB > soakPythonGrowthKiB {
		j.failures = append(j.failures, fmt.Sprintf("Python's RSS grew by %d KiB (bound %d KiB)", j.pythonGrowthKiB, soakPythonGrowthKiB))
	}
	if j.bridgeFDGrowth > soakFDGrowth {
		j.failures = append(j.failures, fmt.Sprintf("the bridge holds %d more descriptors (bound %d)", j.bridgeFDGrowth, soakFDGrowth))
	}
	if j.pythonFDGrowth > soakFDGrowth {
		j.failures = append(j.failures, fmt.Sprintf("Python holds %d more descriptors (bound %d)", j.pythonFDGrowth, soakFDGrowth))
	}
	return j
}

// soakSummary is one line: the run, the growth judged, then every sample per series
// (RSS in MiB with one decimal, descriptors as counts).
func soakSummary(total int64, elapsed time.Duration, samples []soakSample, j soakJudgement) string {
	series := func(f func(soakSample) string) string {
		parts := make([]string, len(samples))
		for i, s := range samples {
			parts[i] = f(s)
		}
		return strings.Join(parts, " ")
	}
	mib := func(kib int64) string { return strconv.FormatFloat(float64(kib)/1024, 'f', 1, 64) }
	rate := float64(total) / elapsed.Seconds()
	return fmt.Sprintf("soak: %d calls by %d workers in %s (%.0f/s); growth bridge %+d KiB, python %+d KiB, fds %+d/%+d; "+
		"samples every %d calls after warm-up: bridge_rss_mib=[%s] python_rss_mib=[%s] bridge_fds=[%s] python_fds=[%s]",
		total, soakWorkers, elapsed.Round(time.Second), rate, j.bridgeGrowthKiB, j.pythonGrowthKiB, j.bridgeFDGrowth, j.pythonFDGrowth,
		sampleSpacing(samples),
		series(func(s soakSample) string { return mib(s.bridgeRSS) }),
		series(func(s soakSample) string { return mib(s.pythonRSS) }),
		series(func(s soakSample) string { return strconv.Itoa(s.bridgeFDs) }),
		series(func(s soakSample) string { return strconv.Itoa(s.pythonFDs) }))
}

func sampleSpacing(samples []soakSample) int64 {
	if len(samples) < 2 {
		return 0
	}
	return (samples[len(samples)-1].calls - samples[0].calls) / int64(len(samples)-1)
}

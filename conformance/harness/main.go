// Command harness is mmplug's conformance judge: it runs a plugin bundle under Mattermost's own
// plugin Environment and supervisor (the code the server runs, imported from the pinned
// server/public module) against an in-memory plugin.API, and checks named cases.
//
//	go run ./conformance/harness -plugin conformance/hellogo
//	go run ./conformance/harness -plugin examples/hello -bridge target/debug/mmplug-bridge
//	go run ./conformance/harness -plugin conformance/hellogo -demo
//	go run ./conformance/harness -fidelity -plugin conformance/harness/testdata/fidelity -bridge target/debug/mmplug-bridge
//	go run ./conformance/harness -soak 50000 -plugin examples/hello -bridge target/debug/mmplug-bridge
//	go run ./conformance/harness -upstream -bundle dist/com.mmplug.upstream.hello-0.1.0.tar.gz
//
// Output is one line per case (`ok   NAME  (12ms)` or `FAIL NAME: reason`), then
// `N passed, N failed`; the exit status is non-zero when any case fails.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

type options struct {
	bench         bool
	plugin        string
	bundle        string
	bridge        string
	venv          string
	run           string
	skip          string
	verbose       bool
	demo          bool
	smoke         bool
	dev           bool
	port          int
	fidelity      bool
	upstream      bool
	soak          int
	caseTimeout   time.Duration
	serverVersion string
	python        string
}

// checkBundleEnvs reads the environments the bridge set up from an offline bundle's wheels
// (wheelenv.py writes {"python": [3, 10, 13], "wheels": [...]} into each) and returns what is
// wrong with them, if anything, and the Python versions they were made for. want ("3.10", or
// "" for any) is the version every one of them must be for.
func checkBundleEnvs(envs []string, want string) (string, []string) {
	if len(envs) == 0 {
		return "the bridge did not set up Python from the bundle's wheels (no .mmplug/envs/*/mmplug-env.json)", nil
	}
	var pythons []string
	for _, path := range envs {
		raw, err := os.ReadFile(path)
		if err != nil {
			return err.Error(), nil
		}
		var env struct {
			Python []int `json:"python"`
		}
		if err := json.Unmarshal(raw, &env); err != nil || len(env.Python) < 2 {
			return fmt.Sprintf("%s: no Python version in %q (%v)", path, raw, err), nil
		}
		full := fmt.Sprintf("%d.%d", env.Python[0], env.Python[1])
		if len(env.Python) > 2 {
			full += fmt.Sprintf(".%d", env.Python[2])
		}
		if want != "" && fmt.Sprintf("%d.%d", env.Python[0], env.Python[1]) != want {
			return fmt.Sprintf("the bridge set up the wheels for Python %s, not %s (-python)", full, want), nil
		}
		pythons = append(pythons, full)
	}
	return "", pythons
}

func main() {
	var o options
	flag.StringVar(&o.plugin, "plugin", "", "plugin directory (plugin.json at its top), e.g. examples/hello or conformance/hellogo")
	flag.StringVar(&o.bundle, "bundle", "", "a plugin bundle (.tar.gz, e.g. from `mmplug bundle`) installed as the server would, instead of -plugin; its own server executable and Python packages are used")
	flag.StringVar(&o.bridge, "bridge", "", "bridge binary to install as the plugin's server executable (Python plugins)")
	flag.StringVar(&o.venv, "venv", "", "Python environment linked as the bundle's venv (default: <repo root>/.venv; only with -bridge)")
	flag.StringVar(&o.run, "run", "", "run only cases whose name matches this regular expression")
	flag.StringVar(&o.skip, "skip", "", "leave out cases whose name matches this regular expression")
	flag.BoolVar(&o.verbose, "v", false, "print the plugin's log lines under each case")
	flag.BoolVar(&o.demo, "demo", false, "print a readable transcript of the plugin at work instead of running the cases")
	flag.BoolVar(&o.smoke, "smoke", false, "check what holds for any plugin (activation with its settings' defaults, its slash commands, a post, deactivation with nothing left running) instead of the hello cases")
	flag.BoolVar(&o.dev, "dev", false, "mmplug dev: run -plugin under the supervisor, reload it when a file changes, print hooks, API calls and logs as they happen, serve its HTTP routes on -port")
	flag.IntVar(&o.port, "port", 8065, "the local port -dev serves on (127.0.0.1)")
	flag.BoolVar(&o.bench, "bench", false, "measure bench/plugin-python beside its native Go twin bench/plugin-go (hooks, API calls, HTTP, memory, activation; see bench/README.md); writes bench/results.json (use a release bridge)")
	flag.BoolVar(&o.fidelity, "fidelity", false, "run the generated fidelity cases (every API method and hook, field by field) instead of the named cases; use with -plugin conformance/harness/testdata/fidelity")
	flag.BoolVar(&o.upstream, "upstream", false, "run the cases of a plugin of conformance/upstream (written for Mattermost's own Python SDK; chosen by its manifest id) instead of the hello cases; use with -bundle from `mmplug bundle` (docs/upstream.md)")
	flag.IntVar(&o.soak, "soak", 0, "instead of the cases, make this many mixed calls (hooks, HTTP, API calls from Python) through the supervisor to examples/hello and fail unless the bridge's and Python's memory and descriptors stay flat (soak.go); use with -plugin examples/hello")
	flag.DurationVar(&o.caseTimeout, "case-timeout", 2*time.Minute, "a case still running after this long fails (a hang becomes a failure)")
	flag.StringVar(&o.serverVersion, "server-version", "10.11.2", "what GetServerVersion answers")
	flag.StringVar(&o.python, "python", "", "with -bundle: the Python version (X.Y) the bridge must have set up the plugin's wheels for; the check bundle_python_from_its_wheels fails on another (the bridge takes the newest python3.X on PATH the bundle has wheels for)")
	flag.Parse()
	os.Exit(run(o))
}

func run(o options) int {
	if o.bench {
		if o.venv == "" {
			root, err := repoRoot()
			if err != nil {
				fmt.Fprintf(os.Stderr, "harness: default -venv: %v\n", err)
				return 2
			}
			o.venv = filepath.Join(root, ".venv")
		}
		quiet, err := mlog.NewLogger()
		if err != nil {
			fmt.Fprintf(os.Stderr, "harness: %v\n", err)
			return 2
		}
		mlog.InitGlobalLogger(quiet)
		log.SetFlags(0)
		log.SetOutput(stdLogSink)
		return runBench(o)
	}
	if (o.plugin == "") == (o.bundle == "") {
		fmt.Fprintln(os.Stderr, "harness: give one of -plugin DIR and -bundle FILE.tar.gz")
		flag.Usage()
		return 2
	}
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "harness: unexpected arguments %q\n", flag.Args())
		return 2
	}
	var filter *regexp.Regexp
	if o.run != "" {
		var err error
		if filter, err = regexp.Compile(o.run); err != nil {
			fmt.Fprintf(os.Stderr, "harness: -run: %v\n", err)
			return 2
		}
	}
	var skip *regexp.Regexp
	if o.skip != "" {
		var err error
		if skip, err = regexp.Compile(o.skip); err != nil {
			fmt.Fprintf(os.Stderr, "harness: -skip: %v\n", err)
			return 2
		}
	}
	if o.bridge != "" && o.venv == "" {
		root, err := repoRoot()
		if err != nil {
			fmt.Fprintf(os.Stderr, "harness: default -venv: %v\n", err)
			return 2
		}
		o.venv = filepath.Join(root, ".venv")
	}

	// The Environment logs some lines through mlog's global logger; without one they would go
	// to stdout in the middle of the report. A logger without targets drops them.
	quiet, err := mlog.NewLogger()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	mlog.InitGlobalLogger(quiet)
	// go-plugin and yamux on the server side report transport trouble through the standard
	// library logger; route it into the running case's log instead of the report's stdout/stderr.
	log.SetFlags(0)
	log.SetOutput(stdLogSink)

	if o.dev {
		if o.plugin == "" || o.bridge == "" {
			fmt.Fprintln(os.Stderr, "harness: -dev needs -plugin DIR and -bridge PATH")
			return 2
		}
		return runDev(o)
	}

	var b *bundle
	if o.bundle != "" {
		b, err = installArchive(o.bundle)
	} else {
		b, err = prepareBundle(bundleOptions{pluginDir: o.plugin, bridge: o.bridge, venv: o.venv})
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	defer b.remove()

	if o.fidelity {
		return runFidelity(b, o)
	}

	if o.upstream {
		return runUpstream(b, o)
	}

	if o.soak > 0 {
		return runSoak(b, o)
	}

	if o.smoke {
		if err := runSmoke(os.Stdout, b, o); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL smoke: %v\n", err)
			return 1
		}
		if o.bundle != "" && o.python != "" {
			envs, _ := filepath.Glob(filepath.Join(b.dir, ".mmplug", "envs", "*", "mmplug-env.json"))
			if problem, _ := checkBundleEnvs(envs, o.python); problem != "" {
				fmt.Fprintf(os.Stderr, "FAIL smoke: %s\n", problem)
				return 1
			}
		}
		return 0
	}

	if o.demo {
		if err := runDemo(os.Stdout, b, o); err != nil {
			fmt.Fprintf(os.Stderr, "demo failed: %v\n", err)
			return 1
		}
		return 0
	}

	cases := allCases()
	if own := exampleCases(b.manifest.Id); own != nil {
		cases = own // an example with a behaviour of its own (cases_oauth.go)
	}
	passed, failed := 0, 0
	for _, c := range cases {
		if filter != nil && !filter.MatchString(c.name) || skip != nil && skip.MatchString(c.name) {
			continue
		}
		// Without -bridge these are left out: they install test plugins of their own, which
		// need the bridge binary (also with -bundle, whose bundle brings only its own).
		if o.bridge == "" && bridgeOnlyCases[c.name] {
			continue
		}
		res := runCase(b, o, c)
		if len(res.failures) == 0 {
			passed++
			fmt.Printf("ok   %-36s (%s)\n", c.name, res.elapsed.Round(time.Millisecond))
		} else {
			failed++
			// One line per case: multi-line reasons (go-plugin's start errors) are flattened.
			fmt.Printf("FAIL %s: %s\n", c.name, strings.Join(strings.Fields(strings.Join(res.failures, "; ")), " "))
		}
		if o.verbose {
			for _, l := range res.logs {
				if l.pluginLine() {
					fmt.Printf("     %s\n", l)
				}
			}
		}
	}
	if o.bundle != "" && passed > 0 {
		// The point of an offline bundle: Python ran on the bundle's own wheels.
		envs, _ := filepath.Glob(filepath.Join(b.dir, ".mmplug", "envs", "*", "mmplug-env.json"))
		if problem, pythons := checkBundleEnvs(envs, o.python); problem != "" {
			failed++
			fmt.Printf("FAIL bundle_python_from_its_wheels: %s\n", problem)
		} else {
			passed++
			fmt.Printf("ok   %-36s (Python %s, %s)\n", "bundle_python_from_its_wheels", strings.Join(pythons, ", "), strings.TrimPrefix(filepath.Dir(envs[0]), b.dir+"/"))
		}
	}
	if passed+failed == 0 {
		fmt.Fprintf(os.Stderr, "harness: no case matches -run %q\n", o.run)
	}
	fmt.Printf("%d passed, %d failed\n", passed, failed)
	if failed > 0 || passed == 0 {
		return 1
	}
	return 0
}

// ---- one case's world: a fresh in-memory server and Environment over the installed bundle ----

type harnessCase struct {
	name string
	run  func(t *caseT)
}

type caseResult struct {
	failures []string
	logs     []logLine
	elapsed  time.Duration
}

// caseT is what a case body uses: the environment, the in-memory server, and failure helpers.
type caseT struct {
	b       *bundle
	id      string
	api     *memAPI
	env     *plugin.Environment
	rec     *recorder
	logger  *mlog.Logger
	opts    options
	timeout time.Duration
	// cleanups run after the case body, last first (t.setenv).
	cleanups []func()
}

// waitLog waits (within a generous bound) for a log line: lines a plugin writes to stderr reach
// the server log asynchronously, after the hook that wrote them has returned.
func (t *caseT) waitLog(level, text string) bool {
	return t.waitFor(func() bool { return t.rec.hasLog(level, text) })
}

// waitFor polls cond, flushing the server log first each time, for up to 10 s.
func (t *caseT) waitFor(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for {
		_ = t.logger.Flush()
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// errFatal unwinds a case body after fatalf; runCase recovers it.
var errFatal = errors.New("case stopped")

func (t *caseT) errorf(format string, args ...any) {
	t.rec.fail(format, args...)
}

func (t *caseT) fatalf(format string, args ...any) {
	t.rec.fail(format, args...)
	panic(errFatal)
}

// world builds a fresh server and Environment; shutting it down is the caller's job.
func newWorld(b *bundle, o options, rec *recorder, logger *mlog.Logger) (*memAPI, *plugin.Environment, error) {
	api := newMemAPI(rec, o.serverVersion, b.dir)
	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, b.pluginsDir, b.webappDir, logger, nil)
	if err != nil {
		return nil, nil, err
	}
	api.env = env
	return api, env, nil
}

func runCase(b *bundle, o options, c harnessCase) caseResult {
	rec := newRecorder()
	stdLogSink.set(rec)
	defer stdLogSink.set(nil)
	logger, sink, err := newCaptureLogger(rec)
	if err != nil {
		return caseResult{failures: []string{"creating the server logger: " + err.Error()}}
	}
	api, env, err := newWorld(b, o, rec, logger)
	if err != nil {
		return caseResult{failures: []string{"creating the environment: " + err.Error()}}
	}
	t := &caseT{b: b, id: b.manifest.Id, api: api, env: env, rec: rec, logger: logger, opts: o, timeout: o.caseTimeout}

	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil && r != errFatal {
				rec.fail("case panicked: %v", r)
			}
		}()
		defer func() {
			for i := len(t.cleanups) - 1; i >= 0; i-- {
				t.cleanups[i]()
			}
		}()
		c.run(t)
	}()
	select {
	case <-done:
	case <-time.After(o.caseTimeout):
		rec.fail("did not finish within %s (hang)", o.caseTimeout)
	}
	elapsed := time.Since(start)

	teardown(env, rec)
	_ = logger.Flush()
	_ = logger.Shutdown()
	sink.close()
	return caseResult{failures: rec.failureList(), logs: rec.logLines(), elapsed: elapsed}
}

// teardown shuts the Environment down like a stopping server and checks that every process the
// plugin had (including a bridge's Python child, which is not our direct child) is gone.
func teardown(env *plugin.Environment, rec *recorder) {
	before := pluginProcesses()
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				rec.fail("Environment.Shutdown panicked: %v", r)
			}
		}()
		env.Shutdown()
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		rec.fail("Environment.Shutdown did not return within 30s")
	}
	if survivors := waitGone(before, 10*time.Second); len(survivors) > 0 {
		rec.fail("plugin processes left running after shutdown: %v", survivors)
		killAll(survivors)
	}
	// Anything still below us was started by this case and must not leak into the next one.
	if rest := pluginProcesses(); len(rest) > 0 {
		killAll(rest)
		waitGone(rest, 5*time.Second)
	}
}

// ---- capturing the server's log (the supervisor's lines, including the plugin's stderr) ----

type lineSink struct {
	rec  *recorder
	mu   sync.Mutex
	buf  []byte
	done bool
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return len(p), nil
	}
	s.buf = append(s.buf, p...)
	for {
		i := strings.IndexByte(string(s.buf), '\n')
		if i < 0 {
			break
		}
		s.line(s.buf[:i])
		s.buf = s.buf[i+1:]
	}
	return len(p), nil
}

func (s *lineSink) line(raw []byte) {
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		s.rec.serverLog("?", string(raw), nil)
		return
	}
	level, _ := rec["level"].(string)
	msg, _ := rec["msg"].(string)
	for _, k := range []string{"level", "msg", "timestamp", "caller"} {
		delete(rec, k)
	}
	s.rec.serverLog(level, msg, rec)
}

func (s *lineSink) close() {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

func newCaptureLogger(rec *recorder) (*mlog.Logger, *lineSink, error) {
	logger, err := mlog.NewLogger()
	if err != nil {
		return nil, nil, err
	}
	sink := &lineSink{rec: rec}
	if err := mlog.AddWriterTarget(logger, sink, true, mlog.StdAll...); err != nil {
		return nil, nil, err
	}
	return logger, sink, nil
}

var _ io.Writer = (*lineSink)(nil)

// stdLogRouter sends standard-library log output to the running case's recorder.
type stdLogRouter struct {
	mu  sync.Mutex
	rec *recorder
}

var stdLogSink = &stdLogRouter{}

func (s *stdLogRouter) set(rec *recorder) {
	s.mu.Lock()
	s.rec = rec
	s.mu.Unlock()
}

func (s *stdLogRouter) Write(p []byte) (int, error) {
	s.mu.Lock()
	rec := s.rec
	s.mu.Unlock()
	if rec != nil {
		rec.serverLog("stdlog", strings.TrimRight(string(p), "\n"), nil)
	}
	return len(p), nil
}

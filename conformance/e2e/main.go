// Command e2e is the real-server test (`make e2e`): a private PostgreSQL cluster and a real
// Mattermost server (the runtime tree scripts/e2e/build-server.sh builds), the example plugins
// bundled by `mmplug bundle` and their native Go twin (conformance/hellogo) installed on it, and
// cases run over REST as users and administrators would. Hostile-input cases run side by side:
// the same input against the Python plugin and the Go twin, and the verdict is that Python
// decides what Go decides and both still answer afterwards.
//
// scripts/e2e/run.sh builds what this needs (server tree, bundles) and runs it; see
// docs/operations.md "The real-server test (make e2e)". This program owns the processes it
// starts (the cluster, the server and through it the plugins) and stops them on every exit.
//
// Output: one line per case, `ok   name` or `FAIL name: reason`, then `N passed, N failed`.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "e2e: "+format+"\n", args...)
}

// env is everything the cases use.
type env struct {
	work   string
	pg     *postgres
	mm     *mattermost
	w      *world
	mmplug string // the mmplug command (deploy cases)

	hello, hellogo *plugin
	flask, fastapi *plugin // the examples as shipped
	flaskDeps      *plugin // examples/flask with its dependencies declared (a scratch copy)
	fastapiDeps    *plugin
	moderation     *plugin // examples/moderation
	oauthConnect   *plugin // examples/oauth-connect
	remind         *plugin // examples/remind
	scaffold       *plugin // what `mmplug new e2e-scaffold` creates

	campaign campaignConfig // the hostile-input campaign's size and seed (campaign.go)
}

// testCase is one line of the output. run answers nil (ok) or the reason it failed; note, when
// set after run, is printed after the name (a measured time, the twin's answer).
type testCase struct {
	name string
	run  func(e *env, c *caseState) error
}

type caseState struct{ notes []string }

func (c *caseState) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

func main() {
	var (
		tree    = flag.String("server", "", "the Mattermost runtime tree (scripts/e2e/build-server.sh prints it)")
		bundles = flag.String("bundles", "", "the directory of plugin bundles scripts/e2e/run.sh built")
		mmplug  = flag.String("mmplug", "", "the mmplug command")
		work    = flag.String("work", "/tmp/mmplug-e2e", "the work directory (removed and recreated; logs stay there after the run)")
		runRe   = flag.String("run", "", "run only the cases whose name matches this regular expression")
		pgPort  = flag.Int("pg-port", 5439, "PostgreSQL's port (another free one when taken)")
		list    = flag.Bool("list", false, "list the cases and exit")
		cCount  = flag.Int("campaign", 300, "the hostile-input campaign's number of generated inputs (case campaign)")
		cSeed   = flag.Uint64("campaign-seed", 1, "the campaign generator's seed")
		cBatch  = flag.Int("campaign-batch", 100, "campaign inputs run per switch between the Go twin and the Python plugin")
		cOnly   = flag.Int("campaign-input", -1, "replay only this input of the campaign (with its -campaign-seed)")
		bench   = flag.String("bench-out", "", "instead of the cases, measure the post latency users see (no plugin, Go twin, Python; bench.go) and add the figures to this JSON file (make bench: bench/results.json)")
	)
	flag.Parse()
	if *list {
		for _, c := range cases() {
			fmt.Println(c.name)
		}
		return
	}
	var re *regexp.Regexp
	if *runRe != "" {
		var err error
		if re, err = regexp.Compile(*runRe); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: -run: %v\n", err)
			os.Exit(2)
		}
	}
	if *tree == "" || *bundles == "" || *mmplug == "" {
		fmt.Fprintln(os.Stderr, "e2e: -server, -bundles and -mmplug are required (scripts/e2e/run.sh passes them)")
		os.Exit(2)
	}
	if *cCount < 0 || *cBatch < 1 {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", errCampaignFlags)
		os.Exit(2)
	}
	cfg := campaignConfig{count: *cCount, seed: *cSeed, batch: *cBatch, only: *cOnly}
	os.Exit(run(*tree, *bundles, *mmplug, *work, *pgPort, re, cfg, *bench))
}

func run(tree, bundles, mmplug, work string, pgPort int, re *regexp.Regexp, cfg campaignConfig, benchOut string) int {
	// An interrupted run's processes first, then a clean work dir: every run starts from
	// nothing, so running it twice gives the same answers.
	killStaleServer(work)
	stopStalePostgres(filepath.Join(work, "pg"))
	if err := os.RemoveAll(work); err != nil {
		logf("removing %s: %v", work, err)
		return 1
	}
	if err := os.MkdirAll(work, 0o755); err != nil {
		logf("%v", err)
		return 1
	}
	e := &env{work: work, mmplug: mmplug, campaign: cfg}
	abs := func(name string) string { return filepath.Join(bundles, name) }
	e.hello = &plugin{id: "com.mmplug.hello", bundle: abs("com.mmplug.hello.tar.gz")}
	e.hellogo = &plugin{id: "com.mmplug.hellogo", bundle: abs("com.mmplug.hellogo.tar.gz")}
	e.flask = &plugin{id: "com.mmplug.flask", bundle: abs("com.mmplug.flask.tar.gz")}
	e.fastapi = &plugin{id: "com.mmplug.fastapi", bundle: abs("com.mmplug.fastapi.tar.gz")}
	e.flaskDeps = &plugin{id: "com.mmplug.flask-e2e", bundle: abs("com.mmplug.flask-e2e.tar.gz")}
	e.fastapiDeps = &plugin{id: "com.mmplug.fastapi-e2e", bundle: abs("com.mmplug.fastapi-e2e.tar.gz")}
	e.moderation = &plugin{id: "com.mmplug.moderation", bundle: abs("com.mmplug.moderation.tar.gz")}
	e.oauthConnect = &plugin{id: "com.mmplug.oauth-connect", bundle: abs("com.mmplug.oauth-connect.tar.gz")}
	e.remind = &plugin{id: "com.mmplug.remind", bundle: abs("com.mmplug.remind.tar.gz")}
	e.scaffold = &plugin{id: "com.example.e2e-scaffold", bundle: abs("com.example.e2e-scaffold.tar.gz")}

	// Cleanup runs once, on every way out, Ctrl-C and SIGTERM included. On a signal the cases
	// in flight are abandoned: their answers (from a server being stopped) are not printed.
	var once sync.Once
	var interrupted atomic.Bool
	cleanup := func() {
		once.Do(func() {
			if e.mm != nil {
				logf("stopping the server")
				e.mm.stop()
			}
			if e.pg != nil {
				logf("stopping PostgreSQL")
				e.pg.stop()
			}
		})
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		s := <-sig
		interrupted.Store(true)
		logf("%s: cleaning up", s)
		cleanup()
		fmt.Println("interrupted")
		os.Exit(130)
	}()
	defer cleanup()
	report := func(line string) {
		if interrupted.Load() {
			select {} // the signal handler exits the program
		}
		fmt.Println(line)
	}

	start := time.Now()
	if err := setup(e, tree); err != nil {
		logf("setup failed: %v", err)
		report("FAIL setup: " + oneLine(err.Error()))
		report("0 passed, 1 failed")
		return 1
	}
	logf("setup done in %.1f s; server log: %s", time.Since(start).Seconds(), e.mm.logFile())
	if benchOut != "" {
		if err := runBench(e, benchOut); err != nil {
			logf("bench: %v", err)
			return 1
		}
		fmt.Printf("wrote %s\n", benchOut)
		return 0
	}

	passed, failed := 0, 0
	for _, c := range cases() {
		if re != nil && !re.MatchString(c.name) {
			continue
		}
		st := &caseState{}
		t0 := time.Now()
		err := c.run(e, st)
		note := ""
		if len(st.notes) > 0 {
			note = " (" + strings.Join(st.notes, "; ") + ")"
		}
		if err != nil {
			failed++
			report(fmt.Sprintf("FAIL %s: %s%s", c.name, oneLine(err.Error()), note))
		} else {
			passed++
			report(fmt.Sprintf("ok   %s%s", c.name, note))
		}
		logf("%s took %.1f s", c.name, time.Since(t0).Seconds())
	}
	logf("ran in %.1f s", time.Since(start).Seconds())
	report(fmt.Sprintf("%d passed, %d failed", passed, failed))
	if failed > 0 {
		return 1
	}
	return 0
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r", `\r`)
	return strings.ReplaceAll(s, "\n", `\n`)
}

// setup starts PostgreSQL and the server, creates the world and installs the plugins. The
// Python plugins are installed with `mmplug deploy` over the admin's token (what a user does;
// the deploy cases cover each connection method); the Go twin is uploaded over REST.
func setup(e *env, tree string) error {
	port, err := freePort(0)
	if err != nil {
		return err
	}
	pgPort, err := freePort(5439)
	if err != nil {
		return err
	}
	if e.pg, err = newPostgres(filepath.Join(e.work, "pg"), pgPort); err != nil {
		return err
	}
	logf("starting PostgreSQL (%s) on 127.0.0.1:%d", e.pg.bin, pgPort)
	if err := e.pg.start(); err != nil {
		e.pg = nil
		return fmt.Errorf("PostgreSQL: %w", err)
	}
	e.mm = &mattermost{tree: tree, dir: e.work, port: port, dsn: e.pg.dsn()}
	if err := e.mm.prepare(); err != nil {
		return err
	}
	logf("starting Mattermost on %s", e.mm.siteURL())
	t0 := time.Now()
	if err := e.mm.start(); err != nil {
		return fmt.Errorf("Mattermost: %w", err)
	}
	logf("Mattermost answers after %.1f s", time.Since(t0).Seconds())
	if e.w, err = createWorld(e.mm); err != nil {
		return err
	}
	if err := e.install(e.hellogo); err != nil {
		return err
	}
	// A Python plugin that cannot be deployed is not a setup failure: every case using it
	// fails and says why.
	for _, p := range []*plugin{e.hello, e.flaskDeps, e.fastapiDeps} {
		err := e.deployToken(p)
		if err == nil {
			continue
		}
		logf("mmplug deploy %s failed: %v", p.id, err)
		if s, serr := e.status(p); serr == nil && s.State == -1 {
			logf("uploading %s over REST instead", p.id)
			if err := e.install(p); err != nil {
				logf("%v", err)
			}
		}
	}
	return nil
}

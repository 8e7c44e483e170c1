package main

// Fidelity mode (-fidelity): every plugin.API method and every hook, one generated case each,
// through the real supervisor and one activated plugin (testdata/fidelity).
//
// API method M: the plugin fills M's request by the shared value rule (fidelity_fill.go) and
// calls it; fidelityAPI (generated methods → handle) flattens the Go arguments it received and
// answers results filled by reflection; the plugin flattens the response it got and reports
// {sent, got, error} through KVSet("mmplug-fidelity/api/M"). Go judges both directions: the
// received arguments against the Go fill of M's parameter types, the plugin's `got` against
// the Go fill of M's result types. `sent` is only compared to name a test bug (the two fill
// implementations disagreeing) apart from a bridge bug.
//
// Hook H: the harness fills H's parameters by reflection and calls H through
// HooksForPluginWithRPCErr; the plugin reports what it received (KVSet "mmplug-fidelity/hook/H")
// and returns results it filled by the rule; the harness compares both with its own fill.

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

const fidelityReportPrefix = "mmplug-fidelity/"

var (
	apiInterface   = reflect.TypeFor[plugin.API]()
	hooksInterface = reflect.TypeFor[plugin.Hooks]()
	readerType     = reflect.TypeFor[io.Reader]()
	writerType     = reflect.TypeFor[io.Writer]()
	httpReqType    = reflect.TypeFor[*http.Request]()
	httpRespType   = reflect.TypeFor[*http.Response]()
	respWriterType = reflect.TypeFor[http.ResponseWriter]()
)

// fidelityReport is what the plugin sends back for one method or hook.
type fidelityReport struct {
	Sent  map[string]string `json:"sent"`
	Got   map[string]string `json:"got"`
	Error string            `json:"error"`
	// SDKError is what the SDK's own method raised after the raw call failed UNIMPLEMENTED.
	SDKError string `json:"sdk_error"`
	// Raised is the PluginAPIError the typed client method raised (error direction only).
	Raised *raisedError `json:"raised"`
}

// fidelityAPI is the recording plugin.API of fidelity mode; its methods are generated
// (fidelity_generated.go) and all call handle.
type fidelityAPI struct {
	rec *recorder

	mu      sync.Mutex
	calls   map[string][]map[string]string // method → flattened arguments of each call
	reports map[string]fidelityReport      // "api/M" or "hook/H" → the plugin's report
	limits  map[string][]string            // method → paths the filler could not fill

	// Error direction (fidelity_errors.go).
	planned   map[string]bool                // set once the plugin fetched the plan: methods answered with an error
	errCalls  map[string][]map[string]string // method → flattened arguments of each error call
	raiseHook string                         // the hook whose handler is told to raise, "" for none
	modeAsked map[string]bool                // hooks whose handler asked while told to raise
}

var _ plugin.API = (*fidelityAPI)(nil)

func newFidelityAPI(rec *recorder) *fidelityAPI {
	return &fidelityAPI{
		rec: rec, calls: map[string][]map[string]string{}, reports: map[string]fidelityReport{}, limits: map[string][]string{},
		errCalls: map[string][]map[string]string{}, modeAsked: map[string]bool{},
	}
}

// typedValue makes a reflect.Value of type t from an argument (a nil interface argument becomes
// t's zero value).
func typedValue(t reflect.Type, x any) reflect.Value {
	v := reflect.New(t).Elem()
	if x != nil {
		v.Set(reflect.ValueOf(x))
	}
	return v
}

// isErrorResult reports whether result j of ft is the method's error (last, error or *AppError).
func isErrorResult(ft reflect.Type, j int) bool {
	t := ft.Out(j)
	return j == ft.NumOut()-1 && (t == fErrorType || t == reflect.PointerTo(fAppErrorType))
}

// fillResults builds ft's results for name: non-error results filled at "<name>.out.<k>", the
// error result nil. It returns them and their flattened form.
func fillResults(name string, ft reflect.Type, f *filler) ([]reflect.Value, map[string]string) {
	want := map[string]string{}
	out := make([]reflect.Value, ft.NumOut())
	k := 2
	for j := range ft.NumOut() {
		if isErrorResult(ft, j) {
			out[j] = reflect.New(ft.Out(j)).Elem()
			continue
		}
		path := fmt.Sprintf("%s.out.%d", name, k)
		k++
		out[j] = f.value(ft.Out(j), path, 0)
		flatten(out[j], path, want)
	}
	return out, want
}

// fillParams builds ft's parameters for name at "<name>.in.<i+2>".
func fillParams(name string, ft reflect.Type, f *filler) ([]reflect.Value, map[string]string) {
	want := map[string]string{}
	in := make([]reflect.Value, ft.NumIn())
	for i := range ft.NumIn() {
		path := fmt.Sprintf("%s.in.%d", name, i+2)
		in[i] = f.value(ft.In(i), path, 0)
		flatten(in[i], path, want)
	}
	return in, want
}

// loadConfigWant is what LoadPluginConfiguration answers in fidelity mode: the server marshals
// what the API put into dest as JSON, which travels as bytes (response field 2).
func loadConfigValue() any { return fillAny("LoadPluginConfiguration.out.2") }

func (f *fidelityAPI) handle(name string, args ...any) (out []any) {
	m, ok := apiInterface.MethodByName(name)
	if !ok {
		f.rec.fail("fidelity API: unknown method %s", name)
		return nil
	}
	ft := m.Type
	out = make([]any, ft.NumOut())
	defer func() {
		// These run on a net/rpc goroutine of the supervisor without a recover.
		if r := recover(); r != nil {
			f.rec.fail("fidelity API %s panicked: %v\n%s", name, r, debug.Stack())
		}
	}()
	if name == "KVSet" {
		if key, _ := args[0].(string); strings.HasPrefix(key, fidelityReportPrefix) {
			value, _ := args[1].([]byte)
			var rep fidelityReport
			if err := json.Unmarshal(value, &rep); err != nil {
				f.rec.fail("fidelity report %s is not JSON: %v", key, err)
			}
			f.mu.Lock()
			f.reports[strings.TrimPrefix(key, fidelityReportPrefix)] = rep
			f.mu.Unlock()
			return out
		}
	}
	if name == "KVGet" {
		if key, _ := args[0].(string); strings.HasPrefix(key, fidelityReportPrefix) {
			out[0] = f.control(strings.TrimPrefix(key, fidelityReportPrefix))
			out[1] = (*model.AppError)(nil)
			return out
		}
	}
	flat := map[string]string{}
	if name == "LoadPluginConfiguration" {
		// dest never travels; the server hands the API a *any to fill.
		if p, ok := args[0].(*any); ok {
			*p = loadConfigValue()
		} else {
			f.rec.fail("LoadPluginConfiguration: dest is %T, want *interface{}", args[0])
		}
	} else {
		for i := range ft.NumIn() {
			flatten(typedValue(ft.In(i), args[i]), fmt.Sprintf("%s.in.%d", name, i+2), flat)
		}
	}
	if errOut, ok := f.errorAnswer(name, ft, flat); ok {
		return errOut
	}
	var fl filler
	results, _ := fillResults(name, ft, &fl)
	f.mu.Lock()
	f.calls[name] = append(f.calls[name], flat)
	if len(fl.unfillable) > 0 {
		f.limits[name] = fl.unfillable
	}
	f.mu.Unlock()
	for j, r := range results {
		out[j] = r.Interface() // a nil error interface becomes an untyped nil
	}
	return out
}

// streamingReason says why a method or hook is not round-tripped by this mechanism ("" if it is).
func streamingReason(ft reflect.Type) string {
	types := []reflect.Type{}
	for i := range ft.NumIn() {
		types = append(types, ft.In(i))
	}
	for i := range ft.NumOut() {
		types = append(types, ft.Out(i))
	}
	for _, t := range types {
		switch t {
		case readerType, writerType:
			return "byte stream (io.Reader/io.Writer travels on a broker stream)"
		case httpReqType, httpRespType, respWriterType:
			return "HTTP stream"
		}
	}
	return ""
}

type fidelityCase struct {
	name     string // "api/M" or "hook/H"
	skip     string // why it is not run here
	failures []string
	limits   []string
	bridged  bool
	leaves   int  // expected leaves compared (both directions)
	absent   bool // an API method of the contract that this server does not have
	// uncarried names the fields of an older server's structs that the contract lacks.
	uncarried map[string]bool
}

func (c *fidelityCase) failf(format string, args ...any) {
	c.failures = append(c.failures, fmt.Sprintf(format, args...))
}

func (c *fidelityCase) diff(what string, got, want map[string]string) {
	want = c.carried(want)
	c.leaves += len(want)
	for _, d := range leafDiff(got, want) {
		c.failf("%s %s", what, d)
	}
}

// carried drops the leaves of fields the contract lacks (only an older server's structs have
// them): the server sends them, the bridge cannot pass them on, so nobody may expect them.
func (c *fidelityCase) carried(want map[string]string) map[string]string {
	out := make(map[string]string, len(want))
	for p, v := range want {
		if !isUncarried(p) {
			out[p] = v
			continue
		}
		if c.uncarried == nil {
			c.uncarried = map[string]bool{}
		}
		field := p[strings.Index(p, ".?")+2:]
		if i := strings.IndexAny(field, ".[{"); i >= 0 {
			field = field[:i]
		}
		c.uncarried[field] = true
	}
	return out
}

// sentDiff compares what the plugin filled with the Go fill (a disagreement is a test bug).
// Against an older server the plugin also fills contract fields the Go struct lacks
// (fl.contractOnly), and Go fills fields the contract lacks; neither is compared.
func (c *fidelityCase) sentDiff(sent, want map[string]string, fl *filler) {
	kept := make(map[string]string, len(sent))
	for p, v := range sent {
		if !underAny(p, fl.contractOnly) {
			kept[p] = v
		}
	}
	for _, d := range leafDiff(kept, c.carried(want)) {
		c.failf("TEST BUG: the plugin's fill differs from Go's: %s", d)
	}
}

// underAny reports whether path is one of prefixes or lies below one.
func underAny(path string, prefixes []string) bool {
	for _, p := range prefixes {
		if rest, ok := strings.CutPrefix(path, p); ok && (rest == "" || strings.ContainsAny(rest[:1], ".[{")) {
			return true
		}
	}
	return false
}

// runFidelity is the -fidelity mode: one world, one activation, all cases.
func runFidelity(b *bundle, o options) int {
	rec := newRecorder()
	stdLogSink.set(rec)
	defer stdLogSink.set(nil)
	logger, sink, err := newCaptureLogger(rec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	ct, err := loadContract()
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	module := serverPublicVersion()
	if module != ct.version {
		// An older server/public (the version matrix): number fields as the contract does.
		contractFields = ct.fields
		fmt.Printf("server: plugin supervisor and plugin.API of server/public %s; the bridge's contract is %s\n", module, ct.version)
	}
	api := newFidelityAPI(rec)
	env, err := plugin.NewEnvironment(func(*model.Manifest) plugin.API { return api }, nil, b.pluginsDir, b.webappDir, logger, nil)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: creating the environment: %v\n", err)
		return 2
	}
	start := time.Now()
	cov := &coverage{filled: map[reflect.Type]bool{}, reachable: map[reflect.Type]bool{}}
	var cases []*fidelityCase
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				rec.fail("fidelity run panicked: %v\n%s", r, debug.Stack())
			}
		}()
		cases = fidelityCases(env, b.manifest.Id, api, rec, cov, ct)
	}()
	select {
	case <-done:
	case <-time.After(o.caseTimeout):
		rec.fail("the fidelity run did not finish within %s (hang)", o.caseTimeout)
	}
	elapsed := time.Since(start)
	teardown(env, rec)
	_ = logger.Flush()
	_ = logger.Shutdown()
	sink.close()

	// The methods and hooks whose bytes travel on broker streams are round-tripped by the
	// stream cases (cases_streams.go), each in a world of its own with testdata/streams.
	if o.bridge != "" {
		byName := map[string]*fidelityCase{}
		for _, c := range cases {
			byName[c.name] = c
		}
		for _, sc := range streamCases {
			c := byName[sc.covers]
			if c == nil || c.absent {
				continue // this server does not have it (the stream case still checks the failure)
			}
			res := runCase(b, o, harnessCase{name: sc.name, run: sc.run})
			c.skip, c.bridged, c.failures = "", true, res.failures
			c.name = fmt.Sprintf("%s (%s, %s)", sc.covers, sc.name, res.elapsed.Round(time.Millisecond))
		}
		if c := byName["hook/OnActivate"]; c != nil && len(rec.failureList()) == 0 && len(cases) > 1 {
			// The sweep ran from inside OnActivate: the activation round trip succeeded.
			c.skip, c.bridged = "", true
			c.name = "hook/OnActivate (the activation that drove the sweep)"
		}
	}

	var filter func(string) bool
	if o.run != "" {
		re, err := regexp.Compile(o.run)
		if err != nil {
			fmt.Fprintf(os.Stderr, "harness: -run: %v\n", err)
			return 2
		}
		filter = re.MatchString
	}
	apiTotal, hookTotal := apiInterface.NumMethod(), hooksInterface.NumMethod()
	var apiBridged, apiRound, hookBridged, hookRound, errTotal, errPassed, failed, leaves int
	for _, c := range cases {
		leaves += c.leaves
		isAPI := strings.HasPrefix(c.name, "api/")
		if strings.HasPrefix(c.name, "api-error/") || strings.HasPrefix(c.name, "hook-error/") {
			errTotal++
			if c.bridged && len(c.failures) == 0 {
				errPassed++
			}
		} else if c.skip == "" && c.bridged {
			if isAPI {
				apiBridged++
			} else {
				hookBridged++
			}
		}
		if c.skip == "" && c.bridged && len(c.failures) == 0 && !strings.Contains(c.name, "-error/") {
			if isAPI {
				apiRound++
			} else {
				hookRound++
			}
		}
		if filter != nil && !filter(c.name) {
			continue
		}
		switch {
		case c.skip != "":
			fmt.Printf("skip %-44s %s\n", c.name, c.skip)
		case len(c.failures) == 0:
			fmt.Printf("ok   %s\n", c.name)
		default:
			failed++
			fmt.Printf("FAIL %s: %d field(s): %s\n", c.name, len(c.failures), strings.Join(strings.Fields(strings.Join(firstN(c.failures, 4), "; ")), " "))
			if o.verbose {
				for _, f := range c.failures {
					fmt.Printf("     %s\n", f)
				}
			}
		}
		for _, l := range c.limits {
			fmt.Printf("     limit: %s\n", l)
		}
		if len(c.uncarried) > 0 {
			fmt.Printf("     not in the contract %s, so not expected across the bridge: %s\n", ct.version, strings.Join(slices.Sorted(maps.Keys(c.uncarried)), ", "))
		}
	}
	run := rec.failureList()
	for _, f := range run {
		fmt.Printf("FAIL fidelity run: %s\n", strings.Join(strings.Fields(f), " "))
	}
	if o.verbose || len(run) > 0 {
		for _, l := range rec.logLines() {
			if l.pluginLine() && (o.verbose || strings.EqualFold(l.Level, "error")) {
				fmt.Printf("     %s\n", l)
			}
		}
	}
	var deep []string
	for t := range cov.reachable {
		if !cov.filled[t] {
			deep = append(deep, t.String())
		}
	}
	sort.Strings(deep)
	fmt.Printf("fidelity: %d leaves compared; %d/%d reachable struct types filled within depth %d\n",
		leaves, len(cov.reachable)-len(deep), len(cov.reachable), fidelityDepth)
	if len(deep) > 0 {
		fmt.Printf("     not filled (only below depth %d): %s\n", fidelityDepth, strings.Join(deep, ", "))
	}
	fmt.Printf("API methods: %d/%d bridged, %d/%d round-tripped; hooks: %d/%d bridged, %d/%d round-tripped; errors: %d/%d (%s)\n",
		apiBridged, apiTotal, apiRound, apiTotal, hookBridged, hookTotal, hookRound, hookTotal, errPassed, errTotal, elapsed.Round(time.Millisecond))
	if module != ct.version {
		var absent, clean, streams int
		for _, c := range cases {
			if c.absent {
				absent++
				switch {
				case c.skip != "":
					streams++
				case len(c.failures) == 0:
					clean++
				}
			}
		}
		var hooksAbsent []string
		for _, h := range ct.hooks {
			if _, ok := hooksInterface.MethodByName(h.Name); !ok {
				hooksAbsent = append(hooksAbsent, h.Name)
			}
		}
		fmt.Printf("API methods of the contract %s this server lacks: %d; %d/%d called failed cleanly (UNIMPLEMENTED, NotImplementedAPIError 501), byte-stream methods not called: %d; hooks it lacks (never called): %d [%s]\n",
			ct.version, absent, clean, absent-streams, streams, len(hooksAbsent), strings.Join(hooksAbsent, " "))
	}
	passed, skipped := 0, 0
	for _, c := range cases {
		switch {
		case c.skip != "":
			skipped++
		case len(c.failures) == 0:
			passed++
		}
	}
	fmt.Printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped)
	if failed > 0 || len(run) > 0 || len(cases) == 0 {
		return 1
	}
	return 0
}

// coverage tracks which struct types the run filled against those the tested signatures reach.
type coverage struct {
	filled    map[reflect.Type]bool
	reachable map[reflect.Type]bool
}

func (c *coverage) reach(ft reflect.Type) {
	for i := range ft.NumIn() {
		reachableStructs(ft.In(i), c.reachable)
	}
	for i := range ft.NumOut() {
		reachableStructs(ft.Out(i), c.reachable)
	}
}

func firstN(s []string, n int) []string {
	if len(s) <= n {
		return s
	}
	return append(slices.Clone(s[:n]), fmt.Sprintf("(%d more; -v lists all)", len(s)-n))
}

// fidelityCases activates the plugin (whose OnActivate runs the API sweep), then drives every
// hook, and judges everything.
func fidelityCases(env *plugin.Environment, id string, api *fidelityAPI, rec *recorder, cov *coverage, ct *contract) []*fidelityCase {
	var cases []*fidelityCase
	_, activated, err := env.Activate(id)
	if err != nil || !activated {
		rec.fail("Activate: activated=%v err=%v", activated, err)
		return nil
	}

	// API methods, in interface order (alphabetical, as reflect lists them).
	for i := range apiInterface.NumMethod() {
		m := apiInterface.Method(i)
		c := &fidelityCase{name: "api/" + m.Name}
		cases = append(cases, c)
		if r := streamingReason(m.Type); r != "" {
			c.skip = r + "; not round-tripped by this mode"
			continue
		}
		fl := filler{structs: cov.filled}
		cov.reach(m.Type)
		var wantArgs, wantResults map[string]string
		if m.Name == "LoadPluginConfiguration" {
			wantArgs = map[string]string{}
			raw, err := json.Marshal(loadConfigValue())
			if err != nil {
				c.failf("marshal config: %v", err)
			}
			wantResults = map[string]string{"LoadPluginConfiguration.out.2": "x:" + hex.EncodeToString(raw)}
		} else {
			_, wantArgs = fillParams(m.Name, m.Type, &fl)
			_, wantResults = fillResults(m.Name, m.Type, &fl)
		}
		c.limits = fl.unfillable
		api.mu.Lock()
		calls := api.calls[m.Name]
		rep, hasRep := api.reports["api/"+m.Name]
		api.mu.Unlock()
		if !hasRep {
			c.failf("the plugin sent no report (it did not call %s)", m.Name)
		}
		if rep.Error != "" {
			c.failf("the call failed in the plugin: %s", rep.Error)
		}
		if len(calls) == 0 {
			c.failf("the call never reached the server's API")
			continue
		}
		c.bridged = rep.Error == ""
		if len(calls) > 1 {
			c.failf("the server's API received %d calls, want 1", len(calls))
		}
		// Python has doubles where Go has integers in interfaces, both ways (no hints here).
		c.diff("args (Python→Go)", calls[0], asDoubles(wantArgs))
		if hasRep {
			c.diff("results (Go→Python)", rep.Got, asDoubles(wantResults))
			c.sentDiff(rep.Sent, asDoubles(wantArgs), &fl)
		}
	}
	cases = append(cases, absentMethodCases(api, ct)...)
	cases = append(cases, apiErrorCases(api)...)

	// Hooks.
	hv, err := hooksForFidelity(env, id)
	if err != nil {
		rec.fail("no hooks for the plugin: %v", err)
		return cases
	}
	plainHooks, err := env.HooksForPlugin(id)
	if err != nil {
		rec.fail("no hooks for the plugin: %v", err)
		return cases
	}
	var implemented []string
	for i := range hooksInterface.NumMethod() {
		m := hooksInterface.Method(i)
		c := &fidelityCase{name: "hook/" + m.Name}
		cases = append(cases, c)
		switch {
		case streamingReason(m.Type) != "":
			c.skip = streamingReason(m.Type) + "; not round-tripped by this mode"
			continue
		case m.Name == "OnActivate":
			c.skip = "ran as the activation that drove the API sweep; its error result is the activation_failure case"
			continue
		case m.Name == "Implemented":
			continue // judged below, once the list of hooks is known
		}
		implemented = append(implemented, m.Name)
		cov.reach(m.Type)
		fidelityHook(hv, reflect.ValueOf(plainHooks), m, api, c, cov)
	}
	// The error direction of the hooks, once every hook has answered with values.
	for i := range hooksInterface.NumMethod() {
		m := hooksInterface.Method(i)
		if !hookErrorCandidate(m) {
			continue
		}
		c := &fidelityCase{name: "hook-error/" + m.Name}
		cases = append(cases, c)
		fidelityHookError(hv, reflect.ValueOf(plainHooks), m, api, c)
	}
	// Hooks of the contract this server does not have (an older server): the plugin implements
	// them too, so Implemented names them; the server ignores them and never calls them.
	for _, h := range ct.hooks {
		if _, ok := hooksInterface.MethodByName(h.Name); !ok && !h.streaming() {
			implemented = append(implemented, h.Name)
		}
	}
	// Implemented: the plugin registers a handler for every unary hook, so the server must be
	// told exactly those.
	for _, c := range cases {
		if c.name != "hook/Implemented" {
			continue
		}
		got, err := plainHooks.Implemented()
		if err != nil {
			c.failf("Implemented: %v", err)
			break
		}
		c.bridged = true
		want := append([]string{"OnActivate"}, implemented...)
		sort.Strings(want)
		got = slices.Clone(got)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			c.failf("Implemented = %v, want %v", got, want)
		}
	}
	return cases
}

func fidelityHook(hv, plain reflect.Value, m reflect.Method, api *fidelityAPI, c *fidelityCase, cov *coverage) {
	fl := filler{structs: cov.filled}
	args, wantArgs := fillParams(m.Name, m.Type, &fl)
	_, wantResults := fillResults(m.Name, m.Type, &fl)
	c.limits = fl.unfillable
	// The *WithRPCErr form tells a transport failure apart from a hook's own answer; the few
	// hooks without one (MessagesWillBeConsumed*, TeamMemberWillBeAdded) are called plainly.
	var outs []reflect.Value
	if fn := hv.MethodByName(m.Name + "WithRPCErr"); fn.IsValid() {
		outs = fn.Call(args)
		if rpcErr := outs[len(outs)-1]; !rpcErr.IsNil() {
			c.failf("RPC error: %v", rpcErr.Interface())
			return
		}
		outs = outs[:len(outs)-1]
	} else {
		outs = plain.MethodByName(m.Name).Call(args)
	}
	c.bridged = true
	got := map[string]string{}
	k := 2
	for j, o := range outs {
		if isErrorResult(m.Type, j) {
			if !o.IsNil() {
				c.failf("the hook returned an error: %v", o.Interface())
			}
			continue
		}
		flatten(o, fmt.Sprintf("%s.out.%d", m.Name, k), got)
		k++
	}
	c.diff("results (Python→Go)", got, asReturned(m, wantResults))
	api.mu.Lock()
	rep, ok := api.reports["hook/"+m.Name]
	api.mu.Unlock()
	if !ok {
		c.failf("the plugin sent no report for this hook")
		return
	}
	if rep.Error != "" {
		c.failf("the plugin's handler failed: %s", rep.Error)
	}
	c.diff("args (Go→Python)", rep.Got, asDoubles(wantArgs))
	c.sentDiff(rep.Sent, asDoubles(wantResults), &fl)
}

// asReturned is want, hook m's filled results, as the server gets them back from Python: an
// integer in an interface{} keeps its Go type in a result that replaces a parameter of the
// same Go type, where Python hands back the number the server sent at the same place
// (docs/internals.md §10); in the other results it arrives as the double Python had.
func asReturned(m reflect.Method, want map[string]string) map[string]string {
	out := make(map[string]string, len(want))
	var asSent []string // the results' paths whose integers come back as sent
	k := 2
	for j := range m.Type.NumOut() {
		if isErrorResult(m.Type, j) {
			continue
		}
		for i := range m.Type.NumIn() {
			if m.Type.In(i) == m.Type.Out(j) {
				asSent = append(asSent, fmt.Sprintf("%s.out.%d", m.Name, k))
				break
			}
		}
		k++
	}
	for p, leaf := range want {
		if underAny(p, asSent) {
			out[p] = leaf
		} else {
			out[p] = leafAsDouble(leaf)
		}
	}
	return out
}

// absentMethodCases judges the API methods of the contract that this server's plugin.API does
// not have (an older server; none against the pinned module). The plugin called each one; the
// server refuses it by name, and the call must fail cleanly: gRPC UNIMPLEMENTED naming the
// method and the server version it needs, and the SDK's NotImplementedAPIError (status 501),
// never a zero value passed off as a result.
func absentMethodCases(api *fidelityAPI, ct *contract) []*fidelityCase {
	var cases []*fidelityCase
	for _, m := range ct.api {
		if _, ok := apiInterface.MethodByName(m.Name); ok {
			continue
		}
		c := &fidelityCase{name: "api/" + m.Name, absent: true}
		cases = append(cases, c)
		if m.streaming() {
			c.skip = "byte stream (not called by this mode); this server does not have the method"
			continue
		}
		api.mu.Lock()
		rep, hasRep := api.reports["api/"+m.Name]
		api.mu.Unlock()
		if !hasRep {
			c.failf("the plugin sent no report (it did not call %s)", m.Name)
			continue
		}
		want := m.unimplementedWant()
		if rep.Error != want {
			c.failf("the call answered %q, want %q", rep.Error, want)
		}
		if len(rep.Got) > 0 {
			c.failf("the failed call still produced values: %v", firstN(slices.Sorted(maps.Keys(rep.Got)), 4))
		}
		details := strings.TrimPrefix(want, "gRPC StatusCode.UNIMPLEMENTED: ")
		if !strings.HasPrefix(rep.SDKError, "NotImplementedAPIError status=501: ") || !strings.Contains(rep.SDKError, details) {
			c.failf("the SDK method raised %q, want NotImplementedAPIError status=501 carrying %q", rep.SDKError, details)
		}
	}
	return cases
}

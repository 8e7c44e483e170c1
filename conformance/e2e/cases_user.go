package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

// Issue 12: what a user and an administrator do with the plugins on a real server.

// `mmplug deploy --local` over the local-mode socket, the first connection method cli.md names.
func caseDeployLocal(e *env, c *caseState) error {
	return deployCase(e, c, true)
}

// `mmplug deploy` with MM_SERVICESETTINGS_SITEURL and MM_ADMIN_TOKEN.
func caseDeployToken(e *env, c *caseState) error {
	return deployCase(e, c, false)
}

func deployCase(e *env, c *caseState, local bool) error {
	if err := e.both(); err != nil {
		return err
	}
	args := []string{"deploy", "--wait", "90", e.hello.bundle}
	if local {
		args = []string{"deploy", "--local", "--wait", "90", e.hello.bundle}
	}
	t0 := time.Now()
	res, err := e.runMmplug(local, args...)
	if err != nil {
		return err
	}
	c.note("%.1f s", time.Since(t0).Seconds())
	// Whatever mmplug said, leave the plugin running for the cases after this one.
	defer func() { _ = e.waitRunning(e.hello, 60*time.Second) }()
	if res.code != 0 {
		return fmt.Errorf("mmplug %s: %s", strings.Join(args[:len(args)-1], " "), res)
	}
	if !strings.Contains(res.stdout, e.hello.id+" is running") {
		return fmt.Errorf("mmplug deploy exited 0 but printed %q, not %q", strings.TrimSpace(res.stdout), e.hello.id+" is running")
	}
	return e.waitRunning(e.hello, 10*time.Second)
}

// `mmplug disable --local` then `mmplug enable --local`.
func caseEnableLocal(e *env, _ *caseState) error {
	defer func() { _ = e.enable(e.hello) }()
	res, err := e.runMmplug(true, "disable", "--local", e.hello.id)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("mmplug disable --local: %s", res)
	}
	if s, err := e.status(e.hello); err != nil || s.State == stateRunning {
		return fmt.Errorf("after mmplug disable --local the plugin is still running (%v)", err)
	}
	res, err = e.runMmplug(true, "enable", "--local", "--wait", "60", e.hello.id)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return fmt.Errorf("mmplug enable --local: %s", res)
	}
	return e.waitRunning(e.hello, 10*time.Second)
}

// The examples as shipped, bundled with `mmplug bundle` and uploaded: they must start, and
// their /api/me must answer a logged-in user.
func bundleStarts(which func(e *env) *plugin) func(e *env, c *caseState) error {
	return func(e *env, c *caseState) error {
		p := which(e)
		if _, err := must(e.w.admin.uploadPlugin(p.bundle))(http.StatusCreated); err != nil {
			return fmt.Errorf("uploading %s: %w", p.bundle, err)
		}
		defer func() { _ = e.disable(p) }()
		if _, err := must(e.w.admin.do(http.MethodPost, "/api/v4/plugins/"+p.id+"/enable", nil, nil))(200); err != nil {
			return err
		}
		if err := e.waitRunning(p, 60*time.Second); err != nil {
			return err
		}
		r, err := e.w.user1.get("/plugins/" + p.id + "/api/me")
		if err != nil {
			return err
		}
		if r.status != 200 || !strings.Contains(string(r.body), "e2euser1") {
			return fmt.Errorf("GET /api/me as e2euser1 answered %s", r)
		}
		return nil
	}
}

// A post containing "forbidden" is refused with the plugin's reason.
func casePostRejected(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := e.w.post(e.w.user2, "a forbidden word", nil)
		if err != nil {
			return "", err
		}
		if !rejected(r) {
			return "the post was " + postVerdict(r), nil
		}
		return fmt.Sprintf("rejected: %d %q", r.status, r.appErrorMessage()), nil
	})
}

// Props of every JSON type read back as they were sent (an int stays an int), plus the
// plugin's checked_by.
func casePostPropsTypes(e *env, _ *caseState) error {
	props := map[string]any{
		"int": 42, "negative": -7, "zero": 0, "large": int64(1) << 40, "float": 1.5,
		"bool": true, "null": nil, "string": "s", "unicode": "café ✓",
		"list":   []any{1, "a", map[string]any{"b": 2}, []any{true, nil}},
		"nested": map[string]any{"x": map[string]any{"y": []any{1, 2.5}}},
		"empty":  map[string]any{}, "empty_list": []any{},
	}
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := must(e.w.post(e.w.user1, "props of every type", props))(http.StatusCreated)
		if err != nil {
			return "", err
		}
		var created struct {
			ID string `json:"id"`
		}
		if err := r.json(&created); err != nil {
			return "", err
		}
		r, err = must(e.w.user1.get("/api/v4/posts/" + created.ID))(200)
		if err != nil {
			return "", err
		}
		var post struct {
			Props map[string]json.RawMessage `json:"props"`
		}
		if err := r.json(&post); err != nil {
			return "", err
		}
		// The raw JSON text of each prop: 42 and 42.0 differ here.
		var parts []string
		for _, k := range sortedKeys(post.Props) {
			parts = append(parts, k+"="+string(post.Props[k]))
		}
		return "read back " + strings.Join(parts, " "), nil
	})
}

func sortedKeys(m map[string]json.RawMessage) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// /hello answers "Hello from <server version>".
func caseCommandHello(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := e.w.command(e.w.user1, "/hello")
		if err != nil {
			return "", err
		}
		return describeCommand(r), nil
	})
}

// /hello fail: the user must read "hello failed on purpose" (examples/hello/README.md). The
// server translates an AppError's id through its i18n files and an unknown id becomes the
// message, unless the error asks to skip translation; the Go twin's answer is noted.
func caseCommandHelloFail(e *env, c *caseState) error {
	answer := func(p *plugin) (*reply, error) {
		if err := e.solo(p); err != nil {
			return nil, err
		}
		return e.w.command(e.w.user1, "/hello fail")
	}
	g, err := answer(e.hellogo)
	if err != nil {
		return err
	}
	c.note("Go twin: %d %q", g.status, g.appErrorMessage())
	r, err := answer(e.hello)
	if err != nil {
		return err
	}
	if got := r.appErrorMessage(); got != "hello failed on purpose" {
		why := ""
		if r.appErrorID() == "api.command.execute_command.not_found.app_error" {
			why = " (the server's answer when a plugin's ExecuteCommand returns neither a response nor an error: the plugin's AppError was lost)"
		}
		return fmt.Errorf("/hello fail answered %d with the message %q, not \"hello failed on purpose\"%s", r.status, got, why)
	}
	return nil
}

// GET /version answers the server version, as text/plain.
func caseRouteGet(e *env, _ *caseState) error {
	return sideBySide(e, func(p *plugin) (string, error) {
		r, err := e.w.user1.get("/plugins/" + p.id + "/version")
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%d %s %q", r.status, r.header.Get("Content-Type"), string(r.body)), nil
	})
}

// POST /echo with a 5 MiB body: the same bytes come back with their SHA-256.
func caseRoutePost5MiB(e *env, _ *caseState) error {
	body := make([]byte, 5<<20)
	_, _ = rand.Read(body)
	sum := sha256.Sum256(body)
	want := hex.EncodeToString(sum[:])
	return sideBySide(e, func(p *plugin) (string, error) {
		t0 := time.Now()
		r, err := e.w.user1.do(http.MethodPost, "/plugins/"+p.id+"/echo", bytes.NewReader(body), http.Header{"Content-Type": {"application/octet-stream"}})
		if err != nil {
			return "", err
		}
		if r.status != 200 {
			return "answered " + r.String(), nil
		}
		if r.header.Get("X-Sha256") != want {
			return fmt.Sprintf("X-Sha256 %s, not the body's", r.header.Get("X-Sha256")), nil
		}
		if !bytes.Equal(r.body, body) {
			return fmt.Sprintf("echoed %d bytes that differ from the 5 MiB sent", len(r.body)), nil
		}
		logf("%s echoed 5 MiB in %.2f s", p.id, time.Since(t0).Seconds())
		return "echoed 5 MiB with its SHA-256", nil
	})
}

// KV through the routes: every byte value survives, and a missing key is 404.
func caseKVBinary(e *env, _ *caseState) error {
	value := make([]byte, 256)
	for i := range value {
		value[i] = byte(i)
	}
	return sideBySide(e, func(p *plugin) (string, error) {
		if _, err := must(e.w.user1.do(http.MethodPost, "/plugins/"+p.id+"/kv/binary", bytes.NewReader(value), nil))(204); err != nil {
			return "", err
		}
		r, err := e.w.user1.get("/plugins/" + p.id + "/kv/binary")
		if err != nil {
			return "", err
		}
		missing, err := e.w.user1.get("/plugins/" + p.id + "/kv/never-set")
		if err != nil {
			return "", err
		}
		same := r.status == 200 && bytes.Equal(r.body, value)
		return fmt.Sprintf("read back %d (all 256 byte values intact: %v), a missing key %d", r.status, same, missing.status), nil
	})
}

// readLines reads a streamed answer line by line and records when each line arrived.
func readLines(e *env, path string) (lines []string, at []time.Duration, status int, err error) {
	req, err := http.NewRequest(http.MethodGet, e.mm.siteURL()+path, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+e.w.user1.token)
	t0 := time.Now()
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		return nil, nil, 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		at = append(at, time.Since(t0))
	}
	return lines, at, resp.StatusCode, sc.Err()
}

// Server-sent events from the FastAPI example arrive one by one, as they are sent.
func caseSSEFastAPI(e *env, c *caseState) error {
	p := e.fastapiDeps
	if s, err := e.status(p); err != nil || s.State != stateRunning {
		return fmt.Errorf("%s is not running (state %d: %s)", p.id, s.State, s.Error)
	}
	lines, at, status, err := readLines(e, "/plugins/"+p.id+"/events?count=4&interval=0.7")
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("GET /events answered %d: %s", status, strings.Join(lines, " "))
	}
	var times []time.Duration
	for i, l := range lines {
		if strings.HasPrefix(l, "data: ") {
			times = append(times, at[i])
		}
	}
	return spacedOut(c, times, 4, 700*time.Millisecond)
}

// The Flask example's countdown, a plain-text stream, arrives line by line.
func caseStreamFlask(e *env, c *caseState) error {
	p := e.flaskDeps
	if s, err := e.status(p); err != nil || s.State != stateRunning {
		return fmt.Errorf("%s is not running (state %d: %s)", p.id, s.State, s.Error)
	}
	lines, at, status, err := readLines(e, "/plugins/"+p.id+"/countdown?n=3&interval=0.7")
	if err != nil {
		return err
	}
	if status != 200 {
		return fmt.Errorf("GET /countdown answered %d: %s", status, strings.Join(lines, " "))
	}
	if len(lines) != 4 || lines[3] != "liftoff" {
		return fmt.Errorf("GET /countdown?n=3 answered %q, not 3 2 1 liftoff", lines)
	}
	return spacedOut(c, at, 4, 700*time.Millisecond)
}

// spacedOut checks that n items arrived about interval apart (not all at the end).
func spacedOut(c *caseState, times []time.Duration, n int, interval time.Duration) error {
	if len(times) != n {
		return fmt.Errorf("%d items arrived, not %d", len(times), n)
	}
	var gaps []string
	for i := 1; i < n; i++ {
		gap := times[i] - times[i-1]
		gaps = append(gaps, fmt.Sprintf("%.2f", gap.Seconds()))
		if gap < interval/2 {
			return fmt.Errorf("item %d arrived %.2f s after the one before (sent %.1f s apart): the stream is buffered (arrivals at %v)", i+1, gap.Seconds(), interval.Seconds(), times)
		}
	}
	c.note("gaps %s s", strings.Join(gaps, " "))
	return nil
}

// The plugins' "hello activated" lines in the server's JSON log: the Python plugin's must read
// like the Go twin's (a message, a plugin_id, a real timestamp; no run-together field dump).
func caseLogLines(e *env, c *caseState) error {
	if err := e.both(); err != nil {
		return err
	}
	b, err := os.ReadFile(e.mm.logFile())
	if err != nil {
		return err
	}
	find := func(id string) map[string]any {
		var last map[string]any
		for _, line := range bytes.Split(b, []byte("\n")) {
			var m map[string]any
			if json.Unmarshal(line, &m) != nil {
				continue
			}
			if m["plugin_id"] == id && m["msg"] == "hello activated" {
				last = m
			}
		}
		return last
	}
	goLine, pyLine := find(e.hellogo.id), find(e.hello.id)
	if goLine == nil {
		return fmt.Errorf("no \"hello activated\" line of the Go twin in %s (a broken test)", e.mm.logFile())
	}
	if pyLine == nil {
		return fmt.Errorf("no \"hello activated\" line with plugin_id %s in %s", e.hello.id, e.mm.logFile())
	}
	var problems []string
	for k, v := range pyLine {
		s := fmt.Sprint(v)
		switch {
		case k == "wrapped_extras":
			problems = append(problems, fmt.Sprintf("extra fields run together: wrapped_extras=%q", s))
		case strings.Contains(s, "0001-01-01"):
			problems = append(problems, fmt.Sprintf("%s=%q holds a zero time stamp", k, s))
		}
	}
	for k := range goLine {
		if _, ok := pyLine[k]; !ok && k != "timestamp" {
			problems = append(problems, "no "+k+" field (the Go twin's line has one)")
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Issue 16's other flood shapes (item 4) and its thread problem (item 7): flat lists of numbers
// as large as the server accepts, a filter that calls the API before rejecting, and many slow
// requests to a sync route. flood-deep-lists (cases_more.go) is the first shape.

// floodPosts and floodInFlight are the flood of issue 16 item 4: one user keeps 16 posts in
// flight, 32 in all.
const (
	floodPosts    = 32
	floodInFlight = 16
)

// floodResult is what one flood did.
type floodResult struct {
	accepted, rejected, other int
	failClosed                int    // rejections the bridge made because it could not get the plugin's decision
	otherSample               string // one of the other answers
	bystander                 time.Duration
	bystanderPosts            int
	bystanderFailed           int
	took                      time.Duration
}

func (r floodResult) String() string {
	s := fmt.Sprintf("%d rejected (%d of them failing closed), %d accepted, %d other in %.1f s, bystander's slowest of %d posts %.2f s",
		r.rejected, r.failClosed, r.accepted, r.other, r.took.Seconds(), r.bystanderPosts, r.bystander.Seconds())
	if r.bystanderFailed > 0 {
		s += fmt.Sprintf(" (%d failed)", r.bystanderFailed)
	}
	return s
}

// problems are the flood's verdict against the invariants every gating plugin must keep: every
// banned post rejected by the plugin itself (none accepted, none failing closed, no other
// answer), none of the bystander's clean posts failed, the bystander's slowest post within
// floodBystanderLimit (a liveness bound; speed is make bench's).
func (r floodResult) problems() []string {
	var out []string
	if r.accepted > 0 {
		out = append(out, fmt.Sprintf("%d of %d banned posts were accepted", r.accepted, floodPosts))
	}
	if r.failClosed > 0 {
		out = append(out, fmt.Sprintf("%d of %d banned posts were rejected by the bridge failing closed, not by the plugin (its hook did not answer in time)", r.failClosed, floodPosts))
	}
	if r.other > 0 {
		out = append(out, fmt.Sprintf("%d of %d banned posts got neither a rejection nor a 201 (one: %s)", r.other, floodPosts, r.otherSample))
	}
	if r.bystanderFailed > 0 {
		out = append(out, fmt.Sprintf("%d of the other user's %d clean posts failed", r.bystanderFailed, r.bystanderPosts))
	}
	if r.bystander > floodBystanderLimit {
		out = append(out, fmt.Sprintf("another user's post waited %.1f s (limit %.0f s, a third of the hook limit)", r.bystander.Seconds(), floodBystanderLimit.Seconds()))
	}
	return out
}

// flood sends floodPosts banned posts as user1, floodInFlight at a time (post i has body
// bodies[i%len(bodies)], a whole POST /api/v4/posts body), while user2 posts a clean message
// every 0.5 s, and counts the answers.
func (e *env) flood(bodies [][]byte) floodResult {
	var (
		mu  sync.Mutex
		res floodResult
		wg  sync.WaitGroup
	)
	t0 := time.Now()
	jobs := make(chan int)
	for w := 0; w < floodInFlight; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				r, err := e.w.user1.do(http.MethodPost, "/api/v4/posts", bytes.NewReader(bodies[i%len(bodies)]),
					http.Header{"Content-Type": {"application/json"}})
				mu.Lock()
				switch {
				case err != nil:
					res.other++
					res.otherSample = err.Error()
				case r.status == http.StatusCreated:
					res.accepted++
				case rejected(r):
					res.rejected++
					if strings.Contains(string(r.body), "could not check this") {
						res.failClosed++
					}
				default:
					res.other++
					res.otherSample = r.String()
				}
				mu.Unlock()
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		for i := 0; i < floodPosts; i++ {
			jobs <- i
		}
		close(jobs)
		wg.Wait()
		close(done)
	}()
	for {
		select {
		case <-done:
			res.took = time.Since(t0)
			return res
		case <-time.After(500 * time.Millisecond):
		}
		t := time.Now()
		r, err := e.w.post(e.w.user2, "a bystander's clean post", nil)
		res.bystander = max(res.bystander, time.Since(t))
		res.bystanderPosts++
		if err != nil || r.status != http.StatusCreated {
			res.bystanderFailed++
		}
	}
}

// postJSONBody is a whole POST /api/v4/posts body in the e2e channel.
func (e *env) postJSONBody(message string, props map[string]any) []byte {
	b, err := json.Marshal(map[string]any{"channel_id": e.w.channel, "message": message, "props": props})
	if err != nil {
		panic(err) // numbers and lists only
	}
	return b
}

// flatNumbersBody is a banned post whose props hold four flat lists of one-digit numbers, as
// many as fit in the server's request body limit (maxPayload, 300,512 bytes) with a few bytes
// to spare: about 150,000 numbers. The body limit is the one that binds: numbers re-encode to
// as many runes as they were sent, so the props stay far under PostPropsMaxRunes (800,000
// runes of model.StringInterfaceToJSON, which only '<', '>' and '&' can outgrow the body).
func (e *env) flatNumbersBody() (body []byte, numbers int) {
	const lists, spare = 4, 16
	build := func(n int) []byte {
		props := map[string]any{}
		for l := 0; l < lists; l++ {
			items := make([]any, 0, n/lists+1)
			for i := l; i < n; i += lists {
				items = append(items, i%10)
			}
			props[fmt.Sprintf("numbers_%d", l)] = items
		}
		return e.postJSONBody("forbidden flood of flat numbers", props)
	}
	// Each number adds 2 bytes (a digit and a comma).
	n := (maxPayload - spare - len(build(lists))) / 2
	for body = build(n); len(body) > maxPayload-spare; body = build(n) {
		n--
	}
	return body, n
}

// flood-flat-numbers: issue 16 item 4's third shape. user1 keeps 16 banned posts in flight, each
// with props of flat lists of about 150,000 numbers (the largest body the server accepts), 32
// in all, while user2 posts clean messages; first beside the Go twin, then beside the Python
// plugin. The Go twin rejects every banned post; the Python plugin must too (none accepted,
// none failing closed), none of user2's posts may fail, user2's slowest post stays under
// floodBystanderLimit, and the Python plugin still does its job afterwards. Both twins' times
// are printed, not compared (make bench measures speed).
func caseFloodFlatNumbers(e *env, c *caseState) error {
	body, numbers := e.flatNumbersBody()
	c.note("posts of %d bytes, %d numbers", len(body), numbers)
	return e.floodBesideGo(c, body)
}

// floodBesideGo floods with body (a whole banned post) beside the Go twin, then beside the
// Python plugin, notes both, and fails unless the Python plugin kept floodResult.problems'
// invariants and still does its job afterwards. Both twins' times are printed, not compared
// (make bench's real_server_flood_* figures compare them).
func (e *env) floodBesideGo(c *caseState, body []byte) error {
	run := func(p *plugin) (floodResult, error) {
		if err := e.solo(p); err != nil {
			return floodResult{}, err
		}
		return e.flood([][]byte{body}), nil
	}
	g, err := run(e.hellogo)
	if err != nil {
		return err
	}
	if g.accepted != 0 || g.rejected != floodPosts || g.failClosed != 0 {
		return fmt.Errorf("the Go twin: %s (a broken test)", g)
	}
	py, err := run(e.hello)
	if err != nil {
		return err
	}
	c.note("Go: %s; Python: %s", g, py)
	problems := py.problems()
	if err := e.alive(e.hello); err != nil {
		problems = append(problems, "afterwards "+err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// flood-api-calls: issue 16 item 4's second shape, a flood against a filter that calls the API
// before it rejects. examples/moderation is that filter: for a post with a banned word it looks
// up the author and the channel, counts a strike in the KV store (a compare-and-set), looks up
// the log channel and posts a report there as its bot (a CreatePost that runs
// MessageWillBePosted again), and sends the author an ephemeral post.
//
// There is no Go twin: moderation has none, and hello/hellogo make no API call in their filter
// (giving them one would change their documented behaviour). So the bar is what any gating
// plugin must do whatever its language, the invariants a Go plugin kept in issue 16 (0 of 384
// accepted): every banned post rejected by the plugin itself (none accepted, none failing
// closed), none of the bystander's clean posts failed, the bystander's slowest post under
// floodBystanderLimit, and the plugin answering afterwards (a banned post rejected, /moderation
// answers). The flood alternates the two heavy shapes: flood-deep-lists' 282 KB of lists nested
// 40 deep and flood-flat-numbers' flat lists. That the filter really made its API calls is
// checked too: one bot report in the log channel for every post it rejected.
//
// Only moderation decides: the hello pair is disabled meanwhile (the server stops at the first
// plugin that rejects) and hello alone enabled again afterwards.
func caseFloodAPICalls(e *env, c *caseState) error {
	p := e.moderation
	if err := e.deployToken(p); err != nil {
		return fmt.Errorf("mmplug deploy: %w", err)
	}
	defer func() { _ = e.disable(p) }()
	if err := e.noHelloPlugin(); err != nil {
		return err
	}
	if _, err := must(e.w.admin.putJSON("/api/v4/config/patch", map[string]any{
		"PluginSettings": map[string]any{"Plugins": map[string]any{p.id: map[string]any{
			"bannedwords": "forbidden", "action": "reject", "matchwholewords": true,
			"logchannel": "e2e-channel", "exemptusers": "", "exemptroles": "system_admin",
		}}},
	}))(200); err != nil {
		return fmt.Errorf("saving the plugin's settings: %w", err)
	}
	// OnConfigurationChange runs after the config is saved; wait until the word applies.
	if err := eventually(10*time.Second, func() error {
		r, err := e.w.post(e.w.user1, "forbidden, before the flood", nil)
		if err != nil {
			return err
		}
		if !rejected(r) {
			return fmt.Errorf("a post with the banned word set through the config API was %s", postVerdict(r))
		}
		return nil
	}); err != nil {
		return err
	}
	botID, err := e.userID("moderation-bot")
	if err != nil {
		return err
	}
	since := time.Now().UnixMilli()
	flat, _ := e.flatNumbersBody()
	deep := e.postJSONBody("forbidden flood of deep lists", floodProps())
	res := e.flood([][]byte{deep, flat})
	reports, err := e.postsBy(botID, since)
	if err != nil {
		return err
	}
	c.note("posts of %d and %d bytes, alternating; %s; %d bot reports", len(deep), len(flat), res, reports)
	problems := res.problems()
	if decided := res.rejected - res.failClosed; reports != decided {
		problems = append(problems, fmt.Sprintf("the bot posted %d reports for %d posts the plugin rejected (its API calls failed under the flood)", reports, decided))
	}
	r, err := e.w.post(e.w.user1, "forbidden, after the flood", nil)
	if err != nil {
		return err
	}
	if !rejected(r) {
		problems = append(problems, fmt.Sprintf("afterwards a post with the banned word was %s", postVerdict(r)))
	}
	if err := e.alive2(p, "/moderation"); err != nil {
		problems = append(problems, "afterwards "+err.Error())
	}
	if err := e.solo(e.hello); err != nil {
		problems = append(problems, "enabling hello again: "+err.Error())
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// userID is the id of the user with this name.
func (e *env) userID(username string) (string, error) {
	r, err := must(e.w.admin.get("/api/v4/users/username/" + username))(200)
	if err != nil {
		return "", fmt.Errorf("looking up %s: %w", username, err)
	}
	var u struct {
		ID string `json:"id"`
	}
	return u.ID, r.json(&u)
}

// postsBy counts the posts of userID in the e2e channel created since (ms).
func (e *env) postsBy(userID string, since int64) (int, error) {
	r, err := must(e.w.admin.get(fmt.Sprintf("/api/v4/channels/%s/posts?since=%d", e.w.channel, since)))(200)
	if err != nil {
		return 0, err
	}
	var list struct {
		Posts map[string]struct {
			UserID string `json:"user_id"`
		} `json:"posts"`
	}
	if err := r.json(&list); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range list.Posts {
		if p.UserID == userID {
			n++
		}
	}
	return n, nil
}

// Slow requests to a sync route (issue 16 item 7: each in-flight sync handler held an OS thread
// and the pool never shrank, 1,247 threads after 1,500 slow uploads).
const (
	slowRequests = 600
	slowPieces   = 8
	slowPiece    = 2048
	slowGap      = 250 * time.Millisecond
	// syncThreadBound is the most threads the Python process may have while they are in
	// flight: max_sync_handlers (64, hello keeps the default) plus the SDK's own threads.
	syncThreadBound = 64 + 40
)

// slowResult is what one run of slow requests did.
type slowResult struct {
	ok                           int
	failures                     []string
	took                         time.Duration
	threadsBefore, peak, threads int // of the plugin's process: before, the most while in flight, after
}

// slowEchoes sends slowRequests concurrent POST /echo requests to p as user1, each body
// (16 KiB, its own content) trickling in over about 2 s, while counting the threads of the
// process pid (/proc/PID/task) every 20 ms; each answer must be the body with its SHA-256 and
// user1's id, as hello's README specifies.
func (e *env) slowEchoes(p *plugin, pid int) slowResult {
	threads := func() int {
		ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		return len(ents)
	}
	tr := &http.Transport{MaxIdleConnsPerHost: slowRequests}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 90 * time.Second}
	res := slowResult{threadsBefore: threads()}
	res.peak = res.threadsBefore
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			res.peak = max(res.peak, threads())
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	var (
		mu sync.Mutex
		wg sync.WaitGroup
	)
	t0 := time.Now()
	for i := 0; i < slowRequests; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.slowEcho(hc, p, i)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				res.failures = append(res.failures, err.Error())
			} else {
				res.ok++
			}
		}()
	}
	wg.Wait()
	res.took = time.Since(t0)
	close(stop)
	<-sampled
	res.threads = threads()
	sort.Strings(res.failures)
	return res
}

// slowEcho is request i of slowEchoes.
func (e *env) slowEcho(hc *http.Client, p *plugin, i int) error {
	unit := []byte(fmt.Sprintf("request %03d; ", i))
	piece := bytes.Repeat(unit, slowPiece/len(unit)+1)[:slowPiece]
	body := bytes.Repeat(piece, slowPieces)
	pr, pw := io.Pipe()
	go func() {
		for k := 0; k < slowPieces; k++ {
			if k > 0 {
				time.Sleep(slowGap)
			}
			if _, err := pw.Write(piece); err != nil {
				return // the request is over (the client closes the body)
			}
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest(http.MethodPost, e.mm.siteURL()+"/plugins/"+p.id+"/echo", pr)
	if err != nil {
		return err
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Authorization", "Bearer "+e.w.user1.token)
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err := hc.Do(req)
	if err != nil {
		_ = pr.CloseWithError(err)
		return fmt.Errorf("request %d: %w", i, err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("request %d: reading the answer: %w", i, err)
	}
	sum := sha256.Sum256(body)
	switch {
	case resp.StatusCode != http.StatusOK:
		r := &reply{status: resp.StatusCode, body: got}
		return fmt.Errorf("request %d answered %s", i, r)
	case !bytes.Equal(got, body):
		return fmt.Errorf("request %d: the echo is %d bytes, not the %d sent", i, len(got), len(body))
	case resp.Header.Get("X-Sha256") != hex.EncodeToString(sum[:]):
		return fmt.Errorf("request %d: X-Sha256 %q is not the body's", i, resp.Header.Get("X-Sha256"))
	case resp.Header.Get("X-User-Id") != e.w.user1ID:
		return fmt.Errorf("request %d: X-User-Id %q, not user1's %s", i, resp.Header.Get("X-User-Id"), e.w.user1ID)
	}
	return nil
}

// yamuxResets counts the server's "yamux: backlog exceeded" lines so far (server.out): streams
// a plugin opened while 256 were waiting to be accepted, which the server reset.
func (e *env) yamuxResets() int {
	b, _ := os.ReadFile(filepath.Join(e.mm.dir, "server.out"))
	return bytes.Count(b, []byte("yamux: backlog exceeded"))
}

// sync-handler-threads: 600 concurrent POST /echo requests (a sync handler in hello) whose
// bodies trickle in over about 2 s, first to the Go twin, then to the Python plugin. Every
// answer must be right for both, and the Python process must hold no more than
// syncThreadBound threads while they are in flight (sync handlers are bounded by
// Plugin.max_sync_handlers; unbounded, each waiting handler held a thread), and still do its
// job afterwards. The note has both times and Python's thread counts before, at the peak and
// after.
//
// 600 rather than fewer: each plugin request opens two streams to the server's mux broker
// (response writer and request body), and the server's yamux resets a stream opened while 256
// are waiting to be accepted ("yamux: backlog exceeded, forcing connection reset" in
// server.out; the request answers 500). Go's yamux never has more than 256 streams
// unacknowledged; at 300 requests a plugin that does not keep that bound fails only now and
// then, at 600 every time.
func caseSyncHandlerThreads(e *env, c *caseState) error {
	if err := e.solo(e.hellogo); err != nil {
		return err
	}
	goProcs := e.pluginProcs(e.hellogo)
	if len(goProcs) != 1 {
		return fmt.Errorf("the Go twin: %d processes, not 1: %v (a broken test)", len(goProcs), goProcs)
	}
	g := e.slowEchoes(e.hellogo, goProcs[0].pid)
	if len(g.failures) > 0 {
		return fmt.Errorf("the Go twin: %d of %d requests failed, first %s (a broken test)", len(g.failures), slowRequests, g.failures[0])
	}
	if err := e.solo(e.hello); err != nil {
		return err
	}
	_, python, err := e.bridgeAndPython(e.hello)
	if err != nil {
		return err
	}
	resetsBefore := e.yamuxResets()
	py := e.slowEchoes(e.hello, python.pid)
	resets := e.yamuxResets() - resetsBefore
	c.note("%d requests of %d KiB over %.1f s each; Go: all answered in %.1f s (its process: %d threads at most); Python: %d answered right in %.1f s, threads %d before, %d at the peak, %d after",
		slowRequests, slowPieces*slowPiece/1024, (slowPieces-1)*slowGap.Seconds(), g.took.Seconds(), g.peak,
		py.ok, py.took.Seconds(), py.threadsBefore, py.peak, py.threads)
	var problems []string
	if len(py.failures) > 0 {
		problems = append(problems, fmt.Sprintf("%d of %d requests failed (Go: 0), first %s; the server's yamux reset %d streams meanwhile (backlog exceeded)", len(py.failures), slowRequests, py.failures[0], resets))
	}
	if py.peak > syncThreadBound {
		problems = append(problems, fmt.Sprintf("the Python process had %d threads while the requests were in flight (bound %d: max_sync_handlers 64 plus the SDK's own)", py.peak, syncThreadBound))
	}
	if !alivePid(python.pid) {
		problems = append(problems, fmt.Sprintf("the Python process %d is gone", python.pid))
	}
	if err := e.alive(e.hello); err != nil {
		problems = append(problems, "afterwards "+err.Error())
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

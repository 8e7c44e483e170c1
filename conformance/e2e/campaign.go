package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"
)

// The hostile-input campaign (issue 16): generated inputs (campaign_gen.go, campaign_inputs.go)
// run against the Go twin, then against the Python plugin, each alone and freshly started
// (solo), in batches. After each input the invariants are checked:
//
//  1. Python decides what Go decides: the same verdict on a post (a post with "forbidden" in
//     its message rejected by both, others accepted by both with the same stored message and
//     props, read back over REST), on an edit, an upload and a command (the same answer), and
//     on a plugin route (the same status and body);
//  2. the Python plugin still answers afterwards (a banned post rejected, /hello answered,
//     /version 200: alive);
//  3. no identity header can be forged: /echo's X-User-Id (the Mattermost-User-Id the plugin
//     saw) is "" for an anonymous request and e2euser1's id for a logged-in one, whatever
//     headers were sent.
//
// One difference is documented and compared modulo (docs/internals.md, "Strings that are not
// UTF-8"): text that is not UTF-8 (a header's bytes, a path's percent-decoded bytes) reaches
// Python with each invalid sequence replaced by U+FFFD. So header text a route echoes back is
// compared after replacing invalid sequences on both sides (and runs of U+FFFD counted as one:
// Go's json.Marshal writes one U+FFFD per invalid byte, Python's decoder one per maximal
// invalid sequence), and a /kv/<key> whose decoded key is not UTF-8 is sent to the Go twin with
// that key as Python sees it. Such inputs are counted ("compared modulo U+FFFD"). Nothing else
// is normalized but what differs between any two runs of one plugin: ids, request ids.

// campaignConfig is set by main's flags.
type campaignConfig struct {
	count int    // inputs
	seed  uint64 // the generator's seed
	batch int    // inputs per switch of the pair
	only  int    // >= 0: run only this input (replay)
}

// answer is what one input got from one plugin.
type answer struct {
	class    string // the verdict, counted in the summary ("post rejected", "route 200")
	full     string // everything compared
	identity string // an identity violation ("" when none)
	fffd     bool   // compared modulo U+FFFD
}

type divergence struct {
	in     *cinput
	what   string
	go_    string
	python string
}

func caseCampaign(e *env, c *caseState) error {
	cfg := e.campaign
	var idxs []int
	if cfg.only >= 0 {
		idxs = []int{cfg.only}
	} else {
		for i := 0; i < cfg.count; i++ {
			idxs = append(idxs, i)
		}
	}
	dir := filepath.Join(e.work, "campaign")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	answers, err := os.Create(filepath.Join(dir, "verdicts.tsv"))
	if err != nil {
		return err
	}
	defer answers.Close()
	t0 := time.Now()
	counts := map[string]int{}
	var divs []divergence
	fffd, dead := 0, 0
	for start := 0; start < len(idxs); start += cfg.batch {
		batch := idxs[start:min(start+cfg.batch, len(idxs))]
		inputs := make([]*cinput, len(batch))
		for i, idx := range batch {
			inputs[i] = makeInput(cfg.seed, idx, e.w)
		}
		if err := e.solo(e.hellogo); err != nil {
			return fmt.Errorf("starting the Go twin alone: %w", err)
		}
		goAns := make([]answer, len(inputs))
		for i, in := range inputs {
			goIn, modulo := forGoTwin(in)
			a, err := e.runInput(e.hellogo, goIn)
			if err != nil {
				return fmt.Errorf("the Go twin, input %d (%s) (a broken test): %w", in.idx, in.desc, err)
			}
			if a.identity != "" {
				return fmt.Errorf("the Go twin, input %d (%s) (a broken test): %s", in.idx, in.desc, a.identity)
			}
			a.fffd = a.fffd || modulo
			goAns[i] = a
		}
		if err := e.alive(e.hellogo); err != nil {
			return fmt.Errorf("the Go twin after inputs %d-%d (a broken test): %w", batch[0], batch[len(batch)-1], err)
		}
		if err := e.solo(e.hello); err != nil {
			return fmt.Errorf("starting the Python plugin alone: %w", err)
		}
		for i, in := range inputs {
			g := goAns[i]
			counts[in.kind+" "+g.class]++
			fmt.Fprintf(answers, "%d\t%s\t%s\t%s\n", in.idx, in.kind, g.class, in.desc)
			if g.fffd {
				fffd++
			}
			py, err := e.runInput(e.hello, in)
			switch {
			case err != nil:
				divs = append(divs, divergence{in, "Python: " + err.Error(), g.full, ""})
			case py.identity != "":
				divs = append(divs, divergence{in, "identity forged: " + py.identity, g.full, py.full})
			case py.full != g.full:
				divs = append(divs, divergence{in, "Python: " + py.class + "; Go: " + g.class + "; " + firstDifference(g.full, py.full), g.full, py.full})
			}
			if err := e.alive(e.hello); err != nil {
				dead++
				divs = append(divs, divergence{in, "the Python plugin no longer answers afterwards: " + err.Error(), g.full, py.full})
				if err := e.solo(e.hello); err != nil {
					return fmt.Errorf("restarting the Python plugin after input %d: %w", in.idx, err)
				}
			}
		}
		logf("campaign: %d of %d inputs in %.0f s, %d divergences", start+len(batch), len(idxs), time.Since(t0).Seconds(), len(divs))
	}
	took := time.Since(t0)
	summary := campaignSummary(cfg, len(idxs), took, counts, fffd, dead, divs)
	_ = os.WriteFile(filepath.Join(dir, "summary.txt"), []byte(summary), 0o644)
	for _, d := range divs {
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("divergence-%d.txt", d.in.idx)),
			[]byte(describeInput(d.in)+"\n"+d.what+"\n\nGo twin:\n"+d.go_+"\n\nPython:\n"+d.python+"\n"), 0o644)
	}
	for _, l := range strings.Split(strings.TrimSpace(summary), "\n") {
		logf("campaign: %s", l)
	}
	c.note("seed %d, %d inputs in %.0f s, %d compared modulo U+FFFD; %s", cfg.seed, len(idxs), took.Seconds(), fffd, dir)
	if len(divs) > 0 {
		var parts []string
		for i, d := range divs {
			if i == 5 {
				parts = append(parts, fmt.Sprintf("and %d more", len(divs)-5))
				break
			}
			parts = append(parts, fmt.Sprintf("input %d (%s): %s", d.in.idx, d.in.desc, d.what))
		}
		return fmt.Errorf("%d of %d inputs diverged (replay one: -campaign-seed %d -campaign-input N; details in %s): %s",
			len(divs), len(idxs), cfg.seed, dir, strings.Join(parts, "; "))
	}
	return nil
}

func campaignSummary(cfg campaignConfig, n int, took time.Duration, counts map[string]int, fffd, dead int, divs []divergence) string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d, %d inputs (%d boundary inputs first), %.1f s\n", cfg.seed, n, min(n, len(boundaryInputs)), took.Seconds())
	fmt.Fprintf(&b, "divergences %d, Python stopped answering %d times, compared modulo U+FFFD %d\n", len(divs), dead, fffd)
	keys := make([]string, 0, len(counts))
	for k := range counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("verdicts (the Go twin's; Python's were the same unless listed as divergences):\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "  %6d  %s\n", counts[k], k)
	}
	for _, d := range divs {
		fmt.Fprintf(&b, "divergence: input %d (%s): %s\n", d.in.idx, d.in.desc, d.what)
	}
	return b.String()
}

// firstDifference shows where two answers part.
func firstDifference(a, b string) string {
	i := 0
	for i < len(a) && i < len(b) && a[i] == b[i] {
		i++
	}
	from := max(0, i-80)
	cut := func(s string) string {
		if i >= len(s) {
			return fmt.Sprintf("%q<end>", s[from:])
		}
		return fmt.Sprintf("%q", s[from:min(len(s), i+120)])
	}
	return fmt.Sprintf("they differ at byte %d: Go %s, Python %s", i, cut(a), cut(b))
}

// forGoTwin is the input the Go twin gets: the same, except a /kv/<key> whose percent-decoded
// key is not UTF-8, which Go gets as Python sees it (each invalid sequence U+FFFD).
//
// Likewise the body of POST /post, which both plugins post as the message: Go's string(body)
// keeps any bytes, the Python example decodes it as text; when the body is not UTF-8, Go gets
// it with each invalid sequence U+FFFD, the convention docs/internals.md documents.
func forGoTwin(in *cinput) (*cinput, bool) {
	if in.kind == kindRoute && in.path == "/post" && in.method == "POST" && !utf8.Valid(in.body) {
		cp := *in
		cp.body = []byte(lossy(string(in.body)))
		return &cp, true
	}
	if in.kind != kindRoute || !strings.HasPrefix(in.path, "/kv/") {
		return in, false
	}
	dec, err := url.PathUnescape(in.path)
	if err != nil || utf8.ValidString(dec) {
		return in, false
	}
	cp := *in
	var b strings.Builder
	for _, c := range []byte(lossy(dec)) {
		if c == '/' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("-_.~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	cp.path = b.String()
	return &cp, true
}

// lossy replaces each maximal invalid UTF-8 sequence by U+FFFD, as Rust's from_utf8_lossy and
// Python's errors="replace" do (Go's strings.ToValidUTF8 replaces a whole run at once).
func lossy(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r != utf8.RuneError || size > 1 {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		b.WriteRune(utf8.RuneError)
		i += maximalSubpart(s[i:])
	}
	return b.String()
}

func maximalSubpart(s string) int {
	c := s[0]
	need, lo, hi := 0, byte(0x80), byte(0xBF)
	switch {
	case c >= 0xC2 && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c >= 0xE1 && c <= 0xEC, c == 0xEE, c == 0xEF:
		need = 2
	case c == 0xED:
		need, hi = 2, 0x9F
	case c == 0xF0:
		need, lo = 3, 0x90
	case c >= 0xF1 && c <= 0xF3:
		need = 3
	case c == 0xF4:
		need, hi = 3, 0x8F
	default:
		return 1
	}
	n := 1
	for k := 0; k < need && n < len(s); k++ {
		if k > 0 {
			lo, hi = 0x80, 0xBF
		}
		if s[n] < lo || s[n] > hi {
			break
		}
		n++
	}
	return n
}

// modFFFD is text as both sides can agree on it: invalid sequences replaced, and runs of
// U+FFFD as one.
func modFFFD(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	for strings.Contains(s, "\uFFFD\uFFFD") {
		s = strings.ReplaceAll(s, "\uFFFD\uFFFD", "\uFFFD")
	}
	return s
}

var idPattern = regexp.MustCompile(`\b[a-z0-9]{26}\b`)

func noIDs(s string) string { return idPattern.ReplaceAllString(s, "<id>") }

// request sends one raw request for an input: its query appended, its headers, the user's
// token when logged in.
func (e *env) request(in *cinput, method, path string, body []byte, auth bool, extra ...[2]string) (*reply, error) {
	target := path
	if in.query != "" {
		if strings.Contains(target, "?") {
			target += "&" + in.query
		} else {
			target += "?" + in.query
		}
	}
	h := append([][2]string{}, in.headers...)
	h = append(h, extra...)
	if auth {
		h = append(h, [2]string{"Authorization", "Bearer " + e.w.user1.token}, [2]string{"X-Requested-With", "XMLHttpRequest"})
	}
	r, err := raw(e.mm.addr(), method, target, h, body)
	if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		// Go's HTTP server refused the request line or a header and closed the connection
		// with the body unread: the kernel's reset can overtake its 400.
		return &reply{status: 0, body: []byte(err.Error())}, nil
	}
	return r, err
}

// refusedByHTTP tells whether Go's HTTP server itself refused the request (a 400 of its own,
// 431, or the connection closed before an answer), before Mattermost or a plugin saw it.
func refusedByHTTP(r *reply) (answer, bool) {
	if r.status == 0 || r.status == http.StatusRequestHeaderFieldsTooLarge ||
		(r.status == http.StatusBadRequest && bytes.HasPrefix(r.body, []byte("400 Bad Request"))) {
		return answer{class: "refused by Go's HTTP server", full: "refused by Go's HTTP server (its 400 or 431, or the connection closed first)"}, true
	}
	return answer{}, false
}

// runInput runs one input against the plugin p (the only one of the pair enabled).
func (e *env) runInput(p *plugin, in *cinput) (answer, error) {
	switch in.kind {
	case kindPost:
		r, err := e.request(in, "POST", "/api/v4/posts", in.body, true)
		if err != nil {
			return answer{}, err
		}
		if a, ok := refusedByHTTP(r); ok {
			return a, nil
		}
		return e.postAnswer("post", r)
	case kindEdit:
		r, err := must(e.w.post(e.w.user1, "campaign edit target", nil))(http.StatusCreated)
		if err != nil {
			return answer{}, fmt.Errorf("creating the post to edit: %w", err)
		}
		var post struct {
			ID string `json:"id"`
		}
		if err := r.json(&post); err != nil {
			return answer{}, err
		}
		r, err = e.request(in, "PUT", "/api/v4/posts/"+post.ID+"/patch", in.body, true)
		if err != nil {
			return answer{}, err
		}
		if a, ok := refusedByHTTP(r); ok {
			return a, nil
		}
		a, err := e.postAnswer("edit", r)
		if err != nil {
			return a, err
		}
		if r.status != http.StatusOK {
			// The post as it stays.
			stored, err := e.storedPost(post.ID)
			if err != nil {
				return a, err
			}
			a.full += "\nstored: " + stored
		}
		return a, nil
	case kindCommand:
		r, err := e.request(in, "POST", "/api/v4/commands/execute", in.body, true)
		if err != nil {
			return answer{}, err
		}
		if a, ok := refusedByHTTP(r); ok {
			return a, nil
		}
		a := answer{class: fmt.Sprintf("%d", r.status)}
		if r.status == http.StatusOK {
			var resp struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			_ = json.Unmarshal(r.body, &resp)
			text := noIDs(resp.Text)
			switch {
			case strings.HasPrefix(text, "Hello from"):
				a.class = "answered Hello from"
			case strings.HasPrefix(text, "Unknown subcommand"):
				a.class = "answered Unknown subcommand"
			case strings.HasPrefix(text, "Posted"):
				a.class = "answered Posted"
			default:
				a.class = "answered other"
			}
			a.full = fmt.Sprintf("200 %s %q", resp.ResponseType, text)
		} else {
			a.class += " " + r.appErrorID()
			a.full = fmt.Sprintf("%d %s %q", r.status, r.appErrorID(), noIDs(r.appErrorMessage()))
		}
		return a, nil
	case kindUpload:
		return e.uploadAnswer(in)
	case kindRoute:
		return e.routeAnswer(p, in)
	}
	return answer{}, fmt.Errorf("unknown kind %q", in.kind)
}

// postAnswer describes a post's or an edit's outcome: the verdict, and what the server stored.
func (e *env) postAnswer(what string, r *reply) (answer, error) {
	switch {
	case rejected(r):
		return answer{class: "rejected", full: fmt.Sprintf("%s rejected: %q", what, r.appErrorMessage())}, nil
	case r.status == http.StatusCreated || r.status == http.StatusOK:
		var post struct {
			ID string `json:"id"`
		}
		if err := r.json(&post); err != nil || post.ID == "" {
			return answer{class: "accepted, unreadable", full: what + " accepted, unreadable answer " + r.String()}, nil
		}
		stored, err := e.storedPost(post.ID)
		if err != nil {
			return answer{}, err
		}
		return answer{class: "accepted", full: what + " accepted: " + stored}, nil
	default:
		return answer{class: fmt.Sprintf("%d %s", r.status, r.appErrorID()),
			full: fmt.Sprintf("%s answered %d %s", what, r.status, r.appErrorID())}, nil
	}
}

// storedPost is the post as the server stored it, read back over REST: its message and props
// as the server's JSON writes them.
func (e *env) storedPost(id string) (string, error) {
	r, err := must(e.w.user1.get("/api/v4/posts/" + id))(200)
	if err != nil {
		return "", fmt.Errorf("reading post %s back: %w", id, err)
	}
	var post struct {
		Message string          `json:"message"`
		Type    string          `json:"type"`
		Props   json.RawMessage `json:"props"`
	}
	if err := json.Unmarshal(r.body, &post); err != nil {
		// Deeper than this client's decoder allows: the whole answer, ids aside.
		return "unreadable (" + err.Error() + "): " + noIDs(string(r.body)), nil
	}
	return fmt.Sprintf("type %q message %q props %s", post.Type, post.Message, post.Props), nil
}

func (e *env) uploadAnswer(in *cinput) (answer, error) {
	const boundary = "e2eCampaignBoundary0x9F"
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n%s\r\n", boundary, e.w.channel)
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"files\"; filename=\"", boundary)
	buf.Write(in.fileName)
	buf.WriteString("\"\r\nContent-Type: application/octet-stream\r\n\r\ncampaign file\r\n")
	fmt.Fprintf(&buf, "--%s--\r\n", boundary)
	r, err := e.request(in, "POST", "/api/v4/files", buf.Bytes(), true, [2]string{"Content-Type", "multipart/form-data; boundary=" + boundary})
	if err != nil {
		return answer{}, err
	}
	if a, ok := refusedByHTTP(r); ok {
		return a, nil
	}
	if r.status != http.StatusCreated {
		return answer{class: fmt.Sprintf("upload %d %s", r.status, r.appErrorID()),
			full: fmt.Sprintf("upload answered %d %s", r.status, r.appErrorID())}, nil
	}
	var up struct {
		FileInfos []struct {
			ID   string `json:"id"`
			Name string `json:"name"`
		} `json:"file_infos"`
	}
	if err := r.json(&up); err != nil || len(up.FileInfos) != 1 {
		return answer{class: "upload 201, unreadable", full: "upload answered " + noIDs(r.String())}, nil
	}
	msg := "a clean post with a file"
	if in.forbidden {
		msg = "a forbidden post with a file"
	}
	r, err = e.request(in, "POST", "/api/v4/posts", mustJSON(map[string]any{
		"channel_id": e.w.channel, "message": msg, "file_ids": []string{up.FileInfos[0].ID},
	}), true, [2]string{"Content-Type", "application/json"})
	if err != nil {
		return answer{}, err
	}
	a, err := e.postAnswer("post", r)
	a.class = "upload 201, post " + a.class
	a.full = fmt.Sprintf("upload stored the name %q; %s", up.FileInfos[0].Name, a.full)
	return a, err
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// routeAnswer sends a request to a plugin route and describes the answer: status, the body
// (an AppError's id, message and status only: the request id differs), and for /echo what the
// plugin saw (identity, checksum, headers); a /kv/ key stored is read back.
func (e *env) routeAnswer(p *plugin, in *cinput) (answer, error) {
	path := "/plugins/" + p.id + in.path
	r, err := e.request(in, in.method, path, in.body, in.auth)
	if err != nil {
		return answer{}, err
	}
	if a, ok := refusedByHTTP(r); ok {
		return a, nil
	}
	a := answer{class: fmt.Sprintf("%s %d", routeName(in.path), r.status)}
	a.full = describeRouteReply(r)
	if in.path == "/echo" && in.method == "POST" && r.status == http.StatusOK {
		// Anonymous: "". Logged in: e2euser1's id, or "" when the input sent an Authorization
		// header of its own before the token (the server reads the first: not a session).
		ownAuth := false
		for _, h := range in.headers {
			ownAuth = ownAuth || strings.EqualFold(h[0], "Authorization")
		}
		got := r.header.Get("X-User-Id")
		if ok := got == "" && (!in.auth || ownAuth) || got == e.w.user1ID && in.auth; !ok {
			a.identity = fmt.Sprintf("%s saw Mattermost-User-Id %q (logged in: %v, an Authorization header of the input's own: %v)", p.id, got, in.auth, ownAuth)
		}
		ct := r.header.Get("Content-Type")
		var seen map[string][]string
		_ = json.Unmarshal([]byte(r.header.Get("X-Request-Headers")), &seen)
		for k, vs := range seen {
			for i := range vs {
				vs[i] = modFFFD(vs[i])
			}
			seen[k] = vs
		}
		a.fffd = modFFFD(ct) != ct || !utf8.ValidString(strings.Join(headerValues(in), ""))
		a.full = fmt.Sprintf("200 X-User-Id %q, the body intact %v, Content-Type %q, X-Multi %q, headers seen %s",
			r.header.Get("X-User-Id"), bytes.Equal(r.body, in.body), modFFFD(ct), r.header.Values("X-Multi"), mustJSON(seen))
	}
	if strings.HasPrefix(in.path, "/kv/") && in.method == "POST" && r.status == http.StatusNoContent {
		back, err := e.request(&cinput{}, "GET", path, nil, in.auth)
		if err != nil {
			return a, err
		}
		a.full += "; read back " + describeRouteReply(back)
	}
	return a, nil
}

func headerValues(in *cinput) []string {
	var vs []string
	for _, h := range in.headers {
		vs = append(vs, h[1])
	}
	return vs
}

func routeName(path string) string {
	switch {
	case path == "/version", path == "/echo":
		return path
	case strings.HasPrefix(path, "/kv/"):
		return "/kv/<key>"
	}
	return "other path"
}

func describeRouteReply(r *reply) string {
	body := string(r.body)
	var appErr map[string]any
	if json.Unmarshal(r.body, &appErr) == nil && appErr["id"] != nil {
		body = fmt.Sprintf("AppError id=%v message=%q status_code=%v", appErr["id"], noIDs(fmt.Sprint(appErr["message"])), appErr["status_code"])
	}
	if len(body) > 2000 {
		body = body[:2000] + "..."
	}
	return fmt.Sprintf("%d Content-Type %q body %q", r.status, modFFFD(r.header.Get("Content-Type")), body)
}

var errCampaignFlags = errors.New("-campaign must be at least 0 and -campaign-batch at least 1")

// Command plugin-go is the native Go side of `make bench`: a Mattermost plugin with the same
// hook, API calls and HTTP endpoints as bench/plugin-python (the behaviour both follow is in
// bench/README.md). The harness's -bench mode drives both through the real supervisor.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// kvKey holds the 1 KiB value that /api?method=kv_get reads.
const kvKey = "bench-1kib"

// pieceSize is how much /source writes at a time.
const pieceSize = 64 << 10

// Bench implements the benchmark behaviour.
type Bench struct {
	plugin.MattermostPlugin
}

// OnActivate stores the 1 KiB value the KVGet benchmark reads.
func (p *Bench) OnActivate() error {
	if appErr := p.API.KVSet(kvKey, pattern(1024)); appErr != nil {
		return fmt.Errorf("storing %s: %w", kvKey, appErr)
	}
	return nil
}

// MessageWillBePosted modifies every post: a mark on the message and a prop.
func (p *Bench) MessageWillBePosted(_ *plugin.Context, post *model.Post) (*model.Post, string) {
	post.Message += " [checked]"
	post.AddProp("checked_by", "bench")
	return post, ""
}

// MessageWillBeUpdated does the same to every edit: the Python twin's handler for it is
// `async def`, so the pair measures a hook as an async handler gets it.
func (p *Bench) MessageWillBeUpdated(_ *plugin.Context, newPost, _ *model.Post) (*model.Post, string) {
	newPost.Message += " [checked]"
	newPost.AddProp("checked_by", "bench")
	return newPost, ""
}

// ExecuteCommand answers "/bench-kv-in-flight WORKERS CALLS": CALLS KVGets of the 1 KiB value
// shared by WORKERS goroutines, all in flight at once; the answer's text is
// {"seconds": elapsed}. The Python twin does the same with as many coroutines on self.aapi.
func (p *Bench) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	var workers, calls int
	if _, err := fmt.Sscanf(args.Command, "/bench-kv-in-flight %d %d", &workers, &calls); err != nil || workers <= 0 || calls < workers {
		return nil, model.NewAppError("bench", "bench.command", nil, "usage: /bench-kv-in-flight WORKERS CALLS (CALLS >= WORKERS > 0)", http.StatusBadRequest)
	}
	errs := make(chan *model.AppError, workers)
	start := time.Now()
	for w := range workers {
		go func() {
			for range calls/workers + boolInt(w < calls%workers) {
				value, appErr := p.API.KVGet(kvKey)
				if appErr == nil && len(value) != 1024 {
					appErr = model.NewAppError("bench", "bench.kv_get", nil, fmt.Sprintf("%d bytes", len(value)), http.StatusInternalServerError)
				}
				if appErr != nil {
					errs <- appErr
					return
				}
			}
			errs <- nil
		}()
	}
	var failed *model.AppError
	for range workers {
		if appErr := <-errs; appErr != nil && failed == nil {
			failed = appErr
		}
	}
	if failed != nil {
		return nil, failed
	}
	text, _ := json.Marshal(map[string]float64{"seconds": time.Since(start).Seconds()})
	return &model.CommandResponse{Text: string(text)}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ServeHTTP routes the benchmark endpoints.
func (p *Bench) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/api":
		p.apiCalls(w, r)
	case "/sink":
		n, err := io.Copy(io.Discard, r.Body)
		if err != nil {
			http.Error(w, "reading body: "+err.Error(), http.StatusBadRequest)
			return
		}
		reply(w, map[string]any{"size": n})
	case "/source":
		size, err := strconv.Atoi(r.URL.Query().Get("size"))
		if err != nil || size < 0 {
			http.Error(w, "size must be a byte count", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		piece := pattern(pieceSize)
		for sent := 0; sent < size; sent += pieceSize {
			if _, err := w.Write(piece[:min(pieceSize, size-sent)]); err != nil {
				return
			}
		}
	case "/sse":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		for i := range 3 {
			_, _ = fmt.Fprintf(w, "id: %d\ndata: event %d\n\n", i, i)
			w.(http.Flusher).Flush()
		}
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// apiCalls makes ?n= calls of ?method= (kv_get or get_user with ?user_id=) and answers each
// call's duration in nanoseconds, timed around the API call alone.
func (p *Bench) apiCalls(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("n"))
	if err != nil || n <= 0 {
		http.Error(w, "n must be a positive count", http.StatusBadRequest)
		return
	}
	var call func() *model.AppError
	switch q.Get("method") {
	case "kv_get":
		call = func() *model.AppError {
			value, appErr := p.API.KVGet(kvKey)
			if appErr == nil && len(value) != 1024 {
				return model.NewAppError("bench", "bench.kv_get", nil, fmt.Sprintf("%d bytes", len(value)), http.StatusInternalServerError)
			}
			return appErr
		}
	case "get_user":
		userID := q.Get("user_id")
		call = func() *model.AppError {
			_, appErr := p.API.GetUser(userID)
			return appErr
		}
	default:
		http.Error(w, "method must be kv_get or get_user", http.StatusBadRequest)
		return
	}
	ns := make([]int64, n)
	for i := range ns {
		start := time.Now()
		if appErr := call(); appErr != nil {
			http.Error(w, appErr.Error(), http.StatusBadGateway)
			return
		}
		ns[i] = time.Since(start).Nanoseconds()
	}
	reply(w, map[string]any{"ns": ns})
}

func reply(w http.ResponseWriter, doc map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}

// pattern is the benchmark payload: byte i is i*7 mod 256, as in bench/plugin-python.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}

func main() {
	plugin.ClientMain(&Bench{})
}

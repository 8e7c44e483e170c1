package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
	"github.com/mattermost/mattermost/server/public/shared/mlog"
)

// devPollInterval is how often -dev looks for changed files. Polling (not inotify) keeps the
// harness free of platform code; a plugin tree is small.
const devPollInterval = 500 * time.Millisecond

// devServer is `mmplug dev`: the plugin under the real supervisor with the in-memory server,
// reinstalled and reactivated whenever a file of its source changes, with its HTTP routes and
// two helper endpoints (post a message, run a slash command) on a local port.
type devServer struct {
	o      options
	outMu  sync.Mutex
	out    io.Writer
	rec    *recorder
	logger *mlog.Logger

	mu  sync.Mutex // guards the world below, replaced on every reload
	b   *bundle
	api *memAPI
	env *plugin.Environment
}

func runDev(o options) int {
	out := os.Stdout
	d := &devServer{o: o, out: out}
	d.rec = newRecorder()
	d.rec.watch = func(kind, text string) { d.printf(kind, "%s", text) }
	logger, sink, err := newCaptureLogger(d.rec)
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: %v\n", err)
		return 2
	}
	defer sink.close()
	d.logger = logger
	stdLogSink.set(d.rec)

	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", o.port))
	if err != nil {
		fmt.Fprintf(os.Stderr, "harness: -dev: %v\n", err)
		return 2
	}
	src, _ := filepath.Abs(o.plugin)
	fmt.Fprintf(out, "mmplug dev: %s under Mattermost's own plugin supervisor (server/public %s), in-memory server %s\n", src, serverPublicVersion(), o.serverVersion)
	d.load()
	id := d.pluginID()
	base := "http://" + ln.Addr().String()
	fmt.Fprintf(out, "  plugin HTTP:   %s/plugins/%s/\n", base, id)
	fmt.Fprintf(out, "  post:          curl -d '{\"message\":\"hello\"}' %s/dev/post\n", base)
	fmt.Fprintf(out, "  slash command: curl -d '{\"command\":\"/%s\"}' %s/dev/command\n", d.someTrigger(), base)
	fmt.Fprintf(out, "  watching %s for changes; Ctrl-C stops\n", src)

	srv := &http.Server{Handler: d, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.printf("error", "HTTP server: %v", err)
		}
	}()

	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	snapshot := treeSnapshot(src)
	tick := time.NewTicker(devPollInterval)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			d.printf("dev", "stopping")
			_ = srv.Close()
			d.unload()
			_ = logger.Flush()
			_ = logger.Shutdown()
			return 0
		case <-tick.C:
			now := treeSnapshot(src)
			if changed := diffSnapshot(snapshot, now); changed != "" {
				snapshot = now
				d.printf("dev", "%s changed: reloading", changed)
				d.unload()
				d.load()
			}
		}
	}
}

// printf writes one timestamped line. It has its own lock, not d.mu: the recorder calls it from
// the supervisor's goroutines at any time, also while a reload holds d.mu.
func (d *devServer) printf(kind, format string, args ...any) {
	d.outMu.Lock()
	defer d.outMu.Unlock()
	fmt.Fprintf(d.out, "%s %-6s %s\n", time.Now().Format("15:04:05.000"), kind, fmt.Sprintf(format, args...))
}

func (d *devServer) pluginID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.b == nil {
		return "<plugin>"
	}
	return d.b.manifest.Id
}

// someTrigger names a slash command the plugin registered, for the usage lines.
func (d *devServer) someTrigger() string {
	if _, api, _, ok := d.world(); ok {
		if triggers := api.triggers(); len(triggers) > 0 {
			return triggers[0]
		}
	}
	return "trigger"
}

// load installs the plugin from source and activates it; a failure is printed, and the next
// change tries again.
func (d *devServer) load() {
	b, err := prepareBundle(bundleOptions{pluginDir: d.o.plugin, bridge: d.o.bridge, venv: d.o.venv})
	if err != nil {
		d.printf("error", "installing the plugin: %v", err)
		return
	}
	api, env, err := newWorld(b, d.o, d.rec, d.logger)
	if err != nil {
		b.remove()
		d.printf("error", "creating the environment: %v", err)
		return
	}
	api.setConfig(settingDefaults(b.manifest))
	d.mu.Lock()
	d.b, d.api, d.env = b, api, env
	d.mu.Unlock()
	d.printf("hook", "OnConfigurationChange + OnActivate ...")
	start := time.Now()
	_, activated, err := env.Activate(b.manifest.Id)
	switch {
	case err != nil:
		d.printf("error", "activation failed: %v", err)
	case !activated:
		d.printf("error", "activation failed (plugin state %d)", env.GetPluginState(b.manifest.Id))
	default:
		hooks := "?"
		if h, err := env.HooksForPlugin(b.manifest.Id); err == nil {
			if impl, err := h.Implemented(); err == nil {
				slices.Sort(impl)
				hooks = strings.Join(impl, ", ")
			}
		}
		d.printf("hook", "%s active after %s; implements %s", b.manifest.Id, time.Since(start).Round(time.Millisecond), hooks)
	}
}

func (d *devServer) unload() {
	d.mu.Lock()
	b, env := d.b, d.env
	d.b, d.api, d.env = nil, nil, nil
	d.mu.Unlock()
	if env != nil {
		d.printf("hook", "OnDeactivate")
		env.Shutdown()
	}
	if b != nil {
		b.remove()
	}
}

// world returns the current world, or false while none is loaded.
func (d *devServer) world() (*bundle, *memAPI, *plugin.Environment, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.b, d.api, d.env, d.env != nil
}

func (d *devServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, api, env, ok := d.world()
	if !ok {
		http.Error(w, "the plugin is not loaded (see the dev server's output)", http.StatusServiceUnavailable)
		return
	}
	id := b.manifest.Id
	prefix := "/plugins/" + id
	switch {
	case r.URL.Path == prefix || strings.HasPrefix(r.URL.Path, prefix+"/"):
		d.servePlugin(w, r, env, id, prefix)
	case r.URL.Path == "/dev/post" && r.Method == http.MethodPost:
		var in struct {
			Message   string         `json:"message"`
			ChannelID string         `json:"channel_id"`
			Props     map[string]any `json:"props"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			http.Error(w, "body must be JSON like {\"message\": \"hi\"}: "+err.Error(), http.StatusBadRequest)
			return
		}
		if in.ChannelID == "" {
			in.ChannelID = harnessChannelID
		}
		post := &model.Post{ChannelId: in.ChannelID, UserId: harnessUserID, Message: in.Message}
		post.SetProps(in.Props)
		d.printf("hook", "MessageWillBePosted %q", in.Message)
		created, reason, appErr := api.createPost(post)
		if appErr != nil {
			d.printf("hook", "post rejected: %s", appErr.Message)
			writeJSON(w, http.StatusBadRequest, map[string]any{"rejected": reason, "error": appErr})
			return
		}
		d.printf("hook", "post stored: %q props %s", created.Message, jsonText(created.GetProps()))
		writeJSON(w, http.StatusCreated, created)
	case r.URL.Path == "/dev/command" && r.Method == http.MethodPost:
		var in struct {
			Command string `json:"command"`
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || !strings.HasPrefix(in.Command, "/") {
			http.Error(w, "body must be JSON like {\"command\": \"/hello\"}", http.StatusBadRequest)
			return
		}
		d.printf("hook", "ExecuteCommand %q", in.Command)
		t := &caseT{b: b, id: id, api: api, env: env, rec: d.rec, logger: d.logger, opts: d.o, timeout: d.o.caseTimeout}
		resp, appErr, failed := devCommand(t, in.Command)
		switch {
		case failed:
			writeJSON(w, http.StatusBadGateway, map[string]any{"error": "the hook call failed; see the dev server's output"})
		case appErr != nil:
			d.printf("hook", "ExecuteCommand error %d: %s", appErr.StatusCode, appErr.Message)
			writeJSON(w, appErr.StatusCode, appErr)
		default:
			if resp != nil {
				d.printf("hook", "ExecuteCommand reply (%s): %s", resp.ResponseType, resp.Text)
			}
			writeJSON(w, http.StatusOK, resp)
		}
	default:
		http.Error(w, fmt.Sprintf("mmplug dev serves %s/..., POST /dev/post and POST /dev/command", prefix), http.StatusNotFound)
	}
}

// devCommand runs ExecuteCommand; failed reports a transport failure (already printed).
func devCommand(t *caseT, text string) (resp *model.CommandResponse, appErr *model.AppError, failed bool) {
	defer func() {
		if r := recover(); r != nil {
			if r != errFatal {
				t.rec.fail("ExecuteCommand panicked: %v", r)
			}
			failed = true
		}
	}()
	resp, appErr = t.command(text)
	return resp, appErr, false
}

func (d *devServer) servePlugin(w http.ResponseWriter, r *http.Request, env *plugin.Environment, id, prefix string) {
	h, err := env.HooksForPlugin(id)
	if err != nil {
		http.Error(w, "the plugin is not active: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	// As the server does: the plugin sees the path without /plugins/{id}, and the user id.
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, prefix)
	r2.URL.RawPath = ""
	if user := r.Header.Get("X-Dev-User-Id"); user != "" {
		r2.Header.Set("Mattermost-User-Id", user)
	} else {
		r2.Header.Set("Mattermost-User-Id", harnessUserID)
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	start := time.Now()
	h.ServeHTTP(&plugin.Context{RequestId: model.NewId(), IPAddress: r.RemoteAddr, UserAgent: r.UserAgent()}, sw, r2)
	d.printf("hook", "ServeHTTP %s %s -> %d (%s)", r.Method, r2.URL.RequestURI(), sw.status, time.Since(start).Round(time.Millisecond))
}

// statusWriter remembers the status for the log line and keeps streaming (Flush) working.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// settingDefaults is the plugin configuration a fresh server gives the plugin: each
// settings_schema default.
func settingDefaults(m *model.Manifest) map[string]any {
	cfg := map[string]any{}
	if m.SettingsSchema == nil {
		return cfg
	}
	for _, s := range m.SettingsSchema.Settings {
		if s != nil && s.Key != "" && s.Default != nil {
			cfg[s.Key] = s.Default
		}
	}
	return cfg
}

// treeSnapshot maps each file of the plugin's source (minus environments and caches) to its
// size and modification time.
func treeSnapshot(root string) map[string]string {
	snap := map[string]string{}
	_ = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if path != root && (skipDirs[d.Name()] || d.Name() == "dist" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if info, err := d.Info(); err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(root, path)
			snap[rel] = fmt.Sprintf("%d/%d", info.Size(), info.ModTime().UnixNano())
		}
		return nil
	})
	return snap
}

// diffSnapshot names one changed, added or removed file, or "" when nothing changed.
func diffSnapshot(old, now map[string]string) string {
	for k, v := range now {
		if old[k] != v {
			return k
		}
	}
	for k := range old {
		if _, ok := now[k]; !ok {
			return k
		}
	}
	return ""
}

package main

//go:generate go run ./gencatchall

import (
	"encoding/json"
	"fmt"
	"net/http"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// memAPI is the in-memory server behind the supervisor: the plugin.API the plugin calls back
// into. It implements what the hello cases need and, in memapi_world.go, what plugins built on
// the SDK's helpers call; every other method comes from the generated
// catchAll, which records the call as a case failure and answers with an AppError instead of
// crashing (see gencatchall for why nothing here embeds a nil plugin.API).
type memAPI struct {
	catchAll
	world       // guarded by mu, like the maps below (memapi_world.go)
	interactive // trigger ids and dialogs; guarded by mu (memapi_interactive.go)

	rec *recorder

	// env is the Environment this API serves; CreatePost runs MessageWillBePosted through it,
	// re-entering the plugin exactly as the server does.
	env *plugin.Environment

	serverVersion string
	bundlePath    string

	mu         sync.Mutex
	config     []byte // the plugin's configuration as JSON
	kv         map[string][]byte
	kvFailures map[string]*model.AppError // keys whose KVGet/KVSet answer this error
	posts      map[string]*model.Post
	postOrder  []string
	commands   map[string]*model.Command // by trigger
	users      map[string]*model.User
	streams    map[string]received // what the byte-stream methods read (streams.go)
}

// The compile-time proof that memAPI (own methods + generated catch-all) is a full plugin.API.
var _ plugin.API = (*memAPI)(nil)

func newMemAPI(rec *recorder, serverVersion, bundlePath string) *memAPI {
	m := &memAPI{
		catchAll:      catchAll{rec: rec},
		rec:           rec,
		serverVersion: serverVersion,
		bundlePath:    bundlePath,
		config:        []byte("{}"),
		kv:            map[string][]byte{},
		kvFailures:    map[string]*model.AppError{},
		posts:         map[string]*model.Post{},
		commands:      map[string]*model.Command{},
		users:         map[string]*model.User{},
	}
	m.seedWorld()
	return m
}

// guard turns a panic in our own method into a recorded failure: these methods run on a net/rpc
// goroutine of the supervisor that has no recover, so a panic would kill the harness.
func (m *memAPI) guard(method string) {
	if r := recover(); r != nil {
		m.rec.fail("memapi %s panicked: %v\n%s", method, r, debug.Stack())
	}
}

func (m *memAPI) setConfig(cfg map[string]any) {
	b, err := json.Marshal(cfg)
	if err != nil {
		m.rec.fail("encoding plugin configuration: %v", err)
		return
	}
	m.mu.Lock()
	m.config = b
	m.mu.Unlock()
}

func (m *memAPI) addUser(u *model.User) {
	m.mu.Lock()
	m.users[u.Id] = u
	m.mu.Unlock()
}

func (m *memAPI) failKV(key string, appErr *model.AppError) {
	m.mu.Lock()
	m.kvFailures[key] = appErr
	m.mu.Unlock()
}

func (m *memAPI) kvValue(key string) ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.kv[key]
	return v, ok
}

func (m *memAPI) post(id string) *model.Post {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.posts[id]
}

func (m *memAPI) allPosts() []*model.Post {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*model.Post, 0, len(m.postOrder))
	for _, id := range m.postOrder {
		out = append(out, m.posts[id])
	}
	return out
}

// triggers lists the registered slash commands' triggers, sorted.
func (m *memAPI) triggers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.commands))
	for t := range m.commands {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func (m *memAPI) command(trigger string) *model.Command {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.commands[trigger]
}

// ---- plugin.API methods the cases use ----

func (m *memAPI) GetServerVersion() string {
	defer m.guard("GetServerVersion")
	m.rec.call("GetServerVersion")
	return m.serverVersion
}

func (m *memAPI) GetBundlePath() (string, error) {
	defer m.guard("GetBundlePath")
	m.rec.call("GetBundlePath")
	return m.bundlePath, nil
}

// LoadPluginConfiguration decodes the configured JSON into dest, as the server does with the
// plugin's section of PluginSettings.Plugins.
func (m *memAPI) LoadPluginConfiguration(dest any) error {
	defer m.guard("LoadPluginConfiguration")
	m.rec.call("LoadPluginConfiguration")
	m.mu.Lock()
	cfg := m.config
	m.mu.Unlock()
	if err := json.Unmarshal(cfg, dest); err != nil {
		return fmt.Errorf("decoding plugin configuration: %w", err)
	}
	return nil
}

func (m *memAPI) RegisterCommand(command *model.Command) error {
	defer m.guard("RegisterCommand")
	m.rec.call("RegisterCommand")
	if command == nil || command.Trigger == "" {
		return &model.AppError{Id: "memapi.register_command.invalid", Message: "command without a trigger", StatusCode: http.StatusBadRequest, Where: "MemAPI.RegisterCommand"}
	}
	m.mu.Lock()
	m.commands[strings.ToLower(command.Trigger)] = command
	m.mu.Unlock()
	return nil
}

func (m *memAPI) UnregisterCommand(_, trigger string) error {
	defer m.guard("UnregisterCommand")
	m.rec.call("UnregisterCommand")
	m.mu.Lock()
	delete(m.commands, strings.ToLower(trigger))
	m.mu.Unlock()
	return nil
}

func (m *memAPI) GetUser(userID string) (*model.User, *model.AppError) {
	defer m.guard("GetUser")
	m.rec.call("GetUser")
	m.mu.Lock()
	defer m.mu.Unlock()
	if u, ok := m.users[userID]; ok {
		return u, nil
	}
	return nil, &model.AppError{Id: "app.user.missing_account.const", Message: "user not found", StatusCode: http.StatusNotFound, Where: "MemAPI.GetUser"}
}

func (m *memAPI) KVSet(key string, value []byte) *model.AppError {
	defer m.guard("KVSet")
	m.rec.call("KVSet")
	m.mu.Lock()
	defer m.mu.Unlock()
	if appErr, ok := m.kvFailures[key]; ok {
		return appErr
	}
	delete(m.kvExpiry, key)
	// The server treats a nil value as a delete.
	if value == nil {
		delete(m.kv, key)
		return nil
	}
	m.kv[key] = append([]byte(nil), value...)
	return nil
}

func (m *memAPI) KVGet(key string) ([]byte, *model.AppError) {
	defer m.guard("KVGet")
	m.rec.call("KVGet")
	m.mu.Lock()
	defer m.mu.Unlock()
	if appErr, ok := m.kvFailures[key]; ok {
		return nil, appErr
	}
	m.expiredLocked(key)
	return m.kv[key], nil
}

func (m *memAPI) KVDelete(key string) *model.AppError {
	defer m.guard("KVDelete")
	m.rec.call("KVDelete")
	m.mu.Lock()
	delete(m.kv, key)
	delete(m.kvExpiry, key)
	m.mu.Unlock()
	return nil
}

// CreatePost follows the server's path: run MessageWillBePosted through the environment (which
// calls back into the plugin while this API call is still in flight), then store the result.
func (m *memAPI) CreatePost(post *model.Post) (*model.Post, *model.AppError) {
	defer m.guard("CreatePost")
	m.rec.call("CreatePost")
	created, _, appErr := m.createPost(post)
	return created, appErr
}

// createPost is CreatePost for both the plugin and the harness; it also returns the rejection
// reason so cases can check it.
func (m *memAPI) createPost(post *model.Post) (*model.Post, string, *model.AppError) {
	if post == nil {
		return nil, "", &model.AppError{Id: "api.context.invalid_body_param.app_error", Message: "post is required", StatusCode: http.StatusBadRequest, Where: "MemAPI.CreatePost"}
	}
	if post.ChannelId == "" {
		return nil, "", &model.AppError{Id: "model.post.is_valid.channel_id.app_error", Message: "invalid channel id", StatusCode: http.StatusBadRequest, Where: "MemAPI.CreatePost"}
	}
	post = post.Clone()
	if post.Id == "" {
		post.Id = model.NewId()
	}
	if post.CreateAt == 0 {
		post.CreateAt = model.GetMillis()
	}
	post.UpdateAt = post.CreateAt

	rejection := ""
	if m.env != nil {
		pluginContext := &plugin.Context{RequestId: model.NewId()}
		m.env.RunMultiPluginHook(func(hooks plugin.Hooks, _ *model.Manifest) bool {
			replacement, reason := hooks.MessageWillBePosted(pluginContext, post.ForPlugin())
			if reason != "" {
				rejection = reason
				return false
			}
			if replacement != nil {
				post = replacement
			}
			return true
		}, plugin.MessageWillBePostedID)
	}
	if rejection != "" {
		// The server's own wording and status for a plugin rejection.
		return nil, rejection, &model.AppError{Id: "Post rejected by plugin. " + rejection, Message: "Post rejected by plugin. " + rejection, StatusCode: http.StatusBadRequest, Where: "createPost"}
	}

	m.mu.Lock()
	if _, exists := m.posts[post.Id]; !exists {
		m.postOrder = append(m.postOrder, post.Id)
	}
	m.posts[post.Id] = post
	m.mu.Unlock()
	return post.Clone(), "", nil
}

func (m *memAPI) LogDebug(msg string, keyValuePairs ...any) {
	defer m.guard("LogDebug")
	m.rec.pluginLog("debug", msg, keyValuePairs)
}

func (m *memAPI) LogInfo(msg string, keyValuePairs ...any) {
	defer m.guard("LogInfo")
	m.rec.pluginLog("info", msg, keyValuePairs)
}

func (m *memAPI) LogWarn(msg string, keyValuePairs ...any) {
	defer m.guard("LogWarn")
	m.rec.pluginLog("warn", msg, keyValuePairs)
}

func (m *memAPI) LogError(msg string, keyValuePairs ...any) {
	defer m.guard("LogError")
	m.rec.pluginLog("error", msg, keyValuePairs)
}

// ---- the catch-all's behaviour (its methods are generated into catchall_generated.go) ----

// catchAll answers every plugin.API method memAPI does not implement.
type catchAll struct {
	rec *recorder
}

func (c *catchAll) unimplemented(method string) {
	c.rec.call(method)
	c.rec.fail("the plugin called API method %s, which the harness's in-memory server does not implement", method)
}

func (c *catchAll) notImplementedAppError(method string) *model.AppError {
	return &model.AppError{
		Id:         "mmplug.harness.not_implemented",
		Message:    "API method " + method + " is not implemented by the conformance harness",
		StatusCode: http.StatusNotImplemented,
		Where:      "MemAPI." + method,
	}
}

// ---- recorder: what happened during one case ----

type logLine struct {
	Source string // "api" (LogInfo & co.) or "server" (the supervisor's log: plugin stderr and more)
	Level  string
	Msg    string
	KV     []string
}

func (l logLine) String() string {
	s := fmt.Sprintf("[%s %s] %s", l.Source, l.Level, l.Msg)
	if len(l.KV) > 0 {
		s += " " + strings.Join(l.KV, " ")
	}
	return s
}

// brief is the line for people watching (-dev): level and message with the plugin's own
// fields, without the server's bookkeeping (plugin_id, and wrapped_extras, where the server
// folds the hclog fields of a stderr line into one unreadable string).
func (l logLine) brief() string {
	s := fmt.Sprintf("%-5s %s", l.Level, l.Msg)
	for _, kv := range l.KV {
		if !strings.HasPrefix(kv, "plugin_id=") && !strings.HasPrefix(kv, "wrapped_extras=") {
			s += " " + kv
		}
	}
	return s
}

// supervisorMessages are go-plugin's own lifecycle lines (message prefixes), not plugin output.
var supervisorMessages = []string{
	"starting plugin", "plugin started", "waiting for RPC address", "using plugin", "plugin address",
	"plugin process exited", "plugin exited", "error closing client during Kill", "plugin failed to exit gracefully",
}

// pluginLine reports whether the line is the plugin's own output rather than the supervisor's
// bookkeeping: API log calls, and server lines (the plugin's stderr, forwarded at the level the
// plugin gave it) other than go-plugin's lifecycle messages.
func (l logLine) pluginLine() bool {
	if l.Source == "api" {
		return true
	}
	for _, prefix := range supervisorMessages {
		if strings.HasPrefix(l.Msg, prefix) {
			return false
		}
	}
	return true
}

type recorder struct {
	mu       sync.Mutex
	failures []string
	calls    map[string]int
	logs     []logLine
	// watch, when set (before the world starts; never changed after), sees every API call,
	// log line and failure as it happens: -dev prints them.
	watch func(kind, text string)
}

func (r *recorder) notify(kind, text string) {
	if r.watch != nil {
		r.watch(kind, text)
	}
}

func newRecorder() *recorder {
	return &recorder{calls: map[string]int{}}
}

func (r *recorder) fail(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.failures = append(r.failures, msg)
	r.mu.Unlock()
	r.notify("fail", msg)
}

func (r *recorder) failureList() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.failures...)
}

func (r *recorder) call(method string) {
	r.mu.Lock()
	r.calls[method]++
	r.mu.Unlock()
	r.notify("api", method)
}

func (r *recorder) callCount(method string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[method]
}

func (r *recorder) pluginLog(level, msg string, kv []any) {
	pairs := make([]string, 0, (len(kv)+1)/2)
	for i := 0; i < len(kv); i += 2 {
		if i+1 < len(kv) {
			pairs = append(pairs, fmt.Sprintf("%v=%v", kv[i], kv[i+1]))
		} else {
			pairs = append(pairs, fmt.Sprintf("%v=<missing value>", kv[i]))
		}
	}
	line := logLine{Source: "api", Level: level, Msg: msg, KV: pairs}
	r.mu.Lock()
	r.calls["Log"+strings.ToUpper(level[:1])+level[1:]]++
	r.logs = append(r.logs, line)
	r.mu.Unlock()
	r.notify("log", line.brief())
}

func (r *recorder) serverLog(level, msg string, fields map[string]any) {
	keys := make([]string, 0, len(fields))
	for k := range fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pairs := make([]string, 0, len(keys))
	for _, k := range keys {
		pairs = append(pairs, fmt.Sprintf("%s=%v", k, fields[k]))
	}
	line := logLine{Source: "server", Level: level, Msg: msg, KV: pairs}
	r.mu.Lock()
	r.logs = append(r.logs, line)
	r.mu.Unlock()
	if line.pluginLine() {
		r.notify("log", line.brief())
	}
}

func (r *recorder) logLines() []logLine {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]logLine(nil), r.logs...)
}

// hasLog reports whether any log line (from either source) at level has a message containing
// text. Plugins may log through the API (LogInfo) or through stderr (the Python SDK's logger);
// both reach the server's log, so both count.
func (r *recorder) hasLog(level, text string) bool {
	for _, l := range r.logLines() {
		if strings.EqualFold(l.Level, level) && strings.Contains(l.Msg, text) {
			return true
		}
	}
	return false
}

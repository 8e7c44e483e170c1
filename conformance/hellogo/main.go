// Command hellogo is the hello example as a native Go Mattermost plugin.
//
// It behaves exactly like examples/hello/plugin.py (the behaviour is specified in
// examples/hello/README.md), so the conformance harness can run the same cases against both:
// passing here proves the harness, and the pair is the Go-vs-Python benchmark baseline.
//
// Build the bundle executable with:
//
//	go build -o <bundle>/server/dist/plugin-linux-amd64 ./conformance/hellogo
//
// (the harness does this itself when given -plugin conformance/hellogo).
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// configuration is the plugin's settings as LoadPluginConfiguration returns them.
type configuration struct {
	FailActivation bool
}

// Hello implements the hello behaviour.
type Hello struct {
	plugin.MattermostPlugin

	mu     sync.RWMutex
	config configuration
}

// OnConfigurationChange reloads the settings. The Go plugin runtime also calls it once before
// OnActivate, which is why OnActivate can read FailActivation.
func (p *Hello) OnConfigurationChange() error {
	var c configuration
	if err := p.API.LoadPluginConfiguration(&c); err != nil {
		return fmt.Errorf("loading configuration: %w", err)
	}
	p.mu.Lock()
	p.config = c
	p.mu.Unlock()
	return nil
}

func (p *Hello) settings() configuration {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.config
}

// OnActivate refuses to start when configured to, else registers /hello.
func (p *Hello) OnActivate() error {
	if p.settings().FailActivation {
		return errors.New("activation refused by configuration")
	}
	if err := p.API.RegisterCommand(&model.Command{
		Trigger:          "hello",
		AutoComplete:     true,
		AutoCompleteDesc: "Say hello, fail on purpose, or create a post",
		AutoCompleteHint: "[fail|post]",
		DisplayName:      "Hello",
	}); err != nil {
		return fmt.Errorf("registering /hello: %w", err)
	}
	p.API.LogInfo("hello activated")
	return nil
}

// OnDeactivate logs, so the harness can see that deactivation reached the plugin.
func (p *Hello) OnDeactivate() error {
	p.API.LogInfo("hello deactivated")
	return nil
}

// MessageWillBePosted rejects posts containing "forbidden" and stamps all others.
func (p *Hello) MessageWillBePosted(_ *plugin.Context, post *model.Post) (*model.Post, string) {
	if strings.Contains(post.Message, "forbidden") {
		return nil, "not allowed here"
	}
	post.AddProp("checked_by", "hello")
	return post, ""
}

// ExecuteCommand answers /hello, /hello fail and /hello post.
func (p *Hello) ExecuteCommand(_ *plugin.Context, args *model.CommandArgs) (*model.CommandResponse, *model.AppError) {
	fields := strings.Fields(args.Command)
	sub := ""
	if len(fields) > 1 {
		sub = fields[1]
	}
	switch sub {
	case "":
		return ephemeral("Hello from " + p.API.GetServerVersion()), nil
	case "fail":
		// SkipTranslation: the server shows Message as it is; otherwise it would translate
		// Id through its i18n bundle, which has no "hello.fail", and show the id. The Python
		// twin's PluginAPIError sets it by default.
		return nil, &model.AppError{
			Id:              "hello.fail",
			Message:         "hello failed on purpose",
			DetailedError:   "details",
			StatusCode:      http.StatusTeapot,
			Where:           "Hello.ExecuteCommand",
			SkipTranslation: true,
		}
	case "post":
		created, appErr := p.API.CreatePost(&model.Post{
			ChannelId: args.ChannelId,
			UserId:    args.UserId,
			Message:   "posted by /hello",
		})
		if appErr != nil {
			return nil, appErr
		}
		return ephemeral("Posted " + created.Id), nil
	default:
		return ephemeral("Unknown subcommand " + sub + ": try /hello, /hello fail or /hello post"), nil
	}
}

func ephemeral(text string) *model.CommandResponse {
	return &model.CommandResponse{ResponseType: model.CommandResponseTypeEphemeral, Text: text}
}

// ServeHTTP routes the plugin's HTTP endpoints (paths are relative to /plugins/{id}).
func (p *Hello) ServeHTTP(_ *plugin.Context, w http.ResponseWriter, r *http.Request) {
	path := r.URL.Path
	switch {
	case path == "/version" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, p.API.GetServerVersion())
	case path == "/echo" && r.Method == http.MethodPost:
		p.echo(w, r)
	case strings.HasPrefix(path, "/kv/") && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		p.kv(w, r, strings.TrimPrefix(path, "/kv/"))
	case path == "/post" && r.Method == http.MethodPost:
		p.post(w, r)
	default:
		textResponse(w, http.StatusNotFound, "not found")
	}
}

// echo answers the request body unchanged, with its checksum and what the plugin saw.
func (p *Hello) echo(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		textResponse(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	seen, err := json.Marshal(r.Header)
	if err != nil {
		textResponse(w, http.StatusInternalServerError, err.Error())
		return
	}
	sum := sha256.Sum256(body)
	contentType := r.Header.Get("Content-Type")
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Sha256", hex.EncodeToString(sum[:]))
	h.Set("X-Request-Headers", string(seen))
	h.Set("X-User-Id", r.Header.Get("Mattermost-User-Id"))
	h.Add("X-Multi", "a")
	h.Add("X-Multi", "b")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// kv stores (POST) or reads (GET) a key; a server AppError is answered as 502 with its fields.
func (p *Hello) kv(w http.ResponseWriter, r *http.Request, key string) {
	if key == "" {
		textResponse(w, http.StatusBadRequest, "missing key")
		return
	}
	if r.Method == http.MethodPost {
		value, err := io.ReadAll(r.Body)
		if err != nil {
			textResponse(w, http.StatusBadRequest, "reading body: "+err.Error())
			return
		}
		if appErr := p.API.KVSet(key, value); appErr != nil {
			appErrorResponse(w, appErr)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		return
	}
	value, appErr := p.API.KVGet(key)
	if appErr != nil {
		appErrorResponse(w, appErr)
		return
	}
	if len(value) == 0 {
		// Missing and empty are the same answer: the Python SDK cannot tell them apart.
		textResponse(w, http.StatusNotFound, "not found")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(value)
}

// post creates a post from the body (the message) in channel ?channel_id= as the calling user,
// then records it in the KV store: two API calls made from inside a hook.
func (p *Hello) post(w http.ResponseWriter, r *http.Request) {
	message, err := io.ReadAll(r.Body)
	if err != nil {
		textResponse(w, http.StatusBadRequest, "reading body: "+err.Error())
		return
	}
	created, appErr := p.API.CreatePost(&model.Post{
		ChannelId: r.URL.Query().Get("channel_id"),
		UserId:    r.Header.Get("Mattermost-User-Id"),
		Message:   string(message),
	})
	if appErr != nil {
		appErrorResponse(w, appErr)
		return
	}
	if appErr := p.API.KVSet("post:"+created.Id, message); appErr != nil {
		appErrorResponse(w, appErr)
		return
	}
	textResponse(w, http.StatusCreated, created.Id)
}

func textResponse(w http.ResponseWriter, status int, text string) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, text)
}

// appErrorResponse answers 502 with every AppError field the wire carries. The keys are spelled
// out because model.AppError's own JSON form hides Where.
func appErrorResponse(w http.ResponseWriter, appErr *model.AppError) {
	body, _ := json.Marshal(map[string]any{
		"id":             appErr.Id,
		"message":        appErr.Message,
		"detailed_error": appErr.DetailedError,
		"request_id":     appErr.RequestId,
		"status_code":    appErr.StatusCode,
		"where":          appErr.Where,
	})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write(body)
}

func main() {
	plugin.ClientMain(&Hello{})
}

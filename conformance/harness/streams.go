package main

// The in-memory server's byte-stream API methods, for the stream cases: each reads its
// io.Reader to the end (as the server does) and records what it saw, so a case can check that
// every byte arrived, in order, through the bridge's broker streams.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// received is what a stream method read: its size and SHA-256.
type received struct {
	size   int64
	sha256 string
}

func readAll(r io.Reader) (received, []byte, error) {
	var buf bytes.Buffer
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(&buf, h), r)
	return received{size: n, sha256: hex.EncodeToString(h.Sum(nil))}, buf.Bytes(), err
}

func (m *memAPI) recordStream(method string, got received) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.streams == nil {
		m.streams = map[string]received{}
	}
	m.streams[method] = got
}

func (m *memAPI) stream(method string) (received, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	got, ok := m.streams[method]
	return got, ok
}

func (m *memAPI) InstallPlugin(file io.Reader, replace bool) (*model.Manifest, *model.AppError) {
	defer m.guard("InstallPlugin")
	got, _, err := readAll(file)
	if err != nil {
		return nil, model.NewAppError("InstallPlugin", "harness.install.read", nil, err.Error(), http.StatusBadRequest)
	}
	if !replace {
		m.rec.fail("InstallPlugin: replace = false, the plugin sent true")
	}
	m.recordStream("InstallPlugin", got)
	return &model.Manifest{Id: "installed-" + got.sha256[:8], Version: strconv.FormatInt(got.size, 10)}, nil
}

func (m *memAPI) UploadData(us *model.UploadSession, rd io.Reader) (*model.FileInfo, error) {
	defer m.guard("UploadData")
	got, _, err := readAll(rd)
	if err != nil {
		return nil, err
	}
	m.recordStream("UploadData", got)
	return &model.FileInfo{Id: us.Id, Name: got.sha256, Size: got.size}, nil
}

// PluginHTTP answers as another plugin would: 201, headers that show what arrived, and the
// request body reversed (so the answer's checksum proves both directions).
func (m *memAPI) PluginHTTP(request *http.Request) *http.Response {
	defer m.guard("PluginHTTP")
	if resp := m.interPlugin(request); resp != nil {
		return resp
	}
	got, body, err := readAll(request.Body)
	if err != nil {
		m.rec.fail("PluginHTTP: reading the request body: %v", err)
		return nil
	}
	m.recordStream("PluginHTTP", got)
	slices.Reverse(body)
	header := http.Header{}
	header.Set("X-Seen-Method", request.Method)
	header.Set("X-Seen-Path", request.URL.Path)
	header.Set("X-Seen-From", request.Header.Get("X-From"))
	header.Add("X-Multi", "a")
	header.Add("X-Multi", "b")
	return &http.Response{
		StatusCode: http.StatusCreated,
		Header:     header,
		Body:       io.NopCloser(bytes.NewReader(body)),
		Status:     fmt.Sprintf("%d Created", http.StatusCreated),
	}
}

func (m *memAPI) ReceiveSharedChannelAttachmentSyncMsg(remoteID, channelID string, fi *model.FileInfo, data io.Reader) (*model.FileInfo, error) {
	defer m.guard("ReceiveSharedChannelAttachmentSyncMsg")
	got, _, err := readAll(data)
	if err != nil {
		return nil, err
	}
	if remoteID != "remote1" || channelID != "channel1" {
		m.rec.fail("ReceiveSharedChannelAttachmentSyncMsg: remote %q channel %q, the plugin sent remote1 channel1", remoteID, channelID)
	}
	m.recordStream("ReceiveSharedChannelAttachmentSyncMsg", got)
	return &model.FileInfo{Id: fi.Id, Name: got.sha256, Size: got.size}, nil
}

// interPlugin routes /<plugin id>/<path> to that plugin's ServeHTTP when it is active, as the
// server does for inter-plugin requests (prefix stripped, empty plugin context); nil otherwise.
func (m *memAPI) interPlugin(request *http.Request) *http.Response {
	if m.env == nil {
		return nil
	}
	rest := strings.TrimPrefix(request.URL.Path, "/")
	id, path, _ := strings.Cut(rest, "/")
	if id == "" || !m.env.IsActive(id) {
		return nil
	}
	hooks, err := m.env.HooksForPlugin(id)
	if err != nil {
		m.rec.fail("PluginHTTP to %s: %v", id, err)
		return nil
	}
	forwarded := request.Clone(request.Context())
	forwarded.URL.Path = "/" + path
	forwarded.RequestURI = forwarded.URL.RequestURI()
	w := httptest.NewRecorder()
	hooks.ServeHTTP(&plugin.Context{}, w, forwarded)
	return w.Result()
}

package main

// Byte-stream cases: every path where bytes travel on broker streams rather than in gob
// values (uploads from Python, inter-plugin HTTP, FileWillBeUploaded), driven through the real
// supervisor with payloads large enough to cross many 64 KiB chunks and yamux windows, and
// checked by size and SHA-256 on the far side. They use their own test plugin
// (testdata/streams), so they run for Python plugins only.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// payload is n bytes of a pattern that is not periodic at chunk sizes.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte((i*7 + i/251) % 256)
	}
	return b
}

func sha(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

// streamsWorld activates testdata/streams in a world of its own and hands its hooks to run.
func streamsWorld(t *caseT, run func(api *memAPI, hooks plugin.Hooks, id string)) {
	streamsWorldWith(t, nil, run)
}

// streamsWorldWith also installs and activates the plugins in others (source directories) in
// the same server, for inter-plugin cases.
func streamsWorldWith(t *caseT, others []string, run func(api *memAPI, hooks plugin.Hooks, id string)) {
	pluginWorld(t, "conformance/harness/testdata/streams", others, run)
}

// pluginWorld activates the Python plugin in dir (relative to the repository root), and the
// plugins in others, in a server of their own, and hands the first one's hooks to run.
func pluginWorld(t *caseT, dir string, others []string, run func(api *memAPI, hooks plugin.Hooks, id string)) {
	root, err := repoRoot()
	if err != nil {
		t.fatalf("%v", err)
	}
	b, err := prepareBundle(bundleOptions{pluginDir: filepath.Join(root, dir), bridge: t.opts.bridge, venv: t.opts.venv})
	if err != nil {
		t.fatalf("preparing %s: %v", dir, err)
	}
	defer b.remove()
	var otherIDs []string
	for _, dir := range others {
		opts := bundleOptions{pluginDir: filepath.Join(root, dir)}
		if !isGoMain(opts.pluginDir) {
			// A Python plugin runs through the bridge; a Go one is built from its source.
			opts.bridge, opts.venv = t.opts.bridge, t.opts.venv
		}
		ob, err := prepareBundle(opts)
		if err != nil {
			t.fatalf("preparing %s: %v", dir, err)
		}
		defer ob.remove()
		// Move the installed plugin next to the streams plugin: one server, two plugins.
		if err := os.Rename(ob.dir, filepath.Join(b.pluginsDir, ob.manifest.Id)); err != nil {
			t.fatalf("installing %s: %v", dir, err)
		}
		otherIDs = append(otherIDs, ob.manifest.Id)
	}
	api, env, err := newWorld(b, t.opts, t.rec, t.logger)
	if err != nil {
		t.fatalf("creating the environment: %v", err)
	}
	defer teardown(env, t.rec)
	for _, id := range append(otherIDs, b.manifest.Id) {
		if _, activated, err := env.Activate(id); err != nil || !activated {
			t.fatalf("Activate %s: activated=%v err=%v", id, activated, err)
		}
	}
	hooks, err := env.HooksForPlugin(b.manifest.Id)
	if err != nil {
		t.fatalf("no hooks: %v", err)
	}
	run(api, hooks, b.manifest.Id)
}

func streamsHTTP(t *caseT, hooks plugin.Hooks, path string, body []byte) map[string]any {
	r := httptest.NewRequest(http.MethodPost, "http://mattermost.test"+path, bytes.NewReader(body))
	r.Header.Set("Mattermost-User-Id", harnessUserID)
	w := httptest.NewRecorder()
	hooks.ServeHTTP(t.pluginContext(), w, r)
	if w.Code != http.StatusOK {
		t.fatalf("POST %s: status %d, body %q", path, w.Code, clip(w.Body.String()))
	}
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.fatalf("POST %s: answer is not JSON: %v (%q)", path, err, clip(w.Body.String()))
	}
	return doc
}

func checkReceived(t *caseT, api *memAPI, method string, sent []byte) {
	got, ok := api.stream(method)
	if !ok {
		t.fatalf("%s was never called", method)
	}
	if got.size != int64(len(sent)) || got.sha256 != sha(sent) {
		t.errorf("%s read %d bytes sha256 %s; the plugin sent %d bytes sha256 %s", method, got.size, got.sha256, len(sent), sha(sent))
	}
}

func caseStreamInstallPlugin(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(5<<20 + 17)
		doc := streamsHTTP(t, hooks, "/install", sent)
		checkReceived(t, api, "InstallPlugin", sent)
		if want := "installed-" + sha(sent)[:8]; doc["id"] != want || doc["version"] != strconv.Itoa(len(sent)) {
			t.errorf("InstallPlugin answer reached Python as %v, want id %s version %d", doc, want, len(sent))
		}
	})
}

func caseStreamUploadData(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(5 << 20)
		doc := streamsHTTP(t, hooks, "/upload?session=upload1", sent)
		checkReceived(t, api, "UploadData", sent)
		if doc["id"] != "upload1" || doc["name"] != sha(sent) || doc["size"] != float64(len(sent)) {
			t.errorf("UploadData answer reached Python as %v", doc)
		}
	})
}

func casePluginHTTP(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(1<<20 + 3)
		doc := streamsHTTP(t, hooks, "/pluginhttp", sent)
		checkReceived(t, api, "PluginHTTP", sent)
		reversed := bytes.Clone(sent)
		for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
			reversed[i], reversed[j] = reversed[j], reversed[i]
		}
		if doc["status"] != float64(http.StatusCreated) || doc["sha256"] != sha(reversed) || doc["size"] != float64(len(sent)) {
			t.errorf("PluginHTTP answer reached Python as status %v sha %v size %v; want 201 %s %d", doc["status"], doc["sha256"], doc["size"], sha(reversed), len(sent))
		}
		headers, _ := doc["headers"].(map[string]any)
		want := map[string][]any{"X-Seen-Method": {"POST"}, "X-Seen-Path": {"/com.mmplug.other/echo"}, "X-Seen-From": {"streams"}, "X-Multi": {"a", "b"}}
		for k, v := range want {
			got, _ := headers[k].([]any)
			if len(got) != len(v) || (len(got) > 0 && got[0] != v[0]) || (len(got) > 1 && got[1] != v[1]) {
				t.errorf("PluginHTTP response header %s = %v, want %v", k, headers[k], v)
			}
		}
	})
}

func caseFileWillBeUploaded(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(2<<20 + 5)
		var replaced bytes.Buffer
		info, reason := hooks.FileWillBeUploaded(t.pluginContext(), &model.FileInfo{Id: "f1", Name: "data.bin", Size: int64(len(sent))}, bytes.NewReader(sent), &replaced)
		if reason != "" || info == nil {
			t.fatalf("FileWillBeUploaded rejected the file: info %+v reason %q", info, reason)
		}
		if want := asciiUpper(sent); !bytes.Equal(replaced.Bytes(), want) {
			t.errorf("replacement: %d bytes sha256 %s, want %d bytes sha256 %s", replaced.Len(), sha(replaced.Bytes()), len(want), sha(want))
		}
		if info.Id != "f1" || info.Name != "data.bin.checked" || info.Extension != sha(sent)[:16] || info.Size != int64(len(sent)) {
			t.errorf("returned FileInfo %+v; want id f1, name data.bin.checked, extension %s (the plugin's sha256 of the upload), size %d", info, sha(sent)[:16], len(sent))
		}
		replaced.Reset()
		info, reason = hooks.FileWillBeUploaded(t.pluginContext(), &model.FileInfo{Id: "f2", Name: "reject.txt"}, bytes.NewReader([]byte("no")), &replaced)
		if reason != "rejected by streams" {
			t.errorf("reject.txt: reason %q info %+v, want the plugin's rejection", reason, info)
		}
	})
}

// asciiUpper is Python's bytes.upper(): ASCII letters only, every other byte as it is
// (bytes.ToUpper would treat the data as UTF-8).
func asciiUpper(b []byte) []byte {
	out := bytes.Clone(b)
	for i, c := range out {
		if 'a' <= c && c <= 'z' {
			out[i] = c - 'a' + 'A'
		}
	}
	return out
}

func caseStreamSharedChannelAttachment(t *caseT) {
	streamsWorld(t, func(api *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(5<<20 + 1)
		doc := streamsHTTP(t, hooks, "/attachment", sent)
		if _, ok := apiInterface.MethodByName("ReceiveSharedChannelAttachmentSyncMsg"); !ok {
			// An older server: the call must fail cleanly in Python, naming the method.
			msg, _ := doc["unimplemented"].(string)
			if doc["status_code"] != float64(501) || !strings.Contains(msg, "ReceiveSharedChannelAttachmentSyncMsg") {
				t.errorf("on a server without the method, Python saw %v; want a 501 NotImplementedAPIError naming it", doc)
			}
			return
		}
		checkReceived(t, api, "ReceiveSharedChannelAttachmentSyncMsg", sent)
		if doc["id"] != "a1" || doc["name"] != sha(sent) || doc["size"] != float64(len(sent)) {
			t.errorf("ReceiveSharedChannelAttachmentSyncMsg answer reached Python as %v", doc)
		}
	})
}

func caseStreamServeHTTPEcho(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(5<<20 + 11)
		r := httptest.NewRequest(http.MethodPost, "http://mattermost.test/echo", bytes.NewReader(sent))
		w := httptest.NewRecorder()
		hooks.ServeHTTP(t.pluginContext(), w, r)
		if w.Code != http.StatusOK || w.Header().Get("X-Sha256") != sha(sent) || !bytes.Equal(w.Body.Bytes(), sent) {
			t.errorf("echo: status %d, X-Sha256 %q (want %s), body %d bytes sha256 %s (want %d bytes)", w.Code, w.Header().Get("X-Sha256"), sha(sent), w.Body.Len(), sha(w.Body.Bytes()), len(sent))
		}
	})
}

func caseStreamServeMetrics(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		r := httptest.NewRequest(http.MethodGet, "http://mattermost.test/metrics", nil)
		w := httptest.NewRecorder()
		hooks.ServeMetrics(&plugin.Context{}, w, r)
		want := "streams_requests_total{path=\"/metrics\"} 1\n"
		if w.Code != http.StatusOK || w.Body.String() != want || w.Header().Get("Content-Type") != "text/plain; version=0.0.4" {
			t.errorf("ServeMetrics: status %d content-type %q body %q; want 200, text/plain; version=0.0.4, %q", w.Code, w.Header().Get("Content-Type"), w.Body.String(), want)
		}
	})
}

// streamCases maps the methods and hooks whose bytes travel on broker streams to the case that
// round-trips them (the fidelity mode runs these and counts them).
var streamCases = []struct {
	name   string
	covers string
	run    func(*caseT)
}{
	{"stream_install_plugin_5mib", "api/InstallPlugin", caseStreamInstallPlugin},
	{"stream_upload_data_5mib", "api/UploadData", caseStreamUploadData},
	{"stream_shared_channel_attachment_5mib", "api/ReceiveSharedChannelAttachmentSyncMsg", caseStreamSharedChannelAttachment},
	{"stream_plugin_http_1mib", "api/PluginHTTP", casePluginHTTP},
	{"stream_file_will_be_uploaded_2mib", "hook/FileWillBeUploaded", caseFileWillBeUploaded},
	{"stream_serve_http_echo_5mib", "hook/ServeHTTP", caseStreamServeHTTPEcho},
	{"stream_serve_metrics", "hook/ServeMetrics", caseStreamServeMetrics},
}

// caseHookFailureLosesNothing: a hook without an error result that raises in Python must leave
// the server's data as it was (MessagesWillBeConsumed returning nil would drop the posts).
func caseHookFailureLosesNothing(t *caseT) {
	streamsWorld(t, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		posts := []*model.Post{{Id: "p1", Message: "one"}, {Id: "p2", Message: "two", Props: model.StringInterface{"n": int64(3)}}}
		got := hooks.MessagesWillBeConsumed(posts)
		if len(got) != 2 || got[0].Id != "p1" || got[1].Message != "two" || got[1].GetProp("n") != int64(3) {
			t.errorf("MessagesWillBeConsumed after the plugin raised returned %+v; want the two posts unchanged", got)
		}
		if !t.waitLog("error", "MessagesWillBeConsumed failed in Python") {
			t.errorf("no error log line for the failed hook")
		}
	})
}

// casePluginHTTPBetweenTwoPlugins: the streams plugin calls examples/hello's POST /echo through
// PluginHTTP; the server routes it to hello's ServeHTTP, so the request and the answer each
// cross two bridges and two Python processes.
func casePluginHTTPBetweenTwoPlugins(t *caseT) {
	streamsWorldWith(t, []string{"examples/hello"}, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		sent := payload(3<<20 + 7)
		doc := streamsHTTP(t, hooks, "/pluginhttp-hello", sent)
		headers, _ := doc["headers"].(map[string]any)
		shaHeader, _ := headers["X-Sha256"].([]any)
		if doc["status"] != float64(http.StatusOK) || doc["sha256"] != sha(sent) || doc["size"] != float64(len(sent)) || len(shaHeader) != 1 || shaHeader[0] != sha(sent) {
			t.errorf("hello's /echo through PluginHTTP answered status %v, %v bytes sha256 %v, X-Sha256 %v; want 200, %d bytes, %s", doc["status"], doc["size"], doc["sha256"], headers["X-Sha256"], len(sent), sha(sent))
		}
	})
}

package main

// Security cases (issue 6): the Python child does not see the server's secrets unless the
// manifest opts in; a bundle's paths cannot escape the plugin directory (crafted tar.gz
// members, and a wheel inside a valid bundle); and the bridge's sockets refuse a second local
// process that lacks the per-launch token.

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mattermost/mattermost/server/public/plugin"
)

// serverSecrets are set in the server's environment (the bridge inherits it, as go-plugin
// passes the server's environment to plugins); only the one testdata/security's manifest names
// in props.mmplug.env may reach Python.
var serverSecrets = map[string]string{
	"MM_SQLSETTINGS_DATASOURCE":               "postgres://mmuser:hunter2@db/mattermost",
	"MM_FILESETTINGS_AMAZONS3SECRETACCESSKEY": "s3-secret-key",
	"MM_EMAILSETTINGS_SMTPPASSWORD":           "smtp-password",
	"MM_SQLSETTINGS_DATASOURCEREPLICAS":       "postgres://replica",
	"MM_SERVICESETTINGS_SITEURL":              "https://chat.example.com",
}

// securityOptIn is testdata/security's props.mmplug.env.
const securityOptIn = "MM_SERVICESETTINGS_SITEURL"

// caseSecretsStayWithTheServer: what Python sees of the server's environment, both as the
// plugin reads it (os.environ, over ServeHTTP) and as the kernel holds it for the process
// (/proc/PID/environ, which os.environ changes do not rewrite).
func caseSecretsStayWithTheServer(t *caseT) {
	for k, v := range serverSecrets {
		t.setenv(k, v)
	}
	pluginWorld(t, "conformance/harness/testdata/security", nil, func(_ *memAPI, hooks plugin.Hooks, _ string) {
		w := hooksGet(t, hooks, "/env")
		var seen map[string]string
		if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &seen) != nil {
			t.fatalf("GET /env: status %d body %q", w.Code, clip(w.Body.String()))
		}
		_, python, err := soakProcesses()
		if err != nil {
			t.fatalf("%v", err)
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", python.PID))
		if err != nil {
			t.fatalf("reading Python's environment: %v", err)
		}
		kernel := map[string]string{}
		for _, kv := range strings.Split(string(raw), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok {
				kernel[k] = v
			}
		}
		for where, env := range map[string]map[string]string{"os.environ": seen, "/proc/PID/environ": kernel} {
			for k, v := range serverSecrets {
				got, present := env[k]
				switch {
				case k == securityOptIn && (!present || got != v):
					t.errorf("%s: the opted-in %s is %q (present %v), want %q", where, k, got, present, v)
				case k != securityOptIn && present:
					t.errorf("%s: Python sees the server's %s", where, k)
				}
			}
			if env["PATH"] == "" {
				t.errorf("%s: PATH, on the allow-list, is missing", where)
			}
		}
		// The per-launch token is for the SDK alone: it comes down stdin, never through the
		// environment, where /proc/PID/environ would keep it for the process's life.
		for where, env := range map[string]map[string]string{"os.environ": seen, "/proc/PID/environ": kernel} {
			if _, present := env["MMPLUG_TOKEN"]; present {
				t.errorf("%s holds MMPLUG_TOKEN", where)
			}
		}
	})
}

// tarMember is one entry of a crafted bundle.
type tarMember struct {
	name     string
	typeflag byte
	body     []byte
	linkname string
	mode     int64
}

func writeTarGz(path string, members []tarMember) error {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, m := range members {
		mode := m.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: m.name, Typeflag: m.typeflag, Mode: mode, Size: int64(len(m.body)), Linkname: m.linkname, ModTime: time.Unix(0, 0)}
		if m.typeflag != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if h.Size > 0 {
			if _, err := tw.Write(m.body); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// wheelWith is a zip (a wheel) with the given members; a member whose text starts with
// "symlink:" is stored as a symbolic link to the rest.
func wheelWith(members [][2]string) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, m := range members {
		h := &zip.FileHeader{Name: m[0], Method: zip.Deflate}
		body := m[1]
		if target, ok := strings.CutPrefix(body, "symlink:"); ok {
			h.SetMode(os.ModeSymlink | 0o777)
			body = target
		}
		f, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write([]byte(body)); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// caseBundlePathsCannotEscape: crafted bundles whose members would land outside the plugin
// directory. The tar.gz members (`../`, an absolute path, symbolic and hard links) are refused
// when the bundle is installed (installArchive, the harness's rendering of the server's
// install: only directories and regular files, nothing outside); a wheel inside an otherwise
// valid bundle is the bridge's to refuse when it unpacks the wheels at activation.
func caseBundlePathsCannotEscape(t *caseT) {
	scratch, err := os.MkdirTemp("", "mmplug-harness-escape-")
	if err != nil {
		t.fatalf("%v", err)
	}
	defer os.RemoveAll(scratch)
	// Where an escaping member would land: checked to stay empty.
	outside := filepath.Join(scratch, "outside")
	if err := os.Mkdir(outside, 0o755); err != nil {
		t.fatalf("%v", err)
	}
	manifest := []byte(`{"id":"com.mmplug.escape","name":"Escape","version":"0.1.0","server":{"executables":{"linux-amd64":"server/dist/plugin-linux-amd64"}}}`)
	base := []tarMember{
		{name: "com.mmplug.escape/", typeflag: tar.TypeDir, mode: 0o755},
		{name: "com.mmplug.escape/plugin.json", typeflag: tar.TypeReg, body: manifest},
	}
	for _, tc := range []struct {
		name   string
		member tarMember
		want   string
	}{
		{"dot-dot", tarMember{name: "com.mmplug.escape/../../outside/dotdot.txt", typeflag: tar.TypeReg, body: []byte("x")}, "escapes the bundle"},
		{"leading-dot-dot", tarMember{name: "../outside/dotdot.txt", typeflag: tar.TypeReg, body: []byte("x")}, "escapes the bundle"},
		{"absolute", tarMember{name: filepath.Join(outside, "absolute.txt"), typeflag: tar.TypeReg, body: []byte("x")}, "escapes the bundle"},
		{"symlink-out", tarMember{name: "com.mmplug.escape/server", typeflag: tar.TypeSymlink, linkname: outside}, "is not a file or directory"},
		{"hardlink-out", tarMember{name: "com.mmplug.escape/hard", typeflag: tar.TypeLink, linkname: "/etc/passwd"}, "is not a file or directory"},
	} {
		archive := filepath.Join(scratch, tc.name+".tar.gz")
		// The escaping member comes before the executable: a later member must not write
		// through a link an earlier one made.
		members := append(append([]tarMember{}, base...), tc.member,
			tarMember{name: "com.mmplug.escape/server/dist/plugin-linux-amd64", typeflag: tar.TypeReg, body: []byte("#!/bin/sh\n"), mode: 0o755})
		if err := writeTarGz(archive, members); err != nil {
			t.fatalf("%s: %v", tc.name, err)
		}
		b, err := installArchive(archive)
		if err == nil {
			b.remove()
			t.errorf("%s: the bundle was installed", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.errorf("%s: error %q does not say %q", tc.name, err, tc.want)
		}
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.errorf("crafted bundles wrote %d entries outside the plugin directory", len(entries))
	}

	// A valid bundle with an offline wheel whose members escape: installed fine, refused by
	// the bridge at activation with the member named, nothing written outside.
	bridge, err := os.ReadFile(t.opts.bridge)
	if err != nil {
		t.fatalf("reading the bridge: %v", err)
	}
	out, err := exec.Command("python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])").Output()
	if err != nil {
		t.fatalf("python3 on PATH: %v", err)
	}
	version := strings.TrimSpace(string(out))
	for _, tc := range []struct{ member, body string }{
		{"../../../../../outside/from-wheel.py", "print('escaped')\n"},
		{filepath.Join(outside, "absolute-from-wheel.py"), "print('escaped')\n"},
		// A symbolic link in a zip is a member whose text is the target; unpacked, it must
		// stay a file holding that text, never become a link out of the bundle.
		{"evil/link", "symlink:" + outside},
	} {
		wheel, err := wheelWith([][2]string{{"evil/__init__.py", ""}, {tc.member, tc.body}})
		if err != nil {
			t.fatalf("%v", err)
		}
		sum := sha256.Sum256(wheel)
		index, _ := json.Marshal(map[string]any{
			"python_versions": []string{version},
			"requirements":    []string{"evil"},
			"wheels":          map[string]string{"evil-1.0-py3-none-any.whl": hex.EncodeToString(sum[:])},
		})
		archive := filepath.Join(scratch, "wheel.tar.gz")
		members := append(append([]tarMember{}, base...),
			tarMember{name: "com.mmplug.escape/server/dist/plugin-linux-amd64", typeflag: tar.TypeReg, body: bridge, mode: 0o755},
			tarMember{name: "com.mmplug.escape/plugin.py", typeflag: tar.TypeReg, body: []byte("")},
			tarMember{name: "com.mmplug.escape/python/wheels/index.json", typeflag: tar.TypeReg, body: index},
			tarMember{name: "com.mmplug.escape/python/wheels/evil-1.0-py3-none-any.whl", typeflag: tar.TypeReg, body: wheel})
		if err := writeTarGz(archive, members); err != nil {
			t.fatalf("%v", err)
		}
		b, err := installArchive(archive)
		if err != nil {
			t.fatalf("installing the bundle with the crafted wheel: %v", err)
		}
		func() {
			defer b.remove()
			_, env, err := newWorld(b, t.opts, t.rec, t.logger)
			if err != nil {
				t.fatalf("%v", err)
			}
			defer teardown(env, t.rec)
			// This plugin cannot activate either way (its plugin.py is empty); what matters
			// is why, and what was written.
			_, _, err = env.Activate(b.manifest.Id)
			if link, ok := strings.CutPrefix(tc.body, "symlink:"); ok {
				unpacked, _ := filepath.Glob(filepath.Join(b.dir, ".mmplug", "envs", "*", "evil", "link"))
				if len(unpacked) != 1 {
					t.errorf("the wheel with a link member was not unpacked (activation error %v)", err)
					return
				}
				st, err := os.Lstat(unpacked[0])
				content, _ := os.ReadFile(unpacked[0])
				if err != nil || !st.Mode().IsRegular() || string(content) != link {
					t.errorf("a link member of a wheel was unpacked as %v (content %q), want a regular file holding %q", st.Mode(), content, link)
				}
				return
			}
			want := fmt.Sprintf("evil-1.0-py3-none-any.whl contains the unsafe path '%s'", tc.member)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.errorf("wheel member %q: activation error %v; want one saying %q", tc.member, err, want)
			}
			if left, _ := filepath.Glob(filepath.Join(b.dir, ".mmplug", "envs", "*", "*")); len(left) > 0 {
				t.errorf("wheel member %q: a partial environment was left: %v", tc.member, left)
			}
			if escaped, _ := filepath.Glob(filepath.Join(b.root, "*", "from-wheel.py")); len(escaped) > 0 {
				t.errorf("wheel member %q: written outside the plugin directory: %v", tc.member, escaped)
			}
		}()
	}
	if entries, _ := os.ReadDir(outside); len(entries) > 0 {
		t.errorf("a crafted wheel wrote %d entries outside the plugin directory", len(entries))
	}
}

// caseSocketsRefuseASecondProcess: another local process that finds the bridge's API socket,
// its lane socket, or Python's hooks socket, gets nowhere without the per-launch token; all
// live in a private 0700 directory of the server's user.
func caseSocketsRefuseASecondProcess(t *caseT) {
	pluginWorld(t, "conformance/harness/testdata/security", nil, func(api *memAPI, hooks plugin.Hooks, _ string) {
		_, python, err := soakProcesses()
		if err != nil {
			t.fatalf("%v", err)
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", python.PID))
		if err != nil {
			t.fatalf("reading Python's environment: %v", err)
		}
		sockets := map[string]string{}
		for _, kv := range strings.Split(string(raw), "\x00") {
			if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, "MMPLUG_") && strings.HasSuffix(k, "_SOCKET") {
				sockets[k] = v
			}
		}
		// The lane socket exists unless the bridge was told to keep unary calls on gRPC.
		want := []string{"MMPLUG_API_SOCKET", "MMPLUG_HOOKS_SOCKET", "MMPLUG_LANE_SOCKET"}
		if os.Getenv("MMPLUG_TRANSPORT") == "grpc" {
			want = want[:2]
		}
		if got := slices.Sorted(maps.Keys(sockets)); !slices.Equal(got, want) {
			t.fatalf("Python's environment names sockets %v, want %v", sockets, want)
		}
		dir := filepath.Dir(sockets["MMPLUG_API_SOCKET"])
		for name, socket := range sockets {
			if filepath.Dir(socket) != dir {
				t.errorf("%s is not in the private directory %s: %v", name, dir, sockets)
			}
		}
		if st, err := os.Stat(dir); err != nil {
			t.errorf("%v", err)
		} else {
			if st.Mode().Perm() != 0o700 {
				t.errorf("the socket directory %s has mode %o, want 700", dir, st.Mode().Perm())
			}
			if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Getuid() {
				t.errorf("the socket directory belongs to uid %d, not the server's %d", sys.Uid, os.Getuid())
			}
		}
		// With the lane, Python serves gRPC on its hooks socket only once the bridge asks for
		// it, before its first byte stream (docs/internals.md §8): one request opens it.
		if len(want) == 3 {
			if _, err := os.Stat(sockets["MMPLUG_HOOKS_SOCKET"]); !errors.Is(err, fs.ErrNotExist) {
				t.errorf("the hooks socket exists before any byte stream (%v): Python started gRPC unasked", err)
			}
		}
		if w := hooksGet(t, hooks, "/env"); w.Code != http.StatusOK {
			t.fatalf("GET /env: status %d", w.Code)
		}
		// The second process: a Python of its own (grpcio from the harness's venv), calling
		// each service with no token and with a wrong one.
		const script = `
import json, sys, grpc
out = {}
for name, socket, path in [
    ("api", sys.argv[1], "/mattermost.plugin.v1.PluginAPI/GetServerVersion"),
    ("hooks", sys.argv[2], "/mattermost.plugin.v1.PluginHooks/Implemented"),
]:
    for label, metadata in [("no token", None), ("wrong token", (("x-mmplug-token", "guess"),))]:
        with grpc.insecure_channel("unix:" + socket, [("grpc.default_authority", "localhost")]) as ch:
            try:
                ch.unary_unary(path)(b"", metadata=metadata, timeout=20)
                out[name + ", " + label] = "OK"
            except grpc.RpcError as e:
                out[name + ", " + label] = e.code().name
lane = sys.argv[3] if len(sys.argv) > 3 else ""
if lane:
    import socket, struct
    from mattermost_plugin._lane import BlockingLaneClient, LaneError
    for label, token in [("no token", ""), ("wrong token", "guess")]:
        try:
            BlockingLaneClient.connect(lane, token, timeout=20).call(
                "/mattermost.plugin.v1.PluginAPI/GetServerVersion", b"", timeout=20)
            out["lane, " + label] = "OK"
        except LaneError as e:
            out["lane, " + label] = "refused" if e.code == 14 else f"code {e.code}: {e.message}"
    # A REQUEST before any HELLO: the bridge must close without answering.
    path = b"/mattermost.plugin.v1.PluginAPI/GetServerVersion"
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(20)
        s.connect(lane)
        s.sendall(struct.pack("<IBBHQ", len(path), 2, 0, len(path), 1) + path)
        try:
            out["lane, no HELLO"] = "refused" if s.recv(16) == b"" else "answered"
        except ConnectionResetError:  # closed with our frame unread
            out["lane, no HELLO"] = "refused"
print(json.dumps(out))
`
		before := t.rec.callCount("GetServerVersion")
		cmd := exec.Command(filepath.Join(t.opts.venv, "bin", "python"), "-c", script, sockets["MMPLUG_API_SOCKET"], sockets["MMPLUG_HOOKS_SOCKET"], sockets["MMPLUG_LANE_SOCKET"])
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.fatalf("the second process failed: %v: %s", err, clip(stderr.String()))
		}
		var codes map[string]string
		if err := json.Unmarshal(out, &codes); err != nil || len(codes) != 4+3*(len(want)-2) {
			t.fatalf("the second process reported %q", out)
		}
		for call, code := range codes {
			// gRPC answers UNAUTHENTICATED; the lane closes the connection unanswered.
			wantCode := "UNAUTHENTICATED"
			if strings.HasPrefix(call, "lane") {
				wantCode = "refused"
			}
			if code != wantCode {
				t.errorf("%s: %s, want %s", call, code, wantCode)
			}
		}
		if len(want) == 3 && !t.waitLog("warn", "refused a lane connection") {
			t.errorf("the bridge did not log the refused lane connections")
		}
		if after := t.rec.callCount("GetServerVersion"); after != before {
			t.errorf("a call without the token reached the server (%d GetServerVersion calls)", after-before)
		}
	})
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
)

// bundle is a plugin installed into a private plugins directory, as the server keeps it.
type bundle struct {
	root       string // temp dir holding everything below
	pluginsDir string // what the Environment scans
	webappDir  string
	dir        string // the installed plugin: pluginsDir/<id>
	manifest   *model.Manifest
	executable string // absolute path of the server executable inside dir
}

type bundleOptions struct {
	pluginDir string // the plugin's source directory (plugin.json at its top)
	bridge    string // bridge binary placed at the manifest's executable path (Python plugins)
	venv      string // the Python environment the bundle's venv symlink points at
}

// skipDirs are not copied into the installed bundle: interpreter environments are linked, not
// copied, and caches are noise.
var skipDirs = map[string]bool{"venv": true, ".venv": true, "__pycache__": true, ".git": true, ".mypy_cache": true, ".ruff_cache": true, ".pytest_cache": true}

// prepareBundle copies the plugin directory into a fresh plugins dir and makes its server
// executable exist: built from Go source if the directory is a Go main package, or the bridge
// binary if one is given.
func prepareBundle(opts bundleOptions) (*bundle, error) {
	src, err := filepath.Abs(opts.pluginDir)
	if err != nil {
		return nil, err
	}
	manifestPath := filepath.Join(src, "plugin.json")
	// A manifest of Mattermost's own Python plugins is rewritten as `mmplug bundle` would
	// (upstream_manifest.go) and installed so; others are used as they are.
	var rewritten []byte
	if raw, err := os.ReadFile(manifestPath); err == nil && opts.bridge != "" {
		if doc, ok, err := upstreamManifest(raw); err == nil && ok {
			rewritten = doc
			tmp, err := os.CreateTemp("", "mmplug-upstream-*.json")
			if err != nil {
				return nil, err
			}
			manifestPath = tmp.Name()
			defer os.Remove(manifestPath)
			_, err = tmp.Write(doc)
			if err = errors.Join(err, tmp.Close()); err != nil {
				return nil, err
			}
		}
	}
	manifest, err := readManifest(manifestPath)
	if err != nil {
		return nil, err
	}
	exe, err := serverExecutable(manifest)
	if err != nil {
		return nil, fmt.Errorf("%s/plugin.json: %w", src, err)
	}

	root, err := os.MkdirTemp("", "mmplug-harness-")
	if err != nil {
		return nil, err
	}
	b := &bundle{
		root:       root,
		pluginsDir: filepath.Join(root, "plugins"),
		webappDir:  filepath.Join(root, "client"),
		manifest:   manifest,
	}
	b.dir = filepath.Join(b.pluginsDir, manifest.Id)
	b.executable = filepath.Join(b.dir, exe)
	fail := func(err error) (*bundle, error) {
		b.remove()
		return nil, err
	}
	if err := os.MkdirAll(b.webappDir, 0o755); err != nil {
		return fail(err)
	}
	if err := copyTree(src, b.dir); err != nil {
		return fail(fmt.Errorf("copying %s: %w", src, err))
	}
	if rewritten != nil {
		if err := os.WriteFile(filepath.Join(b.dir, "plugin.json"), rewritten, 0o644); err != nil {
			return fail(err)
		}
	}

	switch {
	case opts.bridge != "":
		if err := copyFile(opts.bridge, b.executable, 0o755); err != nil {
			return fail(fmt.Errorf("placing the bridge: %w", err))
		}
		venv, err := filepath.Abs(opts.venv)
		if err != nil {
			return fail(err)
		}
		if _, err := os.Stat(filepath.Join(venv, "bin")); err != nil {
			return fail(fmt.Errorf("-venv %s is not a Python environment (no bin/): %w", venv, err))
		}
		// The bridge looks for a plugin-local venv/bin/python first.
		if err := os.Symlink(venv, filepath.Join(b.dir, "venv")); err != nil {
			return fail(err)
		}
	case isGoMain(src):
		if err := os.MkdirAll(filepath.Dir(b.executable), 0o755); err != nil {
			return fail(err)
		}
		cmd := exec.Command("go", "build", "-o", b.executable, ".")
		cmd.Dir = src
		if out, err := cmd.CombinedOutput(); err != nil {
			return fail(fmt.Errorf("building %s: %v\n%s", src, err, out))
		}
	}

	if err := checkExecutable(b.executable, exe); err != nil {
		return fail(fmt.Errorf("%w (for a Python plugin pass -bridge PATH)", err))
	}
	return b, nil
}

// serverExecutable is the manifest's server executable for this machine, relative to the
// bundle, refused if it would lie outside it.
func serverExecutable(m *model.Manifest) (string, error) {
	exe := m.GetExecutableForRuntime(runtime.GOOS, runtime.GOARCH)
	if exe == "" {
		return "", fmt.Errorf("names no server executable for %s-%s", runtime.GOOS, runtime.GOARCH)
	}
	exe = filepath.Clean(exe)
	if filepath.IsAbs(exe) || exe == ".." || strings.HasPrefix(exe, "../") {
		return "", fmt.Errorf("server executable %q must be a path inside the bundle", exe)
	}
	return exe, nil
}

// checkExecutable reports a server executable (exe, as the manifest names it) that is missing
// or not executable at path.
func checkExecutable(path, exe string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("the plugin's server executable %s is missing: %w", exe, err)
	}
	if info.Mode()&0o111 == 0 {
		return fmt.Errorf("the plugin's server executable %s is not executable", exe)
	}
	return nil
}

func (b *bundle) remove() {
	_ = os.RemoveAll(b.root)
}

func readManifest(path string) (*model.Manifest, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the plugin manifest: %w", err)
	}
	var m model.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is not a valid manifest: %w", path, err)
	}
	if err := m.IsValid(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !m.HasServer() {
		return nil, fmt.Errorf("%s has no server component", path)
	}
	return &m, nil
}

var goMainClause = regexp.MustCompile(`(?m)^package main\s*$`)

// isGoMain reports whether dir holds a Go main package (a native plugin to build).
func isGoMain(dir string) bool {
	matches, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	for _, f := range matches {
		raw, err := os.ReadFile(f)
		if err == nil && goMainClause.Match(raw) {
			return true
		}
	}
	return false
}

func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			if rel != "." && skipDirs[d.Name()] {
				return filepath.SkipDir
			}
			return os.MkdirAll(target, 0o755)
		}
		if skipDirs[d.Name()] {
			return nil // e.g. a venv symlink
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		return copyFile(path, target, info.Mode().Perm())
	})
}

func copyFile(src, dst string, perm fs.FileMode) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	defer func() {
		err = errors.Join(err, out.Close())
	}()
	_, err = io.Copy(out, in)
	return err
}

// repoRoot finds the mmplug checkout containing the working directory (for the default -venv).
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		raw, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(raw), "module github.com/mmplug/mmplug\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the mmplug repository (no go.mod of github.com/mmplug/mmplug above the working directory)")
		}
		dir = parent
	}
}

package main

import (
	"archive/tar"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// maxArchiveBytes bounds what one bundle may unpack to (a bundle with wheels for three Python
// versions and two platforms is ~100 MB).
const maxArchiveBytes = 2 << 30

// installArchive installs a plugin bundle (.tar.gz) into a fresh plugins dir the way the server
// does on upload: one top-level directory holding plugin.json, unpacked under plugins/<id>. Only
// directories and regular files are accepted, and no member may leave its directory.
func installArchive(archive string) (*bundle, error) {
	root, err := os.MkdirTemp("", "mmplug-harness-")
	if err != nil {
		return nil, err
	}
	b := &bundle{root: root, pluginsDir: filepath.Join(root, "plugins"), webappDir: filepath.Join(root, "client")}
	fail := func(err error) (*bundle, error) {
		b.remove()
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	staging := filepath.Join(root, "staging")
	top, err := extractTarGz(archive, staging)
	if err != nil {
		return fail(err)
	}
	manifest, err := readManifest(filepath.Join(staging, top, "plugin.json"))
	if err != nil {
		return fail(err)
	}
	exe, err := serverExecutable(manifest)
	if err != nil {
		return fail(fmt.Errorf("plugin.json: %w", err))
	}
	b.manifest = manifest
	b.dir = filepath.Join(b.pluginsDir, manifest.Id)
	b.executable = filepath.Join(b.dir, exe)
	if err := os.MkdirAll(b.pluginsDir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(b.webappDir, 0o755); err != nil {
		return fail(err)
	}
	if err := os.Rename(filepath.Join(staging, top), b.dir); err != nil {
		return fail(err)
	}
	if err := checkExecutable(b.executable, exe); err != nil {
		return fail(err)
	}
	return b, nil
}

// memberPath is where tar member h unpacks, relative to the archive's root (cleaned,
// slash-separated), or why it is refused: a name that is absolute or climbs out with `..`, or
// a member that is neither a directory nor a regular file (links and devices could point
// anywhere once unpacked, and a later member could write through a link).
func memberPath(h *tar.Header) (string, error) {
	name := path.Clean(strings.TrimPrefix(h.Name, "./"))
	if path.IsAbs(h.Name) || name == ".." || strings.HasPrefix(name, "../") || name == "." {
		return "", fmt.Errorf("member %q escapes the bundle", h.Name)
	}
	if h.Typeflag != tar.TypeDir && h.Typeflag != tar.TypeReg {
		return "", fmt.Errorf("member %q is not a file or directory (type %q)", h.Name, h.Typeflag)
	}
	return name, nil
}

// extractTarGz unpacks archive into dst and returns its single top-level directory.
func extractTarGz(archive, dst string) (string, error) {
	f, err := os.Open(archive)
	if err != nil {
		return "", err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("not a gzip file: %w", err)
	}
	tr := tar.NewReader(gz)
	top := ""
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("reading the tar stream: %w", err)
		}
		name, err := memberPath(h)
		if err != nil {
			return "", err
		}
		first, _, _ := strings.Cut(name, "/")
		if top == "" {
			top = first
		} else if first != top {
			return "", fmt.Errorf("more than one top-level directory (%q and %q)", top, first)
		}
		target := filepath.Join(dst, filepath.FromSlash(name))
		if h.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return "", err
			}
			continue
		}
		total += h.Size
		if total > maxArchiveBytes {
			return "", fmt.Errorf("unpacks to more than %d bytes", int64(maxArchiveBytes))
		}
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return "", err
		}
		out, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(h.Mode)&0o755|0o600)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(out, io.LimitReader(tr, h.Size))
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", err
		}
	}
	if top == "" {
		return "", errors.New("the archive is empty")
	}
	return top, nil
}

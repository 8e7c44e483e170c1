package main

import (
	"archive/tar"
	"strings"
	"testing"
)

// memberPath refuses every member that could land outside the bundle's directory, and keeps
// the names of plain files and directories that stay inside it.
func TestMemberPathRefusesEscapesAndLinks(t *testing.T) {
	for _, tc := range []struct {
		name     string
		typeflag byte
		want     string // what the error says
	}{
		{"../outside.txt", tar.TypeReg, "escapes the bundle"},
		{"..", tar.TypeDir, "escapes the bundle"},
		{"./../outside.txt", tar.TypeReg, "escapes the bundle"},
		{"top/../../outside.txt", tar.TypeReg, "escapes the bundle"},
		{"top/a/../../../outside.txt", tar.TypeReg, "escapes the bundle"},
		{"/etc/cron.d/outside", tar.TypeReg, "escapes the bundle"},
		{"/", tar.TypeDir, "escapes the bundle"},
		{"./", tar.TypeDir, "escapes the bundle"},
		{"top/link", tar.TypeSymlink, "is not a file or directory"},
		{"top/hard", tar.TypeLink, "is not a file or directory"},
		{"top/tty", tar.TypeChar, "is not a file or directory"},
		{"top/disk", tar.TypeBlock, "is not a file or directory"},
		{"top/fifo", tar.TypeFifo, "is not a file or directory"},
	} {
		got, err := memberPath(&tar.Header{Name: tc.name, Typeflag: tc.typeflag})
		if err == nil {
			t.Errorf("member %q (type %q) is accepted as %q; want it refused: %s", tc.name, tc.typeflag, got, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("member %q (type %q): error %q does not say %q", tc.name, tc.typeflag, err, tc.want)
		}
	}

	for _, tc := range []struct {
		name     string
		typeflag byte
		want     string
	}{
		{"top/", tar.TypeDir, "top"},
		{"top/plugin.json", tar.TypeReg, "top/plugin.json"},
		{"./top/plugin.json", tar.TypeReg, "top/plugin.json"},
		{"top/server/../plugin.json", tar.TypeReg, "top/plugin.json"},
		// Dots inside a name are not a parent directory.
		{"top/..hidden", tar.TypeReg, "top/..hidden"},
		{"top/v1..2/x.py", tar.TypeReg, "top/v1..2/x.py"},
	} {
		got, err := memberPath(&tar.Header{Name: tc.name, Typeflag: tc.typeflag})
		if err != nil || got != tc.want {
			t.Errorf("member %q (type %q) = %q, %v; want %q", tc.name, tc.typeflag, got, err, tc.want)
		}
	}
}

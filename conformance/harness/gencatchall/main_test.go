package main

import (
	"bytes"
	"os"
	"testing"
)

// The committed files must be exactly what the generator makes from the pinned plugin.API.
func TestGeneratedFilesAreCurrent(t *testing.T) {
	for file, gen := range map[string]func() ([]byte, error){"catchall_generated.go": generate, "fidelity_generated.go": generateFidelity} {
		want, err := gen()
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile("../" + file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s is stale: run `go generate ./conformance/harness`", file)
		}
	}
}

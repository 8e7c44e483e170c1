package main

import (
	"bytes"
	"os"
	"testing"
)

// The committed catch-all must be exactly what the generator makes from the pinned plugin.API.
func TestGeneratedFileIsCurrent(t *testing.T) {
	want, err := generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../catchall_generated.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("catchall_generated.go is stale: run `go generate ./conformance/harness`")
	}
}

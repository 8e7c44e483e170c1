// Command apischema extracts the Mattermost plugin API surface from the pinned
// github.com/mattermost/mattermost/server/public module and writes it as the JSON schema
// described in docs/internals.md §6 (schema/mattermost-api.json).
//
// Everything downstream (the .proto files, the bridge's method table, the Python client) is
// generated from that file, so it records what travels on the wire, not just what the Go
// interfaces say: the exact Z_ argument/reply structs of each net/rpc call, the Go types that
// gob sees, and the names gob.Register gives to interface payloads.
//
// Usage (from anywhere inside the repository):
//
//	go run ./tools/apischema            # rewrite schema/mattermost-api.json
//	go run ./tools/apischema -o -       # print to stdout
//	go run ./tools/apischema -check     # exit 1 if the committed file is stale
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// modulePath is the Mattermost module the schema describes; its version is whatever the
// repository's go.mod pins, read back from go/packages so the file says what it was built from.
const modulePath = "github.com/mattermost/mattermost/server/public"

func main() {
	out := flag.String("o", "", "output file (default: <module root>/schema/mattermost-api.json; - for stdout)")
	check := flag.Bool("check", false, "do not write; exit 1 if the output file differs from a fresh extraction")
	flag.Parse()
	if flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "apischema: unexpected arguments:", flag.Args())
		os.Exit(2)
	}
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "apischema:", err)
		os.Exit(1)
	}
}

func run(out string, check bool) error {
	if out == "" {
		root, err := moduleRoot()
		if err != nil {
			return err
		}
		out = filepath.Join(root, "schema", "mattermost-api.json")
	}
	schema, err := Extract()
	if err != nil {
		return err
	}
	data, err := Encode(schema)
	if err != nil {
		return err
	}
	if check {
		if out == "-" {
			return fmt.Errorf("-check needs a file, not stdout")
		}
		old, err := os.ReadFile(out)
		if err != nil {
			return fmt.Errorf("-check: %w", err)
		}
		if !bytes.Equal(old, data) {
			return fmt.Errorf("%s is stale: run `go run ./tools/apischema` and commit the result", out)
		}
		return nil
	}
	if out == "-" {
		_, err = os.Stdout.Write(data)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(out, data, 0o644)
}

// moduleRoot finds the directory of the enclosing go.mod, so the default output path does not
// depend on the directory the tool is started from.
func moduleRoot() (string, error) {
	b, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(b))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("not inside a Go module; run from the repository")
	}
	return filepath.Dir(gomod), nil
}

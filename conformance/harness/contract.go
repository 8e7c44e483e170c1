package main

// The contract the bridge speaks: schema/mattermost-api.json, extracted from the pinned
// server/public module (docs/internals.md §6). The harness itself is built against whatever
// server/public module `go build` selected: the pinned one normally, an older release in the
// version matrix (conformance/matrix). When the two differ, the fidelity sweep needs the
// contract to know
//   - the API methods and hooks the older server lacks (its plugin.API/plugin.Hooks against the
//     contract's), and
//   - the protobuf field numbers of model struct fields, which follow the contract's field order
//     and not the older struct's (a field added in the middle shifts every later ordinal).
// Against the pinned module both are identical to what reflection gives, and the sweep keeps
// using reflection alone (see fieldSuffixes).

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

type contractMethod struct {
	Name             string  `json:"name"`
	MinServerVersion *string `json:"min_server_version"`
	Params           []struct {
		Type string `json:"type"`
	} `json:"params"`
	Results []struct {
		Type string `json:"type"`
	} `json:"results"`
}

type contractType struct {
	Kind    string `json:"kind"`
	Package string `json:"package"`
	Fields  []struct {
		Name string `json:"name"`
	} `json:"fields"`
}

type contractSchema struct {
	Version string                  `json:"version"`
	API     []contractMethod        `json:"api"`
	Hooks   []contractMethod        `json:"hooks"`
	Types   map[string]contractType `json:"types"`
}

// contract is the loaded schema with the lookups the harness needs.
type contract struct {
	version string
	api     []contractMethod
	hooks   []contractMethod
	// fields maps "<import path>.<TypeName>" to the struct's wire field names in contract
	// order (field i has protobuf number i+1).
	fields map[string][]string
}

func loadContract() (*contract, error) {
	root, err := repoRoot()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "schema", "mattermost-api.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the contract: %w", err)
	}
	var s contractSchema
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if s.Version == "" || len(s.API) == 0 || len(s.Hooks) == 0 {
		return nil, fmt.Errorf("%s: no version, API methods or hooks", path)
	}
	c := &contract{version: s.Version, api: s.API, hooks: s.Hooks, fields: map[string][]string{}}
	for key, t := range s.Types {
		if t.Kind != "struct" {
			continue
		}
		name := key[strings.LastIndexByte(key, '.')+1:]
		names := make([]string, len(t.Fields))
		for i, f := range t.Fields {
			names[i] = f.Name
		}
		c.fields[t.Package+"."+name] = names
	}
	return c, nil
}

// streaming reports whether the method or hook moves bytes on a stream (the fidelity plugin
// does not call those; see streamingReason for the reflection form).
func (m contractMethod) streaming() bool {
	for _, group := range [][]struct {
		Type string `json:"type"`
	}{m.Params, m.Results} {
		for _, p := range group {
			switch p.Type {
			case "io.Reader", "io.Writer", "*http.Request", "*http.Response", "http.ResponseWriter":
				return true
			}
		}
	}
	return false
}

// unimplementedWant is what the bridge answers for an API method the server lacks
// (docs/internals.md §5): gRPC UNIMPLEMENTED naming the method, the server version it needs,
// and the server's own net/rpc error.
func (m contractMethod) unimplementedWant() string {
	since := ""
	if m.MinServerVersion != nil {
		since = fmt.Sprintf(" (it needs Mattermost %s or newer)", *m.MinServerVersion)
	}
	return fmt.Sprintf("gRPC StatusCode.UNIMPLEMENTED: this Mattermost server does not have the API method %s%s: rpc: can't find method Plugin.%s", m.Name, since, m.Name)
}

package main

import (
	"bytes"
	"encoding/json"
)

// Schema is the whole file; docs/internals.md §6 describes every field.
type Schema struct {
	Module     string           `json:"module"`
	Version    string           `json:"version"`
	API        []*Method        `json:"api"`
	Hooks      []*Method        `json:"hooks"`
	Types      map[string]*Type `json:"types"`
	Registered []Registered     `json:"registered"`
}

// Method is one plugin.API or plugin.Hooks method together with its net/rpc wire shape.
type Method struct {
	Name             string   `json:"name"`
	Doc              string   `json:"doc"`
	MinServerVersion *string  `json:"min_server_version"`
	Tags             []string `json:"tags"`
	Params           []Var    `json:"params"`
	Results          []Var    `json:"results"`
	Wire
	// Regular is true when the Z_ fields are exactly A, B, C… carrying the params (args) and
	// the results (returns) in order with the same types; everything else needs special
	// handling in the bridge, described field by field through Role/Of and in WireNote.
	Regular  bool   `json:"regular"`
	WireNote string `json:"wire_note,omitempty"`
	// Alternates are other net/rpc methods that serve the same Go method (PluginHTTPStream
	// for PluginHTTP: the Go client tries it first and falls back to the buffered call).
	Alternates []Wire `json:"alternates,omitempty"`
}

// Wire is one net/rpc call: service method, the args value and the reply value, as the Go
// RPC server's method declares them (pointers removed: gob flattens them).
type Wire struct {
	ServiceMethod string      `json:"service_method"`
	ArgsStruct    *string     `json:"args_struct"`
	ReturnsStruct *string     `json:"returns_struct"`
	ArgsType      string      `json:"args_type"`
	ReturnsType   string      `json:"returns_type"`
	ArgsFields    []WireField `json:"args_fields"`
	ReturnsFields []WireField `json:"returns_fields"`
}

// Var is a Go parameter or result.
type Var struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Variadic bool   `json:"variadic,omitempty"`
}

// WireField is one field of a Z_ struct. Role says what it carries:
//
//	param   the Go parameter number Index (Of = its name)
//	result  the Go result number Index
//	stream  a go-plugin mux-broker stream id; Of names the parameter or result whose bytes
//	        travel on that stream, Note says who Accepts and who Dials
//	request an *HTTPRequestSubset built from the *http.Request parameter Of
//	body    the complete body bytes of the request/response named by Of (buffered variant)
//	other   anything else, explained by Note
type WireField struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Role  string `json:"role"`
	Index *int   `json:"index,omitempty"`
	Of    string `json:"of,omitempty"`
	Note  string `json:"note,omitempty"`
}

// Type is a named Go type reachable from the API surface.
type Type struct {
	// Kind is "struct", "named" (any other underlying type) or "interface".
	Kind    string  `json:"kind"`
	Package string  `json:"package"`
	Doc     string  `json:"doc,omitempty"`
	Fields  []Field `json:"fields,omitempty"`
	// Underlying is set for kind "named".
	Underlying string `json:"underlying,omitempty"`
	// Methods lists the method names of a kind "interface" type (sorted).
	Methods []string `json:"methods,omitempty"`
	// Gob is "GobEncoder" or "BinaryMarshaler" when gob sends this type as opaque bytes
	// produced by that method (checked on T and *T, the way encoding/gob does); null otherwise.
	Gob *string `json:"gob"`
}

// Field is one exported, gob-visible struct field.
type Field struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	JSON     string `json:"json"`
	Embedded bool   `json:"embedded"`
	Doc      string `json:"doc,omitempty"`
}

// Registered is one gob.Register/RegisterName call of the plugin package's init: Name is the
// string gob writes before an interface value of Type.
type Registered struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// Encode renders the schema deterministically: struct fields in declaration order, map keys
// sorted by encoding/json, no HTML escaping (doc comments contain < and &), trailing newline.
func Encode(s *Schema) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

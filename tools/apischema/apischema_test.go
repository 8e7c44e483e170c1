package main

import (
	"bytes"
	"encoding/gob"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/lib/pq"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// extracted caches one extraction: loading the module takes seconds.
var extracted struct {
	schema *Schema
	data   []byte
}

func extract(t *testing.T) (*Schema, []byte) {
	t.Helper()
	if extracted.schema == nil {
		s, err := Extract()
		if err != nil {
			t.Fatal(err)
		}
		data, err := Encode(s)
		if err != nil {
			t.Fatal(err)
		}
		extracted.schema, extracted.data = s, data
	}
	return extracted.schema, extracted.data
}

func TestCommittedSchemaIsCurrentAndDeterministic(t *testing.T) {
	_, data := extract(t)
	s2, err := Extract()
	if err != nil {
		t.Fatal(err)
	}
	data2, err := Encode(s2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(data, data2) {
		t.Fatal("two extractions differ")
	}
	root, err := moduleRoot()
	if err != nil {
		t.Fatal(err)
	}
	committed, err := os.ReadFile(filepath.Join(root, "schema", "mattermost-api.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(committed, data) {
		t.Fatal("schema/mattermost-api.json is stale: run `go run ./tools/apischema`")
	}
}

// The Go interfaces themselves (via reflect) judge the method names and counts; the
// declaration order comes from the syntax and is checked by the protos' apiverify test.
func TestMethodsMatchTheGoInterfaces(t *testing.T) {
	s, _ := extract(t)
	for _, c := range []struct {
		got   []*Method
		iface any
	}{{s.API, (*plugin.API)(nil)}, {s.Hooks, (*plugin.Hooks)(nil)}} {
		names := map[string]bool{}
		for _, m := range c.got {
			if names[m.Name] {
				t.Errorf("%s listed twice", m.Name)
			}
			names[m.Name] = true
			if m.MinServerVersion == nil {
				t.Errorf("%s: no minimum server version parsed from %q", m.Name, m.Doc)
			}
			if m.ServiceMethod == "" || len(m.Doc) == 0 {
				t.Errorf("%s: missing wire method or doc", m.Name)
			}
		}
		want := interfaceMethods(c.iface)
		if len(want) != len(c.got) {
			t.Errorf("%T: %d methods, schema has %d", c.iface, len(want), len(c.got))
		}
		for _, w := range want {
			if !names[w] {
				t.Errorf("%T.%s missing from the schema", c.iface, w)
			}
		}
	}
	var irregular []string
	for _, m := range append(slices.Clone(s.API), s.Hooks...) {
		if !m.Regular {
			irregular = append(irregular, m.Name)
			if m.WireNote == "" {
				t.Errorf("%s: irregular without a wire note", m.Name)
			}
		}
	}
	// The special cases of client_rpc.go, as read by hand from the module source.
	wantIrregular := []string{"LoadPluginConfiguration", "InstallPlugin", "PluginHTTP", "UploadData",
		"ReceiveSharedChannelAttachmentSyncMsg", "OnActivate", "Implemented", "ServeHTTP",
		"FileWillBeUploaded", "ServeMetrics"}
	if !slices.Equal(irregular, wantIrregular) {
		t.Errorf("irregular methods %v, want %v", irregular, wantIrregular)
	}
}

// TestRegisteredNamesAreGobs checks every registered name against encoding/gob itself: the
// plugin package's real init has registered the types (it is imported here), so encoding an
// interface value writes the registered name into the stream.
func TestRegisteredNamesAreGobs(t *testing.T) {
	s, _ := extract(t)
	values := map[string]any{
		"[]*model.MessageAttachment":                         []*model.MessageAttachment{{Text: "x"}},
		"[]interface {}":                                     []any{1},
		"map[string]interface {}":                            map[string]any{"k": 1},
		"*model.AppError":                                    &model.AppError{Id: "x"},
		"*pq.Error":                                          &pq.Error{Message: "x"},
		"*plugin.ErrorString":                                &plugin.ErrorString{Err: "x"},
		"*model.AutocompleteDynamicListArg":                  &model.AutocompleteDynamicListArg{FetchURL: "x"},
		"*model.AutocompleteStaticListArg":                   &model.AutocompleteStaticListArg{PossibleArguments: []model.AutocompleteListItem{{Item: "x"}}},
		"*model.AutocompleteTextArg":                         &model.AutocompleteTextArg{Hint: "x"},
		"*model.PreviewPost":                                 &model.PreviewPost{PostID: "x"},
		"model.PropertyOptions[*model.PluginPropertyOption]": model.PropertyOptions[*model.PluginPropertyOption]{{}},
		"[]model.PropertyOwner":                              []model.PropertyOwner{{ID: "x"}},
	}
	if len(s.Registered) != len(values) {
		t.Errorf("schema has %d registered names, the test knows %d", len(s.Registered), len(values))
	}
	for _, r := range s.Registered {
		v, ok := values[r.Type]
		if !ok {
			t.Errorf("registered type %s has no test value", r.Type)
			continue
		}
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(&struct{ V any }{v}); err != nil {
			t.Errorf("%s: gob: %v", r.Type, err)
			continue
		}
		if !bytes.Contains(buf.Bytes(), []byte(r.Name)) {
			t.Errorf("%s: gob did not write the name %q", r.Type, r.Name)
		}
	}
}

func TestWireFieldsExplainIrregularShapes(t *testing.T) {
	s, _ := extract(t)
	for _, m := range append(slices.Clone(s.API), s.Hooks...) {
		for _, w := range append([]Wire{m.Wire}, m.Alternates...) {
			for _, f := range append(slices.Clone(w.ArgsFields), w.ReturnsFields...) {
				if f.Role == "" {
					t.Errorf("%s.%s: no role", w.ServiceMethod, f.Name)
				}
				if f.Role == "stream" && f.Type != "uint32" {
					t.Errorf("%s.%s: stream id of type %s", w.ServiceMethod, f.Name, f.Type)
				}
			}
		}
	}
	byName := map[string]*Method{}
	for _, m := range s.API {
		byName[m.Name] = m
	}
	lpc := byName["LoadPluginConfiguration"]
	if *lpc.ArgsStruct != "Z_LoadPluginConfigurationArgsArgs" || len(lpc.ArgsFields) != 0 ||
		len(lpc.ReturnsFields) != 1 || lpc.ReturnsFields[0].Type != "[]uint8" {
		t.Errorf("LoadPluginConfiguration wire shape: %+v", lpc.Wire)
	}
	if ph := byName["PluginHTTP"]; len(ph.Alternates) != 1 || ph.Alternates[0].ServiceMethod != "Plugin.PluginHTTPStream" {
		t.Errorf("PluginHTTP alternates: %+v", ph.Alternates)
	}
	if ty := s.Types["time.Time"]; ty == nil || ty.Gob == nil || *ty.Gob != "GobEncoder" {
		t.Errorf("time.Time gob kind: %+v", ty)
	}
	if ty := s.Types["url.URL"]; ty == nil || ty.Gob == nil || *ty.Gob != "BinaryMarshaler" {
		t.Errorf("url.URL gob kind: %+v", ty)
	}
	if ty := s.Types["model.Post"]; ty == nil || ty.Kind != "struct" || ty.Fields[0].JSON != "id" {
		t.Errorf("model.Post: %+v", ty)
	}
}

func interfaceMethods(ptr any) []string {
	var out []string
	rt := reflect.TypeOf(ptr).Elem()
	for i := 0; i < rt.NumMethod(); i++ {
		out = append(out, rt.Method(i).Name)
	}
	return out
}

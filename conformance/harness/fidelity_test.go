package main

import (
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/mattermost/mattermost/server/public/model"
)

// The filler must set every wire field of a deep model type, and flatten must see each one.
func TestFillerSetsEveryWireField(t *testing.T) {
	f := filler{structs: map[reflect.Type]bool{}}
	v := f.value(reflect.TypeFor[*model.Post](), "P", 0)
	if len(f.unfillable) > 0 {
		t.Fatalf("unfillable: %v", f.unfillable)
	}
	post := v.Interface().(*model.Post)
	if post.Id != "P.1" || !post.IsPinned || post.Metadata == nil || len(post.Metadata.Files) != 2 {
		t.Fatalf("post not filled as the rule says: %+v", post)
	}
	if post.Props["s"] != "P.14{s}" {
		t.Errorf("props = %v", post.Props)
	}
	// Every struct type a Post reaches within the depth is filled.
	reach := map[reflect.Type]bool{}
	reachableStructs(reflect.TypeFor[model.Post](), reach)
	for rt := range reach {
		if !f.structs[rt] {
			t.Errorf("%s is reachable from Post but was not filled", rt)
		}
	}
	leaves := map[string]string{}
	flatten(v, "P", leaves)
	for path, leaf := range leaves {
		if leaf == "" || strings.HasPrefix(leaf, "unsupported") {
			t.Errorf("%s: leaf %q", path, leaf)
		}
	}
	if leaves["P.1"] != "s:P.1" {
		t.Errorf("P.1 = %q", leaves["P.1"])
	}
}

// leafDiff names missing, changed and unexpected paths.
func TestLeafDiff(t *testing.T) {
	want := map[string]string{"a": "s:a", "b": "n:1"}
	got := map[string]string{"a": "s:x", "c": "b:true"}
	d := strings.Join(leafDiff(got, want), "\n")
	for _, s := range []string{`a: got "s:x", want "s:a"`, `b: missing, want "n:1"`, `c: unexpected "b:true"`} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}
	if len(leafDiff(want, want)) != 0 {
		t.Error("equal maps differ")
	}
}

// The hash must be FNV-1a 64, which the Python plugin implements too.
func TestPathHashIsFNV1a(t *testing.T) {
	if got := pathHash("a"); got != 0xaf63dc4c8601ec8c {
		t.Fatalf("pathHash(a) = %#x", got)
	}
}

// The error plan must reach every status the SDK has a subclass for (and one it has not), so
// each subclass is exercised by some api-error case; and no planned method may lack an error
// result.
func TestErrorPlanCoversEverySDKSubclass(t *testing.T) {
	plan := errorPlan()
	if len(plan) == 0 {
		t.Fatal("empty error plan")
	}
	seen := map[string]bool{}
	for _, name := range plan {
		m, ok := apiInterface.MethodByName(name)
		if !ok || !hasErrorResult(m.Type) {
			t.Errorf("%s is planned but has no error result", name)
		}
		seen[sdkClassFor(apiErrorFor(name).StatusCode)] = true
	}
	for _, class := range append(slices.Collect(maps.Values(sdkErrorClass)), "PluginAPIError") {
		if !seen[class] {
			t.Errorf("no planned method gets a status the SDK raises as %s", class)
		}
	}
	// Distinct per method: the id names the method.
	if a, b := apiErrorFor("KVGet"), apiErrorFor("KVSet"); a.Id == b.Id || a.Where == b.Where {
		t.Errorf("errors of two methods are not distinct: %+v %+v", a, b)
	}
}

// Integers in interfaces are doubles to Python; they come back of their Go type only in a hook
// result that replaces a parameter of the same type.
func TestIntegersComeBackAsSentOnlyWhereAResultReplacesAParameter(t *testing.T) {
	want := map[string]string{
		"P{i}": "int:42", "P{n}": "int64:9007199254740993", "P{m}{n}": "int64:-9007199254740995",
		"P{u}": "uint64:18446744073709551615", "P.3": "n:7", "P.4": "s:int:5", "P{f}": "f:2.5",
	}
	doubles := asDoubles(want)
	for path, leaf := range map[string]string{
		"P{i}": "f:42", "P{n}": "f:9007199254740992", "P{m}{n}": "f:-9007199254740996",
		"P{u}": "f:18446744073709552000", "P.3": "n:7", "P.4": "s:int:5", "P{f}": "f:2.5",
	} {
		if doubles[path] != leaf {
			t.Errorf("asDoubles: %s = %q, want %q", path, doubles[path], leaf)
		}
	}

	posted, _ := hooksInterface.MethodByName("MessageWillBePosted") // (c, post) → (post, reason)
	command, _ := hooksInterface.MethodByName("ExecuteCommand")     // (c, args) → (response, error)
	back := asReturned(posted, map[string]string{"MessageWillBePosted.out.2.14{n}": "int64:9007199254740993"})
	if got := back["MessageWillBePosted.out.2.14{n}"]; got != "int64:9007199254740993" {
		t.Errorf("MessageWillBePosted's post replaces its argument: %q, want the int64 back", got)
	}
	back = asReturned(command, map[string]string{"ExecuteCommand.out.2.7{n}": "int64:9007199254740993"})
	if got := back["ExecuteCommand.out.2.7{n}"]; got != "f:9007199254740992" {
		t.Errorf("ExecuteCommand's response replaces no argument: %q, want Python's double", got)
	}
}

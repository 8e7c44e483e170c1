package main

import (
	"strings"
	"testing"
)

// propsDiff tells a value from the same number of another Go type, at any depth, and names
// the types.
func TestPropsDiffComparesGoTypes(t *testing.T) {
	want := map[string]any(smokeProps())
	if d := propsDiff(smokeProps(), want, false); len(d) > 0 {
		t.Fatalf("equal props differ: %v", d)
	}
	got := smokeProps()
	got["mmplug_smoke_int"] = float64(42)
	got["mmplug_smoke_list"] = []any{"a", float64(-7)}
	got["added"] = true
	d := strings.Join(propsDiff(got, want, false), "\n")
	for _, s := range []string{
		"mmplug_smoke_int is float64(42), want int(42)",
		`mmplug_smoke_list is ["a" float64(-7)], want ["a" int64(-7)]`,
		"added is bool(true), want no such prop",
	} {
		if !strings.Contains(d, s) {
			t.Errorf("diff lacks %q:\n%s", s, d)
		}
	}
	if d := propsDiff(got, want, true); len(d) != 2 {
		t.Errorf("with extra props allowed, want the 2 changed values, got %v", d)
	}
}

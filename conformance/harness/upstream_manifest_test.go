package main

import (
	"encoding/json"
	"runtime"
	"testing"
)

func TestUpstreamManifestIsRewrittenAsMmplugBundleDoes(t *testing.T) {
	platform := runtime.GOOS + "-" + runtime.GOARCH
	for _, c := range []struct {
		name, raw, entry string
	}{
		{"executable", `{"id":"a.b.c","server":{"executable":"server/plugin.py","runtime":"python","python_version":"3.9","python":{"requirements_path":"server/requirements.txt"}}}`, "server/plugin.py"},
		{"entry_point", `{"id":"a.b.c","server":{"runtime":"python","python":{"entry_point":"main.py"}}}`, "main.py"},
		{"props_entry_wins", `{"id":"a.b.c","server":{"executable":"x.py"},"props":{"mmplug":{"entry":"plugin.py"}}}`, "plugin.py"},
	} {
		out, ok, err := upstreamManifest([]byte(c.raw))
		if err != nil || !ok {
			t.Fatalf("%s: (%v, %v), want a rewritten manifest", c.name, ok, err)
		}
		var doc struct {
			Server map[string]any `json:"server"`
			Props  struct {
				Mmplug map[string]any `json:"mmplug"`
			} `json:"props"`
		}
		if err := json.Unmarshal(out, &doc); err != nil {
			t.Fatal(err)
		}
		for _, key := range []string{"runtime", "executable", "python"} {
			if _, kept := doc.Server[key]; kept {
				t.Errorf("%s: server.%s kept", c.name, key)
			}
		}
		if exes, _ := doc.Server["executables"].(map[string]any); exes[platform] != "server/dist/plugin-"+platform {
			t.Errorf("%s: executables %v", c.name, doc.Server["executables"])
		}
		if doc.Props.Mmplug["entry"] != c.entry {
			t.Errorf("%s: entry %v, want %s", c.name, doc.Props.Mmplug["entry"], c.entry)
		}
	}
	plain := `{"id":"a.b.c","server":{"executables":{"linux-amd64":"server/dist/plugin-linux-amd64"}}}`
	if out, ok, err := upstreamManifest([]byte(plain)); err != nil || ok || string(out) != plain {
		t.Errorf("a manifest of ours was rewritten: %s %v %v", out, ok, err)
	}
}

package main

// Plugin directories written for Mattermost's own Python SDK (docs/upstream.md) name their
// Python entry in the manifest (server.runtime "python", server.executable ending in .py, or
// server.python.entry_point) instead of listing the bridge. `mmplug bundle` rewrites such a
// manifest for the bundle; -plugin DIR -bridge (and `mmplug dev`) does the same to its copy,
// so those plugins run from their directory unchanged too.

import (
	"encoding/json"
	"fmt"
	"runtime"
	"strings"
)

// upstreamManifest returns the manifest `mmplug bundle` would ship for raw, and true, when raw
// is a manifest of Mattermost's own Python plugins; raw and false otherwise.
func upstreamManifest(raw []byte) ([]byte, bool, error) {
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, false, err
	}
	server, _ := doc["server"].(map[string]any)
	if server == nil {
		return raw, false, nil
	}
	entry := ""
	if python, ok := server["python"].(map[string]any); ok {
		entry, _ = python["entry_point"].(string)
	}
	executable, _ := server["executable"].(string)
	if entry == "" && strings.HasSuffix(executable, ".py") {
		entry = executable
	}
	runtimeName, _ := server["runtime"].(string)
	if entry == "" && runtimeName != "python" {
		return raw, false, nil
	}
	delete(server, "runtime")
	delete(server, "python")
	if strings.HasSuffix(executable, ".py") {
		delete(server, "executable")
	}
	platform := runtime.GOOS + "-" + runtime.GOARCH
	server["executables"] = map[string]any{platform: "server/dist/plugin-" + platform}
	props, _ := doc["props"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	settings, _ := props["mmplug"].(map[string]any)
	if settings == nil {
		settings = map[string]any{}
	}
	if _, given := settings["entry"]; !given && entry != "" {
		settings["entry"] = entry
	}
	props["mmplug"] = settings
	doc["props"] = props
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, false, fmt.Errorf("writing the manifest: %w", err)
	}
	return out, true, nil
}

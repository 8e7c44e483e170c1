package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// `mmplug config set` and `get` against examples/moderation, over the local-mode socket and over
// the admin's token: the values come back from `get`, are stored under the lower-case keys the
// plugin reads (LoadPluginConfiguration) and nothing else, and the plugin applies them (a post
// with the newly banned word is rejected, one with the word no longer banned is accepted). A
// value outside a radio setting's options and an unknown plugin are refused with exit 1.
func caseConfig(e *env, _ *caseState) error {
	p := e.moderation
	if err := e.deployToken(p); err != nil {
		return fmt.Errorf("mmplug deploy: %w", err)
	}
	defer func() { _ = e.disable(p) }()
	var problems []string
	fail := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	// mmplug runs `mmplug config ARGS` and answers its stdout, or why it failed.
	mmplug := func(local bool, args ...string) (string, error) {
		res, err := e.runMmplug(local, append([]string{"config"}, args...)...)
		if err != nil {
			return "", err
		}
		if res.code != 0 {
			return "", errors.New(res.String())
		}
		return res.stdout, nil
	}
	// rejects waits until a post holding word is rejected (OnConfigurationChange runs after
	// the save) or, with want false, accepted.
	rejects := func(word string, want bool) error {
		var last *reply
		err := eventually(10*time.Second, func() error {
			r, err := e.w.post(e.w.user1, "a post saying "+word+" here", nil)
			if err != nil {
				return err
			}
			last = r
			if rejected(r) != want {
				return errors.New("not yet")
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("a post with %q: want %s, the server %s within 10 s", word, map[bool]string{true: "rejected", false: "accepted"}[want], postVerdict(last))
		}
		return nil
	}
	storedKeys := func() (map[string]any, error) {
		r, err := must(e.w.local.get("/api/v4/config"))(http.StatusOK)
		if err != nil {
			return nil, err
		}
		var cfg struct {
			PluginSettings struct {
				Plugins map[string]map[string]any
			}
		}
		if err := r.json(&cfg); err != nil {
			return nil, err
		}
		return cfg.PluginSettings.Plugins[p.id], nil
	}

	for _, way := range []struct {
		local      bool
		name, word string
		previous   string
	}{
		{true, "local mode", "zorblax", ""},
		{false, "token", "quuxle", "zorblax"},
	} {
		out, err := mmplug(way.local, "set", p.id, "BannedWords="+way.word, "Action=reject", "MatchWholeWords=true")
		if err != nil {
			fail("%s: config set: %v", way.name, err)
			continue
		}
		var saved map[string]any
		if err := json.Unmarshal([]byte(out), &saved); err != nil || saved["bannedwords"] != way.word {
			fail("%s: config set printed %q, not the saved settings with bannedwords %q", way.name, out, way.word)
		}
		if got, err := mmplug(way.local, "get", p.id, "BannedWords"); err != nil || got != way.word+"\n" {
			fail("%s: config get BannedWords: %q, %v (want %q)", way.name, got, err, way.word)
		}
		if got, err := mmplug(way.local, "get", p.id); err != nil {
			fail("%s: config get: %v", way.name, err)
		} else if err := json.Unmarshal([]byte(got), &saved); err != nil || saved["matchwholewords"] != true || saved["action"] != "reject" {
			fail("%s: config get printed %q", way.name, got)
		}
		if settings, err := storedKeys(); err != nil {
			fail("%s: reading the stored configuration: %v", way.name, err)
		} else {
			for k := range settings {
				if k != strings.ToLower(k) {
					fail("%s: the server stores the key %q, not lower case", way.name, k)
				}
			}
			if settings["bannedwords"] != way.word {
				fail("%s: the server stores bannedwords=%v", way.name, settings["bannedwords"])
			}
		}
		if err := rejects(way.word, true); err != nil {
			fail("%s: the plugin did not apply the setting: %v", way.name, err)
		}
		if way.previous != "" {
			if err := rejects(way.previous, false); err != nil {
				fail("%s: the previous banned word still applies: %v", way.name, err)
			}
		}
	}

	res, err := e.runMmplug(false, "config", "set", p.id, "Action=delete")
	if err != nil {
		return err
	}
	if res.code != 1 || !strings.Contains(res.stderr, "Action is a radio setting: 'delete' is not one of its options (reject, flag)") {
		fail("config set Action=delete: %s (want exit 1 naming the options)", res)
	}
	res, err = e.runMmplug(true, "config", "get", "com.mmplug.not-installed")
	if err != nil {
		return err
	}
	if res.code != 1 || !strings.Contains(res.stderr, "plugin com.mmplug.not-installed is not installed") {
		fail("config get of an unknown plugin: %s (want exit 1, not installed)", res)
	}
	if err := e.alive2(p, "/moderation"); err != nil {
		fail("%v", err)
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

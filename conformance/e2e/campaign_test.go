package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

var testWorld = &world{channel: strings.Repeat("c", 26), team: strings.Repeat("t", 26), adminID: strings.Repeat("a", 26)}

// The same seed and index give the same input, whatever else was generated.
func TestCampaignDeterministic(t *testing.T) {
	for i := 0; i < 300; i++ {
		a, b := makeInput(7, i, testWorld), makeInput(7, i, testWorld)
		if describeInput(a) != describeInput(b) || !bytes.Equal(a.body, b.body) {
			t.Fatalf("input %d differs between two generations", i)
		}
	}
}

// The boundary inputs sit where campaign_gen.go says the limits are.
func TestCampaignBoundaries(t *testing.T) {
	propsRunes := func(body []byte) int {
		var v struct {
			Props map[string]any `json:"props"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(v.Props)
		return utf8.RuneCount(b)
	}
	messageRunes := func(body []byte) int {
		var v struct {
			Message string `json:"message"`
		}
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatal(err)
		}
		return utf8.RuneCountInString(v.Message)
	}
	in := func(i int) []byte { return makeInput(1, i, testWorld).body }
	if n := messageRunes(in(0)); n != maxMessageRunes {
		t.Errorf("input 0: %d runes", n)
	}
	if n := messageRunes(in(1)); n != maxMessageRunes+1 {
		t.Errorf("input 1: %d runes", n)
	}
	if n := propsRunes(in(3)); n+stampRunes != maxPropsRunes {
		t.Errorf("input 3: %d runes", n)
	}
	if n := propsRunes(in(6)); n != maxPropsRunes+1 {
		t.Errorf("input 6: %d runes", n)
	}
	if n := len(in(8)); n != maxPayload {
		t.Errorf("input 8: %d bytes", n)
	}
	if n := len(in(9)); n != maxPayload+1 {
		t.Errorf("input 9: %d bytes", n)
	}
	var v any
	if err := json.Unmarshal(in(11), &v); err != nil {
		t.Errorf("input 11 (depth 10,000): %v", err)
	}
	if err := json.Unmarshal(in(13), &v); err == nil {
		t.Errorf("input 13 (depth 10,001) decodes")
	}
}

// Most generated bodies are JSON the server decodes; some are not, on purpose.
func TestCampaignMostlyValid(t *testing.T) {
	kinds := map[string]int{}
	bad, total, biggest := 0, 0, 0
	for i := len(boundaryInputs); i < 3000; i++ {
		in := makeInput(3, i, testWorld)
		kinds[in.kind]++
		if in.kind == kindPost || in.kind == kindEdit || in.kind == kindCommand {
			total++
			biggest = max(biggest, len(in.body))
			var v any
			if json.Unmarshal(in.body, &v) != nil {
				bad++
			}
		}
	}
	t.Logf("kinds %v; %d of %d JSON bodies do not decode; biggest %d bytes", kinds, bad, total, biggest)
	if bad*4 > total {
		t.Errorf("%d of %d bodies do not decode", bad, total)
	}
}

func TestLossy(t *testing.T) {
	for in, want := range map[string]string{
		"caf\xe9": "caf\uFFFD", "\xe2\x82x": "\uFFFDx", "\xed\xa0\x80": "\uFFFD\uFFFD\uFFFD",
		"\xf0\x9f\x98": "\uFFFD", "\xc0\x80": "\uFFFD\uFFFD", "ok\uFFFD": "ok\uFFFD",
	} {
		if got := lossy(in); got != want {
			t.Errorf("lossy(%q) = %q, want %q", in, got, want)
		}
	}
}

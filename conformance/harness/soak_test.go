package main

import (
	"strings"
	"testing"
)

// samplesOf builds the 41 samples of a 1,000,000-call soak (warm-up 100,000) from a function of
// the call count.
func samplesOf(f func(calls int64) soakSample) []soakSample {
	const n, warmup = 1_000_000, 100_000
	every := int64((n - warmup) / soakSamples)
	var out []soakSample
	for calls := int64(warmup); calls <= n; calls += every {
		s := f(calls)
		s.calls = calls
		out = append(out, s)
	}
	return out
}

func TestSoakVerdict(t *testing.T) {
	flat := func(int64) soakSample {
		return soakSample{bridgeRSS: 8 << 10, pythonRSS: 48 << 10, bridgeFDs: 19, pythonFDs: 19}
	}
	for _, tc := range []struct {
		name    string
		samples []soakSample
		want    []string // substrings of the failures, in order; none means flat
	}{
		{"flat", samplesOf(flat), nil},
		{"python settles in steps within its bound", samplesOf(func(c int64) soakSample {
			s := flat(c)
			s.pythonRSS += min(c/100_000, 6) * 1024 // +6 MiB in steps, then level
			return s
		}), nil},
		{"a spike before the last quarter is not growth", samplesOf(func(c int64) soakSample {
			s := flat(c)
			if c == 400_000 {
				s.bridgeRSS += 64 << 10
				s.bridgeFDs += 5
			}
			return s
		}), nil},
		{"a bridge leak of 8 bytes per call", samplesOf(func(c int64) soakSample {
			s := flat(c)
			s.bridgeRSS += (c - 100_000) * 8 / 1024
			return s
		}), []string{"the bridge's RSS grew by 7031 KiB (bound 4096 KiB)"}},
		{"a Python leak of 40 bytes per call and a descriptor per 100,000 calls", samplesOf(func(c int64) soakSample {
			s := flat(c)
			s.pythonRSS += (c - 100_000) * 40 / 1024
			s.pythonFDs += int((c - 100_000) / 100_000)
			return s
		}), []string{"Python's RSS grew by 35156 KiB (bound 16384 KiB)", "Python holds 9 more descriptors (bound 1)"}},
		{"two more descriptors in the last quarter", samplesOf(func(c int64) soakSample {
			s := flat(c)
			if c >= 900_000 {
				s.bridgeFDs += 2
			}
			return s
		}), []string{"the bridge holds 2 more descriptors (bound 1)"}},
		{"too few samples", samplesOf(flat)[:5], []string{"only 5 samples were taken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := soakVerdict(tc.samples, 100_000, 1_000_000).failures
			if len(got) != len(tc.want) {
				t.Fatalf("failures %q, want %d matching %q", got, len(tc.want), tc.want)
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("failure %d is %q, want it to say %q", i, got[i], w)
				}
			}
		})
	}
}

func TestSoakSummaryListsEverySample(t *testing.T) {
	samples := samplesOf(func(c int64) soakSample {
		return soakSample{bridgeRSS: 8 << 10, pythonRSS: 48<<10 + c/1000, bridgeFDs: 19, pythonFDs: 20}
	})
	line := soakSummary(1_000_000, 1000e9, samples, soakVerdict(samples, 100_000, 1_000_000))
	for _, want := range []string{
		"soak: 1000000 calls by 4 workers in 16m40s (1000/s)",
		"samples every 22500 calls after warm-up",
		"bridge_rss_mib=[8.0 8.0 ",
		"python_rss_mib=[48.1 48.1 ",
		"python_fds=[20 20 ",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("summary %q lacks %q", line, want)
		}
	}
	if n := strings.Count(line, " 19"); n < 40 {
		t.Errorf("summary lists %d bridge descriptor samples, want 41: %q", n, line)
	}
}

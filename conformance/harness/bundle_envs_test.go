package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckBundleEnvsNamesThePythonAndRefusesAnother(t *testing.T) {
	dir := t.TempDir()
	env := filepath.Join(dir, "mmplug-env.json")
	if err := os.WriteFile(env, []byte(`{"python": [3, 10, 13], "wheels": ["grpcio-1.85.3-cp310-cp310-manylinux2014_x86_64.whl"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"", "3.10"} {
		problem, pythons := checkBundleEnvs([]string{env}, want)
		if problem != "" || len(pythons) != 1 || pythons[0] != "3.10.13" {
			t.Errorf("-python %q: problem %q, pythons %v; want none and [3.10.13]", want, problem, pythons)
		}
	}
	problem, _ := checkBundleEnvs([]string{env}, "3.11")
	if !strings.Contains(problem, "set up the wheels for Python 3.10.13, not 3.11") {
		t.Errorf("-python 3.11 on a 3.10 env: problem %q", problem)
	}
	if problem, _ := checkBundleEnvs(nil, ""); !strings.Contains(problem, "did not set up Python") {
		t.Errorf("no env: problem %q", problem)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"wheels": []}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if problem, _ := checkBundleEnvs([]string{bad}, ""); !strings.Contains(problem, "no Python version") {
		t.Errorf("env without a version: problem %q", problem)
	}
}

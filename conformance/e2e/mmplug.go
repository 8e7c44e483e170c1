package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// mmplugResult is one run of the mmplug command.
type mmplugResult struct {
	stdout, stderr string
	code           int
}

func (r mmplugResult) String() string {
	s := strings.TrimSpace(r.stderr)
	if i := strings.LastIndex(s, "\n"); i >= 0 {
		s = s[i+1:] // the error line is the last one
	}
	return fmt.Sprintf("exit %d: %s", r.code, s)
}

// runMmplug runs `mmplug ARGS` the way a user would from a shell on the server host: in local
// mode (only the socket, no credentials in the environment) or in token mode (the site URL and
// the admin's personal access token, and no socket where mmplug would look for one, so it
// cannot fall back to local mode).
func (e *env) runMmplug(local bool, args ...string) (mmplugResult, error) {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MM_") {
			env = append(env, kv)
		}
	}
	if local {
		env = append(env, "MM_LOCALSOCKETPATH="+e.mm.socket())
	} else {
		env = append(env, "MM_LOCALSOCKETPATH="+filepath.Join(e.work, "no-local-mode.socket"),
			"MM_SERVICESETTINGS_SITEURL="+e.mm.siteURL(), "MM_ADMIN_TOKEN="+e.w.adminToken)
	}
	cmd := exec.Command(e.mmplug, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		return mmplugResult{}, err
	}
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(180 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return mmplugResult{stdout: out.String(), stderr: errb.String(), code: -1}, fmt.Errorf("mmplug %s did not finish within 180 s", strings.Join(args, " "))
	}
	res := mmplugResult{stdout: out.String(), stderr: errb.String()}
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		res.code = exit.ExitCode()
	} else if err != nil {
		return res, err
	}
	return res, nil
}

// deployToken is `mmplug deploy BUNDLE` over the admin's token.
func (e *env) deployToken(p *plugin) error {
	res, err := e.runMmplug(false, "deploy", "--wait", "90", p.bundle)
	if err != nil {
		return err
	}
	if res.code != 0 {
		return errors.New(res.String())
	}
	return e.waitRunning(p, 30*time.Second)
}

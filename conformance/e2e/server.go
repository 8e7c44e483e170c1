package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// mattermost is the real server, run from the runtime tree scripts/e2e/build-server.sh caches
// (bin/mattermost, i18n/, templates/, fonts/), with everything it writes under the work dir.
type mattermost struct {
	tree string // the cached runtime tree (read only)
	dir  string // the work dir: config, data, plugins, logs, the socket
	port int
	dsn  string
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

func (m *mattermost) siteURL() string    { return fmt.Sprintf("http://127.0.0.1:%d", m.port) }
func (m *mattermost) addr() string       { return fmt.Sprintf("127.0.0.1:%d", m.port) }
func (m *mattermost) socket() string     { return filepath.Join(m.dir, "mattermost_local.socket") }
func (m *mattermost) pluginsDir() string { return filepath.Join(m.dir, "plugins") }
func (m *mattermost) logFile() string    { return filepath.Join(m.dir, "logs", "mattermost.log") }
func (m *mattermost) cwd() string        { return filepath.Join(m.dir, "server") }

// prepare lays out the work dir: the server's working directory links the runtime tree's
// read-only parts (the server finds i18n/, templates/ and fonts/ relative to it) and holds
// its own client/plugins (which must exist, or no plugin starts).
func (m *mattermost) prepare() error {
	for _, d := range []string{m.cwd(), filepath.Join(m.cwd(), "client", "plugins"), m.pluginsDir(),
		filepath.Join(m.dir, "data"), filepath.Join(m.dir, "logs"), filepath.Join(m.dir, "home")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, d := range []string{"i18n", "templates", "fonts"} {
		if err := os.Symlink(filepath.Join(m.tree, d), filepath.Join(m.cwd(), d)); err != nil && !os.IsExist(err) {
			return err
		}
	}
	return nil
}

// env is the server's whole environment, as a service manager would give it (env -i): a plain
// PATH (where the bridge finds python3), a HOME, and the configuration as MM_* variables,
// which override config.json and cannot be changed through the API.
func (m *mattermost) env() []string {
	settings := map[string]string{
		"SQLSETTINGS_DRIVERNAME":                     "postgres",
		"SQLSETTINGS_DATASOURCE":                     m.dsn,
		"SERVICESETTINGS_LISTENADDRESS":              m.addr(),
		"SERVICESETTINGS_SITEURL":                    m.siteURL(),
		"SERVICESETTINGS_ENABLELOCALMODE":            "true",
		"SERVICESETTINGS_LOCALMODESOCKETLOCATION":    m.socket(),
		"SERVICESETTINGS_ENABLEUSERACCESSTOKENS":     "true",
		"SERVICESETTINGS_ENABLESECURITYFIXALERT":     "false",
		"SERVICESETTINGS_ENABLELINKPREVIEWS":         "false",
		"SERVICESETTINGS_ENABLEGIFPICKER":            "false",
		"PLUGINSETTINGS_ENABLE":                      "true",
		"PLUGINSETTINGS_ENABLEUPLOADS":               "true",
		"PLUGINSETTINGS_REQUIREPLUGINSIGNATURE":      "false",
		"PLUGINSETTINGS_ENABLEMARKETPLACE":           "false",
		"PLUGINSETTINGS_ENABLEREMOTEMARKETPLACE":     "false",
		"PLUGINSETTINGS_AUTOMATICPREPACKAGEDPLUGINS": "false",
		"PLUGINSETTINGS_DIRECTORY":                   m.pluginsDir(),
		"PLUGINSETTINGS_CLIENTDIRECTORY":             filepath.Join(m.cwd(), "client", "plugins"),
		"FILESETTINGS_DIRECTORY":                     filepath.Join(m.dir, "data") + "/",
		"LOGSETTINGS_ENABLEFILE":                     "true",
		"LOGSETTINGS_FILELOCATION":                   filepath.Join(m.dir, "logs"),
		"LOGSETTINGS_FILEJSON":                       "true",
		"LOGSETTINGS_FILELEVEL":                      "INFO",
		"LOGSETTINGS_ENABLECONSOLE":                  "true",
		"LOGSETTINGS_CONSOLELEVEL":                   "ERROR",
		"LOGSETTINGS_ENABLEDIAGNOSTICS":              "false",
		"LOGSETTINGS_ENABLESENTRY":                   "false",
		"ANNOUNCEMENTSETTINGS_ADMINNOTICESENABLED":   "false",
		"ANNOUNCEMENTSETTINGS_USERNOTICESENABLED":    "false",
		"EMAILSETTINGS_SENDEMAILNOTIFICATIONS":       "false",
		"EMAILSETTINGS_REQUIREEMAILVERIFICATION":     "false",
		"TEAMSETTINGS_ENABLEOPENSERVER":              "true",
		"RATELIMITSETTINGS_ENABLE":                   "false",
	}
	env := []string{"PATH=/usr/bin:/bin", "HOME=" + filepath.Join(m.dir, "home")}
	for k, v := range settings {
		env = append(env, "MM_"+k+"="+v)
	}
	return env
}

// start launches the server and waits until it answers /api/v4/system/ping (the first start
// creates the schema, which takes a while).
func (m *mattermost) start() error {
	out, err := os.OpenFile(filepath.Join(m.dir, "server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(m.tree, "bin", "mattermost"), "--config", filepath.Join(m.dir, "config.json"))
	cmd.Dir = m.cwd()
	cmd.Env = m.env()
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: the plugins it starts (bridges, Python, the Go twin) are in it, so
	// an interrupted run can still kill everything it started, by group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	m.cmd = cmd
	m.done = make(chan struct{})
	go func() {
		_ = cmd.Wait()
		out.Close()
		close(m.done)
	}()
	_ = os.WriteFile(filepath.Join(m.dir, "server.pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644)
	anon := tcpClient(m.siteURL(), "")
	anon.hc.Timeout = 2 * time.Second
	deadline := time.Now().Add(180 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-m.done:
			return fmt.Errorf("the server exited during startup (%s): %s", cmd.ProcessState, tail(filepath.Join(m.dir, "server.out"), 15))
		default:
		}
		if r, err := anon.get("/api/v4/system/ping"); err == nil && r.status == 200 {
			if _, err := os.Stat(m.socket()); err == nil {
				return nil
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("the server did not answer /api/v4/system/ping within 180 s: %s", tail(filepath.Join(m.dir, "server.out"), 15))
}

// stop asks the server to shut down (SIGTERM: it deactivates its plugins), then kills what is
// left of its process group.
func (m *mattermost) stop() {
	if m.cmd == nil {
		return
	}
	pid := m.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(30 * time.Second):
		logf("the server did not stop within 30 s of SIGTERM; killing it")
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	<-m.done
	m.cmd = nil
	_ = os.Remove(filepath.Join(m.dir, "server.pid"))
}

// killStaleServer kills the process group of a server an interrupted earlier run left behind.
func killStaleServer(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "server.pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if strings.Contains(string(cmdline), "mattermost") {
		logf("killing the server (pid %d) an earlier run left behind", pid)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		time.Sleep(500 * time.Millisecond)
	}
}

// tail is the last n lines of a file, for error messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Command goplugin-host is the interop judge for crates/goplugin: it launches a Rust
// plugin binary (crates/goplugin/examples/echo_plugin.rs) with the real
// github.com/hashicorp/go-plugin client, configured as Mattermost configures it, and runs
// named cases against it. One line per case, then "N passed, N failed"; exit 1 on failure.
//
// Usage: go run ./conformance/goplugin-host -plugin target/debug/examples/echo_plugin
package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-plugin"
	"github.com/hashicorp/yamux"
)

// Mattermost's handshake (server/public/plugin/api.go).
var handshake = plugin.HandshakeConfig{
	ProtocolVersion:  1,
	MagicCookieKey:   "MATTERMOST_PLUGIN",
	MagicCookieValue: "Securely message teams, anywhere.",
}

const notAPluginMessage = "This binary is a plugin. These are not meant to be executed directly.\n" +
	"Please execute the program that consumes these plugins, which will\n" +
	"load any plugins automatically\n"

// caseTimeout bounds every case so a hang in the plugin is a failure, never a stuck run.
const caseTimeout = 20 * time.Second

// EchoArgs is the struct the plugin echoes back; the Rust side declares the same Go type.
type EchoArgs struct {
	A string
	B int64
	C []string
	D map[string]uint32
	E bool
}

// AddArgs is what the plugin sends back into the host's "API" during Plugin.CallBack.
type AddArgs struct {
	X int64
	Y int64
}

// SinkResult reports what a plugin-side sink stream received.
type SinkResult struct {
	N   uint64
	Sum uint64
}

// hostAPI is served by the host on a broker id it hands to the plugin, the way Mattermost
// serves its API to OnActivate.
type hostAPI struct{}

func (hostAPI) Add(args AddArgs, reply *int64) error {
	*reply = args.X + args.Y
	return nil
}

// hooksPlugin is a minimal plugin.Plugin: the host only ever uses the client side.
type hooksPlugin struct{}

func (hooksPlugin) Server(*plugin.MuxBroker) (interface{}, error) {
	return nil, errors.New("the host does not serve hooks")
}

func (hooksPlugin) Client(b *plugin.MuxBroker, c *rpc.Client) (interface{}, error) {
	return &hooks{broker: b, rpc: c}, nil
}

type hooks struct {
	broker *plugin.MuxBroker
	rpc    *rpc.Client
}

// fnv1a is the checksum both sides compute over transferred bytes.
func fnv1a(h uint64, b []byte) uint64 {
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return h
}

const fnvOffset = 14695981039346656037

// pattern is the deterministic byte source both sides use: byte i is (i*7+3) mod 251.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(((off+i)*7 + 3) % 251)
	}
	return b
}

type runner struct {
	bin            string
	passed, failed int
}

func (r *runner) run(name string, f func() error) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(caseTimeout):
		err = fmt.Errorf("timed out after %s", caseTimeout)
	}
	if err != nil {
		r.failed++
		fmt.Printf("FAIL %s: %v\n", name, err)
		return
	}
	r.passed++
	fmt.Printf("ok   %s\n", name)
}

// logBuffer collects go-plugin's own log lines, to detect a forced kill.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// lineCollector records what arrives on the SyncStdout yamux stream.
type lineCollector struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lineCollector) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lineCollector) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type session struct {
	client *plugin.Client
	proto  *plugin.RPCClient
	hooks  *hooks
	logs   *logBuffer
	stdout *lineCollector
}

func (r *runner) launch() (*session, error) {
	logs := &logBuffer{}
	stdout := &lineCollector{}
	client := plugin.NewClient(&plugin.ClientConfig{
		HandshakeConfig:  handshake,
		Plugins:          plugin.PluginSet{"hooks": hooksPlugin{}},
		Cmd:              exec.Command(r.bin),
		AllowedProtocols: []plugin.Protocol{plugin.ProtocolNetRPC},
		StartTimeout:     3 * time.Second,
		SyncStdout:       stdout,
		Logger:           hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Trace}),
	})
	cp, err := client.Client()
	if err != nil {
		client.Kill()
		return nil, fmt.Errorf("start: %w (log: %s)", err, logs.String())
	}
	proto, ok := cp.(*plugin.RPCClient)
	if !ok {
		client.Kill()
		return nil, fmt.Errorf("protocol client is %T, want *plugin.RPCClient", cp)
	}
	return &session{client: client, proto: proto, logs: logs, stdout: stdout}, nil
}

func (s *session) dispense() error {
	raw, err := s.proto.Dispense("hooks")
	if err != nil {
		return err
	}
	s.hooks = raw.(*hooks)
	return nil
}

func expectErr(err error, want string) error {
	if err == nil {
		return fmt.Errorf("no error, want %q", want)
	}
	if err.Error() != want {
		return fmt.Errorf("error %q, want %q", err.Error(), want)
	}
	return nil
}

func (h *hooks) echo(in EchoArgs) error {
	var out EchoArgs
	if err := h.rpc.Call("Plugin.Echo", in, &out); err != nil {
		return err
	}
	if fmt.Sprint(out) != fmt.Sprint(in) {
		return fmt.Errorf("echo %+v, want %+v", out, in)
	}
	return nil
}

func main() {
	bin := flag.String("plugin", "", "path of the Rust plugin binary")
	golden := flag.Bool("golden", false, "print net/rpc header golden bytes and exit")
	flag.Parse()
	if *golden {
		printGolden()
		return
	}
	if *bin == "" {
		fmt.Fprintln(os.Stderr, "-plugin is required")
		os.Exit(2)
	}
	r := &runner{bin: *bin}
	rawBin = *bin

	r.run("wrong-cookie", r.wrongCookie)
	r.run("missing-cookie", r.missingCookie)

	s, err := r.launch()
	r.run("handshake", func() error {
		if err != nil {
			return err
		}
		if v := s.client.NegotiatedVersion(); v != 1 {
			return fmt.Errorf("negotiated version %d, want 1", v)
		}
		if s.client.Protocol() != plugin.ProtocolNetRPC {
			return fmt.Errorf("protocol %q", s.client.Protocol())
		}
		return nil
	})
	if err != nil {
		r.finish()
		return
	}
	r.run("control-ping", func() error { return s.proto.Ping() })
	r.run("dispense-hooks", s.dispense)
	r.run("dispense-unknown", func() error {
		var id uint32
		// Go's client refuses unknown names itself, so ask the Dispenser directly via a
		// second plugin set entry that the plugin does not know.
		return expectErr(dispenseRaw("nope", &id), "unknown plugin type: nope")
	})
	if s.hooks == nil {
		r.finish()
		return
	}
	h := s.hooks
	r.run("echo-struct", func() error {
		return h.echo(EchoArgs{A: "héllo", B: -42, C: []string{"x", "", "z"}, D: map[string]uint32{"k": 7}, E: true})
	})
	r.run("echo-zero-struct", func() error { return h.echo(EchoArgs{}) })
	r.run("error-with-body", func() error {
		var out struct{}
		err := h.rpc.Call("Plugin.Fail", "why", &out)
		if _, ok := err.(rpc.ServerError); !ok {
			return fmt.Errorf("error %v (%T), want rpc.ServerError", err, err)
		}
		if err := expectErr(err, "boom: why"); err != nil {
			return err
		}
		// The next call only works if the error response carried its body.
		return h.echo(EchoArgs{A: "after error"})
	})
	r.run("unknown-method", func() error {
		var out struct{}
		if err := expectErr(h.rpc.Call("Plugin.Nope", "x", &out), "rpc: can't find method Plugin.Nope"); err != nil {
			return err
		}
		return h.echo(EchoArgs{A: "after unknown method"})
	})
	r.run("unknown-service", func() error {
		var out struct{}
		if err := expectErr(h.rpc.Call("Nope.Echo", EchoArgs{A: "x"}, &out), "rpc: can't find service Nope.Echo"); err != nil {
			return err
		}
		return h.echo(EchoArgs{A: "after unknown service"})
	})
	r.run("ill-formed-method", func() error {
		var out struct{}
		return expectErr(h.rpc.Call("NoDot", true, &out), "rpc: service/method request ill-formed: NoDot")
	})
	r.run("out-of-order-replies", func() error {
		// Wait blocks until Release arrives on the same stream: only a server that runs
		// calls concurrently and replies out of order can finish this.
		waitDone := make(chan error, 1)
		go func() {
			var out struct{}
			waitDone <- h.rpc.Call("Plugin.Wait", "gate", &out)
		}()
		var out struct{}
		if err := h.rpc.Call("Plugin.Release", "gate", &out); err != nil {
			return err
		}
		return <-waitDone
	})
	r.run("concurrent-calls", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				errs <- h.echo(EchoArgs{A: strings.Repeat("a", i), B: int64(i), C: []string{fmt.Sprint(i)}})
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				return err
			}
		}
		return nil
	})
	r.run("broker-host-accepts-plugin-dials", func() error {
		// Mirrors OnActivate: the host serves an API on a fresh id, the plugin dials it and
		// calls back while the host's call is still in flight.
		id := h.broker.NextId()
		go h.broker.AcceptAndServe(id, hostAPI{})
		var sum int64
		if err := h.rpc.Call("Plugin.CallBack", id, &sum); err != nil {
			return err
		}
		if sum != 40+2 {
			return fmt.Errorf("sum %d, want 42", sum)
		}
		return nil
	})
	r.run("broker-plugin-accepts-host-dials", func() error {
		var id uint32
		if err := h.rpc.Call("Plugin.OfferEcho", true, &id); err != nil {
			return err
		}
		conn, err := h.broker.Dial(id)
		if err != nil {
			return err
		}
		defer conn.Close()
		msg := []byte("ping through the broker")
		if _, err := conn.Write(msg); err != nil {
			return err
		}
		got := make([]byte, len(msg))
		if _, err := io.ReadFull(conn, got); err != nil {
			return err
		}
		if !bytes.Equal(got, msg) {
			return fmt.Errorf("echoed %q", got)
		}
		return nil
	})
	r.run("broker-accept-timeout-and-unclaimed-stream", func() error {
		// Both 5 s windows at once: the plugin accepts an id nobody dials, and the host
		// dials an id the plugin never accepts (the plugin closes it, so Dial fails).
		acceptErr := make(chan error, 1)
		go func() {
			var out struct{}
			acceptErr <- h.rpc.Call("Plugin.AcceptNobody", true, &out)
		}()
		_, dialErr := h.broker.Dial(999999)
		if dialErr == nil {
			return errors.New("dial of an unclaimed id succeeded")
		}
		return expectErr(<-acceptErr, "timeout waiting for accept")
	})
	r.run("large-transfer-plugin-to-host", func() error {
		const n = 8 << 20
		id := h.broker.NextId()
		connCh := make(chan net.Conn, 1)
		errCh := make(chan error, 1)
		go func() {
			c, err := h.broker.Accept(id)
			if err != nil {
				errCh <- err
				return
			}
			connCh <- c
		}()
		callErr := make(chan error, 1)
		go func() {
			var out struct{}
			callErr <- h.rpc.Call("Plugin.Source", SourceArgs{Id: id, N: n}, &out)
		}()
		var conn net.Conn
		select {
		case conn = <-connCh:
		case err := <-errCh:
			return err
		}
		defer conn.Close()
		sum, total := uint64(fnvOffset), 0
		buf := make([]byte, 100_000)
		for {
			k, err := conn.Read(buf)
			if k > 0 {
				want := pattern(total, k)
				if !bytes.Equal(buf[:k], want) {
					return fmt.Errorf("byte mismatch near offset %d", total)
				}
				sum = fnv1a(sum, buf[:k])
				total += k
			}
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
		}
		if total != n {
			return fmt.Errorf("received %d bytes, want %d", total, n)
		}
		return <-callErr
	})
	r.run("large-transfer-host-to-plugin", func() error {
		const n = 8 << 20
		var id uint32
		if err := h.rpc.Call("Plugin.OfferSink", true, &id); err != nil {
			return err
		}
		conn, err := h.broker.Dial(id)
		if err != nil {
			return err
		}
		sum := uint64(fnvOffset)
		for off := 0; off < n; off += 1 << 16 {
			chunk := pattern(off, 1<<16)
			sum = fnv1a(sum, chunk)
			if _, err := conn.Write(chunk); err != nil {
				return err
			}
		}
		conn.Close()
		var res SinkResult
		if err := h.rpc.Call("Plugin.SinkResult", true, &res); err != nil {
			return err
		}
		if res.N != n || res.Sum != sum {
			return fmt.Errorf("plugin got %d bytes sum %x, want %d sum %x", res.N, res.Sum, n, sum)
		}
		return nil
	})
	r.run("unread-stream-no-stall", func() error {
		// The plugin accepts this stream but does not read it until DrainParked. Many small
		// writes (one yamux frame each) must not stall calls on other streams.
		var id uint32
		if err := h.rpc.Call("Plugin.OfferPark", true, &id); err != nil {
			return err
		}
		conn, err := h.broker.Dial(id)
		if err != nil {
			return err
		}
		defer conn.Close()
		var sent []byte
		for i := 0; i < 64; i++ {
			chunk := []byte(fmt.Sprintf("chunk-%02d;", i))
			sent = append(sent, chunk...)
			if _, err := conn.Write(chunk); err != nil {
				return err
			}
		}
		if err := h.echo(EchoArgs{A: "still flowing"}); err != nil {
			return err
		}
		var got []byte
		if err := h.rpc.Call("Plugin.DrainParked", uint64(len(sent)), &got); err != nil {
			return err
		}
		if !bytes.Equal(got, sent) {
			return fmt.Errorf("parked stream delivered %q", got)
		}
		return nil
	})
	r.run("many-concurrent-broker-streams", func() error {
		var wg sync.WaitGroup
		errs := make(chan error, 300)
		for i := 0; i < 300; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				var id uint32
				if err := h.rpc.Call("Plugin.OfferEcho", true, &id); err != nil {
					errs <- err
					return
				}
				conn, err := h.broker.Dial(id)
				if err != nil {
					errs <- err
					return
				}
				defer conn.Close()
				msg := []byte(fmt.Sprintf("stream %d", i))
				if _, err := conn.Write(msg); err != nil {
					errs <- err
					return
				}
				got := make([]byte, len(msg))
				if _, err := io.ReadFull(conn, got); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(got, msg) {
					errs <- fmt.Errorf("stream %d echoed %q", i, got)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			return err
		}
		return nil
	})
	r.run("stdout-stream", func() error {
		var out struct{}
		if err := h.rpc.Call("Plugin.Log", "hello from the plugin\n", &out); err != nil {
			return err
		}
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if strings.Contains(s.stdout.String(), "hello from the plugin\n") {
				return nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		return fmt.Errorf("stdout stream carried %q", s.stdout.String())
	})
	r.run("kill-quits-gracefully", func() error {
		rc := s.client.ReattachConfig()
		if rc == nil {
			return errors.New("no reattach config")
		}
		s.client.Kill()
		if !s.client.Exited() {
			return errors.New("plugin still running after Kill")
		}
		if strings.Contains(s.logs.String(), "plugin failed to exit gracefully") {
			return errors.New("plugin had to be force-killed: Control.Quit did not end it")
		}
		if err := syscall.Kill(rc.Pid, 0); !errors.Is(err, syscall.ESRCH) {
			return fmt.Errorf("process %d still exists (kill -0: %v)", rc.Pid, err)
		}
		if _, err := os.Stat(rc.Addr.String()); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("socket %s left behind (%v)", rc.Addr, err)
		}
		return nil
	})
	r.run("raw-yamux-ping", r.rawPing)
	r.run("session-end-exits", r.sessionEndExits)
	r.finish()
}

// SourceArgs asks the plugin to dial Id and write N pattern bytes.
type SourceArgs struct {
	Id uint32
	N  uint64
}

// dispenseRaw calls Dispenser.Dispense on a hand-made connection: go-plugin's
// RPCClient keeps its control client private and refuses unknown names locally.
func dispenseRaw(name string, id *uint32) error {
	c, err := rawLaunch("")
	if err != nil {
		return err
	}
	defer c.close()
	ctl := rpc.NewClient(c.control)
	return ctl.Call("Dispenser.Dispense", name, id)
}

func (r *runner) finish() {
	fmt.Printf("%d passed, %d failed\n", r.passed, r.failed)
	if r.failed > 0 {
		os.Exit(1)
	}
}

// rawBin is the plugin binary, for the cases that launch it by hand.
var rawBin string

// rawConn is a plugin launched and connected by hand: a yamux client session with the
// control, stdout and stderr streams opened in go-plugin's order.
type rawConn struct {
	cmd     *exec.Cmd
	conn    net.Conn
	mux     *yamux.Session
	control net.Conn
	addr    string
	waitCh  chan error
}

func rawLaunch(cookie string) (*rawConn, error) {
	if cookie == "" {
		cookie = handshake.MagicCookieValue
	}
	cmd := exec.Command(rawBin)
	cmd.Env = append(os.Environ(), handshake.MagicCookieKey+"="+cookie, "PLUGIN_PROTOCOL_VERSIONS=1")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	waitCh := make(chan error, 1)
	line, err := bufio.NewReader(out).ReadString('\n')
	go func() { waitCh <- cmd.Wait() }()
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("reading handshake: %w", err)
	}
	parts := strings.Split(strings.TrimSuffix(line, "\n"), "|")
	if len(parts) != 6 || parts[0] != "1" || parts[1] != "1" || parts[2] != "unix" || parts[4] != "netrpc" || parts[5] != "" {
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("bad handshake line %q", line)
	}
	conn, err := net.Dial("unix", parts[3])
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	mux, err := yamux.Client(conn, nil)
	if err != nil {
		_ = cmd.Process.Kill()
		return nil, err
	}
	rc := &rawConn{cmd: cmd, conn: conn, mux: mux, addr: parts[3], waitCh: waitCh}
	for i := 0; i < 3; i++ {
		st, err := mux.Open()
		if err != nil {
			rc.close()
			return nil, err
		}
		if i == 0 {
			rc.control = st
		}
	}
	return rc, nil
}

func (c *rawConn) close() {
	_ = c.mux.Close()
	select {
	case <-c.waitCh:
	case <-time.After(5 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.waitCh
	}
}

func (r *runner) rawPing() error {
	c, err := rawLaunch("")
	if err != nil {
		return err
	}
	defer c.close()
	for i := 0; i < 3; i++ {
		if _, err := c.mux.Ping(); err != nil {
			return fmt.Errorf("yamux ping %d: %w", i, err)
		}
	}
	return nil
}

func (r *runner) sessionEndExits() error {
	c, err := rawLaunch("")
	if err != nil {
		return err
	}
	// Prove the session is live, then drop it without Control.Quit.
	ctl := rpc.NewClient(c.control)
	var out struct{}
	if err := ctl.Call("Control.Ping", true, &out); err != nil {
		return err
	}
	_ = c.conn.Close()
	select {
	case err := <-c.waitCh:
		if err != nil {
			return fmt.Errorf("plugin exited with %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		return errors.New("plugin kept running after the session ended")
	}
	if _, err := os.Stat(c.addr); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("socket %s left behind (%v)", c.addr, err)
	}
	return nil
}

func (r *runner) badCookie(env []string) error {
	cmd := exec.Command(r.bin)
	cmd.Env = env
	var stderr, stdout bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Stdout = &stdout
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		return fmt.Errorf("exit %v, want status 1", err)
	}
	if stderr.String() != notAPluginMessage {
		return fmt.Errorf("stderr %q", stderr.String())
	}
	if stdout.Len() != 0 {
		return fmt.Errorf("stdout %q, want nothing", stdout.String())
	}
	return nil
}

func (r *runner) wrongCookie() error {
	return r.badCookie([]string{"MATTERMOST_PLUGIN=Securely message teams, anywhere", "PLUGIN_PROTOCOL_VERSIONS=1"})
}

func (r *runner) missingCookie() error {
	return r.badCookie([]string{"PLUGIN_PROTOCOL_VERSIONS=1"})
}

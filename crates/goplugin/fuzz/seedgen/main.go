// Command seedgen writes the seed corpora of crates/goplugin/fuzz from real Go peers, so the
// fuzzers start from bytes a Mattermost server actually sends rather than invented ones:
//
//	go run ./crates/goplugin/fuzz/seedgen crates/goplugin/fuzz/seeds
//
// netrpc/: request streams written by Go's net/rpc client (go-plugin's control calls and
// Mattermost's hook calls with the plugin package's own argument types) and a reply stream
// written by Go's net/rpc server answering API calls with the plugin package's return types.
// host_session/: what go-plugin's host side (RPCClient, over hashicorp/yamux, as Mattermost
// runs it) writes on the plugin's socket while it talks to go-plugin's own plugin side
// (RPCServer): control, stdout and stderr streams, Dispense("hooks"), the broker dial of the
// dispensed id, hook calls on it, Ping, and Quit. Also a bare yamux session: two streams
// carrying the request streams above, a ping, half-closes and GoAway.
// handshake/: the environment go-plugin's client sets for the plugin, in the NUL-separated
// form the handshake target reads (see fuzz_targets/handshake.rs).
//
// Every map written holds one key, so Go's random map order cannot change a gob stream; the
// go-plugin session's window updates may interleave differently from run to run.
package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"strings"
	"sync"

	goplugin "github.com/hashicorp/go-plugin"
	"github.com/hashicorp/yamux"
	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: seedgen DIR")
		os.Exit(2)
	}
	root := os.Args[1]
	control := controlStream()
	hooks := hooksStream()
	files := map[string][]byte{
		"netrpc/control-requests.bin": control,
		"netrpc/hook-requests.bin":    hooks,
		"netrpc/api-replies.bin":      apiReplies(),
		"host_session/go-plugin.bin":  goPluginSession(),
		"host_session/bare-yamux.bin": bareYamuxSession(control, hooks),
		"handshake/mattermost.bin":    handshakeEnv("Securely message teams, anywhere.", "1", "", []byte{1}),
		"handshake/two-versions.bin":  handshakeEnv("Securely message teams, anywhere.", "1,2", "0", []byte{1, 2}),
	}
	for name, data := range files {
		path := filepath.Join(root, name)
		must(os.MkdirAll(filepath.Dir(path), 0o755))
		must(os.WriteFile(path, data, 0o644))
	}
}

func must(err error) {
	if err != nil {
		panic(err)
	}
}

// recorder is the far end of a net.Pipe that keeps every byte it reads.
func recorder(conn net.Conn) (*bytes.Buffer, *sync.WaitGroup) {
	var buf bytes.Buffer
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = io.Copy(&buf, conn)
	}()
	return &buf, &wg
}

// requests returns the bytes a net/rpc client writes for the given calls. The calls are
// sent without waiting for replies (net/rpc writes a request before Go returns).
func requests(calls func(c *rpc.Client)) []byte {
	ours, theirs := net.Pipe()
	buf, wg := recorder(theirs)
	c := rpc.NewClient(ours)
	calls(c)
	must(c.Close())
	wg.Wait()
	return buf.Bytes()
}

// controlStream: what go-plugin's RPCClient sends on the control stream.
func controlStream() []byte {
	return requests(func(c *rpc.Client) {
		var id uint32
		var empty struct{}
		c.Go("Dispenser.Dispense", "hooks", &id, nil)
		c.Go("Control.Ping", true, &empty, nil)
		c.Go("Control.Quit", true, &empty, nil)
	})
}

func hookContext() *plugin.Context {
	return &plugin.Context{SessionId: "s1", RequestId: "r1", IPAddress: "10.0.0.1", UserAgent: "ua"}
}

// hooksStream: what Mattermost's hooksRPCClient sends on the hooks stream.
func hooksStream() []byte {
	post := &model.Post{
		Id:        "p1",
		CreateAt:  1700000000000,
		UserId:    "u1",
		ChannelId: "c1",
		Message:   "hello ✓",
		FileIds:   model.StringArray{"f1"},
		Props:     model.StringInterface{"attachments": []any{map[string]any{"text": "t"}}},
	}
	return requests(func(c *rpc.Client) {
		c.Go("Plugin.Implemented", struct{}{}, new([]string), nil)
		c.Go("Plugin.OnActivate", &plugin.Z_OnActivateArgs{APIMuxId: 2}, new(plugin.Z_OnActivateReturns), nil)
		c.Go("Plugin.MessageWillBePosted", &plugin.Z_MessageWillBePostedArgs{A: hookContext(), B: post},
			new(plugin.Z_MessageWillBePostedReturns), nil)
		c.Go("Plugin.ExecuteCommand", &plugin.Z_ExecuteCommandArgs{A: hookContext(), B: &model.CommandArgs{
			UserId: "u1", ChannelId: "c1", Command: "/hello world",
		}}, new(plugin.Z_ExecuteCommandReturns), nil)
		c.Go("Plugin.OnDeactivate", &plugin.Z_OnDeactivateArgs{}, new(plugin.Z_OnDeactivateReturns), nil)
	})
}

// apiServer answers a few API methods the way Mattermost's apiRPCServer does: the result
// struct always, an *AppError inside it for application errors.
type apiServer struct{}

func (apiServer) GetUser(args *plugin.Z_GetUserArgs, returns *plugin.Z_GetUserReturns) error {
	if args.A != "u1" {
		returns.B = model.NewAppError("GetUser", "app.user.missing.app_error", map[string]any{"Id": args.A}, "", 404)
		return nil
	}
	returns.A = &model.User{Id: "u1", Username: "alice", Roles: "system_user", Props: model.StringMap{"k": "v"}}
	return nil
}

func (apiServer) KVGet(args *plugin.Z_KVGetArgs, returns *plugin.Z_KVGetReturns) error {
	returns.A = []byte("value of " + args.A)
	return nil
}

// teeConn records what it reads.
type teeConn struct {
	net.Conn
	got bytes.Buffer
}

func (t *teeConn) Read(p []byte) (int, error) {
	n, err := t.Conn.Read(p)
	t.got.Write(p[:n])
	return n, err
}

// apiReplies: what Mattermost's API server writes back for seq 0..3: a user, an AppError,
// bytes, and a net/rpc error (unknown method) with its struct{} body.
func apiReplies() []byte {
	srv := rpc.NewServer()
	must(srv.RegisterName("Plugin", apiServer{}))
	serverEnd, clientEnd := net.Pipe()
	go srv.ServeConn(serverEnd)
	tee := &teeConn{Conn: clientEnd}
	c := rpc.NewClient(tee)
	must(c.Call("Plugin.GetUser", &plugin.Z_GetUserArgs{A: "u1"}, new(plugin.Z_GetUserReturns)))
	must(c.Call("Plugin.GetUser", &plugin.Z_GetUserArgs{A: "nobody"}, new(plugin.Z_GetUserReturns)))
	must(c.Call("Plugin.KVGet", &plugin.Z_KVGetArgs{A: "key"}, new(plugin.Z_KVGetReturns)))
	var reply struct{}
	err := c.Call("Plugin.NoSuchMethod", struct{}{}, &reply)
	var serverErr rpc.ServerError
	if !errors.As(err, &serverErr) || !strings.Contains(err.Error(), "can't find method") {
		panic(fmt.Sprintf("unknown method answered %v", err))
	}
	must(c.Close())
	return tee.got.Bytes()
}

// bareYamuxSession: the host's yamux client opens the control and hooks streams, sends the
// request streams on them, pings, half-closes both and closes the session (GoAway).
func bareYamuxSession(control, hooks []byte) []byte {
	hostEnd, pluginEnd := net.Pipe()
	tee := &teeConn{Conn: pluginEnd}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	cfg.EnableKeepAlive = false
	server, err := yamux.Server(tee, cfg)
	must(err)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s, err := server.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, _ = io.Copy(io.Discard, s)
				_ = s.Close()
			}()
		}
	}()
	client, err := yamux.Client(hostEnd, cfg)
	must(err)
	for _, payload := range [][]byte{control, hooks} {
		s, err := client.OpenStream()
		must(err)
		_, err = s.Write(payload)
		must(err)
		must(s.Close())
	}
	_, err = client.Ping()
	must(err)
	must(client.GoAway())
	must(client.Close())
	wg.Wait()
	must(server.Close())
	return tee.got.Bytes()
}

// handshakeEnv: the values the host sets (cookie, PLUGIN_PROTOCOL_VERSIONS,
// PLUGIN_UNIX_SOCKET_GROUP) and the versions the plugin serves, NUL-separated.
func handshakeEnv(cookie, versions, group string, ours []byte) []byte {
	return bytes.Join([][]byte{[]byte(cookie), []byte(versions), []byte(group), ours}, []byte{0})
}

// goHooks is the plugin side's hooks receiver: just enough for the host's calls to complete.
type goHooks struct{}

func (goHooks) Implemented(_ struct{}, reply *[]string) error {
	*reply = []string{"OnActivate", "MessageWillBePosted"}
	return nil
}

func (goHooks) OnActivate(_ *plugin.Z_OnActivateArgs, _ *plugin.Z_OnActivateReturns) error {
	return nil
}

func (goHooks) MessageWillBePosted(args *plugin.Z_MessageWillBePostedArgs, returns *plugin.Z_MessageWillBePostedReturns) error {
	returns.A = args.B
	return nil
}

// hooksPlugin is the go-plugin Plugin both ends register under "hooks", as Mattermost does.
type hooksPlugin struct{}

func (hooksPlugin) Server(*goplugin.MuxBroker) (any, error) { return goHooks{}, nil }

func (hooksPlugin) Client(_ *goplugin.MuxBroker, c *rpc.Client) (any, error) { return c, nil }

// goPluginSession: a go-plugin host talking to a go-plugin plugin over a pipe; the bytes the
// plugin side reads are the seed.
func goPluginSession() []byte {
	hostEnd, pluginEnd := net.Pipe()
	tee := &teeConn{Conn: pluginEnd}
	plugins := map[string]goplugin.Plugin{"hooks": hooksPlugin{}}
	served := make(chan struct{})
	go func() {
		defer close(served)
		srv := &goplugin.RPCServer{Plugins: plugins, Stdout: strings.NewReader(""), Stderr: strings.NewReader("")}
		srv.ServeConn(tee)
	}()
	host, err := goplugin.NewRPCClient(hostEnd, plugins)
	must(err)
	raw, err := host.Dispense("hooks")
	must(err)
	hooks := raw.(*rpc.Client)
	must(hooks.Call("Plugin.Implemented", struct{}{}, new([]string)))
	must(hooks.Call("Plugin.OnActivate", &plugin.Z_OnActivateArgs{APIMuxId: 2}, new(plugin.Z_OnActivateReturns)))
	must(hooks.Call("Plugin.MessageWillBePosted", &plugin.Z_MessageWillBePostedArgs{
		A: hookContext(),
		B: &model.Post{Id: "p1", UserId: "u1", ChannelId: "c1", Message: "hi"},
	}, new(plugin.Z_MessageWillBePostedReturns)))
	must(host.Ping())
	must(host.Close())
	<-served
	return tee.got.Bytes()
}

// Command yamuxwriter is the Go peer of crates/goplugin's yamux flow-control test
// (tests/yamux_flow_control.rs): a real hashicorp/yamux writer, so the test holds our receive
// window to the peer Mattermost runs rather than to our own idea of it.
//
//	yamuxwriter -socket PATH -bytes N -chunk C
//
// It dials the unix socket PATH as the yamux client (the host's role in go-plugin), opens one
// stream, writes N bytes of the pattern byte i = (i*7+3) mod 251 in writes of C bytes, and
// closes the stream. After each write returns it prints "wrote TOTAL" (the bytes written so
// far), and "done" once the stream is closed. A yamux Write returns only once its frames are
// on the socket, which needs send window: a reader that does not read stops these lines.
package main

import (
	"flag"
	"fmt"
	"net"
	"os"

	"github.com/hashicorp/yamux"
)

func main() {
	socket := flag.String("socket", "", "unix socket to dial")
	total := flag.Int("bytes", 0, "bytes to write")
	chunk := flag.Int("chunk", 16<<10, "bytes per write")
	flag.Parse()
	if err := run(*socket, *total, *chunk); err != nil {
		fmt.Fprintln(os.Stderr, "yamuxwriter:", err)
		os.Exit(1)
	}
}

func run(socket string, total, chunk int) error {
	if socket == "" || total <= 0 || chunk <= 0 {
		return fmt.Errorf("usage: yamuxwriter -socket PATH -bytes N [-chunk C]")
	}
	conn, err := net.Dial("unix", socket)
	if err != nil {
		return err
	}
	session, err := yamux.Client(conn, nil)
	if err != nil {
		return err
	}
	defer session.Close()
	stream, err := session.Open()
	if err != nil {
		return err
	}
	for written := 0; written < total; {
		n := min(chunk, total-written)
		if _, err := stream.Write(pattern(written, n)); err != nil {
			return fmt.Errorf("write at byte %d: %w", written, err)
		}
		written += n
		fmt.Printf("wrote %d\n", written)
	}
	if err := stream.Close(); err != nil {
		return err
	}
	fmt.Println("done")
	// The session stays up until the reader has everything and closes the connection:
	// closing it here could cut off frames still queued.
	buf := make([]byte, 1)
	_, _ = stream.Read(buf)
	return nil
}

// pattern is n bytes of the test pattern starting at stream offset off.
func pattern(off, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(((off+i)*7 + 3) % 251)
	}
	return b
}

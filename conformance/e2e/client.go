package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// client talks to the server's REST API as one identity: over TCP with a session or access
// token, anonymously over TCP, or over the local-mode unix socket (no credentials).
type client struct {
	base  string // scheme://host, no trailing slash
	token string
	hc    *http.Client
	// userAgent, when set, replaces Go's default User-Agent.
	userAgent string
}

// reply is what one request answered: status, headers and the whole body.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r *reply) String() string {
	b := string(r.body)
	if len(b) > 300 {
		b = b[:300] + "..."
	}
	return fmt.Sprintf("%d %s", r.status, strings.TrimSpace(b))
}

// json decodes the body into v.
func (r *reply) json(v any) error {
	if err := json.Unmarshal(r.body, v); err != nil {
		return fmt.Errorf("answer is not the JSON expected (%v): %s", err, r)
	}
	return nil
}

// appErrorMessage is the "message" field of an AppError body ("" when the body is not one).
func (r *reply) appErrorMessage() string {
	var e struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.Message
}

// appErrorID is the "id" field of an AppError body.
func (r *reply) appErrorID() string {
	var e struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(r.body, &e)
	return e.ID
}

// shortError makes a plugin status error fit a line: a Python process's JSON log line is
// reduced to its "@message".
func shortError(s string) string {
	if i := strings.Index(s, `"@message": "`); i >= 0 {
		rest := s[i+len(`"@message": "`):]
		if j := strings.Index(rest, `", "`); j >= 0 {
			return s[:min(i, 200)] + "... " + rest[:j]
		}
	}
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}

const requestTimeout = 40 * time.Second

func tcpClient(base, token string) *client {
	return &client{base: base, token: token, hc: &http.Client{
		Timeout: requestTimeout,
		// A plugin's redirect is part of its answer, not something to follow.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func localClient(socket string) *client {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", socket)
	}}
	return &client{base: "http://localhost", hc: &http.Client{Transport: tr, Timeout: requestTimeout}}
}

// as returns a client for the same server with another token.
func (c *client) as(token string) *client {
	cp := *c
	cp.token = token
	return &cp
}

func (c *client) do(method, path string, body io.Reader, header http.Header) (*reply, error) {
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	if c.userAgent != "" && req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	// The CSRF check of cookie sessions does not apply to bearer tokens, but the header is
	// what a browser client sends anyway.
	req.Header.Set("X-Requested-With", "XMLHttpRequest")
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func (c *client) get(path string) (*reply, error) { return c.do(http.MethodGet, path, nil, nil) }

func (c *client) postJSON(path string, v any) (*reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return c.do(http.MethodPost, path, bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}})
}

func (c *client) putJSON(path string, v any) (*reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return c.do(http.MethodPut, path, bytes.NewReader(b), http.Header{"Content-Type": {"application/json"}})
}

// must checks a request's outcome: must(c.get(path))(200) answers an error unless the request
// went through and its status is one of those given.
func must(r *reply, err error) func(want ...int) (*reply, error) {
	return func(want ...int) (*reply, error) {
		if err != nil {
			return nil, err
		}
		for _, w := range want {
			if r.status == w {
				return r, nil
			}
		}
		return r, fmt.Errorf("unexpected answer %s", r)
	}
}

// uploadPlugin is POST /api/v4/plugins with the bundle in the multipart field "plugin" and
// force=true, as the System Console and mmplug deploy do.
func (c *client) uploadPlugin(bundle string) (*reply, error) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	fw, err := mw.CreateFormFile("plugin", filepath.Base(bundle))
	if err != nil {
		return nil, err
	}
	f, err := os.Open(bundle)
	if err != nil {
		return nil, err
	}
	_, err = io.Copy(fw, f)
	f.Close()
	if err != nil {
		return nil, err
	}
	_ = mw.WriteField("force", "true")
	if err := mw.Close(); err != nil {
		return nil, err
	}
	return c.do(http.MethodPost, "/api/v4/plugins", &buf, http.Header{"Content-Type": {mw.FormDataContentType()}})
}

// uploadFile is POST /api/v4/files?channel_id= with one file under a name given as raw bytes
// (mime/multipart would escape it, so the part header is written by hand).
func (c *client) uploadFile(channelID string, rawName []byte, content []byte) (*reply, error) {
	const boundary = "e2eBoundary7MA4YWxkTrZu0gW"
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"channel_id\"\r\n\r\n%s\r\n", boundary, channelID)
	fmt.Fprintf(&buf, "--%s\r\nContent-Disposition: form-data; name=\"files\"; filename=\"", boundary)
	buf.Write(rawName)
	buf.WriteString("\"\r\nContent-Type: text/plain\r\n\r\n")
	buf.Write(content)
	fmt.Fprintf(&buf, "\r\n--%s--\r\n", boundary)
	return c.do(http.MethodPost, "/api/v4/files", &buf, http.Header{"Content-Type": {"multipart/form-data; boundary=" + boundary}})
}

// raw sends one HTTP/1.1 request written byte for byte (target and header values may hold any
// byte, which net/http would check or escape) and reads the answer. The request is written
// while the answer is read: the server may answer (413) before it has read a large body.
func raw(addr, method, target string, headers [][2]string, body []byte) (*reply, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(requestTimeout))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for _, h := range headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	go func() { _, _ = conn.Write(b.Bytes()) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return nil, fmt.Errorf("%s %q: reading the answer: %w", method, target, err)
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{status: resp.StatusCode, header: resp.Header, body: rb}, nil
}

// canonical is the header name as Go's server files it.
func canonical(name string) string { return textproto.CanonicalMIMEHeaderKey(name) }

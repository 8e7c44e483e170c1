package main

import (
	"bytes"
	"fmt"
	"strings"
)

// boundaryInputs come first in every campaign, whatever the seed: the server's limits just
// below and just over (see campaign_gen.go). Each returns the body of a post or a patch.
var boundaryInputs = []struct {
	kind, desc string
	body       func(g *gen, channel string) []byte
}{
	{kindPost, "message of 16,383 runes (the limit), clean", func(g *gen, ch string) []byte {
		return postBody(ch, exactMessage(maxMessageRunes, false), "")
	}},
	{kindPost, "message of 16,384 runes (one over), clean", func(g *gen, ch string) []byte {
		return postBody(ch, exactMessage(maxMessageRunes+1, false), "")
	}},
	{kindPost, "message of 16,384 runes (one over), forbidden", func(g *gen, ch string) []byte {
		return postBody(ch, exactMessage(maxMessageRunes+1, true), "")
	}},
	{kindPost, "props of 800,000 runes with the hook's stamp (the limit), clean", func(g *gen, ch string) []byte {
		return postBody(ch, `"props at the limit"`, propsOfRunes(maxPropsRunes-stampRunes))
	}},
	{kindPost, "props one rune under the limit, over it with the hook's stamp, clean", func(g *gen, ch string) []byte {
		return postBody(ch, `"props over with the stamp"`, propsOfRunes(maxPropsRunes-stampRunes+1))
	}},
	{kindPost, "props of 800,001 runes, forbidden", func(g *gen, ch string) []byte {
		return postBody(ch, `"props over, forbidden"`, propsOfRunes(maxPropsRunes+1))
	}},
	{kindPost, "props of 800,001 runes, clean", func(g *gen, ch string) []byte {
		return postBody(ch, `"props over, clean"`, propsOfRunes(maxPropsRunes+1))
	}},
	{kindPost, "a body of 300,512 bytes (the limit), forbidden", func(g *gen, ch string) []byte {
		return bodyOfSize(ch, maxPayload, `"forbidden at the size limit"`)
	}},
	{kindPost, "a body of 300,512 bytes (the limit), clean", func(g *gen, ch string) []byte {
		return bodyOfSize(ch, maxPayload, `"clean at the size limit"`)
	}},
	{kindPost, "a body of 300,513 bytes (one over), forbidden", func(g *gen, ch string) []byte {
		return bodyOfSize(ch, maxPayload+1, `"forbidden over the size limit"`)
	}},
	{kindPost, "props nested 9,998 levels (the decoder's limit), dicts, forbidden", func(g *gen, ch string) []byte {
		return deepPost(g, ch, maxJSONDepth-2, 0, true)
	}},
	{kindPost, "props nested 9,998 levels, lists, clean", func(g *gen, ch string) []byte {
		return deepPost(g, ch, maxJSONDepth-2, 1, false)
	}},
	{kindPost, "props nested 9,998 levels, alternating, clean", func(g *gen, ch string) []byte {
		return deepPost(g, ch, maxJSONDepth-2, 2, false)
	}},
	{kindPost, "props nested 9,999 levels (one over), forbidden", func(g *gen, ch string) []byte {
		return deepPost(g, ch, maxJSONDepth-1, 0, true)
	}},
	{kindEdit, "an edit to a message of 16,384 runes (one over)", func(g *gen, ch string) []byte {
		return []byte(`{"message":` + exactMessage(maxMessageRunes+1, true) + `}`)
	}},
	{kindEdit, "an edit to props nested 9,998 levels, forbidden", func(g *gen, ch string) []byte {
		g.b.Reset()
		g.b.WriteString(`{"message":"edited: forbidden","props":{"deep":`)
		g.deep(maxJSONDepth-2, 1)
		g.b.WriteString(`}}`)
		return bytes.Clone(g.b.Bytes())
	}},
	{kindEdit, "an edit to props of 800,001 runes", func(g *gen, ch string) []byte {
		return []byte(`{"message":"edited, props over","props":` + propsOfRunes(maxPropsRunes+1) + `}`)
	}},
}

func postBody(channel, message, props string) []byte {
	s := `{"channel_id":"` + channel + `","message":` + message
	if props != "" {
		s += `,"props":` + props
	}
	return []byte(s + "}")
}

// exactMessage is a JSON string decoding to exactly n runes (multi-byte ones among them).
func exactMessage(n int, forbidden bool) string {
	var b strings.Builder
	b.WriteByte('"')
	left := n
	if forbidden {
		b.WriteString("forbidden ")
		left -= len("forbidden ")
	}
	unit := []string{"a", "\u00e9", "\u4e2d", "\U0001F600", `\u2028`, `\ud800`, " "}
	for i := 0; i < left; i++ {
		b.WriteString(unit[i%len(unit)])
	}
	b.WriteByte('"')
	return b.String()
}

// propsOfRunes is a props object whose model.StringInterfaceToJSON is exactly n runes: a
// string of '<' (6 runes each once re-encoded as \u003c) and 'a's, under the key "p".
func propsOfRunes(n int) string {
	body := n - len(`{"p":""}`)
	lt, a := body/6, body%6
	return `{"p":"` + strings.Repeat("<", lt) + strings.Repeat("a", a) + `"}`
}

// bodyOfSize is a post body of exactly size bytes, padded with a prop.
func bodyOfSize(channel string, size int, message string) []byte {
	head := `{"channel_id":"` + channel + `","message":` + message + `,"props":{"pad":"`
	tail := `"}}`
	pad := size - len(head) - len(tail)
	return []byte(head + strings.Repeat("x", max(pad, 0)) + tail)
}

func deepPost(g *gen, channel string, levels, shape int, forbidden bool) []byte {
	g.b.Reset()
	msg := `"deep and clean"`
	if forbidden {
		msg = `"deep and forbidden"`
	}
	g.b.WriteString(`{"channel_id":"` + channel + `","message":` + msg + `,"props":{"deep":`)
	g.deep(levels, shape)
	g.b.WriteString(`}}`)
	return bytes.Clone(g.b.Bytes())
}

// makeInput is input idx of the campaign with this seed: a boundary input while idx is below
// their number, then one of each kind at random.
func makeInput(seed uint64, idx int, w *world) *cinput {
	g := newGen(seed, idx)
	in := &cinput{idx: idx, auth: true}
	if idx < len(boundaryInputs) {
		bi := boundaryInputs[idx]
		in.kind, in.desc = bi.kind, "boundary: "+bi.desc
		in.body = bi.body(g, w.channel)
		in.headers = [][2]string{{"Content-Type", "application/json"}}
		return in
	}
	switch k := g.n(100); {
	case k < 35:
		in.kind = kindPost
	case k < 47:
		in.kind = kindEdit
	case k < 75:
		in.kind = kindRoute
	case k < 90:
		in.kind = kindCommand
	default:
		in.kind = kindUpload
	}
	in.query = g.query()
	switch in.kind {
	case kindPost, kindEdit:
		forbidden := g.chance(0.45)
		size := 1 + g.n(200)
		switch c := g.n(10); {
		case c == 0:
			size = 4000 + g.n(maxMessageRunes-4000+20)
		case c < 3:
			size = 200 + g.n(4000)
		}
		g.b.Reset()
		if in.kind == kindPost {
			g.b.WriteString(`{"channel_id":"` + w.channel + `",`)
		} else {
			g.b.WriteByte('{')
		}
		if !g.chance(0.03) {
			g.b.WriteString(`"message":`)
			g.str(size, forbidden)
		} else {
			g.b.WriteString(`"message":null`)
		}
		if !g.chance(0.15) {
			g.b.WriteString(`,"props":`)
			g.props(!forbidden && g.chance(0.2))
		}
		if g.chance(0.05) {
			g.b.WriteString(pick(g, []string{`,"type":"custom_e2e"`, `,"type":"system_join_channel"`, `,"type":"` + "\xe9" + `"`,
				`,"root_id":"nosuchpost"`, `,"is_pinned":true`, `,"metadata":{"embeds":[{"type":"opengraph"}]}`, `,"hashtags":"#forbidden"`,
				`,"file_ids":["` + strings.Repeat("a", 26) + `"]`, `,"user_id":"` + w.adminID + `"`}))
		}
		if g.chance(0.01) {
			g.b.WriteString(",\x01") // not JSON at all
		}
		g.b.WriteByte('}')
		in.body = bytes.Clone(g.b.Bytes())
		in.headers = append([][2]string{{"Content-Type", pick(g, []string{"application/json", "application/json", "text/plain", "application/json; charset=\xe9"})}}, g.headers(false)...)
		in.desc = fmt.Sprintf("%s of %d bytes, message about %d runes, forbidden %v", in.kind, len(in.body), size, forbidden)
	case kindRoute:
		in.auth = g.chance(0.5)
		in.method = pick(g, []string{"GET", "GET", "POST", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"})
		switch k := g.n(100); {
		case k < 25:
			in.path = "/version"
		case k < 50:
			in.path, in.method = "/echo", pick(g, []string{"POST", "POST", "POST", "GET"})
		case k < 85:
			in.path = "/kv/" + g.kvKey()
			in.method = pick(g, []string{"POST", "GET"})
		default:
			in.path = pick(g, []string{"/", "", "/version/", "//version", "/VERSION", "/kv/", "/kv", "/echo/..", "/x/../version",
				"/%76ersion", "/version%00", "/" + g.kvKey(), "/post", "/..%2fversion"})
		}
		if in.method == "POST" || in.method == "PUT" || g.chance(0.1) {
			n := g.n(200)
			if g.chance(0.1) {
				n = g.n(1 << 20)
			}
			in.body = make([]byte, n)
			for i := range in.body {
				in.body[i] = byte(g.r.UintN(256))
			}
		}
		in.headers = g.headers(in.path == "/echo")
		if g.chance(0.5) {
			in.headers = append(in.headers, [2]string{"Content-Type", pick(g, []string{"application/octet-stream", "text/plain; charset=\xe9", g.headerValue()})})
		}
		in.desc = fmt.Sprintf("%s %q, %d bytes, logged in %v", in.method, in.path, len(in.body), in.auth)
	case kindCommand:
		g.b.Reset()
		g.b.WriteString(`{"channel_id":"` + w.channel + `","team_id":"` + w.team + `","command":`)
		g.commandText()
		g.b.WriteByte('}')
		in.body = bytes.Clone(g.b.Bytes())
		in.headers = append([][2]string{{"Content-Type", "application/json"}}, g.headers(false)...)
		in.desc = fmt.Sprintf("command of %d bytes", len(in.body))
	case kindUpload:
		in.fileName = g.fileName()
		in.forbidden = g.chance(0.5)
		in.headers = g.headers(false)
		in.desc = fmt.Sprintf("upload named %q, forbidden %v", in.fileName, in.forbidden)
	}
	return in
}

// describeInput is the input in full, for the divergence files.
func describeInput(in *cinput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "input %d: %s\nkind: %s\nlogged in: %v\nquery: %q\n", in.idx, in.desc, in.kind, in.auth, in.query)
	for _, h := range in.headers {
		fmt.Fprintf(&b, "header %q: %q\n", h[0], h[1])
	}
	if in.method != "" {
		fmt.Fprintf(&b, "method: %s\npath: %q\n", in.method, in.path)
	}
	if in.fileName != nil {
		fmt.Fprintf(&b, "file name: %q\nforbidden: %v\n", in.fileName, in.forbidden)
	}
	if len(in.body) > 0 {
		body := in.body
		if len(body) > 4000 {
			fmt.Fprintf(&b, "body (%d bytes, first and last 2,000): %q ... %q\n", len(body), body[:2000], body[len(body)-2000:])
		} else {
			fmt.Fprintf(&b, "body: %q\n", body)
		}
	}
	return b.String()
}

package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The hostile-input campaign's generator (issue 16, "What to build"): every input a user or an
// anonymous client controls, generated from a seed. Input i of seed s is the same whatever the
// count (each input has its own generator, seeded with (s, i)), so a divergence found in a long
// run is replayed alone with -campaign-input i.
//
// The server's limits the inputs reach, just below and just over (Mattermost 11.4.0):
//   - the request body: ServiceSettings.MaximumPayloadSizeBytes (300,000) + bytes.MinRead (512),
//     http.MaxBytesReader in channels/web/handlers.go; over it, 413;
//   - JSON nesting: encoding/json's maxNestingDepth, 10,000 levels (the post object is level 1,
//     props level 2, so a prop's value may nest 9,998 levels);
//   - a post's message: model.PostMessageMaxRunesV2, 16,383 runes (65,535 bytes / 4; the
//     PostgreSQL column is VARCHAR(65535)), checked by Post.IsValid when the post is saved,
//     after MessageWillBePosted;
//   - a post's props: model.PostPropsMaxRunes, 800,000 runes of model.StringInterfaceToJSON
//     (json.Marshal, which writes '<' as \u003c: 6 runes for one byte sent, so the limit is
//     reachable within the 300 KB body), also checked after the hook, which adds
//     "checked_by":"hello" (21 runes with its comma);
//   - a KV key: model.KeyValueKeyMaxRunes, 150 runes.
const (
	maxPayload      = 300000 + 512
	maxJSONDepth    = 10000
	maxMessageRunes = 16383
	maxPropsRunes   = 800000
	stampRunes      = len(`,"checked_by":"hello"`)
)

// input kinds
const (
	kindPost    = "post"
	kindEdit    = "edit"
	kindRoute   = "route"
	kindCommand = "command"
	kindUpload  = "upload"
)

// cinput is one generated input. Posts, edits and commands carry a raw JSON body (written here
// byte by byte: escapes, lone surrogates, any number text); routes a method, a path under
// /plugins/<id> and a body; uploads a raw file name. Every kind carries a query string and
// headers (User-Agent, Accept-Language, forged identities, any bytes).
type cinput struct {
	idx     int
	kind    string
	desc    string // what it is, for reports
	query   string // raw, without '?' ("" for none)
	headers [][2]string
	auth    bool // as e2euser1 (else anonymous; posts, edits, commands and uploads always log in)

	body []byte // post, edit (the patch), command: JSON; route: the request body

	method, path string // route: the path under /plugins/<id>, raw bytes

	fileName  []byte // upload
	forbidden bool   // upload: the post that attaches the file says "forbidden"
}

type gen struct {
	r *rand.Rand
	b bytes.Buffer
	// nul: this input may hold U+0000 in JSON text. PostgreSQL refuses it in text and jsonb
	// (500 app.post.save.app_error, "unsupported Unicode escape sequence"), after the hook,
	// so it is kept to one input in twelve for the others to be stored and compared.
	nul bool
}

func newGen(seed uint64, idx int) *gen {
	g := &gen{r: rand.New(rand.NewPCG(seed, uint64(idx)^0x9e3779b97f4a7c15))}
	g.nul = g.chance(1.0 / 12)
	return g
}

func (g *gen) chance(p float64) bool { return g.r.Float64() < p }
func (g *gen) n(k int) int {
	if k <= 0 {
		return 0
	}
	return g.r.IntN(k)
}
func pick[T any](g *gen, xs []T) T { return xs[g.r.IntN(len(xs))] }

// Runes worth trying: controls (written escaped), the C1 block, every Unicode white space and
// separator Go's strings.Fields and Python's str.split() disagree on or agree on, invisible and
// bidirectional marks, noncharacters, the replacement character, the last code point, emoji
// and combining marks.
var hostileRunes = []rune{
	0x00, 0x01, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x1B, 0x1C, 0x1D, 0x1E, 0x1F, 0x7F,
	0x80, 0x85, 0x9F, 0xA0, 0xAD, 0x1680, 0x180E, 0x2000, 0x2001, 0x2007, 0x200A, 0x200B, 0x200C,
	0x200D, 0x200E, 0x2028, 0x2029, 0x202E, 0x202F, 0x205F, 0x2060, 0x3000, 0xFEFF, 0xFFFD,
	0xFFFE, 0xFFFF, 0x10FFFF, 0xE000, 0x1F600, 0x1F469, 0x0301, 0x0345, 0x05D0, 0x0627, 0x4E2D,
	0xAC00, 0x130, 0x131, 0xDF, 0x1E9E, 0xFB01, 0x2126, '"', '\\', '/', '<', '>', '&', '\'',
}

var words = []string{"hello", "post", "fail", "x", "caf\u00e9", "FORBIDDEN", "forbid", "den",
	"checked_by", "null", "true", "0", "-0", "{}", "[]", "%00", "%E9", "..", "../..", "a b",
	"\u202eevil", "\u0130stanbul", "\u00df", "emoji\U0001F600", "\u0000"}

// forbiddenText is the word hello and hellogo reject, written in ways a JSON decoder turns
// into the same text (escapes), or not (case, split by an invisible character).
func (g *gen) forbiddenText() string {
	return pick(g, []string{
		"forbidden", "forbidden", "forbidden", `forb\u0069dden`, `\u0066orbidden`,
		`forbidde\u006e`, `\u0066\u006f\u0072\u0062\u0069\u0064\u0064\u0065\u006e`,
		"Forbidden", "forbid\u200bden", "forbidden\u0301", "unforbiddenly",
	})
}

// writeRune writes r inside a JSON string literal: raw UTF-8 or a \u escape (controls, '"' and
// '\' must be escaped; a raw control is invalid JSON, tried separately).
func (g *gen) writeRune(r rune) {
	b := &g.b
	if r == 0 && !g.nul {
		r = 1
	}
	switch {
	case r == '"' || r == '\\':
		b.WriteByte('\\')
		b.WriteRune(r)
	case r < 0x20:
		if g.chance(0.3) {
			switch r {
			case '\n':
				b.WriteString(`\n`)
				return
			case '\t':
				b.WriteString(`\t`)
				return
			case '\r':
				b.WriteString(`\r`)
				return
			case '\b':
				b.WriteString(`\b`)
				return
			case '\f':
				b.WriteString(`\f`)
				return
			}
		}
		fmt.Fprintf(b, `\u%04x`, r)
	case r > 0xFFFF && g.chance(0.4):
		r1, r2 := utf16Pair(r)
		fmt.Fprintf(b, `\u%04x\u%04X`, r1, r2)
	case g.chance(0.25):
		if r > 0xFFFF {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(b, `\u%04x`, r)
		}
	default:
		b.WriteRune(r)
	}
}

func utf16Pair(r rune) (rune, rune) {
	r -= 0x10000
	return 0xD800 + (r>>10)&0x3FF, 0xDC00 + r&0x3FF
}

// text writes about n runes of hostile text inside a JSON string literal (without quotes).
func (g *gen) text(n int) {
	for i := 0; i < n; {
		switch k := g.n(100); {
		case k < 35:
			w := pick(g, words)
			for _, r := range w {
				g.writeRune(r)
			}
			i += utf8.RuneCountInString(w)
		case k < 45:
			g.b.WriteByte(' ')
			i++
		case k < 75:
			g.writeRune(pick(g, hostileRunes))
			i++
		case k < 82:
			// Any code point, any plane.
			r := rune(g.n(0x110000))
			if r >= 0xD800 && r <= 0xDFFF {
				r = 0xFFFD
			}
			g.writeRune(r)
			i++
		case k < 88:
			// A lone surrogate escape (the decoder makes it U+FFFD), or a reversed pair.
			if g.chance(0.7) {
				fmt.Fprintf(&g.b, `\u%04x`, 0xD800+g.n(0x800))
			} else {
				fmt.Fprintf(&g.b, `\u%04x\u%04x`, 0xDC00+g.n(0x400), 0xD800+g.n(0x400))
			}
			i++
		case k < 91:
			// Raw bytes that are not UTF-8 (the decoder makes them U+FFFD): a Latin-1 byte,
			// an overlong NUL, an encoded surrogate, a truncated sequence, a stray 0xFF.
			g.b.WriteString(pick(g, []string{"\xe9", "\xc0\x80", "\xed\xa0\x80", "\xe2\x82", "\xff", "\xf4\x90\x80\x80", "\x80"}))
			i++
		case k < 95:
			for _, r := range "a b\tc" {
				g.writeRune(r)
			}
			i += 5
		default:
			esc := pick(g, []string{`\/`, `\"`, `\\`, `\u0000`, `\u00e9`, `\u2028`})
			if esc == `\u0000` && !g.nul {
				esc = `\u0001`
			}
			g.b.WriteString(esc)
			i++
		}
	}
}

// str writes a JSON string of about n runes, with "forbidden" in it when asked.
func (g *gen) str(n int, forbidden bool) {
	g.b.WriteByte('"')
	at := g.n(n + 1)
	g.text(at)
	if forbidden {
		g.b.WriteString(g.forbiddenText())
	}
	g.text(n - at)
	g.b.WriteByte('"')
}

// Number texts: big integers (float64 after the server's decoder), negative zero, the largest
// and smallest doubles, underflow to zero, and the odd spellings JSON allows.
var numbers = []string{"0", "-0", "-0.0", "0e0", "-0E-0", "1", "-1", "42", "1.5", "-2.25", "0.1",
	"9007199254740992", "9007199254740993", "-9007199254740993", "9223372036854775807",
	"9223372036854775808", "18446744073709551616", "123456789012345678901234567890",
	"1e308", "1.7976931348623157e308", "-1.7976931348623157E+308", "5e-324", "4.9e-324",
	"2.2250738585072014e-308", "1e-400", "1E2", "1e+2", "100000000000000000000000",
	"0.30000000000000004", "3.141592653589793238462643383279", "1e21", "1e20", "-1e-7"}

// value writes a random JSON value nested at most depth levels, spending about budget bytes.
func (g *gen) value(depth int, budget *int) {
	if *budget <= 0 || depth <= 0 {
		g.scalar(budget)
		return
	}
	switch k := g.n(10); {
	case k < 3:
		g.object(depth, budget)
	case k < 5:
		g.array(depth, budget)
	default:
		g.scalar(budget)
	}
}

func (g *gen) scalar(budget *int) {
	start := g.b.Len()
	switch k := g.n(12); {
	case k < 4:
		g.str(g.n(20), g.chance(0.05))
	case k < 8:
		if g.chance(0.6) {
			g.b.WriteString(pick(g, numbers))
		} else if g.chance(0.5) {
			g.b.WriteString(strconv.FormatInt(g.r.Int64()-g.r.Int64(), 10))
		} else {
			g.b.WriteString(strconv.FormatFloat(g.r.NormFloat64()*float64(int64(1)<<g.n(60)), pick(g, []byte("egf")), -1, 64))
		}
	case k < 10:
		g.b.WriteString(pick(g, []string{"true", "false"}))
	default:
		g.b.WriteString("null")
	}
	*budget -= g.b.Len() - start
}

func (g *gen) object(depth int, budget *int) {
	g.b.WriteByte('{')
	n := g.n(6)
	var last []byte
	for i := 0; i < n && *budget > 0; i++ {
		if i > 0 {
			g.b.WriteByte(',')
		}
		if last != nil && g.chance(0.1) {
			g.b.Write(last) // a duplicate key: the decoder keeps the last
		} else {
			start := g.b.Len()
			switch {
			case g.chance(0.1):
				g.b.WriteString(pick(g, []string{`""`, `"checked_by"`, `"from_webhook"`, `"add_channel_member"`,
					`"force_notification"`, `"attachments"`, `"__proto__"`, `"k"`}))
			default:
				g.str(g.n(12), false)
			}
			last = append([]byte(nil), g.b.Bytes()[start:]...)
		}
		g.b.WriteString(pick(g, []string{":", " : ", ":\n"}))
		g.value(depth-1, budget)
	}
	g.b.WriteByte('}')
	*budget -= 2
}

func (g *gen) array(depth int, budget *int) {
	g.b.WriteByte('[')
	n := g.n(8)
	if g.chance(0.05) {
		n = 200 + g.n(5000) // a long flat list
	}
	for i := 0; i < n && *budget > 0; i++ {
		if i > 0 {
			g.b.WriteByte(',')
		}
		g.value(depth-1, budget)
	}
	g.b.WriteByte(']')
	*budget -= 2
}

// deep writes a value nested exactly levels deep (dicts, lists or both alternating), with
// a random leaf and, at random levels, a sibling.
func (g *gen) deep(levels int, shape int) {
	var closers []byte
	for i := 0; i < levels; i++ {
		dict := shape == 0 || (shape == 2 && i%2 == 0)
		if g.chance(0.01) {
			// a sibling before the chain goes on
			budget := 40
			if dict {
				g.b.WriteString(`{"s":`)
				g.value(2, &budget)
				g.b.WriteString(`,"k":`)
			} else {
				g.b.WriteByte('[')
				g.value(2, &budget)
				g.b.WriteByte(',')
			}
		} else if dict {
			g.b.WriteString(`{"k":`)
		} else {
			g.b.WriteByte('[')
		}
		if dict {
			closers = append(closers, '}')
		} else {
			closers = append(closers, ']')
		}
	}
	budget := 30
	g.scalar(&budget)
	for i := len(closers) - 1; i >= 0; i-- {
		g.b.WriteByte(closers[i])
	}
}

// props writes a post's props: mostly an object of random values, sometimes deep, large, or
// not an object at all.
func (g *gen) props(forbiddenInside bool) {
	switch k := g.n(100); {
	case k < 3:
		g.b.WriteString(pick(g, []string{"[]", `"props"`, "42", "true", `[{"a":1}]`}))
	case k < 8:
		g.b.WriteString("null")
	case k < 12:
		g.b.WriteString("{}")
	default:
		g.b.WriteByte('{')
		n := 1 + g.n(6)
		for i := 0; i < n; i++ {
			if i > 0 {
				g.b.WriteByte(',')
			}
			g.str(1+g.n(10), false)
			g.b.WriteByte(':')
			switch c := g.n(100); {
			case c < 60:
				budget := 200 + g.n(2000)
				g.value(1+g.n(6), &budget)
			case c < 75:
				budget := 20000 + g.n(100000)
				g.value(2+g.n(30), &budget)
			case c < 90:
				g.deep(1+g.n(1000), g.n(3))
			default:
				g.deep(1000+g.n(maxJSONDepth-2-1000), g.n(3))
			}
		}
		if forbiddenInside {
			// "forbidden" in props only: not the message, so both plugins accept.
			g.b.WriteString(`,"note":`)
			g.str(5, true)
		}
		g.b.WriteByte('}')
	}
}

// headers are what an API call or route request carries beyond its credentials.
func (g *gen) headers(identity bool) [][2]string {
	var h [][2]string
	if g.chance(0.6) {
		h = append(h, [2]string{"User-Agent", g.headerValue()})
	}
	if g.chance(0.5) {
		if g.chance(0.5) {
			h = append(h, [2]string{"Accept-Language", pick(g, []string{"fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5", "caf\xe9", "*", "", "zz-ZZ;q=2", "de;q=\xff"})})
		} else {
			h = append(h, [2]string{"Accept-Language", g.headerValue()})
		}
	}
	if g.chance(0.15) {
		h = append(h, [2]string{pick(g, []string{"X-Forwarded-For", "X-Real-Ip", "Forwarded"}), g.headerValue()})
	}
	if identity || g.chance(0.2) {
		for i := 0; i < 1+g.n(3); i++ {
			h = append(h, [2]string{pick(g, forgedNames), pick(g, []string{"ADMIN", "", "x", g.headerValue()})})
		}
	}
	for i := g.n(3); i > 0; i-- {
		h = append(h, [2]string{g.headerName(), g.headerValue()})
	}
	return h
}

// Header names a server or an adapter could mistake for an identity it sets: the real ones
// (the server deletes them from a client's request and sets its own), other spellings and
// cases, underscores (a CGI/WSGI environ key maps '-' to '_'), look-alikes.
var forgedNames = []string{
	"Mattermost-User-Id", "Mattermost-User-ID", "mattermost-user-id", "MATTERMOST-USER-ID",
	"Mattermost_User_Id", "mattermost_user_id", "Mattermost-User_Id", "Mattermost_User-Id",
	"Mattermost-Plugin-Id", "Mattermost_Plugin_Id", "Mattermost-Plugin-ID", "X-Mattermost-User-Id",
	"Mattermost.User.Id", "Mattermost-User-Id\t", "HTTP_MATTERMOST_USER_ID", "Mattermost-Session-Id",
	"X-User-Id", "Authorization",
}

// headerValue is any bytes 0x01-0xFF but CR and LF (which would end the header line on the
// wire): printable ASCII mostly, bytes 0x80-0xFF (not UTF-8 by themselves), UTF-8 text, and
// controls (Go's server answers 400 to those but HTAB).
func (g *gen) headerValue() string {
	var b strings.Builder
	n := g.n(40)
	if g.chance(0.03) {
		n = 1000 + g.n(6000)
	}
	// One value in thirty holds a control byte (Go's server answers 400): more would leave
	// few requests reaching a plugin.
	ctl := g.chance(1.0 / 30)
	for i := 0; i < n; i++ {
		switch k := g.n(100); {
		case k < 60:
			b.WriteByte(byte(0x20 + g.n(0x5f)))
		case k < 80:
			b.WriteByte(byte(0x80 + g.n(0x80)))
		case k < 95:
			b.WriteRune(pick(g, hostileRunes[16:]))
		default:
			b.WriteByte('\t')
		}
	}
	if ctl {
		c := byte(1 + g.n(0x1f))
		if g.chance(0.2) {
			c = 0x7f
		}
		if c == '\r' || c == '\n' || c == '\t' {
			c = 0x0b
		}
		s := b.String()
		at := g.n(len(s) + 1)
		return s[:at] + string(rune(c)) + s[at:]
	}
	return b.String()
}

// headerName is a token (RFC 9110 tchar) mostly, sometimes not (the server answers 400).
func (g *gen) headerName() string {
	const tchar = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	var b strings.Builder
	b.WriteString("X-")
	bad := g.chance(0.05)
	for i := 0; i < 1+g.n(20); i++ {
		if bad && i == 0 {
			b.WriteByte(pick(g, []byte("\x80\xe9 ()<>@,;\\\"/[]?={}")))
		} else {
			b.WriteByte(tchar[g.n(len(tchar))])
		}
	}
	return b.String()
}

// query is a raw query string: printable bytes, percent escapes of any byte (valid or not),
// raw bytes 0x80-0xFF, and sometimes a byte the server refuses in a request line.
func (g *gen) query() string {
	if g.chance(0.4) {
		return ""
	}
	var b strings.Builder
	for i := 0; i < 1+g.n(60); i++ {
		switch k := g.n(100); {
		case k < 55:
			b.WriteByte(pick(g, []byte("abcxyz019=&;+-._~!$'()*,/:@?[]{}|^`\"<>\\#")))
		case k < 80:
			fmt.Fprintf(&b, "%%%02X", g.n(256))
		case k < 90:
			b.WriteByte(byte(0x80 + g.n(0x80)))
		default:
			b.WriteString(pick(g, []string{"q=caf\xe9", "channel_id=", "access_token=x", "%", "%zz", "%E9%", "a=1&a=2", "=&=&"}))
		}
	}
	if g.chance(0.04) {
		// A byte Go's server refuses in a request target.
		b.WriteByte(pick(g, []byte{0x01, 0x7f, ' ', '\t'}))
	}
	return b.String()
}

// kvKey is a route path segment for /kv/<key>: text raw or percent-encoded (each way Go's
// r.URL.Path decodes), slashes encoded or not, and keys over the 150-rune limit.
func (g *gen) kvKey() string {
	var b strings.Builder
	n := 1 + g.n(20)
	if g.chance(0.1) {
		n = 140 + g.n(20)
	}
	for i := 0; i < n; i++ {
		switch k := g.n(100); {
		case k < 45:
			b.WriteByte(pick(g, []byte("abcdefxyz0123456789-_.~!$&'()*+,;=:@")))
		case k < 60:
			r := pick(g, hostileRunes[14:])
			for _, c := range []byte(string(r)) {
				fmt.Fprintf(&b, "%%%02X", c)
			}
		case k < 70:
			b.WriteString(pick(g, []string{"caf\u00e9", "\u4e2d", "\U0001F600"}))
		case k < 78:
			fmt.Fprintf(&b, "%%%02x", g.n(256))
		case k < 83:
			b.WriteString(pick(g, []string{"%2F", "/", "%2f..%2f", "%25", "%20", "+", "%2B", "%00", "%0A"}))
		case k < 88:
			b.WriteByte(byte(0x80 + g.n(0x80)))
		default:
			b.WriteString(pick(g, []string{"%E9", "%C3", "%ED%A0%80", "%FF%FE", "%C0%80"}))
		}
	}
	return b.String()
}

// fileName is an upload's name as raw bytes in the multipart header.
func (g *gen) fileName() []byte {
	var b bytes.Buffer
	n := g.n(30)
	if g.chance(0.05) {
		n = 250 + g.n(300)
	}
	for i := 0; i < n; i++ {
		switch k := g.n(100); {
		case k < 50:
			b.WriteByte(pick(g, []byte("abcxyz0129-_. ()[]!#$%&',;=@^`~+")))
		case k < 65:
			b.WriteRune(pick(g, hostileRunes[14:]))
		case k < 75:
			b.WriteString(pick(g, []string{"../", "..\\", "/", "\\", ".", "\"", "%22", "%00", "\\\""}))
		case k < 85:
			b.WriteByte(byte(0x80 + g.n(0x80)))
		default:
			b.WriteString(pick(g, []string{".txt", ".exe", ".png", ".tar.gz", "caf\u00e9", "\u202egnp.exe"}))
		}
	}
	return b.Bytes()
}

// commandText writes "/hello" and hostile arguments (Unicode white space and separators
// strings.Fields does or does not split on, sub-commands, anything) as a JSON string.
func (g *gen) commandText() {
	g.b.WriteByte('"')
	lead := pick(g, []string{"/hello", "/hello", "/hello", "/hello", " /hello", "/HELLO", "/hello\t", `\/hello`, `/hell\u006f`})
	g.b.WriteString(lead)
	for i := g.n(6); i > 0; i-- {
		seps := 1 + g.n(3)
		if lead == "/hello" && g.chance(0.8) {
			// The server finds the trigger up to the first ' ': other white space right
			// after it makes an unknown command (404), which the plugin never sees.
			g.b.WriteByte(' ')
			lead = ""
		}
		for j := 0; j < seps; j++ {
			g.writeRune(pick(g, []rune{' ', ' ', '\t', '\n', '\v', '\f', '\r', 0x1c, 0x1d, 0x1e, 0x1f, 0x85,
				0xA0, 0x1680, 0x2000, 0x2005, 0x200A, 0x200B, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF, 0x180E}))
		}
		switch k := g.n(10); {
		case k < 3:
			g.b.WriteString(pick(g, []string{"fail", "post", "FAIL", "fail\u200b", "po\\u0073t", "hello"}))
		case k < 5:
			g.text(1 + g.n(10))
		default:
			g.text(g.n(40))
		}
	}
	if g.chance(0.02) {
		g.text(20000) // a long command
	}
	g.b.WriteByte('"')
}

// Command gobgolden makes Go's encoding/gob the judge of the Rust gob crate (crates/gob).
//
//	gobgolden write DIR   writes NAME.gob (Go's encoding of each case) and NAME.json (the
//	                      case's Go types and the value gob transmits, in a simple JSON form,
//	                      and Go's verdict on the case's value messages cut short)
//	gobgolden check DIR   decodes each NAME.gob written by the Rust encoder into the case's
//	                      real Go types and compares it with what Go's own round trip gives
//
// Go numbers gob types process-wide in first-use order, so `write` encodes every case in a
// fresh child process (`gobgolden one NAME DIR`): the type ids are then predictable and the
// Rust encoder can be held to Go's bytes exactly.
//
// JSON form of a value (gob's view: pointers flattened, zero struct fields left out):
//
//	{"bool":true} {"int":"-5"} {"uint":"5"} {"float":"<16 hex digits of the float64 bits>"}
//	{"complex":["<bits>","<bits>"]} {"string":"s"} {"string_hex":"<hex of a non-UTF-8 string>"}
//	{"bytes":"<hex>"} {"encoded":"<hex>"}
//	{"array":[V...]} {"slice":[V...]} {"map":[[K,V]...]} {"struct":[["Field",V]...]}
//	{"interface":null} {"interface":{"name":"<gob.Register name>","value":V}}
//
// A type is a key: "bool" "int" "uint" "float" "complex" "string" "bytes" "interface", or the
// Go type string of a type described in "types":
//
//	{"kind":"struct","name":"Point","fields":[["X","int"],...]}
//	{"kind":"slice","name":"","elem":K} {"kind":"array","name":"","len":4,"elem":K}
//	{"kind":"map","name":"","key":K,"elem":K} {"kind":"gob","name":"Time"} {"kind":"binary","name":"URL"}
//
// "cuts" lists every value message of the stream (one whose payload starts with a type id
// of 0 or more, a value or the continuation of one) cut short at every offset inside its
// payload, with its length prefix rewritten to match and nothing after it, and what Go's
// decoder made of each such stream (see type cut):
//
//	{"at":OFFSET,"keep":N,"values_before":N,"go_accepted":false,"go_error":"unexpected EOF"}
package main

import (
	"bytes"
	"encoding"
	"encoding/binary"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

// Point is doc.go's example type.
type Point struct{ X, Y int }

// Slices exercises empty, nil, nested and byte slices inside a struct.
type Slices struct {
	Empty  []int
	Nil    []string
	Full   []float64
	Nested [][]string
	Bytes  []byte
	Ptrs   []*Point
}

// Maps exercises nil, empty (non-nil, which gob sends) and nested maps.
type Maps struct {
	Nil    map[string]int
	Empty  map[string]int
	One    map[int]string
	Nested map[string]map[string]int
	Iface  map[string]any
}

// Arrays exercises arrays, which gob always sends, zeros included.
type Arrays struct {
	B    [4]uint8
	Z    [0]int
	S    [2]string
	Zero [3]int
}

// AllZero has only zero fields: it travels as the bare struct terminator.
type AllZero struct {
	A int
	B string
	C bool
	D float64
	E []int
	F map[string]int
	G *int
	H any
	I complex128
	J uint16
}

// Base is embedded in WithEmbedded: gob sends it as one field named "Base".
type Base struct{ ID string }

// WithEmbedded has an embedded struct, a pointer to a struct and an unexported field.
type WithEmbedded struct {
	Base
	Extra   int
	Ptr     *Base
	hidden  int
	Fn      func()
	Ch      chan int
	Present *int
}

// Node is a recursive type (a linked list).
type Node struct {
	Val  int
	Next *Node
}

// MutA and MutB refer to each other: their definitions reference later ids.
type MutA struct {
	B *MutB
	N int
}

// MutB see MutA.
type MutB struct {
	A    *MutA
	S    string
	List []MutA
}

// Outer's definitions reference later ids (the slice is numbered after its element).
type Outer struct {
	A []Inner
	I any
}

// Inner is Outer's element type.
type Inner struct{ Z string }

// Holder carries interface values of many concrete types.
type Holder struct {
	Items []any
	One   any
}

// Times has a zero time (omitted) and a set one.
type Times struct {
	T time.Time
	Z time.Time
}

// URLs has a *url.URL (a BinaryMarshaler) and a nil one.
type URLs struct {
	U   *url.URL
	Nil *url.URL
}

// Names is a named slice type: gob gives it its own id and name.
type Names []string

// WithNamed holds a named slice and a named map type.
type WithNamed struct {
	N Names
	M model.StringInterface
}

// Ints covers every signed width at its extremes.
type Ints struct {
	I8  int8
	I16 int16
	I32 int32
	I64 int64
	I   int
	N8  int8
	N16 int16
	N32 int32
	N64 int64
}

// Uints covers every unsigned width at its extremes.
type Uints struct {
	U8  uint8
	U16 uint16
	U32 uint32
	U64 uint64
	U   uint
	P   uintptr
}

type gcase struct {
	name   string
	values []any
}

func intPtr(i int) *int { return &i }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func post() *model.Post {
	return &model.Post{
		Id:        "p1",
		CreateAt:  1700000000000,
		UserId:    "u1",
		ChannelId: "c1",
		Message:   "hello ✓",
		Type:      "custom_type",
		Hashtags:  "#x",
		FileIds:   model.StringArray{"f1", "f2"},
		Props: model.StringInterface{
			"s":      "str",
			"f":      1.5,
			"i":      int64(-7),
			"b":      true,
			"nested": map[string]any{"k": "v", "n": float64(2)},
			"list":   []any{"a", float64(1), nil, false},
		},
		IsPinned: true,
	}
}

func appError() *model.AppError {
	e := model.NewAppError("Where.It.Happened", "app.some.error", map[string]any{"N": 1}, "details here", 404)
	e.RequestId = "r1"
	return e
}

func cases() []gcase {
	negZero := math.Copysign(0, -1)
	return []gcase{
		{"point", []any{Point{22, 33}}},
		{"int_singletons", []any{int8(math.MinInt8), int8(math.MaxInt8), int16(math.MinInt16), int16(math.MaxInt16),
			int32(math.MinInt32), int32(math.MaxInt32), int64(math.MinInt64), int64(math.MaxInt64), 0, 3, -129}},
		{"uint_singletons", []any{uint8(255), uint16(65535), uint32(math.MaxUint32), uint64(math.MaxUint64), uint(0), uintptr(7), uint(256)}},
		{"ints_struct", []any{Ints{math.MaxInt8, math.MaxInt16, math.MaxInt32, math.MaxInt64, 1, math.MinInt8, math.MinInt16, math.MinInt32, math.MinInt64}}},
		{"uints_struct", []any{Uints{math.MaxUint8, math.MaxUint16, math.MaxUint32, math.MaxUint64, 1, 9}}},
		{"floats", []any{0.0, negZero, 1.5, float32(3.25), math.Inf(1), math.Inf(-1), math.NaN(), math.MaxFloat64, math.SmallestNonzeroFloat64, 17.0}},
		{"complex", []any{complex(1, 2), complex64(complex(0, -0.5)), complex(math.Inf(1), negZero)}},
		{"strings_bools", []any{"", "hello", "héllo ✓ \x00", true, false}},
		// Go strings hold any bytes; a server passes on what a client sent (issue 16).
		{"non_utf8_strings", []any{"caf\xe9", "\xff\xfe\x80", "ok \xed\xa0\x80 surrogate", []string{"a\xc3", "\xe9"},
			map[string]any{"k\xe9": "v\xff"}, plugin.Context{UserAgent: "caf\xe9", AcceptLanguage: "\xff"}}},
		{"bytes", []any{[]byte{}, []byte{0, 1, 255}, []byte(nil)}},
		{"slices_top", []any{[]string{"a", ""}, []int{}, []int(nil), []bool{true, false}, [][]int{{1}, {}, {2, 3}}}},
		{"slices_struct", []any{Slices{Empty: []int{}, Full: []float64{0, 1.5}, Nested: [][]string{{"a"}, {}}, Bytes: []byte("xyz"),
			Ptrs: []*Point{{1, 2}, {}}}}},
		{"maps", []any{Maps{Empty: map[string]int{}, One: map[int]string{7: "seven"},
			Nested: map[string]map[string]int{"a": {"x": 1}, "b": {}}, Iface: map[string]any{"k": nil, "z": 0}}}},
		{"map_top", []any{map[string]int{"only": 1}, map[int]bool{}}},
		{"arrays", []any{Arrays{B: [4]uint8{1, 0, 255, 7}, S: [2]string{"", "s"}}, [4]uint8{9, 8, 7, 6}}},
		{"all_zero", []any{AllZero{}}},
		{"embedded", []any{WithEmbedded{Base: Base{ID: "b"}, Extra: 2, Ptr: &Base{}, hidden: 5, Present: intPtr(0)}}},
		{"linked_list", []any{Node{1, &Node{2, &Node{3, nil}}}}},
		{"mutual_recursion", []any{MutA{B: &MutB{A: &MutA{N: 2}, S: "s", List: []MutA{{N: 3}, {}}}, N: 1}}},
		{"forward_refs", []any{Outer{A: []Inner{{"q"}}, I: map[string]any{"k": []any{int64(1)}}}}},
		{"interfaces", []any{Holder{Items: []any{
			int(1), int8(-2), int16(3), int32(-4), int64(5), uint(6), uint8(7), uint16(8), uint32(9), uint64(10), uintptr(11),
			float32(1.25), float64(-2.5), complex64(1i), complex128(2 + 3i), true, "str", []byte("by"),
			[]string{"x"}, []int{1, 2}, []float64{0.5}, []any{"nested", nil}, map[string]any{"m": int64(1)},
			Point{5, 6}, &Point{7, 8}, nil,
		}, One: Point{1, 1}}}},
		{"interface_nil_field", []any{Holder{Items: []any{nil}}}},
		{"multi_value", []any{Point{1, 2}, Point{3, 4}, "between", Point{}, []Point{{5, 6}}, Point{7, 8}}},
		{"time_utc", []any{Times{T: time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)}},
		{"time_zone", []any{time.Date(2023, 12, 31, 23, 59, 59, 999999999, time.FixedZone("EST", -5*3600)),
			time.Date(1850, 6, 1, 12, 0, 0, 0, time.FixedZone("LMT", 3600+30))}},
		{"url", []any{URLs{U: mustURL("https://user@example.com:8080/p/a%20th?q=1&r=%C3%A9#frag")}, mustURL("/relative?x")}},
		{"named_types", []any{WithNamed{N: Names{"a", "b"}, M: model.StringInterface{"k": "v"}}}},
		{"mm_post", []any{post()}},
		{"mm_app_error", []any{plugin.Z_OnActivateReturns{A: appError()}, plugin.Z_OnActivateReturns{}}},
		{"mm_interface_slice", []any{[]any{"a", int64(1), 2.5, true, nil, map[string]any{"x": []any{}}}}},
		{"mm_interface_map", []any{map[string]any{"s": "v", "n": 1.0, "i": int64(2), "m": map[string]any{"deep": []any{"x"}}, "nil": nil}}},
		{"mm_context", []any{plugin.Context{SessionId: "s", RequestId: "r", IPAddress: "127.0.0.1", AcceptLanguage: "en", UserAgent: "ua"}}},
		{"mm_message_will_be_posted", []any{plugin.Z_MessageWillBePostedArgs{A: &plugin.Context{SessionId: "s1", RequestId: "r1"}, B: post()}}},
	}
}

func init() {
	// Point is carried in interfaces; package main types are named "main.Point".
	gob.Register(Point{})
}

var (
	gobEncoderType = reflect.TypeFor[gob.GobEncoder]()
	binaryType     = reflect.TypeFor[encoding.BinaryMarshaler]()
)

// externalKind reports how gob encodes rt itself: "gob", "binary" or "".
func externalKind(rt reflect.Type) string {
	for _, t := range []reflect.Type{rt, reflect.PointerTo(rt)} {
		if t.Implements(gobEncoderType) {
			return "gob"
		}
	}
	for _, t := range []reflect.Type{rt, reflect.PointerTo(rt)} {
		if t.Implements(binaryType) {
			return "binary"
		}
	}
	return ""
}

// gobName is the name gob.Register gives a type (encoding/gob type.go Register).
func gobName(rt reflect.Type) string {
	name := rt.String()
	star := ""
	if rt.Name() == "" && rt.Kind() == reflect.Pointer {
		// gob keeps the pointer type here (a documented compatibility quirk), so the name is
		// rt.String() with the short package name.
		star = "*"
	}
	if rt.Name() != "" {
		if rt.PkgPath() == "" {
			name = star + rt.Name()
		} else {
			name = star + rt.PkgPath() + "." + rt.Name()
		}
	}
	return name
}

// registeredAsPointer lists the base types Mattermost registers through a pointer
// (plugin/client_rpc.go init): gob keys names by base type, so their values travel as
// "*model.AppError" whether the interface holds a pointer or not.
var registeredAsPointer = map[reflect.Type]bool{
	reflect.TypeFor[model.AppError]():     true,
	reflect.TypeFor[plugin.ErrorString](): true,
}

// ifaceName is the name gob sends for a value of dynamic type rt in an interface.
func ifaceName(rt reflect.Type) string {
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if registeredAsPointer[rt] {
		return gobName(reflect.PointerTo(rt))
	}
	return gobName(rt)
}

// isSent mirrors gob's rule: exported, and not a chan or func (through pointers).
func isSent(f reflect.StructField) bool {
	if !f.IsExported() {
		return false
	}
	t := f.Type
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() != reflect.Chan && t.Kind() != reflect.Func
}

type describer struct {
	types      map[string]any
	registered map[string]string
}

func (d *describer) key(rt reflect.Type) string {
	for rt.Kind() == reflect.Pointer {
		rt = rt.Elem()
	}
	if ext := externalKind(rt); ext != "" {
		k := rt.String()
		d.types[k] = map[string]any{"kind": ext, "name": rt.Name()}
		return k
	}
	switch rt.Kind() {
	case reflect.Bool:
		return "bool"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "int"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "uint"
	case reflect.Float32, reflect.Float64:
		return "float"
	case reflect.Complex64, reflect.Complex128:
		return "complex"
	case reflect.String:
		return "string"
	case reflect.Interface:
		return "interface"
	}
	if rt.Kind() == reflect.Slice && rt.Elem().Kind() == reflect.Uint8 {
		return "bytes"
	}
	k := rt.String()
	if _, seen := d.types[k]; seen {
		return k
	}
	d.types[k] = nil // placeholder: recursive references stop here
	switch rt.Kind() {
	case reflect.Slice:
		d.types[k] = map[string]any{"kind": "slice", "name": rt.Name(), "elem": d.key(rt.Elem())}
	case reflect.Array:
		d.types[k] = map[string]any{"kind": "array", "name": rt.Name(), "len": rt.Len(), "elem": d.key(rt.Elem())}
	case reflect.Map:
		d.types[k] = map[string]any{"kind": "map", "name": rt.Name(), "key": d.key(rt.Key()), "elem": d.key(rt.Elem())}
	case reflect.Struct:
		fields := [][]string{}
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			if isSent(f) {
				fields = append(fields, []string{f.Name, ""})
			}
		}
		entry := map[string]any{"kind": "struct", "name": rt.Name(), "fields": fields}
		d.types[k] = entry
		j := 0
		for i := 0; i < rt.NumField(); i++ {
			f := rt.Field(i)
			if isSent(f) {
				fields[j][1] = d.key(f.Type)
				j++
			}
		}
	default:
		panic("gobgolden: cannot describe " + rt.String())
	}
	return k
}

func bitsHex(f float64) string { return fmt.Sprintf("%016x", math.Float64bits(f)) }

// zeroField reports whether gob omits this struct field value (encode.go encOpFor).
func zeroField(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Pointer:
		// gob follows the pointer and applies the pointee's zero rule.
		return v.IsNil() || zeroField(v.Elem())
	case reflect.Interface:
		return v.IsNil()
	case reflect.Map:
		return v.IsNil()
	case reflect.Slice:
		return v.Len() == 0
	case reflect.Array, reflect.Struct:
		return externalKind(v.Type()) != "" && v.IsZero()
	case reflect.Chan, reflect.Func:
		return true
	}
	return v.IsZero()
}

// value renders v as gob transmits it.
func (d *describer) value(v reflect.Value) any {
	for v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	switch externalKind(v.Type()) {
	case "gob":
		b, err := v.Interface().(gob.GobEncoder).GobEncode()
		if err != nil {
			panic(err)
		}
		return map[string]any{"encoded": hex.EncodeToString(b)}
	case "binary":
		p := reflect.New(v.Type())
		p.Elem().Set(v)
		b, err := p.Interface().(encoding.BinaryMarshaler).MarshalBinary()
		if err != nil {
			panic(err)
		}
		return map[string]any{"encoded": hex.EncodeToString(b)}
	}
	switch v.Kind() {
	case reflect.Bool:
		return map[string]any{"bool": v.Bool()}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"int": strconv.FormatInt(v.Int(), 10)}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return map[string]any{"uint": strconv.FormatUint(v.Uint(), 10)}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"float": bitsHex(v.Float())}
	case reflect.Complex64, reflect.Complex128:
		c := v.Complex()
		return map[string]any{"complex": []string{bitsHex(real(c)), bitsHex(imag(c))}}
	case reflect.String:
		// JSON text cannot hold bytes that are not UTF-8; such strings travel as hex.
		if !utf8.ValidString(v.String()) {
			return map[string]any{"string_hex": hex.EncodeToString([]byte(v.String()))}
		}
		return map[string]any{"string": v.String()}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return map[string]any{"bytes": hex.EncodeToString(v.Bytes())}
		}
		return map[string]any{"slice": d.items(v)}
	case reflect.Array:
		return map[string]any{"array": d.items(v)}
	case reflect.Map:
		entries := [][]any{}
		it := v.MapRange()
		for it.Next() {
			entries = append(entries, []any{d.value(it.Key()), d.value(it.Value())})
		}
		return map[string]any{"map": entries}
	case reflect.Struct:
		fields := [][]any{}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if !isSent(f) || zeroField(v.Field(i)) {
				continue
			}
			fields = append(fields, []any{f.Name, d.value(v.Field(i))})
		}
		return map[string]any{"struct": fields}
	case reflect.Interface:
		if v.IsNil() {
			return map[string]any{"interface": nil}
		}
		e := v.Elem()
		name := ifaceName(e.Type())
		d.registered[name] = d.key(e.Type())
		return map[string]any{"interface": map[string]any{"name": name, "value": d.value(e)}}
	}
	panic("gobgolden: cannot render " + v.Type().String())
}

func (d *describer) items(v reflect.Value) []any {
	out := []any{}
	for i := 0; i < v.Len(); i++ {
		out = append(out, d.value(v.Index(i)))
	}
	return out
}

func findCase(name string) (gcase, bool) {
	for _, c := range cases() {
		if c.name == name {
			return c, true
		}
	}
	return gcase{}, false
}

// writeOne encodes one case in this (fresh) process.
func writeOne(name, dir string) error {
	c, ok := findCase(name)
	if !ok {
		return fmt.Errorf("unknown case %q", name)
	}
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	d := &describer{types: map[string]any{}, registered: map[string]string{}}
	values := []any{}
	for _, v := range c.values {
		if err := enc.Encode(v); err != nil {
			return fmt.Errorf("case %s: %w", name, err)
		}
		values = append(values, map[string]any{"type": d.key(reflect.TypeOf(v)), "value": d.value(reflect.ValueOf(v))})
	}
	cuts, err := cutValueMessages(c, buf.Bytes())
	if err != nil {
		return fmt.Errorf("case %s: %w", name, err)
	}
	doc := map[string]any{"values": values, "types": d.types, "registered": d.registered, "cuts": cuts}
	j, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".gob"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".json"), append(j, '\n'), 0o644)
}

func writeAll(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, c := range cases() {
		cmd := exec.Command(self, "one", c.name, dir)
		cmd.Stdout = os.Stdout
		cmd.Stderr = os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("case %s: %w", c.name, err)
		}
	}
	return nil
}

// decodeValues decodes the case's values from stream in order, each into a new value of its
// type, until one fails: the values decoded, and the error that stopped it (nil if none
// did). The decoder is returned for a look at what follows.
func decodeValues(c gcase, stream []byte) ([]any, *gob.Decoder, error) {
	dec := gob.NewDecoder(bytes.NewReader(stream))
	out := []any{}
	for i, v := range c.values {
		p := reflect.New(reflect.TypeOf(v))
		if err := dec.DecodeValue(p); err != nil {
			return out, dec, fmt.Errorf("value %d: %w", i, err)
		}
		out = append(out, p.Elem().Interface())
	}
	return out, dec, nil
}

// decodeAll decodes one value per case value and requires the stream to end there.
func decodeAll(c gcase, stream []byte) ([]any, error) {
	out, dec, err := decodeValues(c, stream)
	if err != nil {
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("data after the last value (err=%v)", err)
	}
	return out, nil
}

// cut is a golden stream up to one of its value messages, that message cut short inside its
// payload and its length prefix rewritten to match: a stream a truncating peer or a broken
// transport could deliver, every framing check passing. Go's decoder refuses most such
// streams, but returns a struct whose message ends at one of its field boundaries as if the
// missing fields were zero (decodeStruct stops at the end of the buffer as at the struct's
// end marker); Go's encoder never writes such a message.
type cut struct {
	// At is the stream offset of the message's length prefix; Keep the payload bytes kept,
	// from 0 to one less than the payload's length.
	At   int `json:"at"`
	Keep int `json:"keep"`
	// ValuesBefore counts the values complete before the message.
	ValuesBefore int `json:"values_before"`
	// GoAccepted: Go's decoder returned a value out of the cut message (a partial one).
	GoAccepted bool `json:"go_accepted"`
	// GoError is the error Go's decoder stopped at ("" if it decoded every value).
	GoError string `json:"go_error"`
}

// cutValueMessages cuts each value message of stream at every offset inside its payload and
// asks Go's decoder about each result.
func cutValueMessages(c gcase, stream []byte) ([]cut, error) {
	cuts := []cut{}
	for at := 0; at < len(stream); {
		length, prefix, err := readUint(stream[at:])
		if err != nil {
			return nil, fmt.Errorf("message at byte %d: %w", at, err)
		}
		payload := stream[at+prefix : at+prefix+int(length)]
		typeID, _, err := readUint(payload)
		if err != nil {
			return nil, fmt.Errorf("message at byte %d: type id: %w", at, err)
		}
		// An int's low bit is its sign: set for a type definition (a negative id).
		if typeID&1 == 0 {
			before, _, _ := decodeValues(c, stream[:at])
			for keep := 0; keep < len(payload); keep++ {
				cutStream := append([]byte{}, stream[:at]...)
				cutStream = appendUint(cutStream, uint64(keep))
				cutStream = append(cutStream, payload[:keep]...)
				got, _, err := decodeValues(c, cutStream)
				k := cut{At: at, Keep: keep, ValuesBefore: len(before), GoAccepted: len(got) > len(before)}
				if err != nil {
					k.GoError = err.Error()
				}
				cuts = append(cuts, k)
			}
		}
		at += prefix + int(length)
	}
	return cuts, nil
}

// readUint reads one gob unsigned integer (encoding/gob keeps its reader unexported): a byte
// below 0x80 is the value, any other is the negated count of big-endian bytes that follow.
func readUint(b []byte) (value uint64, used int, err error) {
	if len(b) == 0 {
		return 0, 0, io.ErrUnexpectedEOF
	}
	if b[0] < 0x80 {
		return uint64(b[0]), 1, nil
	}
	n := int(-int8(b[0]))
	if n > 8 {
		return 0, 0, fmt.Errorf("uint of %d bytes", n)
	}
	if len(b) < 1+n {
		return 0, 0, io.ErrUnexpectedEOF
	}
	for _, x := range b[1 : 1+n] {
		value = value<<8 | uint64(x)
	}
	return value, 1 + n, nil
}

// appendUint appends x in gob's unsigned integer encoding (see readUint).
func appendUint(b []byte, x uint64) []byte {
	if x < 0x80 {
		return append(b, byte(x))
	}
	var be [8]byte
	binary.BigEndian.PutUint64(be[:], x)
	skip := bits.LeadingZeros64(x) / 8
	return append(append(b, byte(-int8(8-skip))), be[skip:]...)
}

func checkAll(dir string) error {
	failed := 0
	for _, c := range cases() {
		var want bytes.Buffer
		enc := gob.NewEncoder(&want)
		for _, v := range c.values {
			if err := enc.Encode(v); err != nil {
				return err
			}
		}
		expected, err := decodeAll(c, want.Bytes())
		if err != nil {
			return fmt.Errorf("case %s: Go cannot read its own stream: %w", c.name, err)
		}
		stream, err := os.ReadFile(filepath.Join(dir, c.name+".gob"))
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			failed++
			continue
		}
		got, err := decodeAll(c, stream)
		if err != nil {
			fmt.Printf("FAIL %s: %v\n", c.name, err)
			failed++
			continue
		}
		if !equalValues(expected, got) {
			fmt.Printf("FAIL %s: want %#v\n  got %#v\n", c.name, expected, got)
			failed++
			continue
		}
		fmt.Printf("ok %s\n", c.name)
	}
	if failed > 0 {
		return fmt.Errorf("%d case(s) failed", failed)
	}
	return nil
}

// equalValues is reflect.DeepEqual, except that NaN equals NaN (DeepEqual says NaN != NaN,
// which would fail the float case however faithful the stream is).
func equalValues(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		fa, okA := a[i].(float64)
		fb, okB := b[i].(float64)
		if okA && okB && math.IsNaN(fa) {
			if !math.IsNaN(fb) || math.Float64bits(fa) != math.Float64bits(fb) {
				return false
			}
			continue
		}
		if !reflect.DeepEqual(a[i], b[i]) {
			return false
		}
	}
	return true
}

func main() {
	var err error
	switch {
	case len(os.Args) == 3 && os.Args[1] == "write":
		err = writeAll(os.Args[2])
	case len(os.Args) == 4 && os.Args[1] == "one":
		err = writeOne(os.Args[2], os.Args[3])
	case len(os.Args) == 3 && os.Args[1] == "check":
		err = checkAll(os.Args[2])
	default:
		err = errors.New("usage: gobgolden write DIR | gobgolden check DIR")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gobgolden:", err)
		os.Exit(1)
	}
}

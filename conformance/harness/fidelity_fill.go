package main

// The fidelity value rule, Go half. The Python half is conformance/harness/testdata/fidelity/plugin.py;
// both are defined on the wire contract (docs/internals.md §7, §10), never on each other's code:
//
//   - A value's path is its place in the protobuf message: a root ("GetUser.in" for a request,
//     "GetUser.out" for a response), then ".N" per message field (N = proto field number = Go
//     wire-field ordinal + 1; a method's params/results start at 2), "[i]" per list element,
//     "{key}" per map entry or google.protobuf.Struct key. A wrapper message (StringList, for a
//     slice nested in a slice or map) is field 1 of its own, so it shows as ".1".
//   - Leaves derive from the path: strings are the path; bytes are its UTF-8; bools are true;
//     int64/uint64 and 32-bit numbers from the path's FNV-1a hash, within the smallest Go width
//     the proto type may stand for (int32 may be a Go int8, so 1..127); floats are exact binary
//     fractions; timestamps are UTC with whole microseconds (the zone never travels).
//   - Lists have 2 elements, maps 2 entries keyed "k0" and "k1".
//   - interface{} values and map[string]interface{} get one fixed shape: a string, a bool, a
//     float64, integers (an int, an int64 beyond 2^53) and a list and a nested map with
//     integers of their own. google.protobuf.Value has only doubles, so Python sees each
//     integer as the nearest double; the bridge gives the server back the integer itself, of
//     its Go type, where Python hands back the number the server sent at the same place (a
//     hook's result replacing an argument of its type: docs/internals.md §10), and float64
//     elsewhere. The integers are therefore the same at every path: an argument's fill and its
//     result's agree on them. asDoubles renders leaves as the double-only side has them.
//   - Recursion stops at fidelityDepth nested structs (messages): beyond it pointers stay nil,
//     lists and maps of structs stay empty and struct values stay zero. Wrappers,
//     Timestamp, Struct and Value do not count as depth.
//
// flatten renders a value as path → leaf text ("s:…" string, "x:…" hex bytes, "n:…" integer,
// "f:…" float, "b:true", "t:SECONDS.NANOS", "null"); zero leaves are left out on both sides, so
// a field the filler set and the receiver lost shows up as missing.

import (
	"encoding"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/big"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"crypto/x509"

	"github.com/mattermost/mattermost/server/public/model"
)

// fidelityDepth is how many struct levels below a request/response message are filled. Five
// reaches every struct type the tested v0.4.4 signatures can contain (the run prints the
// count; four left three SAML types out).
const fidelityDepth = 5

var (
	timeType      = reflect.TypeFor[time.Time]()
	urlType       = reflect.TypeFor[url.URL]()
	bigIntType    = reflect.TypeFor[big.Int]()
	oidType       = reflect.TypeFor[x509.OID]()
	fErrorType    = reflect.TypeFor[error]()
	fAppErrorType = reflect.TypeFor[model.AppError]()
	anyType       = reflect.TypeFor[any]()
	gobEncoder    = reflect.TypeFor[gob.GobEncoder]()
	binMarshaler  = reflect.TypeFor[encoding.BinaryMarshaler]()
)

func pathHash(path string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(path))
	return h.Sum64()
}

func fillInt64(path string) int64   { return int64(pathHash(path)%(1<<62)) + 1 }
func fillUint64(path string) uint64 { return pathHash(path) | 1<<63 }
func fillSmall(path string) int64   { return int64(pathHash(path)%127) + 1 }
func fillDouble(path string) float64 {
	return float64(pathHash(path)%1_000_000) + 0.5
}
func fillFloat(path string) float64 { return float64(pathHash(path)%1000) + 0.25 }
func fillTime(path string) time.Time {
	h := pathHash(path)
	return time.Unix(1_600_000_000+int64(h%100_000_000), int64((h>>32)%1_000_000)*1000).UTC()
}

// The integers of fillAny, the same at every path (see the rule above). The int64s are beyond
// 2^53, where a double no longer holds every integer.
const (
	anyInt         = 42
	anyInt64       = int64(1<<53 + 1)
	anyListInt     = -7
	anyNestedInt64 = -int64(1<<53) - 3
)

// fillAny is the fixed interface{} shape at path.
func fillAny(path string) map[string]any {
	return map[string]any{
		"s": path + "{s}",
		"b": true,
		"f": float64(pathHash(path)%1000) + 0.5,
		"i": anyInt,
		"n": anyInt64,
		"l": []any{path + "{l}[0]", true, anyListInt},
		"m": map[string]any{"s": path + "{m}{s}", "n": anyNestedInt64},
	}
}

// opaque reports types that travel as their own encoding (gob.GobEncoder or
// encoding.BinaryMarshaler on T or *T), except time.Time and url.URL, which the contract maps to
// Timestamp and string.
func opaque(t reflect.Type) bool {
	// A pointer is followed to its element (a *time.Time is a Timestamp, not opaque bytes).
	if t == timeType || t == urlType || t.Kind() == reflect.Pointer {
		return false
	}
	p := reflect.PointerTo(t)
	return t.Implements(gobEncoder) || p.Implements(gobEncoder) || t.Implements(binMarshaler) || p.Implements(binMarshaler)
}

// wireFields are the struct fields gob sends, in order: exported, not chan or func.
func wireFields(t reflect.Type) []int {
	var idx []int
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Type.Kind() == reflect.Chan || f.Type.Kind() == reflect.Func {
			continue
		}
		idx = append(idx, i)
	}
	return idx
}

// isMessage reports whether a value of t is a nested message that counts towards the depth.
func isMessage(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == fErrorType {
		return true // carried as an AppError message
	}
	return t.Kind() == reflect.Struct && t != timeType && t != urlType && !opaque(t)
}

// wrapped reports whether an element of type t sits inside a wrapper message (a slice nested in
// a slice or a map, or a map nested in a map, other than bytes and map[string]interface{}).
func wrapped(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice:
		return t.Elem().Kind() != reflect.Uint8
	case reflect.Map:
		return !(t.Key().Kind() == reflect.String && t.Elem() == anyType)
	}
	return false
}

func elemPath(path string, elem reflect.Type) string {
	if wrapped(elem) {
		return path + ".1"
	}
	return path
}

// contractFields, when set, numbers struct fields by the contract (the harness built against an
// older server/public module, see contract.go); nil numbers them by Go ordinal, which is the
// contract's order for the pinned module.
var contractFields map[string][]string

type fieldLayout struct {
	suffix  []string // per wireFields entry: ".N" (protobuf number N) or ".?Name" (not in the contract)
	missing []int    // contract field numbers the Go struct does not have
}

var fieldLayouts sync.Map // reflect.Type → fieldLayout, valid for the current contractFields

// fieldSuffixes is t's field layout. A field the contract lacks (an older server's field that the
// pinned module removed) gets the path element ".?Name": it is filled, so the older server sends
// it, but it cannot reach the plugin (isUncarried).
func fieldSuffixes(t reflect.Type) fieldLayout {
	if l, ok := fieldLayouts.Load(t); ok {
		return l.(fieldLayout)
	}
	idx := wireFields(t)
	var l fieldLayout
	names, inContract := contractFields[t.PkgPath()+"."+t.Name()]
	if contractFields == nil || !inContract {
		// The pinned module, or a struct the contract does not name: Go order.
		for n := range idx {
			l.suffix = append(l.suffix, fmt.Sprintf(".%d", n+1))
		}
		fieldLayouts.Store(t, l)
		return l
	}
	number := map[string]int{}
	for i, name := range names {
		number[name] = i + 1
	}
	has := map[string]bool{}
	for _, i := range idx {
		name := t.Field(i).Name
		has[name] = true
		if n, ok := number[name]; ok {
			l.suffix = append(l.suffix, fmt.Sprintf(".%d", n))
		} else {
			l.suffix = append(l.suffix, ".?"+name)
		}
	}
	for i, name := range names {
		if !has[name] {
			l.missing = append(l.missing, i+1)
		}
	}
	fieldLayouts.Store(t, l)
	return l
}

// isUncarried reports whether a flattened path lies under a field the contract lacks.
func isUncarried(path string) bool { return strings.Contains(path, ".?") }

// filler builds values by the rule above and remembers what it could not fill, so a limit is
// reported rather than silently skipped.
type filler struct {
	unfillable []string
	structs    map[reflect.Type]bool // struct types filled at least once
	// contractOnly are the paths of contract fields the Go struct lacks (an older server's
	// struct): the plugin fills them, the Go side cannot.
	contractOnly []string
}

func (f *filler) value(t reflect.Type, path string, depth int) reflect.Value {
	v := reflect.New(t).Elem()
	f.fill(v, path, depth)
	return v
}

func (f *filler) fill(v reflect.Value, path string, depth int) {
	t := v.Type()
	switch {
	case t == timeType:
		v.Set(reflect.ValueOf(fillTime(path)))
		return
	case t == urlType:
		u, err := url.Parse(path)
		if err != nil {
			f.unfillable = append(f.unfillable, fmt.Sprintf("%s (url.URL): %v", path, err))
			return
		}
		v.Set(reflect.ValueOf(u).Elem())
		return
	case t == bigIntType:
		v.Set(reflect.ValueOf(new(big.Int).SetUint64(pathHash(path))).Elem())
		return
	case t == oidType:
		oid, err := x509.OIDFromInts([]uint64{1, 3, pathHash(path) % 1000})
		if err != nil {
			f.unfillable = append(f.unfillable, fmt.Sprintf("%s (x509.OID): %v", path, err))
			return
		}
		v.Set(reflect.ValueOf(oid))
		return
	case opaque(t):
		f.unfillable = append(f.unfillable, fmt.Sprintf("%s (%s: no fill rule for this encoding)", path, t))
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		v.SetBool(true)
	case reflect.String:
		v.SetString(path)
	case reflect.Int, reflect.Int64:
		v.SetInt(fillInt64(path))
	case reflect.Int8, reflect.Int16, reflect.Int32:
		v.SetInt(fillSmall(path))
	case reflect.Uint, reflect.Uint64, reflect.Uintptr:
		v.SetUint(fillUint64(path))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		v.SetUint(uint64(fillSmall(path)))
	case reflect.Float64:
		v.SetFloat(fillDouble(path))
	case reflect.Float32:
		v.SetFloat(fillFloat(path))
	case reflect.Pointer:
		if isMessage(t.Elem()) && depth+1 > fidelityDepth {
			return
		}
		p := reflect.New(t.Elem())
		f.fill(p.Elem(), path, depth)
		v.Set(p)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			v.Set(reflect.ValueOf([]byte(path)).Convert(t))
			return
		}
		if isMessage(t.Elem()) && depth+1 > fidelityDepth {
			return
		}
		s := reflect.MakeSlice(t, 2, 2)
		for i := range 2 {
			f.fill(s.Index(i), elemPath(fmt.Sprintf("%s[%d]", path, i), t.Elem()), depth)
		}
		v.Set(s)
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			f.unfillable = append(f.unfillable, fmt.Sprintf("%s (%s: map key is not a string)", path, t))
			return
		}
		if t.Elem() == anyType {
			v.Set(reflect.ValueOf(fillAny(path)).Convert(t))
			return
		}
		if isMessage(t.Elem()) && depth+1 > fidelityDepth {
			return
		}
		m := reflect.MakeMap(t)
		for i := range 2 {
			k := fmt.Sprintf("k%d", i)
			e := reflect.New(t.Elem()).Elem()
			f.fill(e, elemPath(path+"{"+k+"}", t.Elem()), depth)
			m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
		v.Set(m)
	case reflect.Struct:
		if depth+1 > fidelityDepth {
			return
		}
		if f.structs != nil {
			f.structs[t] = true
		}
		l := fieldSuffixes(t)
		for n, i := range wireFields(t) {
			f.fill(v.Field(i), path+l.suffix[n], depth+1)
		}
		for _, k := range l.missing {
			f.contractOnly = append(f.contractOnly, fmt.Sprintf("%s.%d", path, k))
		}
	case reflect.Interface:
		switch {
		case t == fErrorType:
			if depth+1 > fidelityDepth {
				return
			}
			p := reflect.New(fAppErrorType)
			f.fill(p.Elem(), path, depth)
			v.Set(p)
		case t.NumMethod() == 0:
			v.Set(reflect.ValueOf(fillAny(path)))
		default:
			f.unfillable = append(f.unfillable, fmt.Sprintf("%s (%s: an interface with methods has no wire form here)", path, t))
		}
	default:
		f.unfillable = append(f.unfillable, fmt.Sprintf("%s (%s: kind %s has no fill rule)", path, t, t.Kind()))
	}
}

// fmtFloat is the shortest decimal that reads back as x, never in exponent form (2^53 is
// "9007199254740992"); the Python half writes the same for the magnitudes the rule uses
// (below 10^16).
func fmtFloat(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }

// flatten adds v's non-zero leaves to out.
func flatten(v reflect.Value, path string, out map[string]string) {
	if !v.IsValid() {
		return
	}
	t := v.Type()
	switch {
	case t == timeType:
		tm := v.Interface().(time.Time)
		if !tm.IsZero() {
			out[path] = fmt.Sprintf("t:%d.%09d", tm.Unix(), tm.Nanosecond())
		}
		return
	case t == urlType:
		u := v.Interface().(url.URL)
		if s := u.String(); s != "" {
			out[path] = "s:" + s
		}
		return
	case opaque(t):
		if v.IsZero() {
			return
		}
		p := reflect.New(t)
		p.Elem().Set(v)
		var raw []byte
		var err error
		if m, ok := p.Interface().(gob.GobEncoder); ok {
			raw, err = m.GobEncode()
		} else if m, ok := p.Interface().(encoding.BinaryMarshaler); ok {
			raw, err = m.MarshalBinary()
		}
		if err != nil {
			out[path] = "encode-error:" + err.Error()
			return
		}
		out[path] = "x:" + hex.EncodeToString(raw)
		return
	}
	switch t.Kind() {
	case reflect.Bool:
		if v.Bool() {
			out[path] = "b:true"
		}
	case reflect.String:
		if v.String() != "" {
			out[path] = "s:" + v.String()
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		if v.Int() != 0 {
			out[path] = "n:" + strconv.FormatInt(v.Int(), 10)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if v.Uint() != 0 {
			out[path] = "n:" + strconv.FormatUint(v.Uint(), 10)
		}
	case reflect.Float32, reflect.Float64:
		if v.Float() != 0 {
			out[path] = "f:" + fmtFloat(v.Float())
		}
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		e := v.Elem()
		// A pointer to a scalar is proto `optional`: present even when zero.
		if k := e.Kind(); k != reflect.Struct && k != reflect.Slice && k != reflect.Map && k != reflect.Interface && k != reflect.Pointer {
			if e.IsZero() {
				out[path] = zeroLeaf(e.Kind())
				return
			}
		}
		flatten(e, path, out)
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			if v.Len() > 0 {
				out[path] = "x:" + hex.EncodeToString(v.Bytes())
			}
			return
		}
		for i := range v.Len() {
			flatten(v.Index(i), elemPath(fmt.Sprintf("%s[%d]", path, i), t.Elem()), out)
		}
	case reflect.Map:
		if t.Elem() == anyType && t.Key().Kind() == reflect.String {
			for _, k := range v.MapKeys() {
				flattenAny(v.MapIndex(k).Interface(), path+"{"+k.String()+"}", out)
			}
			return
		}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return fmt.Sprint(keys[i]) < fmt.Sprint(keys[j]) })
		for _, k := range keys {
			flatten(v.MapIndex(k), elemPath(path+"{"+fmt.Sprint(k.Interface())+"}", t.Elem()), out)
		}
	case reflect.Struct:
		l := fieldSuffixes(t)
		for n, i := range wireFields(t) {
			flatten(v.Field(i), path+l.suffix[n], out)
		}
	case reflect.Interface:
		if v.IsNil() {
			return
		}
		if t == fErrorType {
			e := v.Elem()
			if e.Type() == reflect.PointerTo(fAppErrorType) {
				flatten(e, path, out)
				return
			}
			out[path] = fmt.Sprintf("error %T: %v", e.Interface(), e.Interface())
			return
		}
		if t.NumMethod() == 0 {
			flattenAny(v.Elem().Interface(), path, out)
			return
		}
		out[path] = fmt.Sprintf("%T", v.Elem().Interface())
	default:
		out[path] = fmt.Sprintf("unsupported kind %s", t.Kind())
	}
}

func zeroLeaf(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "b:false"
	case reflect.String:
		return "s:"
	case reflect.Float32, reflect.Float64:
		return "f:0"
	default:
		return "n:0"
	}
}

// flattenAny renders a value held in an interface{} (google.protobuf.Value on the wire).
func flattenAny(x any, path string, out map[string]string) {
	switch x := x.(type) {
	case nil:
		out[path] = "null"
	case string:
		out[path] = "s:" + x
	case bool:
		out[path] = "b:" + strconv.FormatBool(x)
	case float64:
		out[path] = "f:" + fmtFloat(x)
	case float32:
		out[path] = "f32:" + fmtFloat(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		// With its Go type, apart from "f:": an integer must come back as itself where the
		// bridge keeps it (asDoubles renders it as the double it is elsewhere).
		out[path] = fmt.Sprintf("%T:%d", x, x)
	case []any:
		for i, e := range x {
			flattenAny(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case map[string]any:
		for k, e := range x {
			flattenAny(e, path+"{"+k+"}", out)
		}
	default:
		raw, err := json.Marshal(x)
		if err != nil {
			out[path] = fmt.Sprintf("%T", x)
			return
		}
		out[path] = fmt.Sprintf("%T:%s", x, raw)
	}
}

// asDoubles renders leaves as a side that has only google.protobuf.Value's doubles has them:
// an integer held in an interface{} ("int:42", "int64:9007199254740993") is the nearest
// double ("f:42", "f:9007199254740992").
func asDoubles(leaves map[string]string) map[string]string {
	out := make(map[string]string, len(leaves))
	for p, leaf := range leaves {
		out[p] = leafAsDouble(leaf)
	}
	return out
}

func leafAsDouble(leaf string) string {
	kind, digits, _ := strings.Cut(leaf, ":")
	switch kind {
	case "int", "int8", "int16", "int32", "int64":
		if n, err := strconv.ParseInt(digits, 10, 64); err == nil {
			return "f:" + fmtFloat(float64(n))
		}
	case "uint", "uint8", "uint16", "uint32", "uint64":
		if n, err := strconv.ParseUint(digits, 10, 64); err == nil {
			return "f:" + fmtFloat(float64(n))
		}
	}
	return leaf
}

// leafDiff compares got against want and returns one line per differing path, sorted.
func leafDiff(got, want map[string]string) []string {
	var diffs []string
	for p, w := range want {
		g, ok := got[p]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing, want %s", p, clipLeaf(w)))
		case g != w:
			diffs = append(diffs, fmt.Sprintf("%s: got %s, want %s", p, clipLeaf(g), clipLeaf(w)))
		}
	}
	for p, g := range got {
		if _, ok := want[p]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: unexpected %s", p, clipLeaf(g)))
		}
	}
	sort.Strings(diffs)
	return diffs
}

func clipLeaf(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return strconv.Quote(s)
}

// reachableStructs adds to seen every struct type (other than leaves: time, URL, opaque) that a
// value of type t can contain, at any depth.
func reachableStructs(t reflect.Type, seen map[reflect.Type]bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		reachableStructs(t.Elem(), seen)
	case reflect.Map:
		reachableStructs(t.Key(), seen)
		reachableStructs(t.Elem(), seen)
	case reflect.Interface:
		if t == fErrorType {
			reachableStructs(fAppErrorType, seen)
		}
	case reflect.Struct:
		if t == timeType || t == urlType || opaque(t) || seen[t] {
			return
		}
		seen[t] = true
		for _, i := range wireFields(t) {
			reachableStructs(t.Field(i).Type, seen)
		}
	}
}

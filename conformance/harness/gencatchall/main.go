// Command gencatchall writes catchall_generated.go for the conformance harness: one method per
// plugin.API method that records "not implemented by the harness" and returns zero values plus
// an error where the signature has one.
//
// Why generated instead of embedding a nil plugin.API: the supervisor's apiRPCServer calls our
// API object from a net/rpc goroutine that has no recover, so a nil embedded interface would
// crash the whole harness on the first unimplemented call. A concrete catch-all turns that call
// into a recorded case failure and a clean error reply to the plugin. The method list comes from
// reflection on the pinned plugin.API itself, so it cannot drift from the server we test against;
// memapi.go asserts `var _ plugin.API = (*memAPI)(nil)`, so a stale file fails to compile.
//
// It also writes fidelity_generated.go: the same method list on fidelityAPI, where every method
// hands its arguments to fidelityAPI.handle (which records them and builds reflection-filled
// results, see fidelity.go) and returns what handle built. The generated part is only the typed
// plumbing a Go interface needs; the behaviour is shared code.
//
// Run from the harness directory: go generate (see the directive in memapi.go).
package main

import (
	"bytes"
	"fmt"
	"go/format"
	"os"
	"reflect"
	"sort"
	"strings"

	"github.com/mattermost/mattermost/server/public/model"
	"github.com/mattermost/mattermost/server/public/plugin"
)

var (
	appErrorType = reflect.TypeFor[*model.AppError]()
	errorType    = reflect.TypeFor[error]()
)

// imports maps a package name, as reflect prints it, to its import path.
type imports map[string]string

// typeExpr renders t as Go source and records the imports it needs. reflect's String() already
// uses short package names ("*model.Post", "map[string]interface {}"); we only walk the type to
// learn which packages those names refer to.
func (im imports) typeExpr(t reflect.Type) (string, error) {
	if err := im.collect(t); err != nil {
		return "", err
	}
	return t.String(), nil
}

func (im imports) collect(t reflect.Type) error {
	if t.Name() != "" && t.PkgPath() != "" {
		if strings.Contains(t.Name(), "[") {
			return fmt.Errorf("generic named type %s in a signature: extend the generator", t)
		}
		name := strings.SplitN(t.String(), ".", 2)[0]
		name = strings.TrimLeft(name, "*[]")
		if prev, ok := im[name]; ok && prev != t.PkgPath() {
			return fmt.Errorf("package name %q used by both %s and %s", name, prev, t.PkgPath())
		}
		im[name] = t.PkgPath()
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return im.collect(t.Elem())
	case reflect.Map:
		if err := im.collect(t.Key()); err != nil {
			return err
		}
		return im.collect(t.Elem())
	case reflect.Func, reflect.Chan, reflect.Struct:
		if t.Name() == "" && t.NumMethod() == 0 && t.Kind() == reflect.Struct && t.NumField() == 0 {
			return nil
		}
		return fmt.Errorf("unnamed %s type %s in a signature: extend the generator", t.Kind(), t)
	}
	return nil
}

func generate() ([]byte, error) {
	api := reflect.TypeFor[plugin.API]()
	im := imports{"model": "github.com/mattermost/mattermost/server/public/model"}
	var body bytes.Buffer
	for i := range api.NumMethod() {
		m := api.Method(i)
		ft := m.Type
		var params, results []string
		for j := range ft.NumIn() {
			in := ft.In(j)
			if ft.IsVariadic() && j == ft.NumIn()-1 {
				elem, err := im.typeExpr(in.Elem())
				if err != nil {
					return nil, fmt.Errorf("%s: %w", m.Name, err)
				}
				params = append(params, fmt.Sprintf("_ ...%s", elem))
				continue
			}
			expr, err := im.typeExpr(in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			params = append(params, "_ "+expr)
		}
		var assigns []string
		for j := range ft.NumOut() {
			out := ft.Out(j)
			expr, err := im.typeExpr(out)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			name := fmt.Sprintf("r%d", j)
			results = append(results, name+" "+expr)
			switch out {
			case appErrorType:
				assigns = append(assigns, fmt.Sprintf("%s = c.notImplementedAppError(%q)", name, m.Name))
			case errorType:
				assigns = append(assigns, fmt.Sprintf("%s = c.notImplementedAppError(%q)", name, m.Name))
			}
		}
		fmt.Fprintf(&body, "\nfunc (c *catchAll) %s(%s) (%s) {\n", m.Name, strings.Join(params, ", "), strings.Join(results, ", "))
		fmt.Fprintf(&body, "\tc.unimplemented(%q)\n", m.Name)
		for _, a := range assigns {
			fmt.Fprintf(&body, "\t%s\n", a)
		}
		body.WriteString("\treturn\n}\n")
	}

	return render(im, body.Bytes())
}

func main() {
	for file, gen := range map[string]func() ([]byte, error){"catchall_generated.go": generate, "fidelity_generated.go": generateFidelity} {
		src, err := gen()
		if err != nil {
			fmt.Fprintln(os.Stderr, "gencatchall:", err)
			os.Exit(1)
		}
		if err := os.WriteFile(file, src, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "gencatchall:", err)
			os.Exit(1)
		}
	}
}

// generateFidelity writes one fidelityAPI method per plugin.API method:
//
//	func (f *fidelityAPI) GetUser(p0 string) (r0 *model.User, r1 *model.AppError) {
//		out := f.handle("GetUser", p0)
//		r0, _ = out[0].(*model.User)
//		...
//
// A variadic parameter is passed as its slice. The checked assertion leaves a nil result (an
// untyped nil in out) at its zero value.
func generateFidelity() ([]byte, error) {
	api := reflect.TypeFor[plugin.API]()
	im := imports{}
	var body bytes.Buffer
	for i := range api.NumMethod() {
		m := api.Method(i)
		ft := m.Type
		var params, names, results []string
		for j := range ft.NumIn() {
			in := ft.In(j)
			name := fmt.Sprintf("p%d", j)
			names = append(names, name)
			if ft.IsVariadic() && j == ft.NumIn()-1 {
				elem, err := im.typeExpr(in.Elem())
				if err != nil {
					return nil, fmt.Errorf("%s: %w", m.Name, err)
				}
				params = append(params, fmt.Sprintf("%s ...%s", name, elem))
				continue
			}
			expr, err := im.typeExpr(in)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			params = append(params, name+" "+expr)
		}
		var assigns []string
		for j := range ft.NumOut() {
			expr, err := im.typeExpr(ft.Out(j))
			if err != nil {
				return nil, fmt.Errorf("%s: %w", m.Name, err)
			}
			name := fmt.Sprintf("r%d", j)
			results = append(results, name+" "+expr)
			assigns = append(assigns, fmt.Sprintf("%s, _ = out[%d].(%s)", name, j, expr))
		}
		fmt.Fprintf(&body, "\nfunc (f *fidelityAPI) %s(%s) (%s) {\n", m.Name, strings.Join(params, ", "), strings.Join(results, ", "))
		call := fmt.Sprintf("f.handle(%q", m.Name)
		for _, n := range names {
			call += ", " + n
		}
		call += ")"
		if len(assigns) == 0 {
			fmt.Fprintf(&body, "\t%s\n}\n", call)
			continue
		}
		fmt.Fprintf(&body, "\tout := %s\n", call)
		for _, a := range assigns {
			fmt.Fprintf(&body, "\t%s\n", a)
		}
		body.WriteString("\treturn\n}\n")
	}
	return render(im, body.Bytes())
}

// render adds the header and imports to a generated body and gofmts it.
func render(im imports, body []byte) ([]byte, error) {
	var out bytes.Buffer
	out.WriteString("// Code generated by gencatchall from the pinned plugin.API; DO NOT EDIT.\n\n")
	out.WriteString("package main\n\n")
	if len(im) > 0 {
		out.WriteString("import (\n")
		names := make([]string, 0, len(im))
		for n := range im {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			path := im[n]
			if path[strings.LastIndex(path, "/")+1:] == n {
				fmt.Fprintf(&out, "\t%q\n", path)
			} else {
				fmt.Fprintf(&out, "\t%s %q\n", n, path)
			}
		}
		out.WriteString(")\n")
	}
	out.Write(body)
	return format.Source(out.Bytes())
}

package main

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/token"
	"go/types"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/tools/go/packages"
)

const (
	pluginPkg = modulePath + "/plugin"
	modelPkg  = modulePath + "/model"
)

var minVersionRE = regexp.MustCompile(`(?m)^Minimum server version:\s*([0-9][0-9.]*)\s*$`)
var tagRE = regexp.MustCompile(`(?m)^@tag\s+(\S+)\s*$`)

// extractor holds the loaded packages and accumulates the reachable types.
type extractor struct {
	plugin *packages.Package
	// docs maps a type's "pkgpath.Name" to its doc comment and field docs, for packages whose
	// syntax was loaded (plugin and model: the ones whose docs are worth carrying into protos).
	typeDocs  map[string]string
	fieldDocs map[string]map[string]string
	types     map[string]*Type
	typePaths map[string]string
	// err is the first problem found while walking types (reported once extraction ends).
	err error
}

// Extract loads the pinned module and builds the schema.
func Extract() (*Schema, error) {
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedTypes | packages.NeedSyntax | packages.NeedTypesInfo |
			packages.NeedModule | packages.NeedImports | packages.NeedDeps,
		Tests: false,
	}
	pkgs, err := packages.Load(cfg, pluginPkg, modelPkg)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", pluginPkg, err)
	}
	var errs []string
	packages.Visit(pkgs, nil, func(p *packages.Package) {
		for _, e := range p.Errors {
			errs = append(errs, e.Error())
		}
	})
	if len(errs) > 0 {
		return nil, fmt.Errorf("package errors (is the module downloaded? run `go mod download`):\n  %s", strings.Join(errs, "\n  "))
	}
	x := &extractor{
		typeDocs:  map[string]string{},
		fieldDocs: map[string]map[string]string{},
		types:     map[string]*Type{},
		typePaths: map[string]string{},
	}
	for _, p := range pkgs {
		if p.PkgPath == pluginPkg {
			x.plugin = p
		}
		x.collectDocs(p)
	}
	if x.plugin == nil {
		return nil, fmt.Errorf("%s not loaded", pluginPkg)
	}
	mod := x.plugin.Module
	if mod == nil || mod.Path != modulePath {
		return nil, fmt.Errorf("%s does not come from module %s", pluginPkg, modulePath)
	}
	s := &Schema{Module: mod.Path, Version: mod.Version}
	if s.API, err = x.methods("API", "apiRPCServer"); err != nil {
		return nil, err
	}
	if s.Hooks, err = x.methods("Hooks", "hooksRPCServer"); err != nil {
		return nil, err
	}
	if s.Registered, err = x.registered(); err != nil {
		return nil, err
	}
	if x.err != nil {
		return nil, x.err
	}
	s.Types = x.types
	return s, nil
}

// collectDocs records doc comments of the package's named types and their struct fields.
func (x *extractor) collectDocs(p *packages.Package) {
	for _, f := range p.Syntax {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				key := p.PkgPath + "." + ts.Name.Name
				doc := ts.Doc
				if doc == nil && len(gd.Specs) == 1 {
					doc = gd.Doc
				}
				if d := cleanDoc(doc); d != "" {
					x.typeDocs[key] = d
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok {
					continue
				}
				fd := map[string]string{}
				for _, fl := range st.Fields.List {
					d := cleanDoc(fl.Doc)
					if d == "" {
						d = cleanDoc(fl.Comment)
					}
					if d == "" {
						continue
					}
					for _, n := range fl.Names {
						fd[n.Name] = d
					}
				}
				if len(fd) > 0 {
					x.fieldDocs[key] = fd
				}
			}
		}
	}
}

func cleanDoc(cg *ast.CommentGroup) string {
	if cg == nil {
		return ""
	}
	return strings.TrimSpace(cg.Text())
}

// methods lists the methods of interface ifaceName in declaration order (go/types sorts them,
// so the order comes from the syntax) with the wire shape served by rpcServer's methods.
func (x *extractor) methods(ifaceName, rpcServer string) ([]*Method, error) {
	obj := x.plugin.Types.Scope().Lookup(ifaceName)
	if obj == nil {
		return nil, fmt.Errorf("plugin.%s not found", ifaceName)
	}
	iface, ok := obj.Type().Underlying().(*types.Interface)
	if !ok {
		return nil, fmt.Errorf("plugin.%s is not an interface", ifaceName)
	}
	srvObj := x.plugin.Types.Scope().Lookup(rpcServer)
	if srvObj == nil {
		return nil, fmt.Errorf("plugin.%s not found", rpcServer)
	}
	srvMethods := types.NewMethodSet(types.NewPointer(srvObj.Type()))

	order, docs, err := x.declOrder(ifaceName)
	if err != nil {
		return nil, err
	}
	if len(order) != iface.NumMethods() {
		return nil, fmt.Errorf("plugin.%s: %d methods in syntax, %d in type (embedded interfaces are not handled)", ifaceName, len(order), iface.NumMethods())
	}
	inIface := map[string]bool{}
	var out []*Method
	for _, name := range order {
		inIface[name] = true
		fn := lookupMethod(iface, name)
		if fn == nil {
			return nil, fmt.Errorf("plugin.%s.%s: no such method in the type", ifaceName, name)
		}
		m, err := x.method(ifaceName, fn, docs[name], srvMethods)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	// Every method the RPC server answers must be accounted for, so a new special case in a
	// future module version is noticed here instead of silently missing from the schema.
	for i := 0; i < srvMethods.Len(); i++ {
		sel := srvMethods.At(i)
		name := sel.Obj().Name()
		if !sel.Obj().Exported() || inIface[name] {
			continue
		}
		if strings.HasSuffix(name, "Stream") && inIface[strings.TrimSuffix(name, "Stream")] {
			continue
		}
		return nil, fmt.Errorf("%s.%s is not a plugin.%s method nor a known alternate", rpcServer, name, ifaceName)
	}
	return out, nil
}

func lookupMethod(iface *types.Interface, name string) *types.Func {
	for i := 0; i < iface.NumMethods(); i++ {
		if f := iface.Method(i); f.Name() == name {
			return f
		}
	}
	return nil
}

// declOrder returns the interface's method names in source order and their doc comments.
func (x *extractor) declOrder(ifaceName string) ([]string, map[string]string, error) {
	docs := map[string]string{}
	for _, f := range x.plugin.Syntax {
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if ts.Name.Name != ifaceName {
					continue
				}
				it, ok := ts.Type.(*ast.InterfaceType)
				if !ok {
					return nil, nil, fmt.Errorf("plugin.%s: not an interface in syntax", ifaceName)
				}
				var order []string
				for _, fl := range it.Methods.List {
					if len(fl.Names) == 0 {
						return nil, nil, fmt.Errorf("plugin.%s embeds an interface; not handled", ifaceName)
					}
					for _, n := range fl.Names {
						order = append(order, n.Name)
						docs[n.Name] = cleanDoc(fl.Doc)
					}
				}
				return order, docs, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("plugin.%s: declaration not found", ifaceName)
}

func (x *extractor) method(ifaceName string, fn *types.Func, doc string, srv *types.MethodSet) (*Method, error) {
	sig := fn.Type().(*types.Signature)
	m := &Method{Name: fn.Name(), Doc: doc, Tags: []string{}, Params: []Var{}, Results: []Var{}}
	if mv := minVersionRE.FindStringSubmatch(doc); mv != nil {
		v := mv[1]
		m.MinServerVersion = &v
	}
	for _, t := range tagRE.FindAllStringSubmatch(doc, -1) {
		m.Tags = append(m.Tags, t[1])
	}
	for i := 0; i < sig.Params().Len(); i++ {
		p := sig.Params().At(i)
		v := Var{Name: p.Name(), Type: x.use(p.Type())}
		if sig.Variadic() && i == sig.Params().Len()-1 {
			v.Variadic = true
		}
		m.Params = append(m.Params, v)
	}
	for i := 0; i < sig.Results().Len(); i++ {
		r := sig.Results().At(i)
		m.Results = append(m.Results, Var{Name: r.Name(), Type: x.use(r.Type())})
	}

	w, err := x.wire(srv, m.Name, m)
	if err != nil {
		return nil, fmt.Errorf("plugin.%s.%s: %w", ifaceName, m.Name, err)
	}
	if w == nil {
		return nil, fmt.Errorf("plugin.%s.%s: the RPC server has no method %s", ifaceName, m.Name, m.Name)
	}
	m.Wire = *w
	m.Regular = isRegular(m)
	if alt, err := x.wire(srv, m.Name+"Stream", m); err != nil {
		return nil, fmt.Errorf("plugin.%s.%sStream: %w", ifaceName, m.Name, err)
	} else if alt != nil {
		m.Alternates = append(m.Alternates, *alt)
		m.Regular = false
	}
	if !m.Regular {
		note, ok := wireNotes[m.Name]
		if !ok {
			return nil, fmt.Errorf("plugin.%s.%s: irregular wire shape without a note in wireNotes; describe it", ifaceName, m.Name)
		}
		m.WireNote = note
	}
	return m, nil
}

// wire describes the net/rpc method `name` of the RPC server, or returns nil if there is none.
func (x *extractor) wire(srv *types.MethodSet, name string, m *Method) (*Wire, error) {
	sel := srv.Lookup(x.plugin.Types, name)
	if sel == nil {
		return nil, nil
	}
	sig := sel.Obj().Type().(*types.Signature)
	if sig.Params().Len() != 2 || sig.Results().Len() != 1 {
		return nil, fmt.Errorf("RPC method %s is not func(args, *reply) error", name)
	}
	replyPtr, ok := sig.Params().At(1).Type().(*types.Pointer)
	if !ok {
		return nil, fmt.Errorf("RPC method %s: reply is not a pointer", name)
	}
	args := deref(sig.Params().At(0).Type())
	reply := replyPtr.Elem()
	w := &Wire{
		ServiceMethod: "Plugin." + name,
		ArgsStruct:    zName(args),
		ReturnsStruct: zName(reply),
		ArgsType:      x.use(args),
		ReturnsType:   x.use(reply),
		ArgsFields:    []WireField{},
		ReturnsFields: []WireField{},
	}
	var err error
	if w.ArgsFields, err = x.wireFields(args, m.Params, "param", name); err != nil {
		return nil, err
	}
	if w.ReturnsFields, err = x.wireFields(reply, m.Results, "result", name); err != nil {
		return nil, err
	}
	return w, nil
}

// wireFields lists the struct's fields. A field named by the i-th capital letter whose type is
// the i-th Go param/result's type carries that value; every other field must be described in
// fieldRoles, so nothing irregular goes unexplained.
func (x *extractor) wireFields(t types.Type, vars []Var, role, rpcName string) ([]WireField, error) {
	out := []WireField{}
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		return out, nil
	}
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		if !f.Exported() {
			continue
		}
		wf := WireField{Name: f.Name(), Type: x.use(f.Type())}
		if len(f.Name()) == 1 {
			idx := int(f.Name()[0] - 'A')
			if idx >= 0 && idx < len(vars) && vars[idx].Type == wf.Type {
				wf.Role = role
				wf.Index = &idx
				wf.Of = vars[idx].Name
			}
		}
		if wf.Role == "" {
			r, ok := fieldRoles[rpcName+"."+f.Name()]
			if !ok {
				return nil, fmt.Errorf("wire field %s.%s does not map to a Go %s; describe it in fieldRoles", rpcName, f.Name(), role)
			}
			wf.Role, wf.Of, wf.Note = r.role, r.of, r.note
			if r.index >= 0 {
				idx := r.index
				wf.Index = &idx
			}
		}
		out = append(out, wf)
	}
	return out, nil
}

func isRegular(m *Method) bool {
	match := func(fields []WireField, vars []Var, role string, structName *string) bool {
		if structName == nil || len(fields) != len(vars) {
			return false
		}
		for i, f := range fields {
			if f.Role != role || f.Index == nil || *f.Index != i || f.Name != string(rune('A'+i)) {
				return false
			}
		}
		return true
	}
	return m.ArgsStruct != nil && *m.ArgsStruct == "Z_"+m.Name+"Args" &&
		m.ReturnsStruct != nil && *m.ReturnsStruct == "Z_"+m.Name+"Returns" &&
		match(m.ArgsFields, m.Params, "param", m.ArgsStruct) &&
		match(m.ReturnsFields, m.Results, "result", m.ReturnsStruct)
}

func deref(t types.Type) types.Type {
	if p, ok := t.(*types.Pointer); ok {
		return p.Elem()
	}
	return t
}

func zName(t types.Type) *string {
	if n, ok := types.Unalias(t).(*types.Named); ok && strings.HasPrefix(n.Obj().Name(), "Z_") {
		s := n.Obj().Name()
		return &s
	}
	return nil
}

// registered reads the gob.Register/RegisterName calls of the plugin package's init functions
// and computes each name the way encoding/gob's Register does.
func (x *extractor) registered() ([]Registered, error) {
	out := []Registered{}
	info := x.plugin.TypesInfo
	for _, f := range x.plugin.Syntax {
		for _, decl := range f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Name.Name != "init" || fd.Body == nil {
				continue
			}
			var walkErr error
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || walkErr != nil {
					return walkErr == nil
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				pkgIdent, ok := sel.X.(*ast.Ident)
				if !ok {
					return true
				}
				pn, ok := info.Uses[pkgIdent].(*types.PkgName)
				if !ok || pn.Imported().Path() != "encoding/gob" {
					return true
				}
				switch sel.Sel.Name {
				case "Register":
					t := info.TypeOf(call.Args[0])
					out = append(out, Registered{Name: gobRegisterName(t), Type: x.use(t)})
				case "RegisterName":
					tv := info.Types[call.Args[0]]
					if tv.Value == nil || tv.Value.Kind() != constant.String {
						walkErr = fmt.Errorf("gob.RegisterName with a non-constant name at %s", x.plugin.Fset.Position(call.Pos()))
						return false
					}
					t := info.TypeOf(call.Args[1])
					out = append(out, Registered{Name: constant.StringVal(tv.Value), Type: x.use(t)})
				}
				return true
			})
			if walkErr != nil {
				return nil, walkErr
			}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no gob.Register calls found in the plugin package's init")
	}
	return out, nil
}

// gobRegisterName mirrors encoding/gob.Register: a named type T is "<import path>.<Name>";
// anything else, including *T (gob dereferences nothing, a documented quirk), is
// reflect.Type.String(), which qualifies named types by package name only. Type arguments of
// generic instances are always written with the full import path, as reflect does.
func gobRegisterName(t types.Type) string {
	t = types.Unalias(t)
	if n, ok := t.(*types.Named); ok {
		if n.Obj().Pkg() == nil {
			return n.Obj().Name()
		}
		return n.Obj().Pkg().Path() + "." + reflectName(n)
	}
	return reflectString(t)
}

func reflectName(n *types.Named) string {
	name := n.Obj().Name()
	if targs := n.TypeArgs(); targs != nil && targs.Len() > 0 {
		var parts []string
		for i := 0; i < targs.Len(); i++ {
			parts = append(parts, typeExpr(targs.At(i), func(p *types.Package) string { return p.Path() }))
		}
		name += "[" + strings.Join(parts, ",") + "]"
	}
	return name
}

func reflectString(t types.Type) string {
	switch t := types.Unalias(t).(type) {
	case *types.Named:
		if t.Obj().Pkg() == nil {
			return t.Obj().Name()
		}
		return t.Obj().Pkg().Name() + "." + reflectName(t)
	case *types.Pointer:
		return "*" + reflectString(t.Elem())
	case *types.Slice:
		return "[]" + reflectString(t.Elem())
	case *types.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), reflectString(t.Elem()))
	case *types.Map:
		return "map[" + reflectString(t.Key()) + "]" + reflectString(t.Elem())
	default:
		return typeExpr(t, shortQualifier)
	}
}

func shortQualifier(p *types.Package) string { return p.Name() }

// typeExpr prints a type in the schema's Go syntax: aliases resolved (any → interface {}),
// byte/rune as uint8/int32, packages qualified by qual.
func typeExpr(t types.Type, qual func(*types.Package) string) string {
	switch t := types.Unalias(t).(type) {
	case *types.Basic:
		return types.Typ[t.Kind()].Name()
	case *types.Named:
		name := t.Obj().Name()
		if t.Obj().Pkg() != nil {
			name = qual(t.Obj().Pkg()) + "." + name
		}
		if targs := t.TypeArgs(); targs != nil && targs.Len() > 0 {
			var parts []string
			for i := 0; i < targs.Len(); i++ {
				parts = append(parts, typeExpr(targs.At(i), qual))
			}
			name += "[" + strings.Join(parts, ",") + "]"
		}
		return name
	case *types.Pointer:
		return "*" + typeExpr(t.Elem(), qual)
	case *types.Slice:
		return "[]" + typeExpr(t.Elem(), qual)
	case *types.Array:
		return fmt.Sprintf("[%d]%s", t.Len(), typeExpr(t.Elem(), qual))
	case *types.Map:
		return "map[" + typeExpr(t.Key(), qual) + "]" + typeExpr(t.Elem(), qual)
	case *types.Interface:
		if t.Empty() {
			return "interface {}"
		}
		var ms []string
		for i := 0; i < t.NumMethods(); i++ {
			ms = append(ms, t.Method(i).Name()+strings.TrimPrefix(types.TypeString(t.Method(i).Type(), qual), "func"))
		}
		return "interface { " + strings.Join(ms, "; ") + " }"
	case *types.Struct:
		if t.NumFields() == 0 {
			return "struct {}"
		}
		var fs []string
		for i := 0; i < t.NumFields(); i++ {
			f := t.Field(i)
			if f.Embedded() {
				fs = append(fs, typeExpr(f.Type(), qual))
			} else {
				fs = append(fs, f.Name()+" "+typeExpr(f.Type(), qual))
			}
		}
		return "struct { " + strings.Join(fs, "; ") + " }"
	default:
		return types.TypeString(t, qual)
	}
}

// use prints t and records every named type reachable from it.
func (x *extractor) use(t types.Type) string {
	x.walk(t)
	return typeExpr(t, shortQualifier)
}

func (x *extractor) walk(t types.Type) {
	switch t := types.Unalias(t).(type) {
	case *types.Pointer:
		x.walk(t.Elem())
	case *types.Slice:
		x.walk(t.Elem())
	case *types.Array:
		x.walk(t.Elem())
	case *types.Map:
		x.walk(t.Key())
		x.walk(t.Elem())
	case *types.Struct:
		for i := 0; i < t.NumFields(); i++ {
			if f := t.Field(i); gobVisible(f) {
				x.walk(f.Type())
			}
		}
	case *types.Named:
		x.named(t)
	}
}

// gobVisible reports whether gob sends the field: exported, and not a chan or func.
func gobVisible(f *types.Var) bool {
	if !f.Exported() {
		return false
	}
	switch f.Type().Underlying().(type) {
	case *types.Chan, *types.Signature:
		return false
	}
	return true
}

func (x *extractor) named(n *types.Named) {
	if n.Obj().Pkg() == nil {
		return // error and other universe types
	}
	key := typeExpr(n, shortQualifier)
	path := n.Obj().Pkg().Path()
	if prev, ok := x.typePaths[key]; ok {
		if prev != path {
			if x.err == nil {
				x.err = fmt.Errorf("type name %s used by both %s and %s; the schema's short names would be ambiguous", key, prev, path)
			}
		}
		return
	}
	x.typePaths[key] = path
	docKey := path + "." + n.Obj().Name()
	ty := &Type{Package: path, Doc: x.typeDocs[docKey], Gob: gobKind(n)}
	x.types[key] = ty
	switch u := n.Underlying().(type) {
	case *types.Struct:
		ty.Kind = "struct"
		ty.Fields = []Field{}
		if ty.Gob != nil {
			return // sent as opaque bytes; the fields never reach the wire
		}
		fdocs := x.fieldDocs[docKey]
		for i := 0; i < u.NumFields(); i++ {
			f := u.Field(i)
			if !gobVisible(f) {
				continue
			}
			ty.Fields = append(ty.Fields, Field{
				Name:     f.Name(),
				Type:     x.use(f.Type()),
				JSON:     jsonName(u.Tag(i)),
				Embedded: f.Embedded(),
				Doc:      fdocs[f.Name()],
			})
		}
	case *types.Interface:
		ty.Kind = "interface"
		ty.Methods = []string{}
		for i := 0; i < u.NumMethods(); i++ {
			ty.Methods = append(ty.Methods, u.Method(i).Name())
		}
		sort.Strings(ty.Methods)
	default:
		ty.Kind = "named"
		ty.Underlying = typeExpr(u, shortQualifier)
		if ty.Gob == nil {
			x.walk(u)
		}
	}
}

func jsonName(tag string) string {
	v, ok := reflect.StructTag(tag).Lookup("json")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(v, ",")
	return name
}

// gobKind applies encoding/gob's rule: GobEncoder wins over BinaryMarshaler, checked on the
// type and on its pointer (TextMarshaler is deliberately not used by gob).
func gobKind(n *types.Named) *string {
	for _, c := range []struct{ method, kind string }{{"GobEncode", "GobEncoder"}, {"MarshalBinary", "BinaryMarshaler"}} {
		for _, t := range []types.Type{n, types.NewPointer(n)} {
			ms := types.NewMethodSet(t)
			for i := 0; i < ms.Len(); i++ {
				fn, ok := ms.At(i).Obj().(*types.Func)
				if !ok || fn.Name() != c.method {
					continue
				}
				sig := fn.Type().(*types.Signature)
				if sig.Params().Len() == 0 && sig.Results().Len() == 2 {
					k := c.kind
					return &k
				}
			}
		}
	}
	return nil
}

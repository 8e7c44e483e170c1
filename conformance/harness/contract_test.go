package main

import (
	"reflect"
	"slices"
	"strconv"
	"testing"
)

// Against the pinned module the contract and reflection must agree on every API method, hook
// and struct field order: that is why the fidelity sweep numbers fields by Go ordinal there and
// only consults the contract for an older module (the version matrix).
func TestContractMatchesPinnedModule(t *testing.T) {
	ct, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	if v := serverPublicVersion(); v != ct.version {
		t.Fatalf("built against server/public %s, the contract is %s", v, ct.version)
	}
	for _, set := range []struct {
		iface   reflect.Type
		methods []contractMethod
	}{{apiInterface, ct.api}, {hooksInterface, ct.hooks}} {
		var names []string
		for _, m := range set.methods {
			names = append(names, m.Name)
		}
		var want []string
		for i := range set.iface.NumMethod() {
			want = append(want, set.iface.Method(i).Name)
		}
		slices.Sort(names)
		if !slices.Equal(names, want) {
			t.Errorf("%s: contract methods differ from the module's", set.iface)
		}
	}
	reach := map[reflect.Type]bool{}
	for _, iface := range []reflect.Type{apiInterface, hooksInterface} {
		for i := range iface.NumMethod() {
			(&coverage{reachable: reach}).reach(iface.Method(i).Type)
		}
	}
	checked := 0
	for st := range reach {
		names, ok := ct.fields[st.PkgPath()+"."+st.Name()]
		if !ok {
			continue // anonymous or not named by the contract
		}
		var goNames []string
		for _, i := range wireFields(st) {
			goNames = append(goNames, st.Field(i).Name)
		}
		if !slices.Equal(goNames, names) {
			t.Errorf("%s: contract fields %v, Go wire fields %v", st, names, goNames)
		}
		checked++
	}
	if checked < 100 {
		t.Errorf("only %d struct types compared; the contract's type keys do not match", checked)
	}
}

type layoutProbe struct {
	Kept    string
	Removed int // in the "older" struct only
	Renamed bool
	hidden  string // unexported: never on the wire
}

// An older struct against a newer contract: fields take the contract's numbers, a field the
// contract lacks is marked, and contract fields the struct lacks are listed.
func TestFieldSuffixesByContract(t *testing.T) {
	typ := reflect.TypeFor[layoutProbe]()
	saved := contractFields
	contractFields = map[string][]string{typ.PkgPath() + ".layoutProbe": {"Added", "Kept", "Renamed", "Later"}}
	fieldLayouts.Delete(typ)
	defer func() {
		contractFields = saved
		fieldLayouts.Delete(typ)
	}()
	l := fieldSuffixes(typ)
	if want := []string{".2", ".?Removed", ".3"}; !slices.Equal(l.suffix, want) {
		t.Errorf("suffixes %v, want %v", l.suffix, want)
	}
	if want := []int{1, 4}; !slices.Equal(l.missing, want) {
		t.Errorf("missing %v, want %v", l.missing, want)
	}

	var f filler
	v := f.value(typ, "P", 0)
	flat := map[string]string{}
	flatten(v, "P", flat)
	want := map[string]string{"P.2": "s:P.2", "P.?Removed": "n:" + strconv.FormatInt(fillInt64("P.?Removed"), 10), "P.3": "b:true"}
	if d := leafDiff(flat, want); len(d) > 0 {
		t.Errorf("flatten: %v", d)
	}
	if want := []string{"P.1", "P.4"}; !slices.Equal(f.contractOnly, want) {
		t.Errorf("contractOnly %v, want %v", f.contractOnly, want)
	}

	var c fidelityCase
	// The plugin filled P.1 and P.4 (contract fields Go lacks) and could not fill P.?Removed.
	c.sentDiff(map[string]string{"P.1": "s:P.1", "P.4.2": "s:x", "P.2": "s:P.2", "P.3": "b:true"}, flat, &f)
	if len(c.failures) > 0 {
		t.Errorf("sentDiff: %v", c.failures)
	}
	c.sentDiff(map[string]string{"P.2": "s:P.2"}, flat, &f)
	if len(c.failures) != 1 {
		t.Errorf("sentDiff missed the absent P.3: %v", c.failures)
	}
	if !c.uncarried["Removed"] {
		t.Errorf("uncarried fields %v, want Removed", c.uncarried)
	}
}

func TestUnderAny(t *testing.T) {
	prefixes := []string{"M.in.2.22"}
	for path, want := range map[string]bool{
		"M.in.2.22": true, "M.in.2.22.1": true, "M.in.2.22[0]": true, "M.in.2.22{k0}": true,
		"M.in.2.221": false, "M.in.2.2": false,
	} {
		if got := underAny(path, prefixes); got != want {
			t.Errorf("underAny(%q) = %v, want %v", path, got, want)
		}
	}
}

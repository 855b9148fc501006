package gen

import (
	"fmt"
	"go/types"
	"reflect"
	"slices"
	"strings"
)

// This file is the serializability check: every argument and result of a task must
// survive a JSON round trip through encoding/json, because that is how it travels in the
// task envelope and is stored as a result. A type that would silently lose data (an
// unexported field, a marshaler without its unmarshaler, fields that tie for a JSON name,
// a marshaler promoted from an embedded field over the struct's other fields) is an
// error, and so is a type that cannot be data at all (a func, a channel, an interface).

// serialCheck walks a type and collects what cannot round-trip.
type serialCheck struct {
	pkg       *types.Package // types are printed relative to it
	stateHint string         // appended to problems that look like worker state
	problems  []string
	stack     []types.Type // named types being walked, to stop at recursion
}

// checkArgument returns the problems of an argument's type; name is the argument's JSON
// name, which the path starts from, and named tells whether the parameter has that name in
// the source, so that the suggestion to make it a lifespan parameter can name it.
func checkArgument(pkg *types.Package, name string, named bool, t types.Type) []string {
	hint := fmt.Sprintf("make it a lifespan parameter (lifespan=%s) if it is worker state, not data", name)
	if !named {
		hint = "if it is worker state, not data, name the parameter and list it in lifespan="
	}
	c := &serialCheck{pkg: pkg, stateHint: hint}
	c.check(t, name, false)
	for i, p := range c.problems {
		c.problems[i] = "argument " + name + ": " + p
	}
	return c.problems
}

// checkResult returns the problems of a task's result type R.
func checkResult(pkg *types.Package, t types.Type) []string {
	c := &serialCheck{
		pkg:       pkg,
		stateHint: "a task result is stored as JSON, so it must be data",
	}
	c.check(t, "result", false)
	for i, p := range c.problems {
		c.problems[i] = "result " + c.typeString(t) + ": " + p
	}
	return c.problems
}

func (c *serialCheck) typeString(t types.Type) string {
	return typeString(t, c.pkg)
}

// typeString writes t as Go source in package pkg would: pkg's own types unqualified,
// other packages' types qualified by package name.
func typeString(t types.Type, pkg *types.Package) string {
	return types.TypeString(t, func(p *types.Package) string {
		if p == pkg {
			return ""
		}
		return p.Name()
	})
}

func (c *serialCheck) problem(format string, args ...any) {
	c.problems = append(c.problems, fmt.Sprintf(format, args...))
}

func (c *serialCheck) onStack(t types.Type) bool {
	for _, s := range c.stack {
		if types.Identical(s, t) {
			return true
		}
	}
	return false
}

// check walks t, found at path. addressable tells whether encoding/json will see the
// value as addressable when marshaling, which decides whether pointer-receiver
// MarshalJSON/MarshalText methods are called.
func (c *serialCheck) check(t types.Type, path string, addressable bool) {
	t = types.Unalias(t)
	if c.onStack(t) {
		return
	}
	if b, ok := t.Underlying().(*types.Basic); ok && b.Kind() == types.Invalid {
		return // a type error, already reported while loading
	}
	if isNamed(t, taskPkgPath, "Caller") {
		// It would fail below for its Secret, which marshals redacted on purpose; the
		// real mistake is carrying an identity as data.
		c.problem("%s is a task.Caller; a caller travels only as the task's own task.Caller parameter, signed with the task, never inside an argument or result", path)
		return
	}
	if p, ok := t.(*types.Pointer); ok {
		c.check(p.Elem(), path, true)
		return
	}
	if _, ok := t.Underlying().(*types.Interface); ok {
		c.problem("%s is an interface (%s); %s", path, c.typeString(t), c.stateHint)
		return
	}
	marshal, unmarshal := codecs(t, addressable)
	if marshal != codecNone || unmarshal != codecNone {
		if marshal != unmarshal {
			c.codecProblem(t, path, addressable, marshal, unmarshal)
		} else {
			c.checkPromotedCodec(t, path, addressable, marshal)
		}
		return
	}
	if named, ok := t.(*types.Named); ok {
		c.stack = append(c.stack, named)
		defer func() { c.stack = c.stack[:len(c.stack)-1] }()
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		switch {
		case u.Kind() == types.UnsafePointer:
			c.problem("%s is an unsafe.Pointer; %s", path, c.stateHint)
		case u.Info()&types.IsComplex != 0:
			c.problem("%s is a complex number (%s); encoding/json cannot encode complex numbers", path, c.typeString(t))
		}
	case *types.Pointer:
		c.check(u.Elem(), path, true)
	case *types.Slice:
		if isByteSlice(u) {
			return
		}
		c.check(u.Elem(), path+"[]", true)
	case *types.Array:
		c.check(u.Elem(), path+"[]", addressable)
	case *types.Map:
		c.checkMapKey(u.Key(), path)
		c.check(u.Elem(), path+"[]", false)
	case *types.Struct:
		if named, ok := t.(*types.Named); ok && named.Obj().Pkg() != nil && named.Obj().Pkg() != c.pkg && hasUnexportedFields(u) {
			// The fields of another package's type cannot be exported or tagged from
			// here, so one problem for the type instead of one per field. Such types
			// (a *sql.DB, a client) are mostly worker state given as an argument.
			c.problem("%s holds %s, whose unexported fields encoding/json would silently drop; %s", path, c.typeString(t), c.stateHint)
			return
		}
		c.checkStruct(u, path, addressable)
		c.checkNameConflicts(t, path)
	case *types.Signature:
		c.problem("%s is a func; %s", path, c.stateHint)
	case *types.Chan:
		c.problem("%s is a channel; %s", path, c.stateHint)
	case *types.TypeParam:
		c.problem("%s has the type parameter %s; a task's types must be concrete", path, u.Obj().Name())
	default:
		c.problem("%s has type %s, which cannot be serialized", path, c.typeString(t))
	}
}

// hasUnexportedFields reports whether encoding/json would drop a field of st: an unexported
// field, not embedded (an embedded struct's exported fields are promoted) and not tagged
// `json:"-"`.
func hasUnexportedFields(st *types.Struct) bool {
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		if f.Exported() || f.Embedded() || reflect.StructTag(st.Tag(i)).Get("json") == "-" {
			continue
		}
		return true
	}
	return false
}

// codecProblem explains a type whose marshaling and unmarshaling do not match.
func (c *serialCheck) codecProblem(t types.Type, path string, addressable bool, marshal, unmarshal codec) {
	name := c.typeString(t)
	if !addressable {
		if m, _ := codecs(t, true); m == unmarshal {
			c.problem("%s is %s, whose %s method has a pointer receiver, which encoding/json does not call here (the value is not addressable); use *%s, or declare the method on the value receiver",
				path, name, marshalMethod(m), name)
			return
		}
	}
	switch {
	case unmarshal == codecNone:
		c.problem("%s is %s, which implements %s but not %s, so it would not survive the round trip",
			path, name, marshalIface(marshal), unmarshalIface(marshal))
	case marshal == codecNone:
		c.problem("%s is %s, which implements %s but not %s, so it would not survive the round trip",
			path, name, unmarshalIface(unmarshal), marshalIface(unmarshal))
	default:
		c.problem("%s is %s, which is marshaled with %s but unmarshaled with %s, so it would not survive the round trip; implement both methods of one pair",
			path, name, marshalMethod(marshal), unmarshalMethod(unmarshal))
	}
}

func marshalIface(k codec) string {
	if k == codecJSON {
		return "json.Marshaler"
	}
	return "encoding.TextMarshaler"
}

func unmarshalIface(k codec) string {
	if k == codecJSON {
		return "json.Unmarshaler"
	}
	return "encoding.TextUnmarshaler"
}

func marshalMethod(k codec) string {
	if k == codecJSON {
		return "MarshalJSON"
	}
	return "MarshalText"
}

func unmarshalMethod(k codec) string {
	if k == codecJSON {
		return "UnmarshalJSON"
	}
	return "UnmarshalText"
}

// checkMapKey accepts the map keys encoding/json round-trips: strings, integers, and
// types implementing encoding.TextMarshaler and encoding.TextUnmarshaler.
func (c *serialCheck) checkMapKey(key types.Type, path string) {
	key = types.Unalias(key)
	if b, ok := key.Underlying().(*types.Basic); ok {
		if b.Kind() == types.Invalid || b.Info()&types.IsString != 0 {
			return
		}
	}
	// Map keys are never addressable when marshaling.
	tm := implements(key, textMarshaler, false)
	tu := implements(key, textUnmarshaler, true)
	if tm && tu {
		return
	}
	if b, ok := key.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 && !tm && !tu {
		return
	}
	c.problem("%s has map key type %s; map keys must be strings, integers, or implement encoding.TextMarshaler and encoding.TextUnmarshaler",
		path, c.typeString(key))
}

// checkStruct checks every field encoding/json would write, and reports the fields it
// would silently drop: unexported ones (unless tagged json:"-", which says so on purpose).
func (c *serialCheck) checkStruct(st *types.Struct, path string, addressable bool) {
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		tag, hasTag := reflect.StructTag(st.Tag(i)).Lookup("json")
		if hasTag && tag == "-" {
			continue
		}
		name, _ := parseJSONTag(tag)
		fpath := path + "." + f.Name()
		if f.Embedded() && (!isValidJSONTag(name)) {
			ft := types.Unalias(f.Type())
			ptr := false
			if p, ok := ft.(*types.Pointer); ok {
				ft, ptr = types.Unalias(p.Elem()), true
			}
			if est, ok := ft.Underlying().(*types.Struct); ok {
				// encoding/json promotes the fields of an embedded struct.
				if ptr && !f.Exported() {
					c.problem("%s is an embedded pointer to the unexported struct type %s, which encoding/json cannot decode into; embed it by value or export the type",
						fpath, c.typeString(ft))
					continue
				}
				if c.onStack(ft) {
					continue
				}
				c.stack = append(c.stack, ft)
				c.checkStruct(est, fpath, addressable || ptr)
				c.stack = c.stack[:len(c.stack)-1]
				continue
			}
		}
		if !f.Exported() {
			c.problem("%s is an unexported field, which encoding/json would silently drop; export it, or tag it `json:\"-\"` to leave it out on purpose", fpath)
			continue
		}
		c.check(f.Type(), fpath, addressable)
	}
}

// checkNameConflicts reports fields that encoding/json drops because they tie for one
// JSON name: same depth, and all tagged or none. It drops them silently, all of them.
func (c *serialCheck) checkNameConflicts(t types.Type, path string) {
	_, conflicts := typeFields(t)
	for _, tied := range conflicts {
		var paths []string
		for _, f := range tied {
			if p := fieldPath(t, f.index, path); !slices.Contains(paths, p) {
				paths = append(paths, p)
			}
		}
		if len(paths) == 1 {
			c.problem("%s is promoted through two embedded fields of the same type at the same depth, so encoding/json would silently drop it; embed that type only once",
				paths[0])
			continue
		}
		all := "all of them"
		if len(paths) == 2 {
			all = "both"
		}
		c.problem("%s have the same JSON name %q at the same depth, so encoding/json would silently drop %s; give each its own name with a json tag",
			joinAnd(paths), tied[0].name, all)
	}
}

// checkPromotedCodec reports a struct whose marshaling methods of kind k come from an
// embedded field, such as a struct embedding time.Time: encoding/json calls them for the
// whole struct, so the struct's other fields never reach the wire, or never come back.
func (c *serialCheck) checkPromotedCodec(t types.Type, path string, addressable bool, k codec) {
	if _, ok := t.Underlying().(*types.Struct); !ok {
		return
	}
	for _, m := range []struct {
		name        string
		addressable bool
		what        string
	}{
		{marshalMethod(k), addressable, "encode"},
		{unmarshalMethod(k), true, "decode"},
	} {
		obj, index, _ := types.LookupFieldOrMethod(t, m.addressable, c.pkg, m.name)
		if obj == nil || len(index) < 2 {
			continue // t's own method
		}
		embedded := index[:len(index)-1]
		var dropped []string
		for _, f := range jsonFields(t) {
			if len(f.index) < len(embedded) || !slices.Equal(f.index[:len(embedded)], embedded) {
				dropped = append(dropped, fieldPath(t, f.index, path))
			}
		}
		if len(dropped) == 0 {
			continue
		}
		name := c.typeString(t)
		c.problem("%s is %s, which gets %s from its embedded %s, so encoding/json would %s only that and silently drop %s; make the embedded field a named field, or declare %s and %s on %s",
			path, name, m.name, c.typeString(fieldAt(t, embedded).Type()), m.what, joinAnd(dropped), marshalMethod(k), unmarshalMethod(k), name)
		return
	}
}

// fieldAt returns the field of struct type t at an index path through embedded fields.
func fieldAt(t types.Type, index []int) *types.Var {
	var f *types.Var
	for _, i := range index {
		t = types.Unalias(t)
		if p, ok := t.Underlying().(*types.Pointer); ok {
			t = p.Elem()
		}
		f = t.Underlying().(*types.Struct).Field(i)
		t = f.Type()
	}
	return f
}

// fieldPath writes the field of struct type t at an index path as path.A.B.
func fieldPath(t types.Type, index []int, path string) string {
	for n := range index {
		path += "." + fieldAt(t, index[:n+1]).Name()
	}
	return path
}

// joinAnd joins words as "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

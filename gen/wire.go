package gen

import (
	"cmp"
	"go/token"
	"go/types"
	"reflect"
	"slices"
	"strings"
	"unicode"

	"golang.org/x/tools/go/types/typeutil"
)

// This file models how encoding/json puts a Go type on the wire, on go/types instead of
// reflect: which methods it calls (codec) and which struct fields it writes (jsonFields).
// The serializability check (check.go) and the schema fingerprint (schema.go) share it,
// so that what is checked is exactly what is fingerprinted.

// codec is how encoding/json handles a type itself, before looking at its structure.
type codec int

const (
	codecNone codec = iota // encoded by structure
	codecJSON              // MarshalJSON / UnmarshalJSON
	codecText              // MarshalText / UnmarshalText, as a JSON string
)

func (c codec) String() string {
	switch c {
	case codecJSON:
		return "json"
	case codecText:
		return "text"
	}
	return "none"
}

var (
	byteSliceType = types.NewSlice(types.Typ[types.Byte])
	errorType     = types.Universe.Lookup("error").Type()

	jsonMarshaler   = methodInterface("MarshalJSON", nil, []types.Type{byteSliceType, errorType})
	jsonUnmarshaler = methodInterface("UnmarshalJSON", []types.Type{byteSliceType}, []types.Type{errorType})
	textMarshaler   = methodInterface("MarshalText", nil, []types.Type{byteSliceType, errorType})
	textUnmarshaler = methodInterface("UnmarshalText", []types.Type{byteSliceType}, []types.Type{errorType})
)

// methodInterface builds interface{ name(params) results }, the shape of the interfaces
// of encoding/json and encoding, without loading those packages.
func methodInterface(name string, params, results []types.Type) *types.Interface {
	tuple := func(ts []types.Type) *types.Tuple {
		vars := make([]*types.Var, len(ts))
		for i, t := range ts {
			vars[i] = types.NewParam(token.NoPos, nil, "", t)
		}
		return types.NewTuple(vars...)
	}
	sig := types.NewSignatureType(nil, nil, nil, tuple(params), tuple(results), false)
	iface := types.NewInterfaceType([]*types.Func{types.NewFunc(token.NoPos, nil, name, sig)}, nil)
	return iface.Complete()
}

// implements reports whether t, or *t when addressable, has the method of iface.
func implements(t types.Type, iface *types.Interface, addressable bool) bool {
	if types.Implements(t, iface) {
		return true
	}
	if _, isPtr := t.Underlying().(*types.Pointer); isPtr || !addressable {
		return false
	}
	return types.Implements(types.NewPointer(t), iface)
}

// codecs returns how encoding/json marshals a value of type t (its own methods, or
// structure) and how it unmarshals one. Marshal sees pointer-receiver methods only on
// addressable values (struct fields reached through a pointer, slice elements); unmarshal
// always works on addressable values. The two must agree for a value to round-trip.
func codecs(t types.Type, addressable bool) (marshal, unmarshal codec) {
	switch {
	case implements(t, jsonMarshaler, addressable):
		marshal = codecJSON
	case implements(t, textMarshaler, addressable):
		marshal = codecText
	}
	switch {
	case implements(t, jsonUnmarshaler, true):
		unmarshal = codecJSON
	case implements(t, textUnmarshaler, true):
		unmarshal = codecText
	}
	return marshal, unmarshal
}

// isNamed reports whether t is the named type path.name.
func isNamed(t types.Type, path, name string) bool {
	n, ok := types.Unalias(t).(*types.Named)
	if !ok {
		return false
	}
	obj := n.Obj()
	return obj.Pkg() != nil && obj.Pkg().Path() == path && obj.Name() == name
}

// isTime reports whether t is time.Time.
func isTime(t types.Type) bool { return isNamed(t, "time", "Time") }

// isByteSlice reports whether encoding/json writes t, a slice, as a base64 string: its
// element has kind uint8 and no marshaling methods of its own.
func isByteSlice(s *types.Slice) bool {
	b, ok := s.Elem().Underlying().(*types.Basic)
	if !ok || b.Kind() != types.Uint8 {
		return false
	}
	ptr := types.NewPointer(s.Elem())
	return !types.Implements(ptr, jsonMarshaler) && !types.Implements(ptr, textMarshaler)
}

// jsonField is a struct field as encoding/json writes it.
type jsonField struct {
	name      string     // the JSON object key
	tagged    bool       // the name came from a json tag
	index     []int      // field index path through embedded structs
	typ       types.Type // the field's type
	omitEmpty bool
	omitZero  bool
	quoted    bool // ,string applies to this field
	// viaPointer is true when the field is promoted through an embedded pointer, which
	// makes it addressable when marshaling.
	viaPointer bool
}

// jsonFields returns the fields encoding/json writes for t, a struct type, in encoding order, following
// encoding/json's typeFields: exported fields, fields of embedded structs promoted unless
// tagged, json:"-" skipped, names from tags, and Go's rules for hidden and conflicting
// embedded fields, except that a tagged name wins over an untagged one at the same depth.
func jsonFields(t types.Type) []jsonField {
	fields, _ := typeFields(t)
	return fields
}

// typeFields returns jsonFields(t) and the conflicts encoding/json resolves by dropping
// every field of a name: each conflict lists the fields that tie for it (same depth, all
// tagged or none), in index order. A field listed twice with the same index is promoted
// through two embedded fields of one type at the same depth.
func typeFields(t types.Type) (fields []jsonField, conflicts [][]jsonField) {
	st := t.Underlying().(*types.Struct)
	type queued struct {
		st    *types.Struct
		key   types.Type // the embedded type, for the visited and count maps
		index []int
		ptr   bool // reached through an embedded pointer
	}
	visited, count, nextCount := new(typeutil.Map), new(typeutil.Map), new(typeutil.Map)
	var current []queued
	next := []queued{{st: st, key: t}}
	for len(next) > 0 {
		current, next = next, nil
		count, nextCount = nextCount, new(typeutil.Map)
		for _, q := range current {
			if visited.At(q.key) != nil {
				continue
			}
			visited.Set(q.key, true)
			for i := 0; i < q.st.NumFields(); i++ {
				sf := q.st.Field(i)
				tag, hasTag := reflect.StructTag(q.st.Tag(i)).Lookup("json")
				if sf.Embedded() {
					t := types.Unalias(sf.Type())
					if p, ok := t.(*types.Pointer); ok {
						t = types.Unalias(p.Elem())
					}
					if _, isStruct := t.Underlying().(*types.Struct); !sf.Exported() && !isStruct {
						continue // embedded fields of unexported non-struct types are ignored
					}
				} else if !sf.Exported() {
					continue
				}
				if hasTag && tag == "-" {
					continue
				}
				name, opts := parseJSONTag(tag)
				if !isValidJSONTag(name) {
					name = ""
				}
				index := append(append([]int(nil), q.index...), i)
				ft := types.Unalias(sf.Type())
				ptr := q.ptr
				if p, ok := ft.(*types.Pointer); ok {
					ft = types.Unalias(p.Elem()) // follow unnamed pointers
					ptr = true
				}
				quoted := false
				if opts.contains("string") {
					if b, ok := ft.Underlying().(*types.Basic); ok && b.Info()&(types.IsBoolean|types.IsInteger|types.IsFloat|types.IsString) != 0 {
						quoted = true
					}
				}
				embeddedStruct, _ := ft.Underlying().(*types.Struct)
				if name != "" || !sf.Embedded() || embeddedStruct == nil {
					tagged := name != ""
					if name == "" {
						name = sf.Name()
					}
					f := jsonField{
						name:      name,
						tagged:    tagged,
						index:     index,
						typ:       sf.Type(),
						omitEmpty: opts.contains("omitempty"),
						omitZero:  opts.contains("omitzero"),
						quoted:    quoted,

						viaPointer: q.ptr,
					}
					fields = append(fields, f)
					if n, _ := count.At(q.key).(int); n > 1 {
						// Several instances at this depth annihilate each other below.
						fields = append(fields, f)
					}
					continue
				}
				n, _ := nextCount.At(ft).(int)
				nextCount.Set(ft, n+1)
				if n == 0 {
					next = append(next, queued{st: embeddedStruct, key: ft, index: index, ptr: ptr})
				}
			}
		}
	}
	slices.SortStableFunc(fields, func(a, b jsonField) int {
		if c := strings.Compare(a.name, b.name); c != 0 {
			return c
		}
		if c := cmp.Compare(len(a.index), len(b.index)); c != 0 {
			return c
		}
		if a.tagged != b.tagged {
			if a.tagged {
				return -1
			}
			return 1
		}
		return slices.Compare(a.index, b.index)
	})
	out := fields[:0]
	for advance, i := 0, 0; i < len(fields); i += advance {
		for advance = 1; i+advance < len(fields); advance++ {
			if fields[i+advance].name != fields[i].name {
				break
			}
		}
		if advance == 1 {
			out = append(out, fields[i])
			continue
		}
		group := fields[i : i+advance]
		if len(group[0].index) == len(group[1].index) && group[0].tagged == group[1].tagged {
			// Ambiguous: encoding/json drops the name altogether.
			tied := 2
			for tied < len(group) && len(group[tied].index) == len(group[0].index) && group[tied].tagged == group[0].tagged {
				tied++
			}
			conflicts = append(conflicts, slices.Clone(group[:tied]))
			continue
		}
		out = append(out, group[0])
	}
	slices.SortFunc(out, func(a, b jsonField) int { return slices.Compare(a.index, b.index) })
	return out, conflicts
}

// jsonTagOptions are the comma-separated options after a json tag's name.
type jsonTagOptions string

func parseJSONTag(tag string) (string, jsonTagOptions) {
	name, opts, _ := strings.Cut(tag, ",")
	return name, jsonTagOptions(opts)
}

func (o jsonTagOptions) contains(option string) bool {
	for _, s := range strings.Split(string(o), ",") {
		if s == option {
			return true
		}
	}
	return false
}

// isValidJSONTag is encoding/json's check of a tag name.
func isValidJSONTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

package gen

import (
	"fmt"
	"go/types"

	"github.com/taskgen/taskgen/internal/wireschema"
	"golang.org/x/tools/go/types/typeutil"
)

// schemaField is one top-level argument: its JSON name and type.
type schemaField struct {
	name string
	typ  types.Type
}

// argsWire returns the Def.Wire of an argument list: the canonical description (package
// internal/wireschema has the grammar) of the FArgs struct as encoding/json writes it.
// Def.Schema is its wireschema.Fingerprint.
//
// Every generated task.Def carries both. A worker that gets an envelope of another
// fingerprint than its own compares the two descriptions (wireschema.Compatible), so that
// a rolling deploy can change arguments compatibly, and refuses an incompatible one
// (ErrSchemaMismatch) instead of decoding garbage; taskgen -check -against compares them
// in CI, before the deploy.
//
// The description is built from the Go types by these rules:
//
//   - FArgs is an object whose fields are the task's arguments, named by their JSON names
//     (the parameter names). The canonical form sorts fields by name, so reordering
//     parameters or struct fields changes neither Wire nor Schema.
//   - Named types are reduced to their underlying type: renaming a Go type, or moving it,
//     changes nothing. The exceptions are time.Time, which is "time", and types with
//     their own encoding (json.Marshaler+json.Unmarshaler or
//     encoding.TextMarshaler+encoding.TextUnmarshaler), which are "marshaler(path.Name)"
//     because their wire form is whatever their methods write. (time.Duration is a named
//     int64 and so is "int64".)
//   - Basic kinds are named by kind, aliases resolved: byte is "uint8", rune is "int32".
//   - []byte (a slice of a uint8 kind without marshaling methods) is "bytes", the base64
//     string encoding/json writes; other slices and arrays describe their elements.
//   - Structs are described field by field as encoding/json writes them: exported fields
//     only, json:"-" skipped, names taken from json tags, embedded structs flattened with
//     encoding/json's precedence rules, and the omitempty, omitzero and string options
//     recorded, since each changes what is on the wire.
//   - A named type met again inside its own description is "rec(N)", N counting the
//     enclosing composites (objects, pointers, slices, arrays, maps) outwards from 1 to
//     the type's own description, so recursive types are finite and name-independent.
//
// So Wire changes exactly when the wire shape does: a parameter or JSON field renamed,
// added or removed, a json option changed, or a type changed anywhere inside. Renaming
// the Go function, a Go type of the same shape, a local variable, reordering parameters
// or fields, or editing comments leaves it unchanged.
//
// cache, when not nil, keeps the description of every argument type (types.Type →
// *wireschema.Type): the same types recur across the tasks of a package. A top-level
// type's description depends on the type alone: the describer starts with nothing
// enclosing it, and rec(N) counts are relative, so the description fits at any depth.
func argsWire(fields []schemaField, cache *typeutil.Map) (string, error) {
	args := &wireschema.Type{Kind: wireschema.Object}
	for _, f := range fields {
		var typ *wireschema.Type
		if cache != nil {
			typ, _ = cache.At(f.typ).(*wireschema.Type)
		}
		if typ == nil {
			var d describer
			// The runtime marshals the argument struct by value: its fields are not
			// addressable, matching the serializability check.
			typ = d.describe(f.typ, false)
			if d.bad != nil {
				return "", fmt.Errorf("internal error: argument %s has a type taskgen cannot describe, %s, but it passed the serializability check", f.name, typeString(d.bad, nil))
			}
			if cache != nil {
				cache.Set(f.typ, typ)
			}
		}
		args.Fields = append(args.Fields, wireschema.Field{Name: f.name, Type: typ})
	}
	wire := args.String()
	// The runtime parses Wire when a task is registered: a description it refused would
	// fail every worker, so a generator bug must fail here instead.
	if _, err := wireschema.Parse(wire); err != nil {
		return "", fmt.Errorf("internal error: taskgen wrote a wire description it cannot parse (%v): %s", err, wire)
	}
	return wire, nil
}

// describer builds the description of one top-level type.
type describer struct {
	// named are the named types being described, innermost last.
	named []namedType
	// depth is the number of composites enclosing the description being built.
	depth int
	// bad is the first type met that has no description (an unserializable one).
	bad types.Type
}

// namedType is a named type being described and the depth of its description.
type namedType struct {
	t     types.Type
	depth int
}

func (d *describer) describe(t types.Type, addressable bool) *wireschema.Type {
	t = types.Unalias(t)
	for i := len(d.named) - 1; i >= 0; i-- {
		if types.Identical(d.named[i].t, t) {
			return &wireschema.Type{Kind: wireschema.Rec, Depth: d.depth - d.named[i].depth}
		}
	}
	if isTime(t) {
		return &wireschema.Type{Kind: wireschema.Time}
	}
	if p, ok := t.(*types.Pointer); ok {
		// encoding/json calls the pointee's methods through a pointer: describe it.
		return d.composite(func() *wireschema.Type {
			return &wireschema.Type{Kind: wireschema.Pointer, Elem: d.describe(p.Elem(), true)}
		})
	}
	if m, _ := codecs(t, addressable); m != codecNone {
		return &wireschema.Type{Kind: wireschema.Marshaler, Name: qualifiedTypeString(t)}
	}
	if named, ok := t.(*types.Named); ok {
		d.named = append(d.named, namedType{t: named, depth: d.depth})
		defer func() { d.named = d.named[:len(d.named)-1] }()
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return &wireschema.Type{Kind: wireschema.Basic, Name: types.Typ[u.Kind()].Name()}
	case *types.Pointer:
		return d.composite(func() *wireschema.Type {
			return &wireschema.Type{Kind: wireschema.Pointer, Elem: d.describe(u.Elem(), true)}
		})
	case *types.Slice:
		if isByteSlice(u) {
			return &wireschema.Type{Kind: wireschema.Bytes}
		}
		return d.composite(func() *wireschema.Type {
			return &wireschema.Type{Kind: wireschema.Slice, Elem: d.describe(u.Elem(), true)}
		})
	case *types.Array:
		return d.composite(func() *wireschema.Type {
			return &wireschema.Type{Kind: wireschema.Array, Len: u.Len(), Elem: d.describe(u.Elem(), addressable)}
		})
	case *types.Map:
		return d.composite(func() *wireschema.Type {
			return &wireschema.Type{Kind: wireschema.Map, Key: d.describeKey(u.Key()), Elem: d.describe(u.Elem(), false)}
		})
	case *types.Struct:
		return d.composite(func() *wireschema.Type {
			obj := &wireschema.Type{Kind: wireschema.Object}
			for _, f := range jsonFields(t) {
				obj.Fields = append(obj.Fields, wireschema.Field{
					Name:      f.name,
					OmitEmpty: f.omitEmpty,
					OmitZero:  f.omitZero,
					Quoted:    f.quoted,
					Type:      d.describe(f.typ, addressable || f.viaPointer),
				})
			}
			return obj
		})
	}
	return d.invalid(t)
}

// composite builds a description that encloses others, one level deeper.
func (d *describer) composite(build func() *wireschema.Type) *wireschema.Type {
	d.depth++
	defer func() { d.depth-- }()
	return build()
}

// describeKey describes a map key the way encoding/json writes it: string kinds as is,
// then text marshalers, then integers as decimal strings.
func (d *describer) describeKey(t types.Type) *wireschema.Type {
	t = types.Unalias(t)
	if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsString != 0 {
		return &wireschema.Type{Kind: wireschema.Basic, Name: "string"}
	}
	if implements(t, textMarshaler, false) {
		return &wireschema.Type{Kind: wireschema.Marshaler, Name: qualifiedTypeString(t)}
	}
	if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsInteger != 0 {
		return &wireschema.Type{Kind: wireschema.Basic, Name: types.Typ[b.Kind()].Name()}
	}
	return d.invalid(t)
}

// invalid records a type that has no description. The serializability check reports
// it, and no code is generated.
func (d *describer) invalid(t types.Type) *wireschema.Type {
	if d.bad == nil {
		d.bad = t
	}
	return &wireschema.Type{Kind: wireschema.Invalid}
}

// qualifiedTypeString writes t with the import paths of its packages: the name of a
// marshaler in a description.
func qualifiedTypeString(t types.Type) string {
	return types.TypeString(t, func(p *types.Package) string { return p.Path() })
}

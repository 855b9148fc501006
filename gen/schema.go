package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"go/types"
	"strconv"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// schemaVersion prefixes every fingerprint; it changes if the description format does.
const schemaVersion = "v1"

// schemaField is one top-level argument: its JSON name and type.
type schemaField struct {
	name string
	typ  types.Type
}

// schemaFingerprint returns the Def.Schema value for an argument list.
//
// Every generated task.Def carries Schema, a fingerprint of the wire shape of the task's
// arguments (the FArgs struct as encoding/json writes it). A worker refuses an envelope
// whose schema differs from the one it registered, so a submitter and a worker built from
// different argument lists fail loudly (ErrSchemaMismatch) instead of decoding garbage.
//
// The fingerprint is
//
//	"v1:" + the first 16 hex digits of SHA-256(description)
//
// where description is the canonical description of FArgs, built by this grammar:
//
//	desc    = object | basic | "bytes" | "time" | marshal
//	        | "*" desc | "[]" desc | "[" N "]" desc | "map[" key "]" desc | "rec(" N ")"
//	object  = "{" [ field { "," field } ] "}"
//	field   = quoted-json-name [ ",omitempty" ] [ ",omitzero" ] [ ",string" ] ":" desc
//	basic   = "bool" | "string" | "int" | "int8" | ... | "uint64" | "float32" | "float64"
//	marshal = "marshaler(" import-path "." TypeName [ type-args ] ")"
//	key     = "string" | integer basic | marshal
//
// and these rules:
//
//   - FArgs is an object whose fields are the task's arguments in parameter order, named
//     by their JSON names (the parameter names).
//   - Named types are reduced to their underlying type: renaming a Go type, or moving it,
//     keeps the fingerprint. The exceptions are time.Time, which is "time", and types
//     with their own encoding (json.Marshaler+json.Unmarshaler or
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
//   - A named type that refers back to itself is "rec(N)", N counting enclosing named
//     types outwards from 1, so recursive types are finite and name-independent.
//
// So the fingerprint changes exactly when the wire shape changes: a parameter or JSON
// field renamed, added, removed or reordered, or a type changed anywhere inside. Renaming
// the Go function, a Go type of the same shape, a local variable, or editing comments
// leaves it unchanged.
func schemaFingerprint(fields []schemaField) string {
	return schemaFingerprintCached(fields, nil)
}

// schemaFingerprintCached is schemaFingerprint with the descriptions of the argument
// types kept in cache (types.Type → string) when it is not nil.
func schemaFingerprintCached(fields []schemaField, cache *typeutil.Map) string {
	sum := sha256.Sum256([]byte(schemaDescriptionCached(fields, cache)))
	return schemaVersion + ":" + hex.EncodeToString(sum[:])[:16]
}

// schemaDescription returns the canonical description of an argument list, the text the
// fingerprint hashes.
func schemaDescription(fields []schemaField) string {
	return schemaDescriptionCached(fields, nil)
}

// schemaDescriptionCached is schemaDescription with the descriptions of the argument
// types kept in cache when it is not nil. A top-level type's description depends on the
// type alone: the describer starts with nothing on its stack.
func schemaDescriptionCached(fields []schemaField, cache *typeutil.Map) string {
	var d describer
	var b strings.Builder
	b.WriteString("{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.Quote(f.name))
		b.WriteString(":")
		// The runtime marshals the argument struct by value: its fields are not
		// addressable, matching the serializability check.
		if cache == nil {
			b.WriteString(d.describe(f.typ, false))
			continue
		}
		desc, ok := cache.At(f.typ).(string)
		if !ok {
			desc = d.describe(f.typ, false)
			cache.Set(f.typ, desc)
		}
		b.WriteString(desc)
	}
	b.WriteString("}")
	return b.String()
}

type describer struct {
	stack []types.Type // named types being described, innermost last
}

func (d *describer) describe(t types.Type, addressable bool) string {
	t = types.Unalias(t)
	for i := len(d.stack) - 1; i >= 0; i-- {
		if types.Identical(d.stack[i], t) {
			return "rec(" + strconv.Itoa(len(d.stack)-i) + ")"
		}
	}
	if isTime(t) {
		return "time"
	}
	if p, ok := t.(*types.Pointer); ok {
		// encoding/json calls the pointee's methods through a pointer: describe it.
		return "*" + d.describe(p.Elem(), true)
	}
	if m, _ := codecs(t, addressable); m != codecNone {
		return "marshaler(" + types.TypeString(t, func(p *types.Package) string { return p.Path() }) + ")"
	}
	if named, ok := t.(*types.Named); ok {
		d.stack = append(d.stack, named)
		defer func() { d.stack = d.stack[:len(d.stack)-1] }()
	}
	switch u := t.Underlying().(type) {
	case *types.Basic:
		return types.Typ[u.Kind()].Name()
	case *types.Pointer:
		return "*" + d.describe(u.Elem(), true)
	case *types.Slice:
		if isByteSlice(u) {
			return "bytes"
		}
		return "[]" + d.describe(u.Elem(), true)
	case *types.Array:
		return "[" + strconv.FormatInt(u.Len(), 10) + "]" + d.describe(u.Elem(), addressable)
	case *types.Map:
		return "map[" + d.describeKey(u.Key()) + "]" + d.describe(u.Elem(), false)
	case *types.Struct:
		var b strings.Builder
		b.WriteString("{")
		for i, f := range jsonFields(t) {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(strconv.Quote(f.name))
			if f.omitEmpty {
				b.WriteString(",omitempty")
			}
			if f.omitZero {
				b.WriteString(",omitzero")
			}
			if f.quoted {
				b.WriteString(",string")
			}
			b.WriteString(":")
			b.WriteString(d.describe(f.typ, addressable || f.viaPointer))
		}
		b.WriteString("}")
		return b.String()
	}
	// Not serializable; the check reports it and no code is generated.
	return "invalid(" + types.TypeString(t, func(p *types.Package) string { return p.Path() }) + ")"
}

// describeKey describes a map key the way encoding/json writes it: string kinds as is,
// then text marshalers, then integers as decimal strings.
func (d *describer) describeKey(t types.Type) string {
	t = types.Unalias(t)
	if b, ok := t.Underlying().(*types.Basic); ok && b.Info()&types.IsString != 0 {
		return "string"
	}
	if implements(t, textMarshaler, false) {
		return "marshaler(" + types.TypeString(t, func(p *types.Package) string { return p.Path() }) + ")"
	}
	if b, ok := t.Underlying().(*types.Basic); ok {
		return types.Typ[b.Kind()].Name()
	}
	return "invalid(" + types.TypeString(t, func(p *types.Package) string { return p.Path() }) + ")"
}

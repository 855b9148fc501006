package gen

import (
	"crypto/sha256"
	"encoding/hex"
	"go/types"
	"strconv"
	"strings"

	"golang.org/x/tools/go/types/typeutil"
)

// previousSchema returns the fingerprint taskgen gave an argument list before Def.Wire
// existed ("v1": SHA-256 of a description with fields in declaration order, recursion
// counted in enclosing named types). The generated Def carries it as PreviousSchema, and
// a worker runs envelopes of it as its own: tasks queued by producers of an older taskgen
// survive the upgrade of taskgen itself, when the workers are deployed before the
// producers. It is a migration aid: nothing else reads it, and it can go once no queue
// holds v1 envelopes.
//
// TestPreviousSchemaIsTheV1Fingerprint holds it to the fingerprints of the golden files
// written by the older taskgen.
func previousSchema(fields []schemaField, cache *typeutil.Map) string {
	var d v1Describer
	var b strings.Builder
	b.WriteString("{")
	for i, f := range fields {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(strconv.Quote(f.name))
		b.WriteString(":")
		desc, ok := cache.At(f.typ).(string)
		if !ok {
			desc = d.describe(f.typ, false)
			cache.Set(f.typ, desc)
		}
		b.WriteString(desc)
	}
	b.WriteString("}")
	sum := sha256.Sum256([]byte(b.String()))
	return "v1:" + hex.EncodeToString(sum[:])[:16]
}

// v1Describer writes the v1 description of a type.
type v1Describer struct {
	stack []types.Type // named types being described, innermost last
}

func (d *v1Describer) describe(t types.Type, addressable bool) string {
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
func (d *v1Describer) describeKey(t types.Type) string {
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

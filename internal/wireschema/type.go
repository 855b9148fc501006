package wireschema

import (
	"slices"
	"strconv"
	"strings"
)

// Kind is what a description describes.
type Kind uint8

const (
	// Invalid is the zero Kind. Parse never returns it; String writes it as "invalid".
	Invalid Kind = iota
	// Object is a JSON object of known fields: a struct, or a task's argument list.
	Object
	// Basic is a boolean, string or number of a Go basic type, named by Type.Name.
	Basic
	// Bytes is a []byte, written as a base64 string.
	Bytes
	// Time is a time.Time, written as an RFC 3339 string.
	Time
	// Marshaler is a type that writes itself (MarshalJSON or MarshalText), named by
	// Type.Name: its wire form is whatever its methods write.
	Marshaler
	// Pointer is a value of Type.Elem, or null.
	Pointer
	// Slice is a JSON array of Type.Elem.
	Slice
	// Array is a JSON array of exactly Type.Len values of Type.Elem.
	Array
	// Map is a JSON object from Type.Key, written as a string, to Type.Elem.
	Map
	// Rec refers back to an enclosing description: the Type.Depth-th enclosing object,
	// pointer, slice, array or map, counting outwards from 1. It makes recursive Go
	// types finite.
	Rec
)

var kindNames = [...]string{
	Invalid:   "invalid",
	Object:    "object",
	Basic:     "basic",
	Bytes:     "bytes",
	Time:      "time",
	Marshaler: "marshaler",
	Pointer:   "pointer",
	Slice:     "slice",
	Array:     "array",
	Map:       "map",
	Rec:       "rec",
}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// composite reports whether a description of kind k encloses others; rec(N) counts
// exactly these.
func (k Kind) composite() bool {
	switch k {
	case Object, Pointer, Slice, Array, Map:
		return true
	}
	return false
}

// Type is a parsed description: a tree whose Rec leaves refer back to enclosing nodes.
// Which fields are meaningful depends on Kind; the others are zero. A Type may be shared
// by several trees, so it must not be modified once it is in use.
type Type struct {
	Kind Kind
	// Name is the basic type of a Basic ("int64", "string") and the Go type of a
	// Marshaler, as go/types writes it with import paths ("net/netip.Addr").
	Name string
	// Fields are the fields of an Object, in any order: String writes them sorted by
	// name. Names are unique.
	Fields []Field
	// Elem is what a Pointer points to, and the element of a Slice, Array or Map.
	Elem *Type
	// Key is the key of a Map: a Basic string or integer type, or a Marshaler.
	Key *Type
	// Len is the length of an Array.
	Len int64
	// Depth is how far out a Rec refers: 1 is the innermost enclosing composite.
	Depth int
}

// Field is one field of an Object: a key of the JSON object.
type Field struct {
	// Name is the JSON name (the key), not the Go field name.
	Name string
	// OmitEmpty and OmitZero record the json options of that name: the field is left
	// out of the object when it is empty, or zero. Neither changes how a value that is
	// there is decoded.
	OmitEmpty, OmitZero bool
	// Quoted records the json option string: the value is written inside a JSON
	// string ("42" for 42). It changes the wire form of the value.
	Quoted bool
	Type   *Type
}

// String returns the canonical description of t: the grammar's text, without spaces,
// with the fields of every object sorted by name in byte order. Two descriptions of the
// same wire shape that differ only in the order of fields have the same String.
func (t *Type) String() string {
	var b strings.Builder
	t.write(&b)
	return b.String()
}

func (t *Type) write(b *strings.Builder) {
	if t == nil {
		b.WriteString("invalid")
		return
	}
	switch t.Kind {
	case Object:
		b.WriteByte('{')
		for i, f := range sortedFields(t.Fields) {
			if i > 0 {
				b.WriteByte(',')
			}
			f.write(b)
		}
		b.WriteByte('}')
	case Basic:
		b.WriteString(t.Name)
	case Bytes:
		b.WriteString("bytes")
	case Time:
		b.WriteString("time")
	case Marshaler:
		b.WriteString("marshaler(")
		b.WriteString(t.Name)
		b.WriteByte(')')
	case Pointer:
		b.WriteByte('*')
		t.Elem.write(b)
	case Slice:
		b.WriteString("[]")
		t.Elem.write(b)
	case Array:
		b.WriteByte('[')
		b.WriteString(strconv.FormatInt(t.Len, 10))
		b.WriteByte(']')
		t.Elem.write(b)
	case Map:
		b.WriteString("map[")
		t.Key.write(b)
		b.WriteByte(']')
		t.Elem.write(b)
	case Rec:
		b.WriteString("rec(")
		b.WriteString(strconv.Itoa(t.Depth))
		b.WriteByte(')')
	default:
		b.WriteString("invalid")
	}
}

// write writes a field as the grammar does: its quoted name, its options, its type.
func (f Field) write(b *strings.Builder) {
	f.writeHead(b)
	f.Type.write(b)
}

// writeHead writes a field up to its type: its quoted name, its options and ":".
func (f Field) writeHead(b *strings.Builder) {
	b.WriteString(strconv.Quote(f.Name))
	if f.OmitEmpty {
		b.WriteString(",omitempty")
	}
	if f.OmitZero {
		b.WriteString(",omitzero")
	}
	if f.Quoted {
		b.WriteString(",string")
	}
	b.WriteByte(':')
}

// sortedFields returns fields sorted by name, leaving the slice itself as it is: a Type
// may be shared, and a caller may have built Fields in declaration order.
func sortedFields(fields []Field) []Field {
	if slices.IsSortedFunc(fields, compareFields) {
		return fields
	}
	sorted := slices.Clone(fields)
	slices.SortStableFunc(sorted, compareFields)
	return sorted
}

func compareFields(a, b Field) int { return strings.Compare(a.Name, b.Name) }

// basicNames are the basic types a description names; integer ones may be map keys.
var basicNames = map[string]struct{ integer bool }{
	"bool": {}, "string": {}, "float32": {}, "float64": {},
	"int": {true}, "int8": {true}, "int16": {true}, "int32": {true}, "int64": {true},
	"uint": {true}, "uint8": {true}, "uint16": {true}, "uint32": {true}, "uint64": {true}, "uintptr": {true},
}

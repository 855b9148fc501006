package wireschema

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// ChangeKind is what happened at a path between two descriptions.
type ChangeKind uint8

const (
	// Added: a field is in the new description only. Compatible.
	Added ChangeKind = iota + 1
	// Removed: a field is in the old description only. Compatible.
	Removed
	// TypeChanged: the value at the path decodes differently. Breaking.
	TypeChanged
	// Renamed: in one object, a field of the old description is gone and a field of an
	// identical type appeared, which is probably the same value under a new name.
	// Breaking.
	Renamed
)

func (k ChangeKind) String() string {
	switch k {
	case Added:
		return "added"
	case Removed:
		return "removed"
	case TypeChanged:
		return "type changed"
	case Renamed:
		return "renamed"
	}
	return "ChangeKind(" + strconv.Itoa(int(k)) + ")"
}

// Change is one difference between an old and a new description.
type Change struct {
	// Path is where the change is, in the path syntax of the package documentation:
	// "width", "opts.limit", "items[].sku", "m[string].x"; "" is the whole value. For
	// Renamed it is the old name's path.
	Path string
	// Kind is what changed.
	Kind ChangeKind
	// Old and New are the canonical descriptions of the old and the new value at Path,
	// "" where there is none (Old of Added, New of Removed). For a field written with
	// the string option the description starts with ",string:", as the field does in
	// the grammar: ",string:int64". A description that refers back to an object
	// enclosing Path repeats that object, so that it stands on its own.
	Old, New string
	// NewPath is, for Renamed, the path of the new name; "" otherwise.
	NewPath string
}

// Breaking reports whether the change loses or garbles values of envelopes written with
// the old description when they are decoded with the new one (or the other way round):
// TypeChanged and Renamed are breaking, Added and Removed are not.
func (c Change) Breaking() bool {
	return c.Kind == TypeChanged || c.Kind == Renamed
}

// String describes the change in one line, for logs and messages.
func (c Change) String() string {
	switch c.Kind {
	case Added:
		return fmt.Sprintf("%s added (%s)", pathName(c.Path), c.New)
	case Removed:
		return fmt.Sprintf("%s removed (%s)", pathName(c.Path), c.Old)
	case TypeChanged:
		return fmt.Sprintf("%s changed type from %s to %s", pathName(c.Path), c.Old, c.New)
	case Renamed:
		return fmt.Sprintf("%s probably renamed to %s (same type %s)", pathName(c.Path), pathName(c.NewPath), c.New)
	}
	return fmt.Sprintf("%s: %s", pathName(c.Path), c.Kind)
}

func pathName(p string) string {
	if p == "" {
		return "the whole value"
	}
	return p
}

// Compatible reports whether envelopes written with old decode with new without loss:
// whether Compare finds no breaking change.
func Compatible(old, new *Type) bool {
	for _, c := range Compare(old, new) {
		if c.Breaking() {
			return false
		}
	}
	return true
}

// Compare returns the differences between two descriptions that matter to decoding, by
// the rules of the package documentation, sorted by path. Fields are matched by name, so
// an order of fields is never a difference; neither is a change of omitempty or omitzero
// alone, so Compare may find nothing where the two canonical descriptions differ.
//
// Types are compared by structure: a rec(N) stands for the type it refers to, and a
// recursive type unrolled once compares equal to itself. A difference inside a recursive
// type is reported once, at its shortest path.
func Compare(old, new *Type) []Change {
	c := &comparer{seen: map[[2]*node]bool{}}
	c.compare(build(old, nil), build(new, nil), "")
	slices.SortStableFunc(c.changes, func(a, b Change) int {
		return cmp.Or(strings.Compare(a.Path, b.Path), strings.Compare(a.NewPath, b.NewPath), cmp.Compare(a.Kind, b.Kind))
	})
	return c.changes
}

// node is a description as a graph: a rec(N) is an edge back to the node it refers to,
// so comparisons follow it without counting enclosing nodes. Every position of the
// description's tree is its own node, even where the Type shares a subtree.
type node struct {
	kind      Kind
	name      string // Basic, Marshaler
	length    int64  // Array
	depth     int    // a Rec that refers outside its Type: only hand-built Types have one
	elem, key *node
	fields    []edge // Object, sorted by name
}

// edge is a field of an object node.
type edge struct {
	name                        string
	omitEmpty, omitZero, quoted bool
	to                          *node
}

// build makes the graph of t; up are the composite nodes enclosing it, outermost first.
func build(t *Type, up []*node) *node {
	if t == nil {
		return &node{kind: Invalid}
	}
	if t.Kind == Rec {
		if i := len(up) - t.Depth; t.Depth >= 1 && i >= 0 {
			return up[i]
		}
		return &node{kind: Rec, depth: t.Depth}
	}
	n := &node{kind: t.Kind, name: t.Name, length: t.Len}
	if !t.Kind.composite() {
		return n
	}
	up = append(up[:len(up):len(up)], n)
	switch t.Kind {
	case Object:
		for _, f := range sortedFields(t.Fields) {
			n.fields = append(n.fields, edge{name: f.Name, omitEmpty: f.OmitEmpty, omitZero: f.OmitZero, quoted: f.Quoted, to: build(f.Type, up)})
		}
	case Map:
		n.key = build(t.Key, up)
		n.elem = build(t.Elem, up)
	default:
		n.elem = build(t.Elem, up)
	}
	return n
}

// describe writes the canonical description of the value at n: what String writes for
// it, where a reference back to a node outside n's own subtree repeats that node.
func describe(n *node) string {
	var b strings.Builder
	writeNode(&b, n, nil)
	return b.String()
}

// writeNode writes n; stack holds the composite nodes being written, innermost last. A
// node met again while it is being written is a cycle, written as rec(N). Every cycle
// meets a node twice, and there are finitely many nodes, so the text is finite.
func writeNode(b *strings.Builder, n *node, stack []*node) {
	for i := len(stack) - 1; i >= 0; i-- {
		if stack[i] == n {
			fmt.Fprintf(b, "rec(%d)", len(stack)-i)
			return
		}
	}
	if n.kind.composite() {
		stack = append(stack, n)
	}
	switch n.kind {
	case Object:
		b.WriteByte('{')
		for i, e := range n.fields {
			if i > 0 {
				b.WriteByte(',')
			}
			Field{Name: e.name, OmitEmpty: e.omitEmpty, OmitZero: e.omitZero, Quoted: e.quoted}.writeHead(b)
			writeNode(b, e.to, stack)
		}
		b.WriteByte('}')
	case Pointer:
		b.WriteByte('*')
		writeNode(b, n.elem, stack)
	case Slice:
		b.WriteString("[]")
		writeNode(b, n.elem, stack)
	case Array:
		fmt.Fprintf(b, "[%d]", n.length)
		writeNode(b, n.elem, stack)
	case Map:
		b.WriteString("map[")
		writeNode(b, n.key, stack)
		b.WriteByte(']')
		writeNode(b, n.elem, stack)
	default:
		(&Type{Kind: n.kind, Name: n.name, Depth: n.depth}).write(b)
	}
}

// describeField writes the value of a field: its type, after ",string:" when the field
// has the string option, which is part of its wire form.
func describeField(e edge) string {
	if e.quoted {
		return ",string:" + describe(e.to)
	}
	return describe(e.to)
}

// equal reports whether a and b decode the same JSON the same way: the same structure,
// followed through cycles, with omitempty and omitzero ignored.
func equal(a, b *node) bool {
	return equalAssuming(a, b, map[[2]*node]bool{})
}

// equalAssuming is equal, with pairs of composite nodes already being compared assumed
// equal: if they differ, the comparison that assumed it finds that difference below, so
// only the outermost call may use the answer (a fresh map per call of equal).
func equalAssuming(a, b *node, assumed map[[2]*node]bool) bool {
	if a.kind != b.kind {
		return false
	}
	switch a.kind {
	case Basic, Marshaler:
		return a.name == b.name
	case Rec:
		return a.depth == b.depth
	case Object, Pointer, Slice, Array, Map:
	default:
		return true
	}
	pair := [2]*node{a, b}
	if assumed[pair] {
		return true
	}
	assumed[pair] = true
	switch a.kind {
	case Object:
		if len(a.fields) != len(b.fields) {
			return false
		}
		for i, ea := range a.fields {
			eb := b.fields[i]
			if ea.name != eb.name || ea.quoted != eb.quoted || !equalAssuming(ea.to, eb.to, assumed) {
				return false
			}
		}
		return true
	case Array:
		return a.length == b.length && equalAssuming(a.elem, b.elem, assumed)
	case Map:
		return equalAssuming(a.key, b.key, assumed) && equalAssuming(a.elem, b.elem, assumed)
	}
	return equalAssuming(a.elem, b.elem, assumed)
}

// leadsToObjects reports whether a and b are containers of one shape (pointers, slices,
// arrays of one length, maps of one key type, nested alike) around objects: Compare
// then looks inside them, at the fields, instead of reporting the whole type changed.
func leadsToObjects(a, b *node) bool {
	visited := map[[2]*node]bool{}
	for {
		switch {
		case a.kind == Object && b.kind == Object:
			return true
		case a.kind != b.kind, visited[[2]*node{a, b}]:
			return false
		}
		visited[[2]*node{a, b}] = true
		switch a.kind {
		case Pointer, Slice:
		case Array:
			if a.length != b.length {
				return false
			}
		case Map:
			if !equal(a.key, b.key) {
				return false
			}
		default:
			return false
		}
		a, b = a.elem, b.elem
	}
}

type comparer struct {
	// seen holds the pairs of composite nodes compared already: a recursive type
	// brings Compare back to a pair it is comparing, and the changes inside it were
	// found (or are being found) at its first, shorter path.
	seen    map[[2]*node]bool
	changes []Change
}

// visit marks a pair of nodes compared and reports whether it was already.
func (c *comparer) visit(a, b *node) bool {
	pair := [2]*node{a, b}
	if c.seen[pair] {
		return true
	}
	c.seen[pair] = true
	return false
}

func (c *comparer) compare(o, n *node, path string) {
	switch {
	case o.kind == Object && n.kind == Object:
		if !c.visit(o, n) {
			c.fields(o, n, path)
		}
	case leadsToObjects(o, n):
		if !c.visit(o, n) {
			c.compare(o.elem, n.elem, elemPath(path, o))
		}
	case !equal(o, n):
		c.changes = append(c.changes, Change{Path: path, Kind: TypeChanged, Old: describe(o), New: describe(n)})
	}
}

// fields compares two objects field by field, then pairs what was removed with what was
// added into probable renames.
func (c *comparer) fields(o, n *node, path string) {
	var removed, added []edge
	i, j := 0, 0
	for i < len(o.fields) || j < len(n.fields) {
		switch {
		case j == len(n.fields) || i < len(o.fields) && o.fields[i].name < n.fields[j].name:
			removed = append(removed, o.fields[i])
			i++
		case i == len(o.fields) || n.fields[j].name < o.fields[i].name:
			added = append(added, n.fields[j])
			j++
		default:
			of, nf := o.fields[i], n.fields[j]
			p := fieldPath(path, of.name)
			if of.quoted != nf.quoted {
				c.changes = append(c.changes, Change{Path: p, Kind: TypeChanged, Old: describeField(of), New: describeField(nf)})
			} else {
				c.compare(of.to, nf.to, p)
			}
			i++
			j++
		}
	}
	// Each removed field, in name order, pairs with the first added field, in name
	// order, of an identical type that is not paired yet.
	paired := make([]bool, len(added))
	for _, r := range removed {
		match := -1
		for k, a := range added {
			if !paired[k] && a.quoted == r.quoted && equal(r.to, a.to) {
				match = k
				break
			}
		}
		if match < 0 {
			c.changes = append(c.changes, Change{Path: fieldPath(path, r.name), Kind: Removed, Old: describeField(r)})
			continue
		}
		paired[match] = true
		a := added[match]
		c.changes = append(c.changes, Change{Path: fieldPath(path, r.name), Kind: Renamed, Old: describeField(r), New: describeField(a), NewPath: fieldPath(path, a.name)})
	}
	for k, a := range added {
		if !paired[k] {
			c.changes = append(c.changes, Change{Path: fieldPath(path, a.name), Kind: Added, New: describeField(a)})
		}
	}
}

// fieldPath is the path of field name of the object at path.
func fieldPath(path, name string) string {
	if needsQuoting(name) {
		name = strconv.Quote(name)
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// needsQuoting reports whether a name must be quoted in a path: it would otherwise be
// empty, read as more than one step, or be unprintable.
func needsQuoting(name string) bool {
	if name == "" {
		return true
	}
	for _, r := range name {
		if strings.ContainsRune(`.[]" `, r) || r == utf8.RuneError || !unicode.IsPrint(r) {
			return true
		}
	}
	return false
}

// elemPath is the path of the elements of the container at path: the same for a
// pointer, which JSON does not show, [] for a slice or array, [K] for a map.
func elemPath(path string, container *node) string {
	switch container.kind {
	case Slice, Array:
		return path + "[]"
	case Map:
		return path + "[" + describe(container.key) + "]"
	}
	return path
}

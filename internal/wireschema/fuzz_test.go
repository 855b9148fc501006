package wireschema

import (
	"errors"
	"testing"
)

// FuzzParse feeds arbitrary text to Parse. It must not panic, and must refuse with a
// *SyntaxError inside the text; a description it accepts must round-trip: String writes
// a description that parses to the same String, which is what Canonical returns and what
// Compare writes for the whole value, and that Compare finds no change against.
//
// Run with
//
//	go test -run '^$' -fuzz '^FuzzParse$' -fuzztime 30s ./internal/wireschema
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{}`,
		`{"name":string,"to":string}`,
		`{"to":string,"name":string,"opts":*{"limit",omitempty:int,"tags":[]string}}`,
		`{"n",omitempty,omitzero,string:int64,"z",omitzero:[]int}`,
		`{"n":{"Next":*rec(2),"Kids":[]rec(2)}}`,
		`{"t":{"kids":[]{"kids":[]rec(4),"leaf":bool},"n":int}}`,
		`{"a":[3]int,"m":map[int64][]*string,"s":[]bytes,"at":time}`,
		`{"c":map[marshaler(net/netip.Addr)]string,"g":marshaler(example.com/p.Opt[map[string]example.com/p.T])}`,
		`{"s":marshaler(struct{example.com/p.M "json:\")\""})}`,
		`{"a\"b":int,"\t":int,"é":int}`,
		`map[string]rec(1)`,
		`{"a":*rec(3)}`,
		`{"a":int,"a":int}`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, desc string) {
		typ, err := Parse(desc)
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(desc) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError inside the text", desc, err)
			}
			return
		}
		s := typ.String()
		again, err := Parse(s)
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its String %q does not parse: %v", desc, s, err)
		}
		if got := again.String(); got != s {
			t.Fatalf("String is not stable: %q → %q → %q", desc, s, got)
		}
		if got, err := Canonical(desc); err != nil || got != s {
			t.Fatalf("Canonical(%q) = %q, %v; want %q", desc, got, err, s)
		}
		if got := describe(build(typ, nil)); got != s {
			t.Fatalf("the graph of %q describes itself as %q, want %q", desc, got, s)
		}
		if changes := Compare(typ, again); len(changes) > 0 || !Compatible(typ, again) {
			t.Fatalf("Compare(%q, its canonical form) = %v, want no change", desc, changes)
		}
	})
}

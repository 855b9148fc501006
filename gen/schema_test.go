package gen

import (
	"regexp"
	"testing"
)

func fingerprint(t *testing.T, src string) string {
	t.Helper()
	return schemaFingerprint(funcParams(t, typecheck(t, "package p\n"+src), "F"))
}

func description(t *testing.T, src string) string {
	t.Helper()
	return schemaDescription(funcParams(t, typecheck(t, "package p\n"+src), "F"))
}

func TestSchemaFingerprintHasVersionAndSixteenHexDigits(t *testing.T) {
	got := fingerprint(t, "func F(to, name string) error { return nil }")
	if !regexp.MustCompile(`^v1:[0-9a-f]{16}$`).MatchString(got) {
		t.Errorf("fingerprint = %q, want v1: and 16 hex digits", got)
	}
}

func TestSchemaFingerprintChangesExactlyWhenTheWireShapeChanges(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		changes       bool
	}{
		// Edits that leave the wire shape alone.
		{
			name:    "renamed function",
			before:  "func F(to string) error { return nil }\nfunc G() {}",
			after:   "func G(to string) error { return nil }\nfunc F(to string) error { return nil }",
			changes: false,
		},
		{
			name:    "comments and locals",
			before:  "func F(to string) error { x := 1; _ = x; return nil }",
			after:   "// F is documented.\nfunc F(to string /* the address */) error { renamed := 1; _ = renamed; return nil }",
			changes: false,
		},
		{
			name:    "renamed Go type of the same shape",
			before:  "type User struct{ Name string }\nfunc F(u User) error { return nil }",
			after:   "type Person struct{ Name string }\nfunc F(u Person) error { return nil }",
			changes: false,
		},
		{
			name:    "named basic type instead of the basic type",
			before:  "func F(id string) error { return nil }",
			after:   "type UserID string\nfunc F(id UserID) error { return nil }",
			changes: false,
		},
		{
			name:    "byte alias and uint8",
			before:  "func F(b [4]byte) error { return nil }",
			after:   "func F(b [4]uint8) error { return nil }",
			changes: false,
		},
		{
			name:    "named byte slice is still bytes",
			before:  "func F(b []byte) error { return nil }",
			after:   "type Blob []byte\nfunc F(b Blob) error { return nil }",
			changes: false,
		},
		{
			name:    "json tag equal to the field name",
			before:  "type T struct{ Name string }\nfunc F(t T) error { return nil }",
			after:   "type T struct{ Name string `json:\"Name\"` }\nfunc F(t T) error { return nil }",
			changes: false,
		},
		{
			name:    "field moved into an embedded struct",
			before:  "type T struct{ A, B int }\nfunc F(t T) error { return nil }",
			after:   "type Base struct{ A int }\ntype T struct{ Base; B int }\nfunc F(t T) error { return nil }",
			changes: false,
		},
		{
			name:    "field left out with json:\"-\" added",
			before:  "type T struct{ A int }\nfunc F(t T) error { return nil }",
			after:   "type T struct{ A int; cache map[string]int `json:\"-\"`; Debug func() `json:\"-\"` }\nfunc F(t T) error { return nil }",
			changes: false,
		},
		{
			name:    "method without marshaling added",
			before:  "type T struct{ A int }\nfunc F(t T) error { return nil }",
			after:   "type T struct{ A int }\nfunc (T) String() string { return \"\" }\nfunc F(t T) error { return nil }",
			changes: false,
		},
		{
			name:    "time.Duration and int64",
			before:  "import \"time\"\nfunc F(d time.Duration) error { return nil }",
			after:   "func F(d int64) error { return nil }",
			changes: false,
		},
		{
			name:    "recursive type renamed",
			before:  "type Node struct{ Kids []Node }\nfunc F(n Node) error { return nil }",
			after:   "type Tree struct{ Kids []Tree }\nfunc F(n Tree) error { return nil }",
			changes: false,
		},
		{
			name:    "result type changed",
			before:  "func F(n int) (string, error) { return \"\", nil }",
			after:   "func F(n int) (int, error) { return 0, nil }",
			changes: false,
		},

		// Edits that change it.
		{
			name:    "renamed parameter",
			before:  "func F(to string) error { return nil }",
			after:   "func F(email string) error { return nil }",
			changes: true,
		},
		{
			name:    "reordered parameters",
			before:  "func F(to, name string) error { return nil }",
			after:   "func F(name, to string) error { return nil }",
			changes: true,
		},
		{
			name:    "added parameter",
			before:  "func F(to string) error { return nil }",
			after:   "func F(to string, cc []string) error { return nil }",
			changes: true,
		},
		{
			name:    "parameter type changed",
			before:  "func F(n int) error { return nil }",
			after:   "func F(n int64) error { return nil }",
			changes: true,
		},
		{
			name:    "nested field type changed",
			before:  "type A struct{ B struct{ C []int } }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ B struct{ C []string } }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "nested field renamed",
			before:  "type A struct{ Street string }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ Road string }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "json name changed by a tag",
			before:  "type A struct{ Street string }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ Street string `json:\"street\"` }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "omitempty added",
			before:  "type A struct{ Street string }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ Street string `json:\",omitempty\"` }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "string option added",
			before:  "type A struct{ N int64 }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ N int64 `json:\",string\"` }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "fields reordered",
			before:  "type A struct{ X, Y int }\nfunc F(a A) error { return nil }",
			after:   "type A struct{ Y, X int }\nfunc F(a A) error { return nil }",
			changes: true,
		},
		{
			name:    "value became a pointer",
			before:  "func F(n int) error { return nil }",
			after:   "func F(n *int) error { return nil }",
			changes: true,
		},
		{
			name:    "slice became an array",
			before:  "func F(xs []int) error { return nil }",
			after:   "func F(xs [3]int) error { return nil }",
			changes: true,
		},
		{
			name:    "array length changed",
			before:  "func F(xs [3]int) error { return nil }",
			after:   "func F(xs [4]int) error { return nil }",
			changes: true,
		},
		{
			name:    "map key type changed",
			before:  "func F(m map[string]int) error { return nil }",
			after:   "func F(m map[int]int) error { return nil }",
			changes: true,
		},
		{
			name:    "time.Time became a string",
			before:  "import \"time\"\nfunc F(at time.Time) error { return nil }",
			after:   "func F(at string) error { return nil }",
			changes: true,
		},
		{
			name:    "bytes became a slice of numbers",
			before:  "func F(b []byte) error { return nil }",
			after:   "func F(b []int8) error { return nil }",
			changes: true,
		},
		{
			name:    "struct became a marshaler of the same fields",
			before:  "type M struct{ C int64 }\nfunc F(m M) error { return nil }",
			after:   "type M struct{ C int64 }\nfunc (M) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc (*M) UnmarshalJSON([]byte) error { return nil }\nfunc F(m M) error { return nil }",
			changes: true,
		},
		{
			name:    "recursion depth changed",
			before:  "type Node struct{ Kids []Node }\nfunc F(n Node) error { return nil }",
			after:   "type Node struct{ Kids []Leaf }\ntype Leaf struct{ Kids []Node }\nfunc F(n Node) error { return nil }",
			changes: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, after := fingerprint(t, tt.before), fingerprint(t, tt.after)
			if changed := before != after; changed != tt.changes {
				t.Errorf("fingerprint changed = %v, want %v\nbefore: %s\nafter:  %s",
					changed, tt.changes, description(t, tt.before), description(t, tt.after))
			}
		})
	}
}

func TestSchemaDescriptionFollowsEncodingJSON(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		{
			name: "basic kinds by name, aliases resolved",
			src:  "func F(b bool, r rune, by byte, f float32, s string, u uint) error { return nil }",
			want: `{"b":bool,"r":int32,"by":uint8,"f":float32,"s":string,"u":uint}`,
		},
		{
			name: "time, duration and bytes",
			src:  "import \"time\"\nfunc F(at time.Time, d time.Duration, raw []byte) error { return nil }",
			want: `{"at":time,"d":int64,"raw":bytes}`,
		},
		{
			name: "marshalers by their type, with their import path",
			src:  "import (\"encoding/json\"; \"net/netip\")\nfunc F(a netip.Addr, p *netip.Prefix, raw json.RawMessage) error { return nil }",
			want: `{"a":marshaler(net/netip.Addr),"p":*marshaler(net/netip.Prefix),"raw":marshaler(encoding/json.RawMessage)}`,
		},
		{
			name: "maps with string, integer and text marshaler keys",
			src:  "import \"net/netip\"\ntype K string\nfunc F(a map[K]int, b map[uint16]bool, c map[netip.Addr]string) error { return nil }",
			want: `{"a":map[string]int,"b":map[uint16]bool,"c":map[marshaler(net/netip.Addr)]string}`,
		},
		{
			name: "struct fields as encoding/json writes them",
			src: "type Base struct{ ID int; Name string }\n" +
				"type T struct {\n\tBase\n\tName string `json:\"name,omitempty\"`\n\tskip int\n\tGone int `json:\"-\"`\n\tDash int `json:\"-,\"`\n\tN int64 `json:\",string\"`\n\tZ []int `json:\",omitzero\"`\n}\n" +
				"func F(t T) error { return nil }",
			want: `{"t":{"ID":int,"Name":string,"name",omitempty:string,"-":int,"N",string:int64,"Z",omitzero:[]int}}`,
		},
		{
			name: "conflicting embedded fields at the same depth are dropped",
			src:  "type A struct{ X int }\ntype B struct{ X string }\ntype T struct{ A; B; Y int }\nfunc F(t T) error { return nil }",
			want: `{"t":{"Y":int}}`,
		},
		{
			name: "recursive references count enclosing named types",
			src:  "type Node struct{ Next *Node; Kids []Node }\nfunc F(n Node) error { return nil }",
			want: `{"n":{"Next":*rec(1),"Kids":[]rec(1)}}`,
		},
		{
			name: "generic types are expanded with their type arguments",
			src:  "type Pair[K comparable, V any] struct{ Key K; Value V }\nfunc F(p Pair[string, []int]) error { return nil }",
			want: `{"p":{"Key":string,"Value":[]int}}`,
		},
		{
			name: "pointer-receiver marshalers count behind a pointer",
			src:  "import \"math/big\"\nfunc F(n *big.Int, xs []big.Int) error { return nil }",
			want: `{"n":*marshaler(math/big.Int),"xs":[]marshaler(math/big.Int)}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := description(t, tt.src); got != tt.want {
				t.Errorf("description =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

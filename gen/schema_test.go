package gen

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"regexp"
	"testing"

	"github.com/taskgen/taskgen/internal/wireschema"
	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/types/typeutil"
)

// description returns the wire description of the parameters of function F in src (a
// package p without its package clause).
func description(t *testing.T, src string) string {
	t.Helper()
	wire, err := argsWire(funcParams(t, typecheck(t, "package p\n"+src), "F"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

func TestSchemaIsTheFingerprintOfWire(t *testing.T) {
	schema, wire := taskDef(t, "//task:t.k\nfunc F(to, name string) error { return nil }")
	if want := `{"name":string,"to":string}`; wire != want {
		t.Errorf("Wire = %s, want %s", wire, want)
	}
	if !regexp.MustCompile(`^v2:[0-9a-f]{16}$`).MatchString(schema) || schema != wireschema.Fingerprint(wire) {
		t.Errorf("Schema = %q, want v2: and 16 hex digits, wireschema.Fingerprint(Wire)", schema)
	}
}

// taskDef returns the Def.Schema and Def.Wire the generator computes for the one task
// declared in src (a package p without its package clause): directives found, parameters
// classified, arguments checked, as for generated code.
func taskDef(t *testing.T, src string) (schema, wire string) {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "p.go", "package p\n"+src, parser.ParseComments)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, src)
	}
	info := &types.Info{
		Defs:  map[*ast.Ident]types.Object{},
		Uses:  map[*ast.Ident]types.Object{},
		Types: map[ast.Expr]types.TypeAndValue{},
	}
	conf := types.Config{Importer: importer.ForCompiler(fset, "gc", nil)}
	tpkg, err := conf.Check("example.com/p", fset, []*ast.File{f}, info)
	if err != nil {
		t.Fatalf("type-check: %v\n%s", err, src)
	}
	pkg := &packages.Package{PkgPath: "example.com/p", Name: "p", Fset: fset, Syntax: []*ast.File{f}, Types: tpkg, TypesInfo: info}
	dirs, errs := findDirectives(fset, pkg.Syntax)
	m, merrs := buildModel(pkg, dirs, nil)
	if errs = append(errs, merrs...); len(errs) > 0 {
		t.Fatalf("declaration errors: %v\n%s", errs, src)
	}
	if m == nil || len(m.tasks) != 1 {
		t.Fatalf("want exactly one task in\n%s", src)
	}
	return m.tasks[0].schema, m.tasks[0].wire
}

func TestSchemaAndWireChangeExactlyWhenTheWireShapeChanges(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
	}{
		{
			name:   "renamed parameter",
			before: "//task:t.k\nfunc F(to string) error { return nil }",
			after:  "//task:t.k\nfunc F(email string) error { return nil }",
		},
		{
			name:   "renamed struct field",
			before: "type A struct{ Street string }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ Road string }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "renamed struct field deep inside",
			before: "type B struct{ Zip string }\ntype A struct{ Homes map[string][]*B }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type B struct{ Postcode string }\ntype A struct{ Homes map[string][]*B }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "renamed json tag",
			before: "type A struct{ Street string `json:\"street\"` }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ Street string `json:\"road\"` }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "json tag added to a field",
			before: "type A struct{ Street string }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ Street string `json:\"street\"` }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "omitempty added",
			before: "type A struct{ Street string }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ Street string `json:\",omitempty\"` }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "string option added",
			before: "type A struct{ N int64 }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ N int64 `json:\",string\"` }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "added parameter",
			before: "//task:t.k\nfunc F(to string) error { return nil }",
			after:  "//task:t.k\nfunc F(to string, cc []string) error { return nil }",
		},
		{
			name:   "removed parameter",
			before: "//task:t.k\nfunc F(to string, cc []string) error { return nil }",
			after:  "//task:t.k\nfunc F(to string) error { return nil }",
		},
		{
			name:   "changed type of a parameter",
			before: "//task:t.k\nfunc F(n int) error { return nil }",
			after:  "//task:t.k\nfunc F(n int64) error { return nil }",
		},
		{
			name:   "changed type of a struct field",
			before: "type A struct{ N int }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ N uint }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "changed type deep inside slices, maps and pointers",
			before: "type C struct{ N int }\ntype B struct{ Cs map[string][]*C }\ntype A struct{ B struct{ Bs [2]B } }\n//task:t.k\nfunc F(a *A) error { return nil }",
			after:  "type C struct{ N int32 }\ntype B struct{ Cs map[string][]*C }\ntype A struct{ B struct{ Bs [2]B } }\n//task:t.k\nfunc F(a *A) error { return nil }",
		},
		{
			name:   "changed type inside an embedded struct",
			before: "type Base struct{ ID int }\ntype A struct{ Base; Name string }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type Base struct{ ID string }\ntype A struct{ Base; Name string }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "changed type argument of a generic type",
			before: "type Pair[K comparable, V any] struct{ Key K; Value V }\n//task:t.k\nfunc F(p Pair[string, int]) error { return nil }",
			after:  "type Pair[K comparable, V any] struct{ Key K; Value V }\n//task:t.k\nfunc F(p Pair[string, float64]) error { return nil }",
		},
		{
			name:   "changed map key type",
			before: "//task:t.k\nfunc F(m map[string]int) error { return nil }",
			after:  "//task:t.k\nfunc F(m map[int]int) error { return nil }",
		},
		{
			name:   "value became a pointer",
			before: "//task:t.k\nfunc F(n int) error { return nil }",
			after:  "//task:t.k\nfunc F(n *int) error { return nil }",
		},
		{
			name:   "slice became an array",
			before: "//task:t.k\nfunc F(xs []int) error { return nil }",
			after:  "//task:t.k\nfunc F(xs [3]int) error { return nil }",
		},
		{
			name:   "array length changed",
			before: "//task:t.k\nfunc F(xs [3]int) error { return nil }",
			after:  "//task:t.k\nfunc F(xs [4]int) error { return nil }",
		},
		{
			name:   "time.Time became a string",
			before: "import \"time\"\n//task:t.k\nfunc F(at time.Time) error { return nil }",
			after:  "//task:t.k\nfunc F(at string) error { return nil }",
		},
		{
			name:   "bytes became a slice of numbers",
			before: "//task:t.k\nfunc F(b []byte) error { return nil }",
			after:  "//task:t.k\nfunc F(b []int8) error { return nil }",
		},
		{
			name:   "struct became a marshaler of the same fields",
			before: "type M struct{ C int64 }\n//task:t.k\nfunc F(m M) error { return nil }",
			after:  "type M struct{ C int64 }\nfunc (M) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc (*M) UnmarshalJSON([]byte) error { return nil }\n//task:t.k\nfunc F(m M) error { return nil }",
		},
		{
			name:   "lifespan parameter became an argument",
			before: "type DB struct{ Name string }\n//task:t.k lifespan=db\nfunc F(db *DB, n int) error { return nil }",
			after:  "type DB struct{ Name string }\n//task:t.k\nfunc F(db *DB, n int) error { return nil }",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeSchema, beforeWire := taskDef(t, tt.before)
			afterSchema, afterWire := taskDef(t, tt.after)
			if beforeWire == afterWire || beforeSchema == afterSchema {
				t.Errorf("Wire %s → %s, Schema %s → %s; want both changed: the wire shape changed\nbefore: %s\nafter:  %s",
					beforeWire, afterWire, beforeSchema, afterSchema, tt.before, tt.after)
			}
		})
	}
}

func TestSchemaAndWireAreUnchangedWhenTheWireShapeIs(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
	}{
		{
			name:   "reordered parameters",
			before: "//task:t.k\nfunc F(to, name string) error { return nil }",
			after:  "//task:t.k\nfunc F(name, to string) error { return nil }",
		},
		{
			name:   "reordered parameters of different types",
			before: "//task:t.k\nfunc F(n int, s string) error { return nil }",
			after:  "//task:t.k\nfunc F(s string, n int) error { return nil }",
		},
		{
			name:   "reordered struct fields",
			before: "type A struct{ X, Y int }\n//task:t.k\nfunc F(a A) error { return nil }",
			after:  "type A struct{ Y, X int }\n//task:t.k\nfunc F(a A) error { return nil }",
		},
		{
			name:   "reordered struct fields deep inside, with tags and embedding",
			before: "type B struct{ Zip string `json:\"zip\"`; City string }\ntype Base struct{ ID int }\ntype A struct{ Base; Homes map[string][]*B; Name string }\n//task:t.k\nfunc F(n int, a A) error { return nil }",
			after:  "type B struct{ City string; Zip string `json:\"zip\"` }\ntype Base struct{ ID int }\ntype A struct{ Name string; Homes map[string][]*B; Base }\n//task:t.k\nfunc F(a A, n int) error { return nil }",
		},
		{
			name:   "reordered fields of a recursive type",
			before: "type Node struct{ Next *Node; Kids []Node; V int }\n//task:t.k\nfunc F(n Node) error { return nil }",
			after:  "type Node struct{ V int; Kids []Node; Next *Node }\n//task:t.k\nfunc F(n Node) error { return nil }",
		},
		{
			name:   "renamed Go function",
			before: "//task:t.k\nfunc Send(to string) error { return nil }",
			after:  "//task:t.k\nfunc Deliver(to string) error { return nil }",
		},
		{
			name:   "function became a method",
			before: "type S struct{}\n//task:t.k\nfunc Send(to string) error { return nil }",
			after:  "type S struct{}\n//task:t.k\nfunc (s *S) Send(to string) error { return nil }",
		},
		{
			name:   "comments",
			before: "//task:t.k\nfunc F(to string) error { return nil }",
			after:  "// F is documented.\n//\n//task:t.k\nfunc F(to string /* the address */) error {\n\t// Nothing to do.\n\treturn nil\n}",
		},
		{
			name:   "different local variables",
			before: "//task:t.k\nfunc F(to string) error { x := 1; _ = x; return nil }",
			after:  "//task:t.k\nfunc F(to string) error { renamed, more := 1, \"s\"; _, _ = renamed, more; return nil }",
		},
		{
			name:   "renamed Go type with the same shape",
			before: "type User struct{ Name string }\n//task:t.k\nfunc F(u User) error { return nil }",
			after:  "type Person struct{ Name string }\n//task:t.k\nfunc F(u Person) error { return nil }",
		},
		{
			name:   "renamed nested Go type with the same shape",
			before: "type Addr struct{ Zip string }\ntype User struct{ Home *Addr; Old []Addr }\n//task:t.k\nfunc F(u User) error { return nil }",
			after:  "type Place struct{ Zip string }\ntype User struct{ Home *Place; Old []Place }\n//task:t.k\nfunc F(u User) error { return nil }",
		},
		{
			name:   "renamed recursive Go type",
			before: "type Node struct{ Kids []Node }\n//task:t.k\nfunc F(n Node) error { return nil }",
			after:  "type Tree struct{ Kids []Tree }\n//task:t.k\nfunc F(n Tree) error { return nil }",
		},
		{
			name:   "named basic type instead of the basic type",
			before: "//task:t.k\nfunc F(id string) error { return nil }",
			after:  "type UserID string\n//task:t.k\nfunc F(id UserID) error { return nil }",
		},
		{
			name:   "byte alias and uint8",
			before: "//task:t.k\nfunc F(b [4]byte) error { return nil }",
			after:  "//task:t.k\nfunc F(b [4]uint8) error { return nil }",
		},
		{
			name:   "named byte slice is still bytes",
			before: "//task:t.k\nfunc F(b []byte) error { return nil }",
			after:  "type Blob []byte\n//task:t.k\nfunc F(b Blob) error { return nil }",
		},
		{
			name:   "json tag equal to the field name",
			before: "type T struct{ Name string }\n//task:t.k\nfunc F(t T) error { return nil }",
			after:  "type T struct{ Name string `json:\"Name\"` }\n//task:t.k\nfunc F(t T) error { return nil }",
		},
		{
			name:   "field moved into an embedded struct",
			before: "type T struct{ A, B int }\n//task:t.k\nfunc F(t T) error { return nil }",
			after:  "type Base struct{ A int }\ntype T struct{ Base; B int }\n//task:t.k\nfunc F(t T) error { return nil }",
		},
		{
			name:   "field left out with json:\"-\" added",
			before: "type T struct{ A int }\n//task:t.k\nfunc F(t T) error { return nil }",
			after:  "type T struct{ A int; cache map[string]int `json:\"-\"`; Debug func() `json:\"-\"` }\n//task:t.k\nfunc F(t T) error { return nil }",
		},
		{
			name:   "method without marshaling added",
			before: "type T struct{ A int }\n//task:t.k\nfunc F(t T) error { return nil }",
			after:  "type T struct{ A int }\nfunc (T) String() string { return \"\" }\n//task:t.k\nfunc F(t T) error { return nil }",
		},
		{
			name:   "time.Duration and int64",
			before: "import \"time\"\n//task:t.k\nfunc F(d time.Duration) error { return nil }",
			after:  "//task:t.k\nfunc F(d int64) error { return nil }",
		},
		{
			name:   "result type changed",
			before: "//task:t.k\nfunc F(n int) (string, error) { return \"\", nil }",
			after:  "//task:t.k\nfunc F(n int) (int, error) { return 0, nil }",
		},
		{
			name:   "context parameter added",
			before: "//task:t.k\nfunc F(n int) error { return nil }",
			after:  "import \"context\"\n//task:t.k\nfunc F(ctx context.Context, n int) error { return nil }",
		},
		{
			name:   "lifespan parameter added",
			before: "//task:t.k\nfunc F(n int) error { return nil }",
			after:  "type DB struct{}\n//task:t.k lifespan=db\nfunc F(db *DB, n int) error { return nil }",
		},
		{
			name:   "context added before unnamed arguments",
			before: "//task:t.k\nfunc F(string, int) error { return nil }",
			after:  "import \"context\"\n//task:t.k\nfunc F(context.Context, string, int) error { return nil }",
		},
		{
			name:   "options changed",
			before: "//task:t.k\nfunc F(n int) error { return nil }",
			after:  "//task:t.k queue=q retries=9 timeout=1s\nfunc F(n int) error { return nil }",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeSchema, beforeWire := taskDef(t, tt.before)
			afterSchema, afterWire := taskDef(t, tt.after)
			if beforeWire != afterWire || beforeSchema != afterSchema {
				t.Errorf("Wire %s → %s, Schema %s → %s; want no change: the wire shape is the same\nbefore: %s\nafter:  %s",
					beforeWire, afterWire, beforeSchema, afterSchema, tt.before, tt.after)
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
			want: `{"b":bool,"by":uint8,"f":float32,"r":int32,"s":string,"u":uint}`,
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
			want: `{"t":{"-":int,"ID":int,"N",string:int64,"Name":string,"Z",omitzero:[]int,"name",omitempty:string}}`,
		},
		{
			name: "uintptr like the other integers, also quoted with ,string",
			src:  "type T struct{ P uintptr `json:\",string\"` }\nfunc F(u uintptr, m map[uintptr]bool, t T) error { return nil }",
			want: `{"m":map[uintptr]bool,"t":{"P",string:uintptr},"u":uintptr}`,
		},
		{
			name: "conflicting embedded fields at the same depth are dropped",
			src:  "type A struct{ X int }\ntype B struct{ X string }\ntype T struct{ A; B; Y int }\nfunc F(t T) error { return nil }",
			want: `{"t":{"Y":int}}`,
		},
		{
			name: "recursive references count enclosing composites",
			src:  "type Node struct{ Next *Node; Kids []Node }\nfunc F(n Node) error { return nil }",
			want: `{"n":{"Kids":[]rec(2),"Next":*rec(2)}}`,
		},
		{
			name: "recursion through named and unnamed composites",
			src:  "type List []*Tree\ntype Tree struct{ Kids List; Index map[string]struct{ T *Tree } }\nfunc F(t Tree) error { return nil }",
			want: `{"t":{"Index":map[string]{"T":*rec(4)},"Kids":[]*rec(3)}}`,
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

func TestWireChangesAreClassifiedByTheCompatibilityRules(t *testing.T) {
	tests := []struct {
		name          string
		before, after string
		compatible    bool
	}{
		{"parameter added", "func F(to string) error { return nil }", "func F(to string, cc []string) error { return nil }", true},
		{"parameter removed", "func F(to string, cc []string) error { return nil }", "func F(to string) error { return nil }", true},
		{"struct field added", "type A struct{ X int }\nfunc F(a []A) error { return nil }", "type A struct{ X, Y int }\nfunc F(a []A) error { return nil }", true},
		{"omitempty added", "type A struct{ X int }\nfunc F(a A) error { return nil }", "type A struct{ X int `json:\",omitempty\"` }\nfunc F(a A) error { return nil }", true},
		{"recursive type unrolled", "type Node struct{ Kids []Node }\nfunc F(n Node) error { return nil }", "type Node struct{ Kids []Leaf }\ntype Leaf struct{ Kids []Node }\nfunc F(n Node) error { return nil }", true},
		{"parameter type changed", "func F(n int) error { return nil }", "func F(n int64) error { return nil }", false},
		{"string option added", "type A struct{ N int64 }\nfunc F(a A) error { return nil }", "type A struct{ N int64 `json:\",string\"` }\nfunc F(a A) error { return nil }", false},
		{"parameter renamed", "func F(to string) error { return nil }", "func F(recipient string) error { return nil }", false},
		{"json name of a field changed", "type A struct{ Street string }\nfunc F(a A) error { return nil }", "type A struct{ Street string `json:\"street\"` }\nfunc F(a A) error { return nil }", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := wireschema.Parse(description(t, tt.before))
			if err != nil {
				t.Fatal(err)
			}
			after, err := wireschema.Parse(description(t, tt.after))
			if err != nil {
				t.Fatal(err)
			}
			if got := wireschema.Compatible(before, after); got != tt.compatible {
				t.Errorf("Compatible(%s, %s) = %v, want %v; changes: %v", before, after, got, tt.compatible, wireschema.Compare(before, after))
			}
		})
	}
}

func TestCachedDescriptionsAreTheDescriptionsAlone(t *testing.T) {
	// The cache keeps argument types' descriptions across tasks; rec(N) counts are
	// relative, so a recursive type's description fits wherever it is used.
	pkg := typecheck(t, "package p\ntype Node struct{ Kids []Node; Up *Node }\nfunc F(n Node, ns []Node) error { return nil }\nfunc G(ns []Node, n *Node, m Node) error { return nil }\n")
	var cache typeutil.Map
	for _, fn := range []string{"F", "G", "F"} {
		fields := funcParams(t, pkg, fn)
		cached, err := argsWire(fields, &cache)
		if err != nil {
			t.Fatal(err)
		}
		alone, err := argsWire(fields, nil)
		if err != nil {
			t.Fatal(err)
		}
		if cached != alone {
			t.Errorf("%s: with the cache %s, alone %s", fn, cached, alone)
		}
	}
	got, err := argsWire(funcParams(t, pkg, "G"), &cache)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"m":{"Kids":[]rec(2),"Up":*rec(2)},"n":*{"Kids":[]rec(2),"Up":*rec(2)},"ns":[]{"Kids":[]rec(2),"Up":*rec(2)}}`; got != want {
		t.Errorf("description of G = %s, want %s", got, want)
	}
}

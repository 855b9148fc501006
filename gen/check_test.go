package gen

import (
	"strings"
	"testing"
)

// argumentProblems checks every parameter of F in src as an argument.
func argumentProblems(t *testing.T, src string) []string {
	t.Helper()
	pkg := typecheck(t, "package p\n"+src)
	var problems []string
	for _, f := range funcParams(t, pkg, "F") {
		problems = append(problems, checkArgument(pkg, f.name, true, f.typ)...)
	}
	return problems
}

func TestSerializableArgumentsPassTheCheck(t *testing.T) {
	tests := []struct{ name, src string }{
		{"basic types", "func F(b bool, i int, i8 int8, u64 uint64, f float64, s string, r rune, by byte) error { return nil }"},
		{"named basic types", "type ID string\ntype Level int\nfunc F(id ID, l Level) error { return nil }"},
		{"bytes, time and durations", "import \"time\"\nfunc F(b []byte, at time.Time, d time.Duration) error { return nil }"},
		{"slices, arrays and pointers", "func F(a []string, b [3][2]int, c *int, d []*string, e **int) error { return nil }"},
		{"maps with string and integer keys", "type K string\nfunc F(a map[string]int, b map[int64]string, c map[K]bool, d map[uint8][]int) error { return nil }"},
		{"maps with text marshaler keys", "import \"net/netip\"\nfunc F(m map[netip.Addr]string) error { return nil }"},
		{"nested exported structs", "type A struct{ B B; Bs []B }\ntype B struct{ C *C }\ntype C struct{ X int `json:\"x,omitempty\"` }\nfunc F(a A) error { return nil }"},
		{"unexported fields tagged json:\"-\"", "type A struct{ X int; cache map[string]int `json:\"-\"`; Hook func() `json:\"-\"` }\nfunc F(a A) error { return nil }"},
		{"embedded structs, exported or not", "type base struct{ ID int }\ntype Meta struct{ V int }\ntype A struct{ base; *Meta; X int }\nfunc F(a A) error { return nil }"},
		{"recursive types", "type Node struct{ Kids []Node; Next *Node; ByName map[string]*Node }\nfunc F(n Node) error { return nil }"},
		{"json marshalers", "import \"encoding/json\"\nfunc F(r json.RawMessage, n json.Number) error { return nil }"},
		{"text marshalers from other packages", "import (\"net/netip\"; \"math/big\")\nfunc F(a netip.Addr, p netip.Prefix, n *big.Int, f *big.Float) error { return nil }"},
		{"marshalers with private fields", "type M struct{ c int }\nfunc (M) MarshalText() ([]byte, error) { return nil, nil }\nfunc (*M) UnmarshalText([]byte) error { return nil }\nfunc F(m M, ms []M, mm map[string]M) error { return nil }"},
		{"pointer-receiver marshalers behind pointers and in slices", "import \"math/big\"\nfunc F(xs []big.Int, p *big.Int, ps map[string]*big.Int) error { return nil }"},
		{"generic struct instances", "type Pair[K comparable, V any] struct{ Key K; Value V }\nfunc F(p Pair[string, []int]) error { return nil }"},
		{"anonymous structs", "func F(a struct{ X int; Y []string }) error { return nil }"},
		{"empty struct", "func F(a struct{}) error { return nil }"},
		{"an embedded time.Time alone", "import \"time\"\ntype Stamp struct{ time.Time }\nfunc F(s Stamp, p *Stamp) error { return nil }"},
		{"an embedded time.Time with the struct's own marshaling methods", "import \"time\"\ntype E struct{ time.Time; Note string }\nfunc (E) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc (*E) UnmarshalJSON([]byte) error { return nil }\nfunc F(e E) error { return nil }"},
		{"fields that share a JSON name at different depths or tagged against untagged", "type A struct{ X, Y int }\ntype T struct{ A; X int; Z int `json:\"Y\"`; W int `json:\"-\"` }\ntype U struct{ P int `json:\"q\"`; Q int }\nfunc F(t T, u U) error { return nil }"},
		{"uintptr, as a value, a map key and a quoted field", "type P uintptr\ntype S struct{ N uintptr `json:\",string\"` }\nfunc F(u uintptr, p P, m map[uintptr]string, mp map[P]int, s S) error { return nil }"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if problems := argumentProblems(t, tt.src); len(problems) > 0 {
				t.Errorf("unexpected problems:\n%s", strings.Join(problems, "\n"))
			}
		})
	}
}

func TestUnserializableArgumentsAreReportedByFieldPath(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // one substring per expected problem, in order
	}{
		{
			name: "func deep inside, with the lifespan hint",
			src:  "type Step struct{ Hook func() error }\ntype Options struct{ In []Step }\nfunc F(o Options) error { return nil }",
			want: []string{"argument o: o.In[].Hook is a func; make it a lifespan parameter (lifespan=o) if it is worker state, not data"},
		},
		{
			name: "interfaces",
			src:  "import \"io\"\nfunc F(r io.Reader, a any, e error) error { return nil }",
			want: []string{"r is an interface (io.Reader)", "a is an interface (any)", "e is an interface (error)"},
		},
		{
			name: "channels, unsafe pointers, complex numbers",
			src:  "import \"unsafe\"\nfunc F(c chan int, p unsafe.Pointer, z complex64) error { return nil }",
			want: []string{"c is a channel", "p is an unsafe.Pointer", "z is a complex number (complex64)"},
		},
		{
			name: "map keys",
			src:  "type P struct{ X int }\nfunc F(a map[P]int, b map[float64]int, c map[[2]int]int, d map[bool]int) error { return nil }",
			want: []string{"a has map key type P", "b has map key type float64", "c has map key type [2]int", "d has map key type bool"},
		},
		{
			name: "unexported fields, also behind embedding",
			src:  "type inner struct{ y int }\ntype A struct{ X int; secret string; inner }\nfunc F(a A) error { return nil }",
			want: []string{"a.secret is an unexported field", "a.inner.y is an unexported field"},
		},
		{
			name: "embedded pointer to an unexported struct",
			src:  "type inner struct{ Y int }\ntype A struct{ *inner }\nfunc F(a A) error { return nil }",
			want: []string{"a.inner is an embedded pointer to the unexported struct type inner"},
		},
		{
			name: "embedded unexported non-struct type",
			src:  "type level int\ntype A struct{ level }\nfunc F(a A) error { return nil }",
			want: []string{"a.level is an unexported field"},
		},
		{
			name: "marshaler without unmarshaler",
			src:  "type M struct{}\nfunc (M) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc F(m M) error { return nil }",
			want: []string{"m is M, which implements json.Marshaler but not json.Unmarshaler"},
		},
		{
			name: "unmarshaler without marshaler",
			src:  "type M struct{ X int }\nfunc (*M) UnmarshalJSON([]byte) error { return nil }\nfunc F(m M) error { return nil }",
			want: []string{"m is M, which implements json.Unmarshaler but not json.Marshaler"},
		},
		{
			name: "mixed pairs",
			src:  "type M struct{}\nfunc (M) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc (*M) UnmarshalText([]byte) error { return nil }\nfunc F(m M) error { return nil }",
			want: []string{"m is M, which is marshaled with MarshalJSON but unmarshaled with UnmarshalText"},
		},
		{
			name: "pointer-receiver marshaler on a value encoding/json cannot address",
			src:  "import \"math/big\"\nfunc F(n big.Int, m map[string]big.Int) error { return nil }",
			want: []string{"n is big.Int, whose MarshalJSON method has a pointer receiver", "m[] is big.Int, whose MarshalJSON method has a pointer receiver"},
		},
		{
			name: "time.Time embedded twice loses its marshaler and its data",
			src:  "import \"time\"\ntype A struct{ time.Time }\ntype B struct{ time.Time }\ntype T struct{ A; B }\nfunc F(t T) error { return nil }",
			want: []string{"t.A.Time.wall is an unexported field", "t.A.Time.ext is an unexported field", "t.A.Time.loc is an unexported field", "t.B.Time.wall", "t.B.Time.ext", "t.B.Time.loc"},
		},
		{
			name: "untagged fields that tie for a JSON name",
			src:  "type A struct{ X int }\ntype B struct{ X string }\ntype T struct{ A; B; Y int }\nfunc F(t T) error { return nil }",
			want: []string{`argument t: t.A.X and t.B.X have the same JSON name "X" at the same depth, so encoding/json would silently drop both; give each its own name with a json tag`},
		},
		{
			name: "tagged fields that tie for a JSON name",
			src:  "type T struct{ A int `json:\"x\"`; B int `json:\"x,omitempty\"`; C int `json:\"x\"` }\nfunc F(t T) error { return nil }",
			want: []string{`t.A, t.B and t.C have the same JSON name "x" at the same depth`},
		},
		{
			name: "a struct embedded twice at the same depth",
			src:  "type C struct{ X int }\ntype A struct{ C }\ntype B struct{ C }\ntype T struct{ A; B }\nfunc F(t T) error { return nil }",
			want: []string{"t.A.C.X is promoted through two embedded fields of the same type at the same depth"},
		},
		{
			name: "a marshaler promoted from an embedded time.Time drops the other fields",
			src:  "import \"time\"\ntype E struct{ time.Time; Note string; N int `json:\"n\"`; skip int `json:\"-\"` }\nfunc F(e E, es []E) error { return nil }",
			want: []string{
				"argument e: e is E, which gets MarshalJSON from its embedded time.Time, so encoding/json would encode only that and silently drop e.Note and e.N; make the embedded field a named field, or declare MarshalJSON and UnmarshalJSON on E",
				"es[] is E, which gets MarshalJSON from its embedded time.Time",
			},
		},
		{
			name: "an unmarshaler promoted from an embedded field drops the other fields on the way back",
			src:  "import \"time\"\ntype E struct{ *time.Time; Note string }\nfunc (E) MarshalJSON() ([]byte, error) { return nil, nil }\nfunc F(e E) error { return nil }",
			want: []string{"e is E, which gets UnmarshalJSON from its embedded *time.Time, so encoding/json would decode only that and silently drop e.Note"},
		},
		{
			name: "a text marshaler promoted from an embedded non-struct type",
			src:  "import \"net\"\ntype Host struct{ net.IP; Port int }\ntype Outer struct{ Host }\nfunc F(h Host, o Outer) error { return nil }",
			want: []string{"h is Host, which gets MarshalText from its embedded net.IP, so encoding/json would encode only that and silently drop h.Port", "o is Outer, which gets MarshalText from its embedded net.IP, so encoding/json would encode only that and silently drop o.Host.Port"},
		},
		{
			name: "recursive type reports its bad field once",
			src:  "type Node struct{ Kids []*Node; Visit func(*Node) }\nfunc F(n Node) error { return nil }",
			want: []string{"n.Visit is a func"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			problems := argumentProblems(t, tt.src)
			if len(problems) != len(tt.want) {
				t.Fatalf("got %d problems, want %d:\n%s", len(problems), len(tt.want), strings.Join(problems, "\n"))
			}
			for i, want := range tt.want {
				if !strings.Contains(problems[i], want) {
					t.Errorf("problem %d = %q, want it to contain %q", i, problems[i], want)
				}
			}
		})
	}
}

func TestUnserializableResultsAreReportedWithoutTheLifespanHint(t *testing.T) {
	pkg := typecheck(t, "package p\ntype R struct{ Done chan struct{} }\nfunc F() (R, error) { return R{}, nil }")
	problems := checkResult(pkg, funcResult(t, pkg, "F"))
	want := "result R: result.Done is a channel; a task result is stored as JSON, so it must be data"
	if len(problems) != 1 || problems[0] != want {
		t.Errorf("problems = %q, want [%q]", problems, want)
	}
}

package wireschema

import (
	"errors"
	"strings"
	"testing"
)

func mustParse(t testing.TB, desc string) *Type {
	t.Helper()
	typ, err := Parse(desc)
	if err != nil {
		t.Fatalf("Parse(%q): %v", desc, err)
	}
	return typ
}

func TestParseAcceptsTheGrammarAndStringWritesTheCanonicalForm(t *testing.T) {
	tests := []struct {
		name, desc, canonical string
	}{
		{"empty argument list", `{}`, `{}`},
		{"basic types", `{"b":bool,"f":float64,"i":int,"s":string,"u":uintptr}`, ``},
		{"fields sorted by name", `{"to":string,"name":string}`, `{"name":string,"to":string}`},
		{"nested objects sorted too", `{"o":{"z":int,"a":{"y":int,"x":int}}}`, `{"o":{"a":{"x":int,"y":int},"z":int}}`},
		{"byte order: upper case first", `{"b":int,"B":int,"_":int}`, `{"B":int,"_":int,"b":int}`},
		{"bytes and time", `{"at":time,"raw":bytes}`, ``},
		{"marshalers", `{"a":marshaler(net/netip.Addr),"p":*marshaler(math/big.Int)}`, ``},
		{"generic marshaler", `{"g":marshaler(example.com/p.Opt[map[string]example.com/p.T])}`, ``},
		{"marshaler with a tag holding a parenthesis", `{"s":marshaler(struct{example.com/p.M "json:\")\""})}`, ``},
		{"containers", `{"a":[3]int,"m":map[int64][]*string,"s":[]bytes}`, ``},
		{"empty array", `{"a":[0]int}`, ``},
		{"map keys", `{"a":map[string]int,"b":map[uint16]bool,"c":map[marshaler(net/netip.Addr)]string}`, ``},
		{"options", `{"n",omitempty,omitzero,string:int64,"z",omitzero:[]int}`, ``},
		{"recursion", `{"n":{"Next":*rec(2),"Kids":[]rec(2)}}`, `{"n":{"Kids":[]rec(2),"Next":*rec(2)}}`},
		{"recursion to the top", `{"self":*rec(2)}`, ``},
		{"names that need escapes", `{"a\"b":int,"\t":int,"é":int}`, `{"\t":int,"a\"b":int,"é":int}`},
		{"a description need not be an object", `[]int`, ``},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.canonical
			if want == "" {
				want = tt.desc
			}
			if got := mustParse(t, tt.desc).String(); got != want {
				t.Errorf("String() = %s, want %s", got, want)
			}
			if got, err := Canonical(tt.desc); err != nil || got != want {
				t.Errorf("Canonical = %s, %v; want %s", got, err, want)
			}
		})
	}
}

func TestParseRefusesWhatTheGrammarDoesNotSayWithAnOffset(t *testing.T) {
	tests := []struct {
		name, desc string
		offset     int
		msg        string
	}{
		{"empty", ``, 0, "unexpected end of description"},
		{"space", `{"a": int}`, 5, "unexpected ' '"},
		{"unknown type", `{"a":integer}`, 5, `unknown type "integer"`},
		{"upper-case type", `{"a":String}`, 5, `unexpected 'S'`},
		{"invalid from an unserializable type", `{"f":invalid(func())}`, 5, `unknown type "invalid"`},
		{"unquoted name", `{a:int}`, 1, "want a quoted field name"},
		{"name quoted with backquotes", "{`a`:int}", 1, "want a quoted field name"},
		{"name quoted another way", `{"\x61":int}`, 1, `write "a"`},
		{"unterminated name", `{"a:int}`, 1, "unterminated or malformed field name"},
		{"duplicate name", `{"a":int,"a":string}`, 9, `field "a" appears twice (first at offset 1)`},
		{"options out of order", `{"a",string,omitempty:int}`, 11, "unknown or misplaced field option"},
		{"unknown option", `{"a",required:int}`, 4, "unknown or misplaced field option"},
		{"missing colon", `{"a"int}`, 4, `want ":" and the type of field "a"`},
		{"trailing comma", `{"a":int,}`, 9, "want a quoted field name"},
		{"missing brace", `{"a":int`, 8, `want "," or "}"`},
		{"trailing text", `{}{}`, 2, "after the description"},
		{"array length with a leading zero", `[03]int`, 1, "write it as 3"},
		{"negative array length", `[-1]int`, 1, "want an array length"},
		{"huge array length", `[99999999999999999999]int`, 1, "out of range"},
		{"bool map key", `map[bool]int`, 4, "map key bool"},
		{"object map key", `map[{}]int`, 4, "map key {}"},
		{"rec zero", `[]rec(0)`, 6, "at least 1"},
		{"rec outside", `{"a":*rec(3)}`, 6, "rec(3) refers outside the description: only 2 composite type(s) enclose it"},
		{"rec at the top", `rec(1)`, 0, "only 0 composite"},
		{"unterminated marshaler", `{"a":marshaler(p.T`, 5, "unterminated marshaler"},
		{"marshaler closed by a brace", `{"a":marshaler(p.T}`, 18, "unbalanced '}'"},
		{"unbalanced marshaler", `marshaler(p.T[int)`, 17, `unbalanced ')'`},
		{"empty marshaler", `marshaler()`, 10, "want the Go type of the marshaler"},
		{"marshaler with a newline", "marshaler(p.\nT)", 12, "control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.desc)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("Parse(%q) = %v, want a *SyntaxError", tt.desc, err)
			}
			if se.Offset != tt.offset || !strings.Contains(se.Msg, tt.msg) {
				t.Errorf("Parse(%q): offset %d, %q; want offset %d and a message containing %q", tt.desc, se.Offset, se.Msg, tt.offset, tt.msg)
			}
			if !strings.HasPrefix(err.Error(), "wire description: offset ") {
				t.Errorf("error %q does not say where", err)
			}
		})
	}
}

func TestParseRefusesNestingBeyondTheLimit(t *testing.T) {
	deep := strings.Repeat("[]", maxNesting+1) + "int"
	if _, err := Parse(deep); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Errorf("Parse of %d nested slices = %v, want a nesting error", maxNesting+1, err)
	}
	if _, err := Parse(strings.Repeat("[]", maxNesting) + "int"); err != nil {
		t.Errorf("Parse of %d nested slices: %v", maxNesting, err)
	}
}

func TestStringDoesNotReorderTheFieldsOfAType(t *testing.T) {
	typ := &Type{Kind: Object, Fields: []Field{
		{Name: "to", Type: &Type{Kind: Basic, Name: "string"}},
		{Name: "name", Type: &Type{Kind: Basic, Name: "string"}},
	}}
	if got, want := typ.String(), `{"name":string,"to":string}`; got != want {
		t.Errorf("String() = %s, want %s", got, want)
	}
	if typ.Fields[0].Name != "to" {
		t.Errorf("String sorted the Fields of the Type it was called on: %+v", typ.Fields)
	}
}

func TestFingerprintIsVersionedAndHashesTheText(t *testing.T) {
	got := Fingerprint(`{"name":string,"to":string}`)
	if len(got) != len("v2:")+16 || !strings.HasPrefix(got, "v2:") || strings.Trim(got[3:], "0123456789abcdef") != "" {
		t.Errorf("Fingerprint = %q, want v2: and 16 lower-case hex digits", got)
	}
	if Fingerprint(`{"to":string}`) == got {
		t.Error("two descriptions have one fingerprint")
	}
	// Pinned (sha256sum of the text, cut to 16 digits): a change of the hash or of the
	// prefix changes every generated file and must be deliberate.
	if got, want := Fingerprint(`{"name":string,"to":string}`), "v2:1c1558744ece03f1"; got != want {
		t.Errorf("Fingerprint = %s, want %s", got, want)
	}
}

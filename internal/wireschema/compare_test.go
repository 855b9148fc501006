package wireschema

import (
	"slices"
	"strings"
	"testing"
)

func TestCompareFollowsTheCompatibilityRules(t *testing.T) {
	tests := []struct {
		name     string
		old, new string
		want     []Change
	}{
		// Compatible.
		{
			name: "same description",
			old:  `{"name":string,"to":string}`, new: `{"name":string,"to":string}`,
		},
		{
			name: "parameters reordered",
			old:  `{"to":string,"name":string}`, new: `{"name":string,"to":string}`,
		},
		{
			name: "struct fields reordered deep inside",
			old:  `{"o":[]{"y":int,"x":*{"b":int,"a":int}}}`, new: `{"o":[]{"x":*{"a":int,"b":int},"y":int}}`,
		},
		{
			name: "parameter added",
			old:  `{"to":string}`, new: `{"cc":[]string,"to":string}`,
			want: []Change{{Path: "cc", Kind: Added, New: "[]string"}},
		},
		{
			name: "parameter removed",
			old:  `{"cc":[]string,"to":string}`, new: `{"to":string}`,
			want: []Change{{Path: "cc", Kind: Removed, Old: "[]string"}},
		},
		{
			name: "field added to the elements of a slice",
			old:  `{"items":[]{"sku":string}}`, new: `{"items":[]{"qty":int,"sku":string}}`,
			want: []Change{{Path: "items[].qty", Kind: Added, New: "int"}},
		},
		{
			name: "field removed from the values of a map behind a pointer",
			old:  `{"m":*map[string]{"x":int,"y":bool}}`, new: `{"m":*map[string]{"x":int}}`,
			want: []Change{{Path: "m[string].y", Kind: Removed, Old: "bool"}},
		},
		{
			name: "omitempty and omitzero changed",
			old:  `{"o":{"a",omitempty:int,"b":[]int}}`, new: `{"o":{"a":int,"b",omitzero:[]int}}`,
		},
		{
			name: "recursive type unrolled once",
			old:  `{"n":{"Kids":[]rec(2)}}`, new: `{"n":{"Kids":[]{"Kids":[]rec(4)}}}`,
		},
		{
			name: "field added to a recursive type, reported once",
			old:  `{"n":{"Kids":[]rec(2)}}`, new: `{"n":{"Kids":[]rec(2),"v":int}}`,
			want: []Change{{Path: "n.v", Kind: Added, New: "int"}},
		},

		// Breaking.
		{
			name: "parameter type changed",
			old:  `{"to":string}`, new: `{"to":int}`,
			want: []Change{{Path: "to", Kind: TypeChanged, Old: "string", New: "int"}},
		},
		{
			name: "int became int64",
			old:  `{"n":int}`, new: `{"n":int64}`,
			want: []Change{{Path: "n", Kind: TypeChanged, Old: "int", New: "int64"}},
		},
		{
			name: "value became a pointer",
			old:  `{"n":int}`, new: `{"n":*int}`,
			want: []Change{{Path: "n", Kind: TypeChanged, Old: "int", New: "*int"}},
		},
		{
			name: "field type changed inside a struct behind a pointer",
			old:  `{"opts":*{"limit":int}}`, new: `{"opts":*{"limit":int64}}`,
			want: []Change{{Path: "opts.limit", Kind: TypeChanged, Old: "int", New: "int64"}},
		},
		{
			name: "field type changed in the elements of a slice",
			old:  `{"items":[]{"sku":string}}`, new: `{"items":[]{"sku":int}}`,
			want: []Change{{Path: "items[].sku", Kind: TypeChanged, Old: "string", New: "int"}},
		},
		{
			name: "field type changed in the values of a map",
			old:  `{"m":map[string]{"x":int}}`, new: `{"m":map[string]{"x":string}}`,
			want: []Change{{Path: "m[string].x", Kind: TypeChanged, Old: "int", New: "string"}},
		},
		{
			name: "field type changed in an array of one length",
			old:  `{"a":[2]{"x":int}}`, new: `{"a":[2]{"x":uint}}`,
			want: []Change{{Path: "a[].x", Kind: TypeChanged, Old: "int", New: "uint"}},
		},
		{
			name: "array length changed",
			old:  `{"a":[2]{"x":int}}`, new: `{"a":[3]{"x":int}}`,
			want: []Change{{Path: "a", Kind: TypeChanged, Old: `[2]{"x":int}`, New: `[3]{"x":int}`}},
		},
		{
			name: "map key changed",
			old:  `{"m":map[string]int}`, new: `{"m":map[int]int}`,
			want: []Change{{Path: "m", Kind: TypeChanged, Old: "map[string]int", New: "map[int]int"}},
		},
		{
			name: "slice elements changed type",
			old:  `{"xs":[]int}`, new: `{"xs":[]string}`,
			want: []Change{{Path: "xs", Kind: TypeChanged, Old: "[]int", New: "[]string"}},
		},
		{
			name: "slice of objects became a pointer to one",
			old:  `{"o":[]{"a":int}}`, new: `{"o":*{"a":int}}`,
			want: []Change{{Path: "o", Kind: TypeChanged, Old: `[]{"a":int}`, New: `*{"a":int}`}},
		},
		{
			name: "string option added",
			old:  `{"o":{"n":int64}}`, new: `{"o":{"n",string:int64}}`,
			want: []Change{{Path: "o.n", Kind: TypeChanged, Old: "int64", New: ",string:int64"}},
		},
		{
			name: "string option removed, omitempty added",
			old:  `{"o":{"n",string:int64}}`, new: `{"o":{"n",omitempty:int64}}`,
			want: []Change{{Path: "o.n", Kind: TypeChanged, Old: ",string:int64", New: "int64"}},
		},
		{
			name: "another marshaler",
			old:  `{"a":marshaler(net/netip.Addr)}`, new: `{"a":marshaler(net/netip.AddrPort)}`,
			want: []Change{{Path: "a", Kind: TypeChanged, Old: "marshaler(net/netip.Addr)", New: "marshaler(net/netip.AddrPort)"}},
		},
		{
			name: "object became a basic type",
			old:  `{"o":{"a":int}}`, new: `{"o":string}`,
			want: []Change{{Path: "o", Kind: TypeChanged, Old: `{"a":int}`, New: "string"}},
		},
		{
			name: "field type changed inside a recursive type, reported once",
			old:  `{"n":{"Kids":[]rec(2),"v":int}}`, new: `{"n":{"Kids":[]rec(2),"v":string}}`,
			want: []Change{{Path: "n.v", Kind: TypeChanged, Old: "int", New: "string"}},
		},
		{
			name: "recursion ended: the description at the path repeats what it refers to",
			old:  `{"n":{"Next":*rec(2)}}`, new: `{"n":{"Next":*{}}}`,
			want: []Change{{Path: "n.Next.Next", Kind: Removed, Old: `*{"Next":rec(2)}`}},
		},
		{
			name: "the whole value changed",
			old:  `[]int`, new: `[]string`,
			want: []Change{{Path: "", Kind: TypeChanged, Old: "[]int", New: "[]string"}},
		},
		{
			name: "names that need quoting in a path",
			old:  `{"a.b":{"":int}}`, new: `{"a.b":{"":string}}`,
			want: []Change{{Path: `"a.b".""`, Kind: TypeChanged, Old: "int", New: "string"}},
		},

		// Probable renames.
		{
			name: "parameter renamed",
			old:  `{"to":string}`, new: `{"recipient":string}`,
			want: []Change{{Path: "to", Kind: Renamed, Old: "string", New: "string", NewPath: "recipient"}},
		},
		{
			name: "field renamed inside a slice",
			old:  `{"items":[]{"sku":string}}`, new: `{"items":[]{"code":string}}`,
			want: []Change{{Path: "items[].sku", Kind: Renamed, Old: "string", New: "string", NewPath: "items[].code"}},
		},
		{
			name: "renamed object: identical up to omitempty",
			old:  `{"o":{"a",omitempty:int}}`, new: `{"p":{"a":int}}`,
			want: []Change{{Path: "o", Kind: Renamed, Old: `{"a",omitempty:int}`, New: `{"a":int}`, NewPath: "p"}},
		},
		{
			name: "several candidates pair in name order",
			old:  `{"b":int,"a":int,"keep":bool}`, new: `{"d":int,"c":int,"keep":bool}`,
			want: []Change{
				{Path: "a", Kind: Renamed, Old: "int", New: "int", NewPath: "c"},
				{Path: "b", Kind: Renamed, Old: "int", New: "int", NewPath: "d"},
			},
		},
		{
			name: "only identical types pair",
			old:  `{"a":int,"b":string}`, new: `{"c":string}`,
			want: []Change{
				{Path: "a", Kind: Removed, Old: "int"},
				{Path: "b", Kind: Renamed, Old: "string", New: "string", NewPath: "c"},
			},
		},
		{
			name: "string option must match too",
			old:  `{"o":{"a",string:int}}`, new: `{"o":{"b":int}}`,
			want: []Change{
				{Path: "o.a", Kind: Removed, Old: ",string:int"},
				{Path: "o.b", Kind: Added, New: "int"},
			},
		},
		{
			name: "removed and added fields of different types",
			old:  `{"to":string}`, new: `{"recipients":[]string}`,
			want: []Change{
				{Path: "recipients", Kind: Added, New: "[]string"},
				{Path: "to", Kind: Removed, Old: "string"},
			},
		},
		{
			name: "fields of different objects do not pair",
			old:  `{"a":{"x":int},"b":{}}`, new: `{"a":{},"b":{"y":int}}`,
			want: []Change{
				{Path: "a.x", Kind: Removed, Old: "int"},
				{Path: "b.y", Kind: Added, New: "int"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(mustParse(t, tt.old), mustParse(t, tt.new))
			if !slices.Equal(got, tt.want) {
				t.Errorf("Compare(%s, %s) =\n%s\nwant\n%s", tt.old, tt.new, changeLines(got), changeLines(tt.want))
			}
			breaking := slices.ContainsFunc(tt.want, Change.Breaking)
			if compatible := Compatible(mustParse(t, tt.old), mustParse(t, tt.new)); compatible == breaking {
				t.Errorf("Compatible = %v, want %v", compatible, !breaking)
			}
		})
	}
}

func changeLines(cs []Change) string {
	if len(cs) == 0 {
		return "\t(none)"
	}
	var lines []string
	for _, c := range cs {
		lines = append(lines, "\t"+c.String()+"\t"+strings.Join([]string{c.Path, c.Kind.String(), c.Old, c.New, c.NewPath}, " | "))
	}
	return strings.Join(lines, "\n")
}

func TestOnlyTypeChangesAndRenamesBreak(t *testing.T) {
	for kind, want := range map[ChangeKind]bool{Added: false, Removed: false, TypeChanged: true, Renamed: true} {
		if got := (Change{Kind: kind}).Breaking(); got != want {
			t.Errorf("Change{Kind: %s}.Breaking() = %v, want %v", kind, got, want)
		}
	}
}

func TestCompareTerminatesOnMutuallyRecursiveTypes(t *testing.T) {
	// A tree whose nodes alternate between two shapes, against one whose nodes refer to
	// themselves: every pair of nodes recurs, and each difference is reported once.
	old := mustParse(t, `{"t":{"kids":[]{"kids":[]rec(4),"leaf":bool},"n":int}}`)
	new := mustParse(t, `{"t":{"kids":[]rec(2),"n":int64}}`)
	got := Compare(old, new)
	want := []Change{
		{Path: "t.kids[].leaf", Kind: Removed, Old: "bool"},
		{Path: "t.kids[].n", Kind: Added, New: "int64"},
		{Path: "t.n", Kind: TypeChanged, Old: "int", New: "int64"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("Compare =\n%s\nwant\n%s", changeLines(got), changeLines(want))
	}
}

func TestChangeStringSaysWhatChanged(t *testing.T) {
	tests := []struct {
		c    Change
		want string
	}{
		{Change{Path: "cc", Kind: Added, New: "[]string"}, "cc added ([]string)"},
		{Change{Path: "cc", Kind: Removed, Old: "[]string"}, "cc removed ([]string)"},
		{Change{Path: "opts.limit", Kind: TypeChanged, Old: "int", New: "int64"}, "opts.limit changed type from int to int64"},
		{Change{Path: "to", Kind: Renamed, Old: "string", New: "string", NewPath: "recipient"}, "to probably renamed to recipient (same type string)"},
		{Change{Kind: TypeChanged, Old: "[]int", New: "int"}, "the whole value changed type from []int to int"},
	}
	for _, tt := range tests {
		if got := tt.c.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}

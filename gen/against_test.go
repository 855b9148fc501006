package gen

import (
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/internal/wireschema"
	"golang.org/x/tools/txtar"
)

// An against case is a txtar archive under ../testdata/against: the code at a revision
// (its generated files only) and the code now, with the report taskgen -check -against
// prints for them. Its comment says what it shows. Its sections are:
//
//   - "old/tasks_gen.go" (or "old/sub/tasks_gen.go"): the generated file of the package
//     in that directory at the revision; a directory with no package now is a package
//     removed since;
//   - "report": the expected report, one line per note ("path:line:col: note: ...")
//     and then per breaking change, paths relative to the case directory; a case
//     without one is a compatible change, which reports nothing;
//   - the other files: the source now, packages of module example.com/golden in
//     directory against/<case>.
//
// The test reads the old files from the archive, not from git: TestAgainstReadsTheRevision
// in cmd/taskgen runs the same comparison on a real repository. go test ./gen -update
// rewrites the reports.
const (
	reportSection = "report"
	oldPrefix     = "old/"
)

// isAgainstSection reports whether a section of an against case is not source now.
func isAgainstSection(name string) bool {
	return name == reportSection || strings.HasPrefix(name, oldPrefix)
}

func TestAgainstGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "testdata", "against", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []*goldenCase
	for _, file := range files {
		ar, err := txtar.ParseFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name := "against/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
		cases = append(cases, &goldenCase{name: name, archive: file, ar: ar, valid: true})
	}
	if len(cases) == 0 {
		t.Fatal("no against cases found in ../testdata/against")
	}
	mod := goldenModuleDir(t, cases)
	pkgs, err := load(mod, goldenEnv(), nil, []string{"./..."})
	if err != nil {
		t.Fatalf("load the against module: %v", err)
	}
	scans, generated := scanPackages(pkgs)
	outs := map[string][]output{} // by case name
	for _, s := range scans {
		rel := strings.TrimPrefix(s.pkg.PkgPath, goldenModule+"/")
		name := strings.Join(strings.SplitN(rel, "/", 3)[:2], "/")
		src, defs, loadErrs, declErrs := s.generate(mod, DefaultOutput, nil, generated, nil)
		if errs := append(loadErrs, declErrs...); len(errs) > 0 {
			t.Fatalf("%s: the source now must generate: %v", rel, errs)
		}
		outs[name] = append(outs[name], output{pkgPath: s.pkg.PkgPath, dir: s.pkg.Dir, tasks: len(s.dirs) > 0, src: src, defs: defs})
	}

	for _, c := range cases {
		caseDir := filepath.Join(mod, filepath.FromSlash(c.name))
		got := againstReport(t, caseDir, c, outs[c.name])
		if *update {
			updateReport(t, c, got)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			want := ""
			for _, f := range c.ar.Files {
				if f.Name == reportSection {
					want = string(f.Data)
				}
			}
			if got != want {
				t.Errorf("report differs (go test ./gen -run TestAgainstGolden -update rewrites it)\n--- got:\n%s--- want:\n%s", got, want)
			}
		})
	}
}

// againstReport compares the old files of a case with its outputs and writes the report
// as the command prints it.
func againstReport(t *testing.T, caseDir string, c *goldenCase, outs []output) string {
	t.Helper()
	var files []*oldFile
	for _, f := range c.ar.Files {
		rel, ok := strings.CutPrefix(f.Name, oldPrefix)
		if !ok {
			continue
		}
		if path.Base(rel) != DefaultOutput {
			t.Fatalf("%s: section %s: old files are generated files, %s", c.name, f.Name, DefaultOutput)
		}
		abs := filepath.Join(caseDir, filepath.FromSlash(rel))
		file := &oldFile{name: rel, path: abs, content: f.Data}
		for i := range outs {
			if outs[i].dir == filepath.Dir(abs) {
				file.out = &outs[i]
			}
		}
		files = append(files, file)
	}
	breaking, notes, err := compareGenerated("REF", files, outs)
	if err != nil {
		t.Fatalf("%s: %v", c.name, err)
	}
	var b strings.Builder
	for _, list := range []struct {
		errs   []Error
		prefix string
	}{{notes, "note: "}, {breaking, ""}} {
		for _, e := range list.errs {
			if rel, err := filepath.Rel(caseDir, e.Pos.Filename); err == nil && filepath.IsAbs(e.Pos.Filename) {
				e.Pos.Filename = filepath.ToSlash(rel)
			}
			e.Msg = list.prefix + e.Msg
			b.WriteString(e.Error() + "\n")
		}
	}
	return b.String()
}

// updateReport rewrites the report section of a case.
func updateReport(t *testing.T, c *goldenCase, report string) {
	var files []txtar.File
	for _, f := range c.ar.Files {
		if f.Name != reportSection {
			files = append(files, f)
		}
	}
	if report != "" {
		files = append(files, txtar.File{Name: reportSection, Data: []byte(report)})
	}
	c.ar.Files = files
	if err := os.WriteFile(c.archive, txtar.Format(c.ar), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", c.archive)
}

func TestBreakingMessagesSayWhereAndWhatToDo(t *testing.T) {
	tests := []struct {
		name string
		c    wireschema.Change
		want string
	}{
		{
			name: "parameter type changed",
			c:    wireschema.Change{Path: "to", Kind: wireschema.TypeChanged, Old: "string", New: "int"},
			want: `task email.send_welcome: parameter "to" changed type from string to int: queued tasks cannot be decoded by the new worker; ship the change as a new kind (email.send_welcome.v2) and keep the old function registered until its queue drains`,
		},
		{
			name: "nested field type changed",
			c:    wireschema.Change{Path: "opts.filters[].min", Kind: wireschema.TypeChanged, Old: "int32", New: ",string:int32"},
			want: `task email.send_welcome: field opts.filters[].min of parameter "opts" changed type from int32 to int32 written as a JSON string (,string): queued tasks cannot be decoded by the new worker; ship the change as a new kind (email.send_welcome.v2) and keep the old function registered until its queue drains`,
		},
		{
			name: "parameter renamed",
			c:    wireschema.Change{Path: "to", Kind: wireschema.Renamed, Old: "string", New: "string", NewPath: "recipient"},
			want: `task email.send_welcome: parameter "to" was probably renamed to "recipient" (same type string): values in queued tasks would be lost; keep the old name (the JSON name is the parameter name) or ship the change as a new kind (email.send_welcome.v2) and keep the old function registered until its queue drains; if it is no rename, add the new parameter in one deploy and remove the old one in a later one`,
		},
		{
			name: "field renamed in map values, with a quoted name",
			c:    wireschema.Change{Path: `m[marshaler(p.K[int])]."a.b"`, Kind: wireschema.Renamed, Old: "int", New: "int", NewPath: `m[marshaler(p.K[int])].c`},
			want: "task email.send_welcome: field m[marshaler(p.K[int])].\"a.b\" of parameter \"m\" was probably renamed to m[marshaler(p.K[int])].c (same type int): values in queued tasks would be lost; keep the old JSON name (a tag keeps it: `json:\"a.b\"`) or ship the change as a new kind (email.send_welcome.v2) and keep the old function registered until its queue drains; if it is no rename, add the new field in one deploy and remove the old one in a later one",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := breakingMessage("email.send_welcome", tt.c); got != tt.want {
				t.Errorf("message =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestNextKindCountsVersions(t *testing.T) {
	for kind, want := range map[string]string{
		"email.send_welcome":     "email.send_welcome.v2",
		"email.send_welcome.v2":  "email.send_welcome.v3",
		"email.send_welcome.v19": "email.send_welcome.v20",
		"email.v2x":              "email.v2x.v2",
	} {
		if got := nextKind(kind); got != want {
			t.Errorf("nextKind(%q) = %q, want %q", kind, got, want)
		}
	}
}

func TestReadGeneratedDefsFindsKindAndWireUnderAnyImportName(t *testing.T) {
	src := "package p\n\nimport task1 \"" + taskPkgPath + "\"\n\n" +
		"var ATask = task1.Def{Kind: \"a\", Queue: \"mail\", Wire: `{\"n\":int}`}\n" +
		"var BTask = task1.Def{Kind: \"b\", Schema: \"v1:0123456789abcdef\"}\n" +
		"var task = struct{ Def int }{}\n" +
		"var Other = other.Def{Kind: \"c\", Wire: `{}`}\n"
	defs, err := readGeneratedDefs("tasks_gen.go", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	want := []oldDef{{kind: "a", wire: `{"n":int}`, hasWire: true, queue: "mail"}, {kind: "b", queue: "default"}}
	if len(defs) != len(want) || defs[0] != want[0] || defs[1] != want[1] {
		t.Errorf("defs = %+v, want %+v", defs, want)
	}
	if _, err := readGeneratedDefs("tasks_gen.go", []byte("package p\nvar x = \n")); err == nil || !strings.Contains(err.Error(), "does not parse") {
		t.Errorf("a file that does not parse: err = %v", err)
	}
}

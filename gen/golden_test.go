package gen

import (
	"bytes"
	"flag"
	"go/format"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/tools/imports"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the expectations of the golden cases in ../testdata")

// A golden case is a txtar archive under ../testdata/valid or ../testdata/invalid. Its
// comment says what it shows. Its files are a package (and, in subdirectories, more
// packages) of module example.com/golden, except for these sections:
//
//   - "tasks_gen.go" (or "sub/tasks_gen.go"): the expected generated file of the package
//     in that directory; every package with tasks must have one, and nothing else may be
//     generated;
//   - "tasks_gen.go.old": written as tasks_gen.go before loading, a stale generated file
//     that must not get in the way;
//   - "errors": the expected errors, one per line, paths relative to the case directory.
//
// A valid case must produce no errors; an invalid one must produce exactly its errors and
// no generated file. All cases are loaded with a single packages.Load, and the generated
// code of all valid cases is compiled and vetted with a single go vet.
const (
	goldenModule  = "example.com/golden"
	expectedFile  = DefaultOutput
	staleFile     = DefaultOutput + ".old"
	errorsSection = "errors"
)

type goldenCase struct {
	name    string // valid/<name> or invalid/<name>
	archive string // path of the .txtar file
	ar      *txtar.Archive
	valid   bool
}

func loadGoldenCases(t *testing.T) []*goldenCase {
	t.Helper()
	var cases []*goldenCase
	for _, kind := range []string{"valid", "invalid"} {
		files, err := filepath.Glob(filepath.Join("..", "testdata", kind, "*.txtar"))
		if err != nil {
			t.Fatal(err)
		}
		for _, file := range files {
			ar, err := txtar.ParseFile(file)
			if err != nil {
				t.Fatal(err)
			}
			name := kind + "/" + strings.TrimSuffix(filepath.Base(file), ".txtar")
			cases = append(cases, &goldenCase{name: name, archive: file, ar: ar, valid: kind == "valid"})
		}
	}
	if len(cases) == 0 {
		t.Fatal("no golden cases found in ../testdata")
	}
	return cases
}

// isExpectation reports whether a section of a case is an expectation, not input.
func isExpectation(name string) bool {
	return name == errorsSection || path.Base(name) == expectedFile
}

// goldenModuleDir writes a module holding every case as a package directory, requiring
// this repository through a replace directive.
func goldenModuleDir(t *testing.T, cases []*goldenCase) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := "1.24"
	if mod, err := os.ReadFile(filepath.Join(root, "go.mod")); err == nil {
		for _, line := range strings.Split(string(mod), "\n") {
			if v, ok := strings.CutPrefix(line, "go "); ok {
				goVersion = strings.TrimSpace(v)
			}
		}
	}
	dir := t.TempDir()
	gomod := "module " + goldenModule + "\n\ngo " + goVersion + "\n\n" +
		"require github.com/taskgen/taskgen v0.0.0\n\n" +
		"replace github.com/taskgen/taskgen => " + root + "\n"
	writeFile(t, filepath.Join(dir, "go.mod"), []byte(gomod))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.sum"), sum)
	for _, c := range cases {
		for _, f := range c.ar.Files {
			switch {
			case isExpectation(f.Name), isAgainstSection(f.Name):
			case f.Name == staleFile:
				writeFile(t, filepath.Join(dir, c.name, expectedFile), f.Data)
			default:
				writeFile(t, filepath.Join(dir, c.name, filepath.FromSlash(f.Name)), f.Data)
			}
		}
	}
	return dir
}

func writeFile(t testing.TB, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(name, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// goldenEnv is the environment of the go command in the golden module: -mod=mod lets it
// add the indirect requirements the small go.mod leaves out, from the module cache.
func goldenEnv() []string {
	return append(os.Environ(), "GOFLAGS="+strings.TrimSpace(os.Getenv("GOFLAGS")+" -mod=mod"), "GOWORK=off")
}

// goldenResult is what the generator produced for one case.
type goldenResult struct {
	outputs map[string][]byte // slash path relative to the case directory → source
	errs    []Error
	errors  []string
}

func TestGolden(t *testing.T) {
	cases := loadGoldenCases(t)
	mod := goldenModuleDir(t, cases)

	pkgs, err := load(mod, goldenEnv(), nil, []string{"./..."})
	if err != nil {
		t.Fatalf("load the golden module: %v", err)
	}
	scans, generated := scanPackages(pkgs)
	tests := testBuildContext(goldenEnv(), nil)
	results := map[string]*goldenResult{}
	for _, c := range cases {
		results[c.name] = &goldenResult{outputs: map[string][]byte{}}
	}
	caseOf := func(pkgPath string) (*goldenCase, string) {
		rel := strings.TrimPrefix(pkgPath, goldenModule+"/")
		for _, c := range cases {
			if rel == c.name || strings.HasPrefix(rel, c.name+"/") {
				return c, strings.TrimPrefix(strings.TrimPrefix(rel, c.name), "/")
			}
		}
		return nil, ""
	}
	for _, s := range scans {
		c, sub := caseOf(s.pkg.PkgPath)
		if c == nil {
			t.Fatalf("package %s belongs to no case", s.pkg.PkgPath)
		}
		res := results[c.name]
		src, _, loadErrs, declErrs := s.generate(mod, DefaultOutput, tests, generated, nil)
		for _, e := range append(loadErrs, declErrs...) {
			if e.Pos.Filename != "" {
				rel, err := filepath.Rel(filepath.Join(mod, c.name), e.Pos.Filename)
				if err == nil {
					e.Pos.Filename = filepath.ToSlash(rel)
				}
			}
			res.errs = append(res.errs, e)
		}
		if src != nil {
			res.outputs[path.Join(sub, expectedFile)] = src
		}
	}

	for _, c := range cases {
		res := results[c.name]
		for _, e := range sortErrors(res.errs) {
			res.errors = append(res.errors, e.Error())
		}
		if *update {
			updateCase(t, c, res)
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			checkCase(t, c, res)
		})
	}

	t.Run("generated code is stable under gofmt and goimports", func(t *testing.T) {
		n := 0
		for _, c := range cases {
			for name, src := range results[c.name].outputs {
				checkFormatStable(t, c.name+"/"+name, src)
				n++
			}
		}
		if n == 0 {
			t.Fatal("no generated file to check")
		}
	})

	t.Run("generated code compiles", func(t *testing.T) {
		var dirs []string
		for _, c := range cases {
			if !c.valid {
				continue
			}
			for name, src := range results[c.name].outputs {
				writeFile(t, filepath.Join(mod, c.name, filepath.FromSlash(name)), src)
			}
			dirs = append(dirs, "./"+c.name+"/...")
		}
		cmd := exec.Command("go", append([]string{"vet"}, dirs...)...)
		cmd.Dir = mod
		cmd.Env = goldenEnv()
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go vet of the generated code failed: %v\n%s", err, out)
		}
	})
}

// checkFormatStable fails unless gofmt (go/format) and goimports (in its format-only mode,
// which groups and sorts imports but never adds or removes one) leave src as it is.
func checkFormatStable(t *testing.T, name string, src []byte) {
	t.Helper()
	gofmt, err := format.Source(src)
	if err != nil {
		t.Errorf("%s: gofmt: %v", name, err)
	} else if !bytes.Equal(gofmt, src) {
		t.Errorf("%s: gofmt changes the generated file:\n%s", name, unifiedDiff("generated", "gofmt", src, gofmt))
	}
	goimports, err := imports.Process(path.Base(name), src, &imports.Options{FormatOnly: true, Comments: true, TabIndent: true, TabWidth: 8})
	if err != nil {
		t.Errorf("%s: goimports: %v", name, err)
	} else if !bytes.Equal(goimports, src) {
		t.Errorf("%s: goimports changes the generated file:\n%s", name, unifiedDiff("generated", "goimports", src, goimports))
	}
}

// checkCase compares what was generated for a case with its expectations.
func checkCase(t *testing.T, c *goldenCase, res *goldenResult) {
	expected := map[string][]byte{}
	var wantErrors []string
	for _, f := range c.ar.Files {
		switch {
		case f.Name == errorsSection:
			for _, line := range strings.Split(strings.TrimSpace(string(f.Data)), "\n") {
				if line != "" {
					wantErrors = append(wantErrors, line)
				}
			}
		case isExpectation(f.Name):
			expected[f.Name] = f.Data
		}
	}
	if got, want := strings.Join(res.errors, "\n"), strings.Join(wantErrors, "\n"); got != want {
		t.Errorf("errors differ (go test ./gen -update rewrites them)\n--- got:\n%s\n--- want:\n%s", got, want)
	}
	if c.valid && len(wantErrors) > 0 {
		t.Errorf("a valid case must not expect errors")
	}
	if !c.valid && len(wantErrors) == 0 {
		t.Errorf("an invalid case must expect errors")
	}
	for name, want := range expected {
		got, ok := res.outputs[name]
		if !ok {
			t.Errorf("%s: expected generated file, got none", name)
			continue
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs (go test ./gen -update rewrites it):\n%s", name, unifiedDiff("want", "got", want, got))
		}
	}
	for name := range res.outputs {
		if _, ok := expected[name]; !ok {
			t.Errorf("%s: generated, but the case expects no such file", name)
		}
	}
}

// updateCase rewrites the expectations of a case with what was generated.
func updateCase(t *testing.T, c *goldenCase, res *goldenResult) {
	var files []txtar.File
	for _, f := range c.ar.Files {
		if !isExpectation(f.Name) {
			files = append(files, f)
		}
	}
	if len(res.errors) > 0 {
		files = append(files, txtar.File{Name: errorsSection, Data: []byte(strings.Join(res.errors, "\n") + "\n")})
	}
	var names []string
	for name := range res.outputs {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		files = append(files, txtar.File{Name: name, Data: res.outputs[name]})
	}
	c.ar.Files = files
	if err := os.WriteFile(c.archive, txtar.Format(c.ar), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("updated %s", c.archive)
}

package gen

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/taskgen/taskgen/internal/taskspec"
	"golang.org/x/tools/go/packages"
)

// loadMode is all the generator needs: names, files, syntax and types of the packages
// themselves. Never NeedDeps: it would parse and type-check every dependency from source
// (the runtime, go-redis, the standard library) on every run, seconds instead of reading
// the export data the go command caches. Types of dependencies come from export data;
// their syntax is never needed. BenchmarkGenerate measures a run against this load alone.
const loadMode = packages.NeedName | packages.NeedFiles | packages.NeedSyntax | packages.NeedTypes | packages.NeedTypesInfo

// buildTag is always set while loading; generated files carry //go:build !taskgen (and
// !generate, for go generate's sake), so a stale or broken generated file never takes
// part.
const buildTag = "taskgen"

// loadConfig is the packages.Config of a run: the generator's loadMode and build flags.
// The build tags are taskgen's, those of GOFLAGS (which a -tags flag on the command line
// would otherwise replace, silently leaving out the files the user's builds include) and
// those of -tags.
func loadConfig(dir string, env []string, tags []string) *packages.Config {
	all := append([]string{buildTag}, goflagsTags(env)...)
	return &packages.Config{
		Mode:       loadMode,
		Dir:        dir,
		Env:        env,
		BuildFlags: []string{"-tags=" + strings.Join(append(all, tags...), ",")},
		Tests:      false,
	}
}

// testBuildContext is the build configuration go test uses to choose a package's test
// files: GOOS, GOARCH and CGO_ENABLED from env (the process environment when nil), and
// the build tags of the run (GOFLAGS' and -tags) without taskgen's own, which only the
// generator sets.
func testBuildContext(env []string, tags []string) *build.Context {
	ctx := build.Default
	for _, kv := range env {
		key, value, _ := strings.Cut(kv, "=")
		switch {
		case value == "":
		case key == "GOOS":
			ctx.GOOS = value
		case key == "GOARCH":
			ctx.GOARCH = value
		case key == "CGO_ENABLED":
			ctx.CgoEnabled = value == "1"
		}
	}
	ctx.BuildTags = append(goflagsTags(env), tags...)
	return &ctx
}

// inPackageTestFiles parses the _test.go files in pkg's directory that go test would
// compile into pkg itself, not into the external package pkg_test. The generator loads
// without tests, so that no test file is ever scanned for tasks, but these files share
// pkg's package block with the generated file, so what they declare can clash with it.
// Parsing them alone, without type checking, costs next to nothing. A file that cannot
// be read or parsed is left for go test to report.
func inPackageTestFiles(pkg *packages.Package, ctx *build.Context) []*ast.File {
	if pkg.Dir == "" {
		return nil
	}
	entries, err := os.ReadDir(pkg.Dir)
	if err != nil {
		return nil
	}
	var files []*ast.File
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := ctx.MatchFile(pkg.Dir, name); err != nil || !ok {
			continue
		}
		f, err := parser.ParseFile(pkg.Fset, filepath.Join(pkg.Dir, name), nil, parser.SkipObjectResolution)
		if err != nil || f.Name.Name != pkg.Name {
			continue
		}
		files = append(files, f)
	}
	return files
}

// goflagsTags returns the build tags set by -tags in GOFLAGS, from env (the process
// environment when env is nil; the last setting wins, as in os/exec).
func goflagsTags(env []string) []string {
	var tags []string
	for _, f := range strings.Fields(lookupEnv(env, "GOFLAGS")) {
		v, ok := strings.CutPrefix(strings.TrimLeft(f, "-"), "tags=")
		if !ok {
			continue
		}
		tags = nil // a later -tags replaces an earlier one, as the go command does
		for _, t := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
			tags = append(tags, t)
		}
	}
	return tags
}

// lookupEnv returns the value of key in env (the process environment when env is nil;
// the last setting wins, as in os/exec), "" when it is not set.
func lookupEnv(env []string, key string) string {
	if env == nil {
		return os.Getenv(key)
	}
	value := ""
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			value = v
		}
	}
	return value
}

// load loads the packages matching patterns, in one go list run (two in parallel for a
// pattern with "..."), sorted by import path.
func load(dir string, env []string, tags []string, patterns []string) ([]*packages.Package, error) {
	cfg := loadConfig(dir, env, tags)
	var hidden []*packages.Package
	var listing sync.WaitGroup
	if hasWildcard(patterns) {
		// Under the taskgen tag, a directory holding only a generated file has no Go
		// files, so "..." does not match it and its orphan would stay, stale, breaking
		// every build. A list without the tag, in parallel, finds such directories.
		listing.Go(func() { hidden = hiddenPackages(dir, env, tags, patterns) })
	}
	pkgs, err := packages.Load(cfg, patterns...)
	listing.Wait()
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		// go/packages drops the go command's stderr when go list fails as a whole and
		// export data is used: a go.mod that needs updating, an unknown Go version, an
		// inconsistent vendor directory all come back as no packages and no error. Ask
		// go list again, only on this path, for its own message.
		if err := goListError(cfg, patterns); err != nil {
			return nil, err
		}
	}
	pkgs = append(pkgs, notIn(hidden, pkgs)...)
	sort.Slice(pkgs, func(i, j int) bool { return pkgs[i].PkgPath < pkgs[j].PkgPath })
	return pkgs, nil
}

// hasWildcard reports whether a pattern matches packages by "...".
func hasWildcard(patterns []string) bool {
	for _, p := range patterns {
		if strings.Contains(p, "...") {
			return true
		}
	}
	return false
}

// hiddenPackages lists the packages matching patterns without the taskgen tag (names and
// files only, which is quick) and returns them as packages whose files the taskgen tag
// excludes, which is what they are when the tagged load does not list them. Errors are
// left to the tagged load.
func hiddenPackages(dir string, env []string, tags []string, patterns []string) []*packages.Package {
	cfg := &packages.Config{Mode: packages.NeedName | packages.NeedFiles, Dir: dir, Env: env}
	if len(tags) > 0 {
		cfg.BuildFlags = []string{"-tags=" + strings.Join(append(goflagsTags(env), tags...), ",")}
	}
	pkgs, err := packages.Load(cfg, patterns...)
	if err != nil {
		return nil
	}
	for _, p := range pkgs {
		p.GoFiles, p.CompiledGoFiles = nil, nil
		p.Errors = []packages.Error{{Kind: packages.ListError, Msg: "build constraints exclude all Go files in " + p.Dir + " (under the taskgen tag)"}}
	}
	return pkgs
}

// notIn returns the packages of extra whose import path is not among pkgs.
func notIn(extra, pkgs []*packages.Package) []*packages.Package {
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.PkgPath] = true
	}
	var out []*packages.Package
	for _, p := range extra {
		if !seen[p.PkgPath] && p.Dir != "" {
			out = append(out, p)
		}
	}
	return out
}

// goCommandError is a failure of the go command as a whole, with its own message.
type goCommandError struct {
	msg string // the go command's stderr, e.g. "go: updates to go.mod needed; ..."
}

func (e *goCommandError) Error() string { return e.msg }

// goListError runs go list the way cfg loads patterns and returns its error message when
// it fails as a whole; nil when it succeeds.
func goListError(cfg *packages.Config, patterns []string) error {
	args := append([]string{"list", "-e", "-f", "{{.ImportPath}}"}, cfg.BuildFlags...)
	args = append(append(args, "--"), patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = cfg.Dir
	env := cfg.Env
	if env == nil {
		env = os.Environ()
	}
	cmd.Env = append(env[:len(env):len(env)], "PWD="+cfg.Dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		return err // nil, or the go command could not be run
	}
	msg := goStderr(stderr.String())
	if msg == "" {
		msg = fmt.Sprintf("go list: %v", err)
	}
	return &goCommandError{msg: msg}
}

// goStderr is the go command's stderr without its progress lines ("go: downloading ..."),
// trimmed.
func goStderr(s string) string {
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(line, "go: downloading ") && !strings.HasPrefix(line, "go: finding ") {
			lines = append(lines, line)
		}
	}
	return strings.TrimSpace(strings.Join(lines, "\n"))
}

// isEmptyPackage reports whether pkg has no Go files to scan under the taskgen tag: a
// directory holding only a generated file, or only tests. Such a package has no tasks;
// its generated file, if any, is an orphan.
func isEmptyPackage(pkg *packages.Package) bool {
	if len(pkg.GoFiles) > 0 || len(pkg.Errors) == 0 {
		return false
	}
	for _, e := range pkg.Errors {
		if e.Kind != packages.ListError {
			return false
		}
		if !strings.Contains(e.Msg, "build constraints exclude all Go files") && !strings.Contains(e.Msg, "no non-test Go files") {
			return false
		}
	}
	return true
}

var (
	// undefinedPattern matches go/types' "undefined: X" and "undefined: p.X".
	undefinedPattern = regexp.MustCompile(`^undefined: (?:([\pL_][\pL\pN_]*)\.)?([\pL_][\pL\pN_]*)(?: \(but have .*\))?$`)
	// notDeclaredPattern matches "X not declared by package p", older compilers' form.
	notDeclaredPattern = regexp.MustCompile(`^(?:name )?([\pL_][\pL\pN_]*) not declared by package ([\pL_][\pL\pN_]*)$`)
)

// loadErrors returns the errors of pkg that are not tolerated: every list, parse and type
// error, except errors about a name that this run generates (for pkg itself, or for a
// package it imports that this run also generates for), and errors about a generated-looking
// name of an imported package outside the run, whose generated file the taskgen build tag
// hides. generated maps import paths of the run's packages to the names generated for them.
// dir is the go command's working directory, which compiler output is relative to.
func loadErrors(pkg *packages.Package, dir string, generated map[string]map[string]bool) []Error {
	var out []Error
	// With syntax errors, the type errors and compiler output are follow-on noise.
	for _, e := range pkg.Errors {
		if e.Kind == packages.ParseError {
			out = append(out, Error{Pos: parsePosition(e.Pos), Msg: e.Msg})
		}
	}
	if len(out) > 0 {
		return out
	}
	// Lines with a type error: compiler output for them repeats the type error.
	typeErrorLines := map[string]bool{}
	for _, te := range pkg.TypeErrors {
		p := te.Fset.Position(te.Pos)
		typeErrorLines[p.Filename+":"+strconv.Itoa(p.Line)] = true
		if tolerated(pkg, te, generated) {
			continue
		}
		out = append(out, Error{Pos: p, Msg: te.Msg})
	}
	for _, e := range pkg.Errors {
		switch {
		case e.Kind == packages.TypeError:
			if len(pkg.TypeErrors) == 0 {
				out = append(out, Error{Pos: parsePosition(e.Pos), Msg: e.Msg})
			}
		case strings.HasPrefix(e.Msg, "# "):
			out = append(out, compilerErrors(e.Msg, dir, typeErrorLines)...)
		default:
			out = append(out, Error{Pos: parsePosition(e.Pos), Msg: e.Msg})
		}
	}
	return out
}

// compilerLine matches a line of compiler output, "file:line:col: message".
var compilerLine = regexp.MustCompile(`^(.+?):(\d+):(\d+): (.*)$`)

// compilerErrors returns the errors of go build output ("# pkg" then one error per line)
// that are not on a line with a type error: the package is compiled for its export data,
// and its type errors, tolerated or not, are handled from the type checker.
func compilerErrors(msg, dir string, typeErrorLines map[string]bool) []Error {
	var out []Error
	skipping := false
	for _, line := range strings.Split(msg, "\n")[1:] {
		if line == "" || line == "too many errors" {
			continue
		}
		if strings.HasPrefix(line, "\t") || strings.HasPrefix(line, " ") {
			if !skipping && len(out) > 0 {
				out[len(out)-1].Msg += "\n" + line
			}
			continue
		}
		m := compilerLine.FindStringSubmatch(line)
		if m == nil {
			skipping = false
			out = append(out, Error{Msg: line})
			continue
		}
		file := m[1]
		if !filepath.IsAbs(file) {
			file = filepath.Join(dir, file)
		}
		file = filepath.Clean(file)
		ln, _ := strconv.Atoi(m[2])
		col, _ := strconv.Atoi(m[3])
		if typeErrorLines[file+":"+m[2]] {
			skipping = true
			continue
		}
		skipping = false
		out = append(out, Error{Pos: token.Position{Filename: file, Line: ln, Column: col}, Msg: m[4]})
	}
	return out
}

// tolerated reports whether a type error is about a name that this run generates, or a
// generated-looking name of an imported package that is not part of the run.
func tolerated(pkg *packages.Package, te types.Error, generated map[string]map[string]bool) bool {
	if noFieldPattern.MatchString(te.Msg) {
		// x.F undefined, where x's struct embeds a type that is undefined (a generated
		// FArgs): a follow-on of an "undefined" error that was tolerated.
		sel := selectorAt(pkg, te.Pos)
		if sel == nil {
			return false
		}
		tv, ok := pkg.TypesInfo.Types[sel.X]
		return ok && embedsInvalid(tv.Type, 0)
	}
	var qualifier, name string
	if m := undefinedPattern.FindStringSubmatch(te.Msg); m != nil {
		qualifier, name = m[1], m[2]
	} else if m := notDeclaredPattern.FindStringSubmatch(te.Msg); m != nil {
		qualifier, name = m[2], m[1]
	} else {
		return false
	}
	if qualifier == "" {
		return generated[pkg.PkgPath][name]
	}
	path := importedPath(pkg, te.Pos, qualifier)
	if path == "" {
		return false
	}
	if names, inRun := generated[path]; inRun {
		return names[name]
	}
	return looksGenerated(name)
}

// looksGenerated reports whether name has the shape of a generated name: SubmitF, FArgs,
// FTask or RegisterTasks.
func looksGenerated(name string) bool {
	switch {
	case name == taskspec.RegisterName:
		return true
	case strings.HasPrefix(name, "Submit") && len(name) > len("Submit"):
		return true
	case strings.HasSuffix(name, "Args") && len(name) > len("Args"):
		return true
	case strings.HasSuffix(name, "Task") && len(name) > len("Task"):
		return true
	}
	return false
}

// noFieldPattern matches go/types' "x.F undefined (type T has no field or method F...)".
var noFieldPattern = regexp.MustCompile(`^.+ undefined \(type .+ has no field or method `)

// embedsInvalid reports whether t, a struct or a pointer to one, embeds an invalid type,
// directly or through embedded structs.
func embedsInvalid(t types.Type, depth int) bool {
	if depth > 10 {
		return false
	}
	if p, ok := t.Underlying().(*types.Pointer); ok {
		t = p.Elem()
	}
	st, ok := t.Underlying().(*types.Struct)
	if !ok {
		return false
	}
	for i := 0; i < st.NumFields(); i++ {
		f := st.Field(i)
		if !f.Embedded() {
			continue
		}
		if b, ok := f.Type().(*types.Basic); ok && b.Kind() == types.Invalid {
			return true
		}
		if embedsInvalid(f.Type(), depth+1) {
			return true
		}
	}
	return false
}

// selectorAt returns the selector expression whose selected name is at pos.
func selectorAt(pkg *packages.Package, pos token.Pos) *ast.SelectorExpr {
	var found *ast.SelectorExpr
	for _, file := range pkg.Syntax {
		if file.Pos() > pos || pos > file.End() {
			continue
		}
		ast.Inspect(file, func(n ast.Node) bool {
			if found != nil || n == nil || n.Pos() > pos || pos > n.End() {
				return false
			}
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Pos() == pos {
				found = sel
				return false
			}
			return true
		})
	}
	return found
}

// importedPath resolves the package qualifier of the selector expression at pos.
func importedPath(pkg *packages.Package, pos token.Pos, qualifier string) string {
	sel := selectorAt(pkg, pos)
	if sel == nil {
		return ""
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok || x.Name != qualifier {
		return ""
	}
	if pn, ok := pkg.TypesInfo.Uses[x].(*types.PkgName); ok {
		return pn.Imported().Path()
	}
	return ""
}

// parsePosition parses go list's "file:line:col" (or "file:line", or "file") positions.
func parsePosition(s string) token.Position {
	if s == "" || s == "-" {
		return token.Position{}
	}
	var p token.Position
	rest := s
	if i := strings.LastIndex(rest, ":"); i > 0 {
		if n, err := strconv.Atoi(rest[i+1:]); err == nil {
			rest = rest[:i]
			p.Line = n
			if j := strings.LastIndex(rest, ":"); j > 0 {
				if m, err := strconv.Atoi(rest[j+1:]); err == nil {
					rest = rest[:j]
					p.Line, p.Column = m, n
				}
			}
		}
	}
	p.Filename = rest
	return p
}

// friendlyGoError matches the error go/packages makes of a failed go command:
// "err: exit status 1: stderr: <the go command's stderr>".
var friendlyGoError = regexp.MustCompile(`(?s)^err: .*?: stderr: (.+)$`)

// describeLoadError is the message for a packages.Load failure as a whole: the go
// command's own message when there is one ("go: updates to go.mod needed; ...").
func describeLoadError(err error) string {
	var gerr *goCommandError
	if errors.As(err, &gerr) {
		return gerr.msg
	}
	if m := friendlyGoError.FindStringSubmatch(err.Error()); m != nil {
		if msg := goStderr(m[1]); msg != "" {
			return msg
		}
	}
	return fmt.Sprintf("cannot load packages: %v", err)
}

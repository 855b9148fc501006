package gen

import (
	"errors"
	"fmt"
	"go/ast"
	"go/build"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/taskgen/taskgen/internal/taskspec"
	"golang.org/x/tools/go/packages"
)

// DefaultOutput is the name of the generated file in each package directory.
const DefaultOutput = "tasks_gen.go"

// Config is one run of the generator.
type Config struct {
	// Dir is the directory patterns are resolved in and error paths are printed relative
	// to. Empty means the current directory.
	Dir string
	// Patterns are the packages to generate for, as for the go command. None means ".".
	Patterns []string
	// Output is the file name of the generated file in each package directory: a name,
	// not a path. Empty means DefaultOutput.
	Output string
	// Tags are extra build tags to load with; taskgen is always set.
	Tags []string
	// Check compares instead of writing: nothing is written, and every generated file
	// that is stale, missing or orphaned is reported with a unified diff.
	Check bool
	// Against, with Check, is a git revision (a commit, branch or tag; in CI the merge
	// base with the main branch) to check compatibility with: the tasks as they would be
	// generated now are compared with the generated files at that revision, and every
	// change that tasks queued by that revision's code would not survive (a type
	// changed, a probable rename, a task removed) is in Result.Breaking. Empty means no
	// such check. See against.go.
	Against string
	// Env is the environment of the go command; nil means the current process's.
	Env []string
	// Vet runs package taskvet's analyzer, with its defaults, on every package with
	// tasks after a successful run, and puts what it reports in Result.Warnings: reads
	// of ambient state inside tasks. False means no such check.
	Vet bool
}

// Validate reports a usage error in c: an output name that is not a Go file name, a
// malformed build tag, or a pattern naming a file instead of a package.
func (c Config) Validate() error {
	if c.Output != "" {
		if filepath.Base(c.Output) != c.Output || strings.ContainsAny(c.Output, `/\`) {
			return fmt.Errorf("-o %s: want a file name, not a path: the file is written in each package's directory", c.Output)
		}
		if !strings.HasSuffix(c.Output, ".go") || strings.HasSuffix(c.Output, "_test.go") || strings.HasPrefix(c.Output, ".") || strings.HasPrefix(c.Output, "_") {
			return fmt.Errorf("-o %s: want a Go file name ending in .go (not _test.go, not starting with . or _)", c.Output)
		}
		if constrainedByName(c.Output) {
			return fmt.Errorf("-o %s: the name ends in a GOOS or GOARCH suffix, so the file would be built on that platform only: choose another name", c.Output)
		}
	}
	for _, tag := range c.Tags {
		if tag == "" || strings.ContainsAny(tag, " \t,\"'") {
			return fmt.Errorf("invalid build tag %q", tag)
		}
	}
	if c.Against != "" {
		if !c.Check {
			return fmt.Errorf("-against %s compares the generated code with a git revision and writes nothing, so it needs -check: run taskgen -check -against %s", c.Against, c.Against)
		}
		if strings.HasPrefix(c.Against, "-") || strings.ContainsAny(c.Against, " \t\r\n") {
			return fmt.Errorf("-against %q: want a git revision, such as main, a tag or a commit", c.Against)
		}
	}
	for _, p := range c.Patterns {
		if strings.HasSuffix(p, ".go") {
			return fmt.Errorf("%s: taskgen works on packages, not files: name the package directory instead", p)
		}
	}
	return nil
}

// constrainedByName reports whether go/build would build a file of this name only for
// some GOOS or GOARCH (name_linux.go, name_arm64.go, name_windows_amd64.go).
func constrainedByName(name string) bool {
	ctx := build.Default
	ctx.GOOS, ctx.GOARCH = "none", "none" // matched by no such suffix
	ctx.OpenFile = func(string) (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("package p\n")), nil
	}
	match, err := ctx.MatchFile(".", name)
	return err == nil && !match
}

// Status is what happened, or with Config.Check what would happen, to a generated file.
type Status int

const (
	// Unchanged: the file is up to date.
	Unchanged Status = iota
	// Written: the file was created or its content replaced.
	Written
	// Removed: the package no longer has tasks and its generated file was removed.
	Removed
	// Stale (Check): the file exists but differs from what would be generated.
	Stale
	// Missing (Check): the package has tasks but no generated file.
	Missing
	// Orphaned (Check): the package has no tasks but still has a generated file.
	Orphaned
)

func (s Status) String() string {
	switch s {
	case Unchanged:
		return "unchanged"
	case Written:
		return "wrote"
	case Removed:
		return "removed"
	case Stale:
		return "stale"
	case Missing:
		return "missing"
	case Orphaned:
		return "orphaned"
	}
	return fmt.Sprintf("Status(%d)", int(s))
}

// File is the outcome for one package's generated file.
type File struct {
	// Package is the import path of the package.
	Package string
	// Path is the generated file's path, relative to Config.Dir when under it.
	Path string
	// Status says what happened to it.
	Status Status
	// Diff is, with Config.Check and a Stale, Missing or Orphaned file, a unified diff from
	// the file on disk to the generated content.
	Diff string
}

// Result is the outcome of a run.
type Result struct {
	// Files has one entry per package that has tasks or a generated file, in import path
	// order.
	Files []File
	// Breaking has, with Config.Against, one error per change since that revision that
	// tasks queued by its code would not survive, at the task's directive (or, for a task
	// removed, at its generated file), saying what to do; sorted by position.
	Breaking []Error
	// Notes has, with Config.Against, one entry per generated file that could not be
	// compared, saying why: such a file is not checked, and is not a failure.
	Notes []Error
	// Warnings has, with Config.Vet, one entry per ambient read inside a task (see
	// package taskvet), sorted by position. They never make a run fail.
	Warnings []Error
}

// Incompatible reports whether, with Config.Against, any change is breaking.
func (r *Result) Incompatible() bool { return len(r.Breaking) > 0 }

// OutOfDate reports whether, with Config.Check, any generated file is stale, missing or
// orphaned.
func (r *Result) OutOfDate() bool {
	for _, f := range r.Files {
		switch f.Status {
		case Stale, Missing, Orphaned:
			return true
		}
	}
	return false
}

// Run loads the packages, finds their task directives, checks them, generates code and,
// unless Config.Check is set, writes it. The stages run in that order and nothing is
// written unless every package succeeded.
//
// Problems in the packages are returned as *Errors, all of them: Errors.Load tells
// package-load problems (exit code 2) from invalid task declarations (exit code 1). Other
// errors (a configuration error, a file that cannot be written) are returned as they are.
func Run(cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		wd, err := os.Getwd()
		if err != nil {
			return nil, err
		}
		dir = wd
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	output := cfg.Output
	if output == "" {
		output = DefaultOutput
	}
	patterns := cfg.Patterns
	if len(patterns) == 0 {
		patterns = []string{"."}
	}

	pkgs, err := load(dir, cfg.Env, cfg.Tags, patterns)
	if err != nil {
		return nil, &Errors{Load: true, List: []Error{{Msg: describeLoadError(err)}}}
	}
	if len(pkgs) == 0 {
		return nil, &Errors{Load: true, List: []Error{{Msg: fmt.Sprintf("no packages match %s", strings.Join(patterns, " "))}}}
	}

	outs, errs := generate(dir, output, testBuildContext(cfg.Env, cfg.Tags), pkgs, openFormatCache(cfg.Env))
	var plans []filePlan
	if errs == nil || !errs.Load {
		// A file in the way of the output is reported with the declaration errors, so
		// that one run shows everything there is to fix.
		var refusals []Error
		var err error
		plans, refusals, err = plan(dir, output, outs)
		if err != nil && errs == nil {
			return nil, err
		}
		if len(refusals) > 0 {
			if errs == nil {
				errs = &Errors{}
			}
			errs.List = append(errs.List, refusals...)
		}
	}
	if errs != nil {
		for i := range errs.List {
			errs.List[i].Pos.Filename = relPath(dir, errs.List[i].Pos.Filename)
		}
		errs.List = sortErrors(errs.List)
		return nil, errs
	}
	res := &Result{}
	for _, p := range plans {
		f := File{Package: p.pkgPath, Path: relPath(dir, p.path)}
		switch {
		case bytesEqual(p.old, p.new):
			f.Status = Unchanged
		case cfg.Check:
			f.Status, f.Diff = p.checkStatus(f.Path)
		case p.new == nil:
			if err := os.Remove(p.path); err != nil {
				return res, err
			}
			f.Status = Removed
		default:
			if err := writeFileAtomic(p.path, p.new); err != nil {
				return res, err
			}
			f.Status = Written
		}
		res.Files = append(res.Files, f)
	}
	if cfg.Vet {
		res.Warnings = vet(pkgs, outs)
		for i := range res.Warnings {
			res.Warnings[i].Pos.Filename = relPath(dir, res.Warnings[i].Pos.Filename)
		}
		res.Warnings = sortErrors(res.Warnings)
	}
	if cfg.Against != "" {
		res.Breaking, res.Notes, err = checkAgainst(dir, cfg.Env, cfg.Against, output, patterns, outs)
		if err != nil {
			return nil, err
		}
	}
	return res, nil
}

// output is what the generator produced for one package.
type output struct {
	pkgPath string
	dir     string
	tasks   bool     // the package has task directives, valid or not
	src     []byte   // nil when the package has no tasks or has errors
	defs    []newDef // the task.Def of every task in src
}

// newDef is what the compatibility check needs of a task as generated now.
type newDef struct {
	kind, wire, queue string
	pos               token.Position // the task's directive
}

// generate runs the stages after loading for every package: directives, model and
// checks, emission into the file named fileName (cache may spare formatting it: see
// formatCache). tests chooses the test files checked for generated names. It returns
// the outputs of every package, also when there are problems, and every problem of every
// package.
func generate(dir, fileName string, tests *build.Context, pkgs []*packages.Package, cache *formatCache) ([]output, *Errors) {
	scans, generated := scanPackages(pkgs)
	var outs []output
	var loadErrs, declErrs []Error
	for _, s := range scans {
		src, defs, lerrs, derrs := s.generate(dir, fileName, tests, generated, cache)
		loadErrs = append(loadErrs, lerrs...)
		declErrs = append(declErrs, derrs...)
		outs = append(outs, output{pkgPath: s.pkg.PkgPath, dir: s.pkg.Dir, tasks: len(s.dirs) > 0, src: src, defs: defs})
	}
	switch {
	case len(loadErrs) > 0:
		return outs, &Errors{Load: true, List: append(loadErrs, declErrs...)}
	case len(declErrs) > 0:
		return outs, &Errors{List: declErrs}
	}
	return outs, nil
}

// scannedPackage is a loaded package with its directives found.
type scannedPackage struct {
	pkg   *packages.Package
	empty bool // no Go files under the taskgen tag
	dirs  []*funcDirective
	errs  errorList // malformed, mangled or misplaced directives
}

// scanPackages finds the directives of every package, and the names this run generates
// for each (by import path), which loading errors about are tolerated.
func scanPackages(pkgs []*packages.Package) ([]*scannedPackage, map[string]map[string]bool) {
	var scans []*scannedPackage
	generated := map[string]map[string]bool{}
	for _, pkg := range pkgs {
		s := &scannedPackage{pkg: pkg, empty: isEmptyPackage(pkg)}
		scans = append(scans, s)
		if s.empty {
			continue
		}
		s.dirs, s.errs = findDirectives(pkg.Fset, pkg.Syntax)
		names := map[string]bool{}
		for _, d := range s.dirs {
			for _, n := range generatedNames(taskBaseName(d.decl)) {
				names[n] = true
			}
		}
		if len(s.dirs) > 0 {
			names[taskspec.RegisterName] = true
		}
		generated[pkg.PkgPath] = names
	}
	return scans, generated
}

// generate runs the stages after scanning for one package. tests chooses the in-package
// test files checked for generated names (none when nil). It returns the generated source
// and the task definitions in it (nil when the package has no tasks or has errors), the
// package-load errors and the declaration errors.
func (s *scannedPackage) generate(dir, fileName string, tests *build.Context, generated map[string]map[string]bool, cache *formatCache) (src []byte, defs []newDef, loadErrs, declErrs []Error) {
	if s.empty {
		return nil, nil, nil, nil
	}
	pkg := s.pkg
	if errs := loadErrors(pkg, dir, generated); len(errs) > 0 {
		// A package without directives has nothing to generate: its type errors are
		// not this tool's business, but a package that cannot be listed or parsed is.
		if len(s.dirs) == 0 && len(s.errs) == 0 && !hasListOrParseError(pkg) {
			return nil, nil, nil, nil
		}
		return nil, nil, errs, withoutFiles(s.errs, parseErrorFiles(pkg))
	}
	declErrs = s.errs
	var testFiles []*ast.File
	if len(s.dirs) > 0 && tests != nil {
		testFiles = inPackageTestFiles(pkg, tests)
	}
	model, errs := buildModel(pkg, s.dirs, testFiles)
	declErrs = append(declErrs, errs...)
	if len(declErrs) > 0 || model == nil {
		return nil, nil, nil, declErrs
	}
	var existing []byte
	if cache != nil {
		existing, _ = os.ReadFile(filepath.Join(pkg.Dir, fileName)) // none: nothing to reuse
	}
	src, err := emit(model, existing, cache)
	if err != nil {
		return nil, nil, nil, []Error{{Msg: err.Error()}}
	}
	for _, t := range model.tasks {
		defs = append(defs, newDef{kind: t.dir.kind, wire: t.wire, queue: t.queue(), pos: pkg.Fset.Position(t.dirPos)})
	}
	return src, defs, nil, nil
}

// parseErrorFiles returns the files of pkg that do not parse. What the parser lost of
// them (a function declaration after the error) makes their directives look misplaced.
func parseErrorFiles(pkg *packages.Package) map[string]bool {
	files := map[string]bool{}
	for _, e := range pkg.Errors {
		if e.Kind == packages.ParseError {
			files[filepath.Clean(parsePosition(e.Pos).Filename)] = true
		}
	}
	return files
}

// withoutFiles returns the errors of list that are not in files.
func withoutFiles(list []Error, files map[string]bool) []Error {
	var out []Error
	for _, e := range list {
		if !files[filepath.Clean(e.Pos.Filename)] {
			out = append(out, e)
		}
	}
	return out
}

// hasListOrParseError reports whether pkg has errors other than type errors (and other
// than compiler output, which repeats them).
func hasListOrParseError(pkg *packages.Package) bool {
	for _, e := range pkg.Errors {
		if e.Kind != packages.TypeError && !strings.HasPrefix(e.Msg, "# ") {
			return true
		}
	}
	return false
}

// errNotGenerated is returned for an output path holding a file taskgen did not write.
var errNotGenerated = errors.New("the file exists and was not generated by taskgen")

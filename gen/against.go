package gen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/taskgen/taskgen/internal/taskspec"
	"github.com/taskgen/taskgen/internal/wireschema"
)

// This file is taskgen -check -against REV: the compatibility of the tasks as they would
// be generated now with the tasks generated at a git revision, by the rules of package
// internal/wireschema. During a rolling deploy the queues hold tasks submitted by the
// old code while the new workers run them; a change those tasks would not survive must
// fail CI, not the deploy.
//
// Only generated files are read at the revision, never its source: every generated
// task.Def carries its kind and its wire description (Wire), so parsing the file with
// go/parser is enough; the old code need not build, or even type-check, now.

// AgainstError is returned by Run when the revision of Config.Against cannot be read: not
// a git repository, an unknown revision, git missing, or a generated file at the
// revision that taskgen cannot read. The command exits 2 for it.
type AgainstError struct {
	// Rev is the revision, as given.
	Rev string
	// Err says what went wrong, with git's own message where git failed.
	Err error
}

func (e *AgainstError) Error() string { return fmt.Sprintf("-against %s: %v", e.Rev, e.Err) }

func (e *AgainstError) Unwrap() error { return e.Err }

// oldFile is a generated file at the revision, and the package it belongs to now.
type oldFile struct {
	// name is the file's path as messages print it, relative to Config.Dir when under
	// it; path its absolute path now.
	name, path string
	content    []byte
	// out is the package in the run whose generated file this is; nil when the package
	// is gone (its directory has no package now).
	out *output
}

// checkAgainst reads, at git revision rev, the generated file of every package of the run
// and every generated file of a package removed since (under a relative pattern ending
// in /...), and compares them with the run's outputs.
func checkAgainst(dir string, env []string, rev, output string, patterns []string, outs []output) (breaking, notes []Error, err error) {
	fail := func(err error) ([]Error, []Error, error) { return nil, nil, &AgainstError{Rev: rev, Err: err} }
	g := gitCmd{dir: dir, env: env}
	top, err := g.run(nil, "rev-parse", "--show-toplevel")
	if err != nil {
		return fail(err)
	}
	g.dir = strings.TrimSpace(string(top))
	out, err := g.run(nil, "rev-parse", "--verify", rev+"^{commit}")
	if err != nil {
		return fail(fmt.Errorf("no such commit (%w); in CI, fetch it first (actions/checkout with fetch-depth: 0, then git fetch origin main)", err))
	}
	commit := strings.TrimSpace(string(out))

	// Paths at the revision are relative to the top of the work tree, with slashes.
	repoPath := func(abs string) (string, bool) {
		rel, err := filepath.Rel(realPath(g.dir), realPath(abs))
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "", false
		}
		return filepath.ToSlash(rel), true
	}
	var files []*oldFile
	var specs []string
	known := map[string]bool{}
	for i := range outs {
		o := &outs[i]
		if o.dir == "" {
			continue
		}
		abs := filepath.Join(o.dir, output)
		rel, ok := repoPath(abs)
		if !ok {
			notes = append(notes, Error{Pos: filePos(relPath(dir, abs)), Msg: fmt.Sprintf("not compared with %s: the package is outside the git work tree at %s", rev, g.dir)})
			continue
		}
		known[rel] = true
		files = append(files, &oldFile{name: relPath(dir, abs), path: abs, out: o})
		specs = append(specs, rel)
	}
	gone, err := removedPackages(g, commit, output, dir, patterns, known, repoPath)
	if err != nil {
		return fail(err)
	}
	for _, rel := range gone {
		// The top from git has its symbolic links resolved: so must dir, to print abs
		// relative to it.
		abs := filepath.Join(g.dir, filepath.FromSlash(rel))
		files = append(files, &oldFile{name: relPath(realPath(dir), abs), path: abs})
		specs = append(specs, rel)
	}
	contents, err := g.readFiles(commit, specs)
	if err != nil {
		return fail(err)
	}
	for i, f := range files {
		f.content = contents[i]
	}
	breaking, more, err := compareGenerated(rev, files, outs)
	if err != nil {
		return fail(err)
	}
	notes = append(notes, more...)
	for _, list := range [][]Error{breaking, notes} {
		for i := range list {
			list[i].Pos.Filename = relPath(dir, list[i].Pos.Filename)
		}
	}
	return sortErrors(breaking), sortErrors(notes), nil
}

// removedPackages returns the generated files at the revision, named output, in the
// directories that the relative patterns ending in /... cover and that hold no package
// of the run now: packages removed since, whose tasks are gone too. The directories the
// go command leaves out of ./... are left out: testdata, vendor, names starting with .
// or _, and other modules.
func removedPackages(g gitCmd, commit, output, dir string, patterns []string, known map[string]bool, repoPath func(string) (string, bool)) ([]string, error) {
	var roots []string
	for _, p := range patterns {
		base, ok := strings.CutSuffix(filepath.ToSlash(p), "...")
		if !ok || !strings.HasPrefix(base, ".") || !strings.HasSuffix(base, "/") {
			continue // an import path pattern, or ./x... matching names: only ./dir/... is a directory tree
		}
		if rel, ok := repoPath(filepath.Join(dir, filepath.FromSlash(base))); ok {
			roots = append(roots, rel)
		}
	}
	if len(roots) == 0 {
		return nil, nil
	}
	args := []string{"ls-tree", "-r", "-z", "--name-only", commit}
	if !slices.Contains(roots, ".") { // "." is the whole tree: no pathspec
		args = append(append(args, "--"), roots...)
	}
	out, err := g.run(nil, args...)
	if err != nil {
		return nil, err
	}
	names := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	// Another module's tree is not in ./...: a directory below a root with a go.mod.
	modules := map[string]bool{}
	for _, name := range names {
		if path.Base(name) == "go.mod" {
			modules[path.Dir(name)] = true
		}
	}
	var gone []string
	for _, name := range names {
		if path.Base(name) != output || known[name] || !inGoTree(name, roots, modules) {
			continue
		}
		gone = append(gone, name)
	}
	sort.Strings(gone)
	return gone, nil
}

// inGoTree reports whether the go command's ./... from one of roots reaches the
// directory of name.
func inGoTree(name string, roots []string, modules map[string]bool) bool {
	d := path.Dir(name)
	for _, root := range roots {
		rel := d
		if root != "." {
			var ok bool
			if rel, ok = strings.CutPrefix(d, root); !ok || (rel != "" && rel[0] != '/') {
				continue
			}
			rel = strings.TrimPrefix(rel, "/")
		} else if rel == "." {
			rel = ""
		}
		ok := true
		sub := root
		for _, elem := range strings.Split(rel, "/") {
			if elem == "" {
				continue
			}
			sub = path.Join(sub, elem)
			if elem[0] == '.' || elem[0] == '_' || elem == "testdata" || elem == "vendor" || modules[sub] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// compareGenerated compares the generated files at the revision with the run's outputs.
// A kind is looked for in its own package first, then in any package of the run, so a
// task moved to another package is compared, not removed.
func compareGenerated(rev string, files []*oldFile, outs []output) (breaking, notes []Error, err error) {
	anywhere := map[string]newDef{}
	for _, o := range outs {
		for _, d := range o.defs {
			if _, ok := anywhere[d.kind]; !ok {
				anywhere[d.kind] = d
			}
		}
	}
	for _, f := range files {
		if f.content == nil || !isGenerated(f.content) {
			continue // no generated file at the revision: every task of the package is new
		}
		defs, err := readGeneratedDefs(f.name, f.content)
		if err != nil {
			return nil, nil, fmt.Errorf("%s at %s: %w", f.name, rev, err)
		}
		withWire := 0
		for _, d := range defs {
			if d.hasWire {
				withWire++
			}
		}
		if withWire == 0 && len(defs) > 0 {
			notes = append(notes, Error{Pos: filePos(f.name), Msg: fmt.Sprintf(
				"not compared with %s: its task.Def values there have no Wire, so they were generated by a taskgen from before wire descriptions; the comparison starts at the first revision with the file regenerated", rev)})
			continue
		}
		own := map[string]newDef{}
		if f.out != nil {
			for _, d := range f.out.defs {
				own[d.kind] = d
			}
		}
		for _, old := range defs {
			now, ok := own[old.kind]
			if !ok {
				now, ok = anywhere[old.kind]
			}
			switch {
			case !ok:
				breaking = append(breaking, Error{Pos: filePos(f.name), Msg: fmt.Sprintf(
					"task %s was removed: queued tasks of it will be dead-lettered unknown_kind after the skew grace; keep it registered until its queue drains", old.kind)})
			case old.queue != now.queue:
				// Checked before the arguments: whatever they are, the queued tasks are
				// where no worker of the new code looks.
				breaking = append(breaking, Error{Pos: now.pos, Msg: fmt.Sprintf(
					"task %s moved from queue %q to %q: its queued tasks stay in %q, which workers of the new code do not consume unless told to (WithQueues); keep the queue, or ship the move as a new kind (%s) on %q and keep the old function registered on %q until it drains",
					old.kind, old.queue, now.queue, old.queue, nextKind(old.kind), now.queue, old.queue)})
			case !old.hasWire:
				notes = append(notes, Error{Pos: now.pos, Msg: fmt.Sprintf("task %s: not compared with %s: its task.Def there has no Wire", old.kind, rev)})
			case old.wire != now.wire:
				msgs, err := compareWire(old, now)
				if err != nil {
					return nil, nil, fmt.Errorf("%s at %s: %w", f.name, rev, err)
				}
				for _, msg := range msgs {
					breaking = append(breaking, Error{Pos: now.pos, Msg: msg})
				}
			}
		}
	}
	return sortErrors(breaking), sortErrors(notes), nil
}

// compareWire returns a message for every breaking change from old to now.
func compareWire(old oldDef, now newDef) ([]string, error) {
	before, err := wireschema.Parse(old.wire)
	if err != nil {
		return nil, fmt.Errorf("the Wire of task %s does not parse (%v); regenerate the file at that revision, or compare with another", old.kind, err)
	}
	after, err := wireschema.Parse(now.wire)
	if err != nil {
		return nil, fmt.Errorf("internal error: the Wire taskgen generates for task %s does not parse: %v", now.kind, err)
	}
	var msgs []string
	for _, c := range wireschema.Compare(before, after) {
		if c.Breaking() {
			msgs = append(msgs, breakingMessage(now.kind, c))
		}
	}
	return msgs, nil
}

// breakingMessage says what a breaking change does to queued tasks and what to do.
func breakingMessage(kind string, c wireschema.Change) string {
	newKind := fmt.Sprintf("ship the change as a new kind (%s) and keep the old function registered until its queue drains", nextKind(kind))
	steps := pathSteps(c.Path)
	param := steps[0]
	switch c.Kind {
	case wireschema.Renamed:
		newSteps := pathSteps(c.NewPath)
		if len(steps) == 1 {
			return fmt.Sprintf("task %s: parameter %q was probably renamed to %q (same type %s): values in queued tasks would be lost; keep the old name (the JSON name is the parameter name) or %s; if it is no rename, add the new parameter in one deploy and remove the old one in a later one",
				kind, param, newSteps[0], wireText(c.New), newKind)
		}
		oldName := steps[len(steps)-1]
		return fmt.Sprintf("task %s: field %s of parameter %q was probably renamed to %s (same type %s): values in queued tasks would be lost; keep the old JSON name (a tag keeps it: `json:%q`) or %s; if it is no rename, add the new field in one deploy and remove the old one in a later one",
			kind, c.Path, param, c.NewPath, wireText(c.New), oldName, newKind)
	default:
		where := fmt.Sprintf("parameter %q", param)
		if c.Path != param {
			where = fmt.Sprintf("field %s of parameter %q", c.Path, param)
		}
		return fmt.Sprintf("task %s: %s changed type from %s to %s: queued tasks cannot be decoded by the new worker; %s",
			kind, where, wireText(c.Old), wireText(c.New), newKind)
	}
}

// wireText writes a description from a Change for a message: a value with the string
// option says so in words.
func wireText(desc string) string {
	if rest, ok := strings.CutPrefix(desc, ",string:"); ok {
		return rest + " written as a JSON string (,string)"
	}
	return desc
}

var versionSuffix = regexp.MustCompile(`\.v([0-9]+)$`)

// nextKind suggests the kind for an incompatible version of a task: email.send_welcome
// becomes email.send_welcome.v2, and that one email.send_welcome.v3.
func nextKind(kind string) string {
	if m := versionSuffix.FindStringSubmatchIndex(kind); m != nil {
		if n, err := strconv.Atoi(kind[m[2]:m[3]]); err == nil && n < 1<<30 {
			return kind[:m[2]] + strconv.Itoa(n+1)
		}
	}
	return kind + ".v2"
}

// pathSteps splits a path of package wireschema into its field names, unquoted: opts.limit
// is [opts limit], items[].sku is [items sku], m[map key].x is [m x]. Element steps ([],
// [key]) are dropped.
func pathSteps(p string) []string {
	var steps []string
	for i := 0; i < len(p); {
		switch p[i] {
		case '.':
			i++
		case '[':
			depth := 0
			for ; i < len(p); i++ {
				if p[i] == '[' {
					depth++
				} else if p[i] == ']' {
					if depth--; depth == 0 {
						i++
						break
					}
				} else if p[i] == '"' {
					if q, err := strconv.QuotedPrefix(p[i:]); err == nil {
						i += len(q) - 1
					}
				}
			}
		case '"':
			q, err := strconv.QuotedPrefix(p[i:])
			if err != nil {
				steps = append(steps, p[i:])
				i = len(p)
				continue
			}
			name, _ := strconv.Unquote(q)
			steps = append(steps, name)
			i += len(q)
		default:
			j := i
			for j < len(p) && p[j] != '.' && p[j] != '[' {
				j++
			}
			steps = append(steps, p[i:j])
			i = j
		}
	}
	if len(steps) == 0 {
		steps = []string{""}
	}
	return steps
}

// filePos is the position of a whole file in messages.
func filePos(name string) token.Position {
	return token.Position{Filename: name, Line: 1, Column: 1}
}

// oldDef is a task.Def read from a generated file.
type oldDef struct {
	kind, wire string
	hasWire    bool
	queue      string // taskspec.DefaultQueue when the Def names none
}

// readGeneratedDefs returns the task.Def values of a generated file: every package-level
// var whose value is a task.Def composite literal with a Kind string, in file order.
func readGeneratedDefs(name string, src []byte) ([]oldDef, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %v", err)
	}
	taskName := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == taskPkgPath {
			taskName = "task"
			if imp.Name != nil {
				taskName = imp.Name.Name
			}
		}
	}
	var defs []oldDef
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.VAR {
			continue
		}
		for _, spec := range gd.Specs {
			for _, value := range spec.(*ast.ValueSpec).Values {
				lit, ok := value.(*ast.CompositeLit)
				if !ok || !isSelector(lit.Type, taskName, "Def") {
					continue
				}
				d := oldDef{queue: taskspec.DefaultQueue}
				for _, elt := range lit.Elts {
					kv, ok := elt.(*ast.KeyValueExpr)
					key, _ := kv.Key.(*ast.Ident)
					if !ok || key == nil {
						continue
					}
					s, ok := stringValue(kv.Value)
					switch {
					case key.Name == "Kind" && ok:
						d.kind = s
					case key.Name == "Queue" && ok && s != "":
						d.queue = s
					case key.Name == "Wire" && ok:
						d.wire, d.hasWire = s, true
					case key.Name == "Wire":
						return nil, fmt.Errorf("%s: the Wire of a task.Def is not a string literal", fset.Position(kv.Value.Pos()))
					}
				}
				if d.kind != "" {
					defs = append(defs, d)
				}
			}
		}
	}
	return defs, nil
}

func isSelector(expr ast.Expr, pkg, name string) bool {
	sel, ok := expr.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != name {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && pkg != "" && x.Name == pkg
}

func stringValue(expr ast.Expr) (string, bool) {
	lit, ok := expr.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// realPath resolves symbolic links where it can, so that paths from git and from the go
// command compare.
func realPath(p string) string {
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

// gitCmd runs git in a directory.
type gitCmd struct {
	dir string
	env []string
}

// run runs git with args and returns its standard output; an error carries git's
// message.
func (g gitCmd) run(stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = g.dir
	cmd.Env = g.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if msg := strings.TrimSpace(stderr.String()); errors.As(err, &exit) && msg != "" {
			return nil, fmt.Errorf("git %s: %s", args[0], msg)
		}
		if errors.Is(err, exec.ErrNotFound) {
			return nil, fmt.Errorf("git is needed to read the revision: %w", err)
		}
		return nil, fmt.Errorf("git %s: %w", args[0], err)
	}
	return stdout.Bytes(), nil
}

// readFiles returns the content of each path (relative to the top of the work tree) at
// commit, nil where the commit has no such file: one git cat-file for all of them.
func (g gitCmd) readFiles(commit string, paths []string) ([][]byte, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	var in bytes.Buffer
	for _, p := range paths {
		if strings.ContainsAny(p, "\n\r") {
			return nil, fmt.Errorf("cannot read %q at the revision: its name holds a line break", p)
		}
		in.WriteString(commit + ":" + p + "\n")
	}
	out, err := g.run(in.Bytes(), "cat-file", "--batch")
	if err != nil {
		return nil, err
	}
	// Each answer is "<spec> missing\n", or "<oid> <type> <size>\n<content>\n".
	r := bufio.NewReader(bytes.NewReader(out))
	contents := make([][]byte, len(paths))
	for i := range paths {
		header, err := r.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("git cat-file: short answer for %s", paths[i])
		}
		fields := strings.Fields(header)
		if len(fields) != 3 {
			continue // missing (or ambiguous): no such file at the revision
		}
		size, err := strconv.Atoi(fields[2])
		if err != nil {
			return nil, fmt.Errorf("git cat-file: malformed answer %q", header)
		}
		content := make([]byte, size+1)
		if _, err := io.ReadFull(r, content); err != nil {
			return nil, fmt.Errorf("git cat-file: short content for %s", paths[i])
		}
		if fields[1] == "blob" {
			contents[i] = content[:size]
		}
	}
	return contents, nil
}

package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/taskgen/taskgen/internal/taskspec"
	"github.com/taskgen/taskgen/internal/wireschema"
	"golang.org/x/tools/go/packages"
	"golang.org/x/tools/go/types/typeutil"
)

// taskPkgPath is the import path of the runtime package generated code uses.
const taskPkgPath = "github.com/taskgen/taskgen/runtime/task"

// pkgModel is what the generator emits for one package.
type pkgModel struct {
	path, name string
	types      *types.Package
	tasks      []*taskModel
	// lifespans are the distinct lifespan values, by name, in order of first appearance.
	lifespans []*lifespanModel
}

// paramKind is how a task function's parameter is treated (DESIGN.md, parameter
// classification).
type paramKind int

const (
	paramArg      paramKind = iota // serialized into FArgs
	paramContext                   // the worker's fresh context
	paramCaller                    // the task.Caller from the envelope
	paramInfo                      // the task.Info the worker fills in
	paramLifespan                  // lifespan state given to RegisterTasks
)

// paramModel is one parameter of a task function.
type paramModel struct {
	kind     paramKind
	index    int    // position in the signature, receiver excluded
	name     string // as declared; "" or "_" when unnamed or blank
	typ      types.Type
	pos      token.Pos
	variadic bool // the ...T parameter; typ is then []T
	// unchecked is set when the parameter was already reported and is not checked further.
	unchecked bool

	// For arguments:
	wire  string // JSON name, the FArgs field's tag
	field string // FArgs field name

	// For lifespan parameters (and the receiver):
	life *lifespanModel
}

// lifespanModel is one distinct lifespan value: one RegisterTasks parameter.
type lifespanModel struct {
	// name identifies the value: the lifespan parameter's name, or for a receiver its
	// type's name in lowerCamel. The emitter may suffix it where it would shadow a name
	// the generated code uses.
	name string
	typ  types.Type
	// first is where the value first appears, and place what it is there, for errors.
	first *paramModel
	place string
	// nillable is set when a value of typ can be nil: RegisterTasks then checks it.
	nillable bool
}

// taskModel is one task function or method.
type taskModel struct {
	decl    *ast.FuncDecl
	fn      *types.Func
	dir     directive
	dirPos  token.Pos // the directive comment, where messages about the task point
	display string    // SendWelcome, Service.Resize or (*Service).Resize

	// Generated names.
	base           string // SendWelcome or ServiceResize
	argsName       string // SendWelcomeArgs
	taskName       string // SendWelcomeTask
	submitName     string // SubmitSendWelcome
	submitManyName string // SubmitSendWelcomeMany
	resultName     string // ResultSendWelcome

	recv   *paramModel // the receiver of a method, a lifespan value; nil for functions
	params []*paramModel
	result types.Type // R of (R, error); nil when the function returns only error

	hasCaller bool
	hasInfo   bool
	// previousSchema is the fingerprint of the older taskgen (see previousSchema).
	previousSchema string
	// wire is the canonical description of the arguments (Def.Wire), schema its
	// fingerprint (Def.Schema); both are empty when the arguments have errors.
	wire, schema string
}

// queue returns the task's queue: the directive's, or the default.
func (t *taskModel) queue() string {
	if t.dir.queue == "" {
		return taskspec.DefaultQueue
	}
	return t.dir.queue
}

// args returns the parameters that are serialized, in order.
func (t *taskModel) args() []*paramModel {
	var out []*paramModel
	for _, p := range t.params {
		if p.kind == paramArg {
			out = append(out, p)
		}
	}
	return out
}

// taskNames returns the generated base name of a task function from its declaration
// alone (no types needed): F for a function, TM for a method M of T or *T.
func taskBaseName(decl *ast.FuncDecl) string {
	if decl.Recv == nil || len(decl.Recv.List) == 0 {
		return exportedName(decl.Name.Name)
	}
	return exportedName(recvTypeName(decl.Recv.List[0].Type)) + exportedName(decl.Name.Name)
}

// recvTypeName returns T of a receiver type expression T, *T, T[P] or (*T).
func recvTypeName(expr ast.Expr) string {
	for {
		switch e := expr.(type) {
		case *ast.StarExpr:
			expr = e.X
		case *ast.ParenExpr:
			expr = e.X
		case *ast.IndexExpr:
			expr = e.X
		case *ast.IndexListExpr:
			expr = e.X
		case *ast.Ident:
			return e.Name
		default:
			return "Recv"
		}
	}
}

// generatedNames returns the package-level names generated for a task function.
func generatedNames(base string) []string { return taskspec.NamesOf(base).All() }

// exportedName makes an identifier exported: leading underscores are dropped and the
// first letter upper-cased; a name that cannot start with an upper-case letter (a digit,
// a letter without case) is prefixed with X. It returns "" for a name of underscores.
func exportedName(name string) string {
	name = strings.TrimLeft(name, "_")
	if name == "" {
		return ""
	}
	r, size := utf8.DecodeRuneInString(name)
	up := unicode.ToUpper(r)
	if !unicode.IsUpper(up) {
		return "X" + name
	}
	return string(up) + name[size:]
}

// modelBuilder turns the directives of one package into a pkgModel, collecting every
// declaration error.
type modelBuilder struct {
	pkg  *packages.Package
	errs errorList

	// The same types recur across the tasks of a package: serializable and
	// serializableResults hold the argument and result types found serializable
	// (types.Type → true), descriptions the wire descriptions of argument types
	// (types.Type → *wireschema.Type). Each depends on the type alone.
	serializable        typeutil.Map
	serializableResults typeutil.Map
	descriptions        typeutil.Map
	v1Descriptions      typeutil.Map
}

func (b *modelBuilder) errorf(pos token.Pos, format string, args ...any) {
	b.errs.add(b.pkg.Fset, pos, format, args...)
}

// shortPos writes a position of the package as file:line:col with the file's base name:
// all files of a package share its directory.
func (b *modelBuilder) shortPos(pos token.Pos) string {
	p := b.pkg.Fset.Position(pos)
	return fmt.Sprintf("%s:%d:%d", filepath.Base(p.Filename), p.Line, p.Column)
}

// buildModel classifies the parameters of every task of pkg, checks them and computes
// their schema. tests are pkg's in-package test files, checked for declarations of
// generated names only. It returns a nil model when pkg has no tasks.
func buildModel(pkg *packages.Package, dirs []*funcDirective, tests []*ast.File) (*pkgModel, errorList) {
	b := &modelBuilder{pkg: pkg}
	m := &pkgModel{path: pkg.PkgPath, name: pkg.Name, types: pkg.Types}
	kinds := map[string]*taskModel{}
	names := map[string]*taskModel{}
	for _, fd := range dirs {
		if !fd.parsed {
			continue
		}
		t := b.task(fd)
		if t == nil {
			continue
		}
		if t.dir.kind != "" {
			if prev, ok := kinds[t.dir.kind]; ok {
				b.errorf(fd.comment.Slash, "duplicate task kind %q: %s already uses it (%s); give one of them another kind",
					t.dir.kind, prev.display, b.shortPos(prev.decl.Pos()))
			} else {
				kinds[t.dir.kind] = t
			}
		}
		// One error per pair of tasks, naming every name they share.
		var clash []string
		var prev *taskModel
		for _, name := range generatedNames(t.base) {
			if p, ok := names[name]; ok {
				if prev == nil {
					prev = p
				}
				if p == prev {
					clash = append(clash, name)
				}
				continue
			}
			names[name] = t
		}
		if prev != nil {
			b.errorf(t.decl.Name.Pos(), "%s would generate %s, which %s (%s) generates too: rename one of them",
				t.display, joinAnd(clash), prev.display, b.shortPos(prev.decl.Pos()))
		}
		m.tasks = append(m.tasks, t)
	}
	if len(m.tasks) == 0 {
		return nil, b.errs
	}
	b.checkDeclared(m, tests)
	b.lifespans(m)
	return m, b.errs
}

// task builds the model of one task function, or returns nil when it cannot be a task
// at all.
func (b *modelBuilder) task(fd *funcDirective) *taskModel {
	decl := fd.decl
	if decl.Name.Name == "_" || (decl.Recv == nil && decl.Name.Name == "init") {
		b.errorf(decl.Name.Pos(), "%s cannot be a task: it cannot be called", decl.Name.Name)
		return nil
	}
	fn, _ := b.pkg.TypesInfo.Defs[decl.Name].(*types.Func)
	if fn == nil {
		return nil // a type error, already reported while loading
	}
	sig := fn.Type().(*types.Signature)
	t := &taskModel{decl: decl, fn: fn, dir: fd.dir, dirPos: fd.comment.Slash, base: taskBaseName(decl)}
	names := taskspec.NamesOf(t.base)
	t.argsName, t.taskName, t.submitName, t.submitManyName, t.resultName = names.Args, names.Task, names.Submit, names.SubmitMany, names.Result
	t.display = decl.Name.Name
	if recv := sig.Recv(); recv != nil {
		t.display = recvDisplay(recv.Type()) + "." + decl.Name.Name
	}
	switch {
	case sig.TypeParams().Len() > 0:
		b.errorf(decl.Name.Pos(), "generic function %s cannot be a task: the worker could not choose its type arguments; write a non-generic wrapper function that calls it with concrete type arguments and mark that as the task", t.display)
		return nil
	case sig.RecvTypeParams().Len() > 0:
		b.errorf(decl.Name.Pos(), "method %s of a generic type cannot be a task: the worker could not choose its type arguments; write a non-generic wrapper function that calls it on a concrete instance of the type and mark that as the task", t.display)
		return nil
	case t.base == "":
		b.errorf(decl.Name.Pos(), "%s cannot be a task: its name gives no usable generated names", t.display)
		return nil
	}

	if recv := sig.Recv(); recv != nil {
		t.recv = &paramModel{kind: paramLifespan, index: -1, name: recv.Name(), typ: recv.Type(), pos: decl.Recv.List[0].Type.Pos()}
		if recv.Name() == "" || recv.Name() == "_" {
			t.recv.name = ""
		}
	}

	positions := paramPositions(decl.Type.Params)
	lifespan := map[string]bool{}
	for _, name := range fd.dir.lifespan {
		lifespan[name] = true
	}
	found := map[string]bool{}
	var caller, info *paramModel
	params := sig.Params()
	for i := 0; i < params.Len(); i++ {
		v := params.At(i)
		p := &paramModel{index: i, name: v.Name(), typ: v.Type(), pos: positions[i]}
		p.variadic = sig.Variadic() && i == params.Len()-1
		switch {
		case isNamed(v.Type(), "context", "Context"):
			p.kind = paramContext
			if i != 0 {
				b.errorf(p.pos, "context.Context must be the first parameter of a task function (%s is parameter %d)", paramLabel(p), i+1)
			}
			if lifespan[v.Name()] {
				b.errorf(fd.comment.Slash+token.Pos(fd.dir.lifespanOffset),
					"lifespan=%s: the context.Context parameter cannot be lifespan state; the worker passes a fresh context to every task", v.Name())
			}
		case isNamed(v.Type(), taskPkgPath, "Caller"):
			p.kind, t.hasCaller = paramCaller, true
			b.filledIn(fd, p, &caller, lifespan[v.Name()], "task.Caller", "it is captured when the task is submitted")
		case isNamed(v.Type(), taskPkgPath, "Info"):
			p.kind, t.hasInfo = paramInfo, true
			b.filledIn(fd, p, &info, lifespan[v.Name()], "task.Info", "the worker fills it in for every attempt")
		case lifespan[v.Name()]:
			p.kind = paramLifespan
			if ptr, ok := types.Unalias(v.Type()).(*types.Pointer); ok && isNamed(ptr.Elem(), taskPkgPath, "Caller") {
				// One identity for every task the worker runs: the isolation of callers
				// that taskgen exists for.
				b.errorf(fd.comment.Slash+token.Pos(fd.dir.lifespanOffset),
					"lifespan=%s: a *task.Caller cannot be lifespan state; every task runs as the caller that submitted it: take a task.Caller parameter", v.Name())
			}
		default:
			p.kind = paramArg
			if ptr, ok := types.Unalias(v.Type()).(*types.Pointer); ok {
				for _, name := range []string{"Caller", "Info"} {
					if isNamed(ptr.Elem(), taskPkgPath, name) {
						b.errorf(p.pos, "take the task.%s by value, not as *task.%s", name, name)
						p.unchecked = true
					}
				}
			}
		}
		if lifespan[v.Name()] {
			found[v.Name()] = true
		}
		t.params = append(t.params, p)
	}
	for _, name := range fd.dir.lifespan {
		switch {
		case found[name]:
		case t.recv != nil && t.recv.name == name:
			b.errorf(fd.comment.Slash+token.Pos(fd.dir.lifespanOffset), "lifespan=%s: %s is the receiver of %s, which is always lifespan state; leave it out of lifespan=", name, name, t.display)
		default:
			b.errorf(fd.comment.Slash+token.Pos(fd.dir.lifespanOffset), "lifespan=%s: %s has no parameter named %s", name, t.display, name)
		}
	}
	b.nameArgs(t)
	b.results(t, sig)
	if fd.dir.schedule != "" {
		b.scheduleArgs(fd, t)
	}

	// A type built on an undefined name (tolerated while loading because this run
	// generates it) cannot be written into the generated code.
	ok := true
	all := t.params
	if t.recv != nil {
		all = append([]*paramModel{t.recv}, all...)
	}
	for _, p := range all {
		if hasInvalidType(p.typ) {
			b.errorf(p.pos, "the type of %s uses a name taskgen generates; task signatures cannot depend on generated code", lifespanLabel(p))
			p.unchecked = true
			ok = false
		}
	}
	if t.result != nil && hasInvalidType(t.result) {
		b.errorf(resultPos(decl), "the result type of %s uses a name taskgen generates; task signatures cannot depend on generated code", t.display)
		t.result = nil
		ok = false
	}

	for _, p := range t.args() {
		if p.unchecked {
			ok = false
			continue
		}
		if b.serializable.At(p.typ) != nil {
			continue
		}
		msgs := checkArgument(b.pkg.Types, p.wire, p.name != "" && p.name != "_", p.typ)
		for _, msg := range msgs {
			b.errorf(p.pos, "%s", msg)
			ok = false
		}
		if len(msgs) == 0 {
			b.serializable.Set(p.typ, true)
		}
	}
	if t.result != nil && b.serializableResults.At(t.result) == nil {
		msgs := checkResult(b.pkg.Types, t.result)
		for _, msg := range msgs {
			b.errorf(resultPos(decl), "%s", msg)
		}
		if len(msgs) == 0 {
			b.serializableResults.Set(t.result, true)
		}
	}
	if ok {
		var fields []schemaField
		for _, p := range t.args() {
			fields = append(fields, schemaField{name: p.wire, typ: p.typ})
		}
		wire, err := argsWire(fields, &b.descriptions)
		if err != nil {
			b.errorf(decl.Name.Pos(), "%v", err)
		} else {
			t.wire, t.schema = wire, wireschema.Fingerprint(wire)
			t.previousSchema = previousSchema(fields, &b.v1Descriptions)
		}
	}
	return t
}

// scheduleArgs reports the arguments of a task with a schedule= option: the workers
// submit a scheduled task by themselves, with no arguments to give it (a directive has no
// argument defaults). What a scheduled task may take is what the worker fills in: a
// context, a task.Caller (the schedule's System caller), a task.Info, and lifespan state.
func (b *modelBuilder) scheduleArgs(fd *funcDirective, t *taskModel) {
	var names []string
	for _, p := range t.args() {
		names = append(names, paramLabel(p))
	}
	if len(names) == 0 {
		return
	}
	b.errorf(fd.comment.Slash+token.Pos(fd.dir.scheduleOffset),
		"schedule= on %s, which takes arguments (%s): a scheduled task is submitted by the workers with no arguments, so it may take only a context.Context, a task.Caller, a task.Info and lifespan= values; make them lifespan state, or leave schedule= out and call %s from a scheduler of your own",
		t.display, strings.Join(names, ", "), t.submitName)
}

// filledIn checks a parameter the task gets from the runtime, never from its submitter's
// arguments or its worker's lifespan state (task.Caller, task.Info): a task takes at most
// one of each, first is the first one met, and it cannot be named in lifespan=; why says
// where its value comes from.
func (b *modelBuilder) filledIn(fd *funcDirective, p *paramModel, first **paramModel, inLifespan bool, what, why string) {
	if *first != nil {
		b.errorf(p.pos, "a task takes at most one %s (%s is the first)", what, paramLabel(*first))
	} else {
		*first = p
	}
	if inLifespan {
		b.errorf(fd.comment.Slash+token.Pos(fd.dir.lifespanOffset), "lifespan=%s: the %s parameter cannot be lifespan state; %s", p.name, what, why)
	}
}

// hasInvalidType reports whether t is, or is built from, an invalid type.
func hasInvalidType(t types.Type) bool {
	invalid := false
	walkType(t, func(obj *types.TypeName) {
		if obj.Pkg() == nil && obj.Name() == types.Typ[types.Invalid].Name() {
			invalid = true
		}
	})
	return invalid
}

// recvDisplay writes a receiver type the way Go documentation does: T or (*T).
func recvDisplay(t types.Type) string {
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		if n, ok := types.Unalias(p.Elem()).(*types.Named); ok {
			return "(*" + n.Obj().Name() + ")"
		}
	}
	if n, ok := types.Unalias(t).(*types.Named); ok {
		return n.Obj().Name()
	}
	return types.TypeString(t, nil)
}

// paramLabel names a parameter in a message.
func paramLabel(p *paramModel) string {
	if p.name == "" || p.name == "_" {
		return "parameter " + strconv.Itoa(p.index+1)
	}
	return p.name
}

// paramPositions returns the position of every parameter of a field list, in order: the
// name when there is one, else the type.
func paramPositions(list *ast.FieldList) []token.Pos {
	var out []token.Pos
	if list == nil {
		return out
	}
	for _, f := range list.List {
		if len(f.Names) == 0 {
			out = append(out, f.Type.Pos())
			continue
		}
		for _, n := range f.Names {
			out = append(out, n.Pos())
		}
	}
	return out
}

// resultPos is where errors about a function's results point.
func resultPos(decl *ast.FuncDecl) token.Pos {
	if decl.Type.Results != nil {
		return decl.Type.Results.Pos()
	}
	if decl.Type.Params != nil {
		return decl.Type.Params.End()
	}
	return decl.Name.Pos()
}

// nameArgs gives every argument its JSON name (the parameter name, or arg<i> when it is
// unnamed or blank, i counting only the serialized arguments, so that adding a context,
// caller or lifespan parameter changes neither the names nor the schema) and its FArgs
// field name (the JSON name exported), both unique.
func (b *modelBuilder) nameArgs(t *taskModel) {
	args := t.args()
	declared := map[string]bool{}
	for _, p := range args {
		if p.name != "" && p.name != "_" {
			declared[p.name] = true
		}
	}
	wires := map[string]bool{}
	for i, p := range args {
		if p.name != "" && p.name != "_" {
			p.wire = p.name
		} else {
			// A generated name must not take the name of a declared parameter.
			p.wire = "arg" + strconv.Itoa(i)
			for declared[p.wire] || wires[p.wire] {
				p.wire += "_"
			}
		}
		wires[p.wire] = true
	}
	fields := map[string]bool{}
	for i, p := range args {
		name := exportedName(p.wire)
		if fields[name] {
			// Names that differ only in case, or in leading underscores: keep the first,
			// suffix the others with their position among the arguments.
			name += strconv.Itoa(i)
			for fields[name] {
				name += "_"
			}
		}
		fields[name] = true
		p.field = name
	}
}

// results checks that the function returns error or (R, error).
func (b *modelBuilder) results(t *taskModel, sig *types.Signature) {
	res := sig.Results()
	switch {
	case res.Len() == 0:
		b.errorf(resultPos(t.decl), "a task must return error or (R, error); %s returns nothing", t.display)
	case res.Len() > 2:
		b.errorf(resultPos(t.decl), "a task must return error or (R, error); %s returns %d results", t.display, res.Len())
	case !types.Identical(res.At(res.Len()-1).Type(), errorType):
		b.errorf(resultPos(t.decl), "a task must return error or (R, error); the last result of %s is %s, not error",
			t.display, typeString(res.At(res.Len()-1).Type(), b.pkg.Types))
	case res.Len() == 2:
		t.result = res.At(0).Type()
	}
}

// lifespanParams returns the lifespan values of t: the receiver, then the lifespan
// parameters in order.
func (t *taskModel) lifespanParams() []*paramModel {
	var out []*paramModel
	if t.recv != nil {
		out = append(out, t.recv)
	}
	for _, p := range t.params {
		if p.kind == paramLifespan {
			out = append(out, p)
		}
	}
	return out
}

func lifespanLabel(p *paramModel) string {
	if p.index < 0 {
		if p.name == "" {
			return "the receiver"
		}
		return "the receiver " + p.name
	}
	return paramLabel(p)
}

// lifespans collects the distinct lifespan values of the package, identified by name, in
// order of first appearance: tasks in file and source order, the receiver before the
// parameters. A receiver is named after its type in lowerCamel, and the pointer and value
// receivers of one type share one value, a pointer: a value method can be called on it.
// One name with two types is an error at the second place.
func (b *modelBuilder) lifespans(m *pkgModel) {
	pointerRecv := map[*types.TypeName]bool{}
	for _, t := range m.tasks {
		if t.recv == nil {
			continue
		}
		if obj, ptr := recvType(t.recv.typ); obj != nil && ptr {
			pointerRecv[obj] = true
		}
	}
	byName := map[string]*lifespanModel{}
	for _, t := range m.tasks {
		for _, p := range t.lifespanParams() {
			name, typ := p.name, p.typ
			if p.index < 0 {
				obj, _ := recvType(p.typ)
				if obj == nil {
					continue // not a named type: a type error, already reported
				}
				name, typ = lowerCamel(obj.Name()), obj.Type()
				if pointerRecv[obj] {
					typ = types.NewPointer(typ)
				}
			}
			if l, ok := byName[name]; ok {
				if !types.Identical(l.typ, typ) {
					b.errorf(p.pos, "lifespan value %s of %s has type %s here, but %s at %s (%s); RegisterTasks takes one value per name: rename one of them",
						name, t.display, typeString(typ, b.pkg.Types), typeString(l.typ, b.pkg.Types), b.shortPos(l.first.pos), l.place)
				}
				p.life = l
				continue
			}
			place := "parameter " + p.name + " of " + t.display
			if p.index < 0 {
				place = "the receiver of " + t.display
			}
			p.life = &lifespanModel{name: name, typ: typ, first: p, place: place, nillable: canBeNil(typ)}
			byName[name] = p.life
			m.lifespans = append(m.lifespans, p.life)
		}
	}
}

// recvType returns the named type of a receiver type T or *T and whether it is a pointer.
func recvType(t types.Type) (*types.TypeName, bool) {
	ptr := false
	if p, ok := types.Unalias(t).(*types.Pointer); ok {
		t, ptr = p.Elem(), true
	}
	if n, ok := types.Unalias(t).(*types.Named); ok {
		return n.Obj(), ptr
	}
	return nil, ptr
}

// lowerCamel names a value after its type: Mailer → mailer, DB → db, HTTPClient →
// httpClient, URLs → urls. Leading underscores are dropped; "v" stands for a name of
// underscores.
func lowerCamel(name string) string {
	name = strings.TrimLeft(name, "_")
	runes := []rune(name)
	upper := 0
	for upper < len(runes) && unicode.IsUpper(runes[upper]) {
		upper++
	}
	switch {
	case len(runes) == 0:
		return "v"
	case upper > 1 && upper < len(runes) && string(runes[upper:]) != "s":
		upper-- // the last capital starts the next word: HTTPClient
	case upper == 0:
		return name
	}
	for i := 0; i < upper; i++ {
		runes[i] = unicode.ToLower(runes[i])
	}
	return string(runes)
}

// canBeNil reports whether a value of t can be nil, so that RegisterTasks checks it.
func canBeNil(t types.Type) bool {
	switch u := t.Underlying().(type) {
	case *types.Pointer, *types.Interface, *types.Map, *types.Slice, *types.Chan, *types.Signature:
		return true
	case *types.Basic:
		return u.Kind() == types.UnsafePointer
	}
	return false
}

// checkDeclared reports names the generator would emit that the package already declares
// (outside the generated file, which the taskgen build tag excludes), at package level or
// as the name of an import: Go forbids a name in both the package block and a file block.
// tests are the in-package test files, which go test compiles with the generated file.
func (b *modelBuilder) checkDeclared(m *pkgModel, tests []*ast.File) {
	names, uses := generatedFor(m)
	scope := m.types.Scope()
	for _, name := range names {
		if obj := scope.Lookup(name); obj != nil {
			b.declaredError(obj.Pos(), name, uses[name])
		}
	}
	for _, file := range b.pkg.Syntax {
		for _, spec := range file.Imports {
			var pn *types.PkgName
			if spec.Name != nil {
				pn, _ = b.pkg.TypesInfo.Defs[spec.Name].(*types.PkgName)
			} else {
				pn, _ = b.pkg.TypesInfo.Implicits[spec].(*types.PkgName)
			}
			if pn != nil {
				b.checkImport(spec, pn.Imported(), names, uses)
			}
		}
	}
	if len(tests) == 0 {
		return
	}
	// Test files are not type-checked: an import is resolved only when a file of the
	// package imports the same path.
	imported := map[string]*types.Package{}
	for _, p := range m.types.Imports() {
		imported[p.Path()] = p
	}
	for _, file := range tests {
		for _, spec := range file.Imports {
			path, _ := strconv.Unquote(spec.Path.Value)
			b.checkImport(spec, imported[path], names, uses)
		}
		for _, id := range topLevelNames(file) {
			if use, ok := uses[id.Name]; ok {
				b.declaredError(id.Pos(), id.Name, use)
			}
		}
	}
}

// topLevelNames returns the names a file declares in its package block: functions (not
// methods), types, variables and constants.
func topLevelNames(file *ast.File) []*ast.Ident {
	var out []*ast.Ident
	for _, decl := range file.Decls {
		switch decl := decl.(type) {
		case *ast.FuncDecl:
			if decl.Recv == nil {
				out = append(out, decl.Name)
			}
		case *ast.GenDecl:
			for _, spec := range decl.Specs {
				switch spec := spec.(type) {
				case *ast.TypeSpec:
					out = append(out, spec.Name)
				case *ast.ValueSpec:
					out = append(out, spec.Names...)
				}
			}
		}
	}
	return out
}

// generatedFor returns the names taskgen emits for m, in order, and what each is emitted
// for, as errors write it: "task n.send (Send)" or "the tasks of package n".
func generatedFor(m *pkgModel) ([]string, map[string]string) {
	var names []string
	uses := map[string]string{}
	for _, t := range m.tasks {
		for _, name := range generatedNames(t.base) {
			if _, ok := uses[name]; !ok {
				names = append(names, name)
				uses[name] = fmt.Sprintf("task %s (%s)", t.dir.kind, t.display)
			}
		}
	}
	names = append(names, taskspec.RegisterName)
	uses[taskspec.RegisterName] = "the tasks of package " + m.name
	return names, uses
}

// declaredError reports a declaration of a generated name.
func (b *modelBuilder) declaredError(pos token.Pos, name, use string) {
	fix := "rename one of them"
	if name == taskspec.RegisterName {
		fix = "rename it"
	}
	b.errorf(pos, "%s is declared here, but taskgen generates it for %s: %s", name, use, fix)
}

// checkImport reports an import whose name, or for a dot-import one of the names it
// brings in, is a generated name. imported is the imported package, nil when unknown:
// then only an explicit name is checked.
func (b *modelBuilder) checkImport(spec *ast.ImportSpec, imported *types.Package, names []string, uses map[string]string) {
	var name string
	switch {
	case spec.Name != nil:
		name = spec.Name.Name
	case imported != nil:
		name = imported.Name()
	}
	switch name {
	case "", "_":
	case ".":
		if imported == nil {
			return
		}
		for _, n := range names {
			if obj := imported.Scope().Lookup(n); obj != nil && obj.Exported() {
				b.errorf(spec.Pos(), "%s is declared here by the dot-import of %s, but taskgen generates it for %s: import the package under a name",
					n, spec.Path.Value, uses[n])
			}
		}
	default:
		if use, ok := uses[name]; ok {
			b.errorf(spec.Pos(), "%s is declared here as the name of the import of %s, but taskgen generates it for %s: import the package under another name",
				name, spec.Path.Value, use)
		}
	}
}

package taskvet

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
	"golang.org/x/tools/go/types/typeutil"
)

// task is a function of the package marked with a task directive.
type task struct {
	fn       *fn
	kind     string
	lifespan []string // the names listed by lifespan=
}

// name is how messages name the task: by kind, the name submitters and logs know it by.
func (t *task) name() string {
	if t.kind == "" {
		return funcName(t.fn.decl)
	}
	return t.kind
}

// fn is a function or method declared, with a body, in the package.
type fn struct {
	decl *ast.FuncDecl
	obj  *types.Func
	// owner is the first task, in source order, that fn is reachable from; nil while fn
	// is not known to be reachable.
	owner *task
	// callees are the functions of the package fn's body calls or refers to.
	callees []*fn
}

// checker checks one package.
type checker struct {
	pass    *analysis.Pass
	ambient map[string]bool // importpath.Func
	state   map[string]bool // importpath.Type

	funcs map[*types.Func]*fn
	tasks []*task
	// reachable are the functions reachable from some task, tasks first, in the order
	// they were reached.
	reachable []*fn
	// contexts are the variables holding the task's context or one derived from it.
	contexts map[*types.Var]bool
	reported map[token.Pos]bool
}

func newChecker(pass *analysis.Pass, ambient, state map[string]bool) *checker {
	c := &checker{
		pass:     pass,
		ambient:  ambient,
		state:    state,
		funcs:    map[*types.Func]*fn{},
		contexts: map[*types.Var]bool{},
		reported: map[token.Pos]bool{},
	}
	for _, file := range pass.Files {
		for _, decl := range file.Decls {
			decl, ok := decl.(*ast.FuncDecl)
			if !ok || decl.Body == nil {
				continue
			}
			obj, _ := pass.TypesInfo.Defs[decl.Name].(*types.Func)
			if obj == nil {
				continue
			}
			f := &fn{decl: decl, obj: obj}
			c.funcs[obj] = f
			if kind, lifespan, ok := taskDirective(decl.Doc); ok {
				c.tasks = append(c.tasks, &task{fn: f, kind: kind, lifespan: lifespan})
			}
		}
	}
	return c
}

// reach finds the functions reachable from each task, breadth first, so that a function
// reached from several tasks is attributed to the first of them in source order. A task
// is always its own: another task calling it does not make its findings the caller's.
func (c *checker) reach() {
	for _, t := range c.tasks {
		t.fn.owner = t
		c.reachable = append(c.reachable, t.fn)
	}
	for _, f := range c.funcs {
		f.callees = c.callees(f)
	}
	for _, t := range c.tasks {
		queue := append([]*fn(nil), t.fn.callees...)
		for len(queue) > 0 {
			f := queue[0]
			queue = queue[1:]
			if f.owner != nil {
				continue // reached already, and with it everything it reaches
			}
			f.owner = t
			c.reachable = append(c.reachable, f)
			queue = append(queue, f.callees...)
		}
	}
}

// callees returns the functions of the package that f's body calls or refers to, in
// source order. Configured ambient getters are left out: a call of one is reported, and
// what it does inside would only repeat that.
func (c *checker) callees(f *fn) []*fn {
	var out []*fn
	seen := map[*fn]bool{}
	ast.Inspect(f.decl.Body, func(n ast.Node) bool {
		id, ok := n.(*ast.Ident)
		if !ok {
			return true
		}
		callee := c.funcOf(id)
		if callee != nil && !seen[callee] && !c.isAmbient(callee.obj) {
			seen[callee] = true
			out = append(out, callee)
		}
		return true
	})
	return out
}

// funcOf returns the function of the package that id refers to, nil for any other
// identifier. An instantiation of a generic function or method is its declaration.
func (c *checker) funcOf(id *ast.Ident) *fn {
	obj, ok := c.pass.TypesInfo.Uses[id].(*types.Func)
	if !ok {
		return nil
	}
	return c.funcs[obj.Origin()]
}

// trackContexts finds the variables holding the task's context: the context.Context
// parameters of every task, then, until nothing changes, every variable of reachable code
// assigned one of them or a context derived from one, and every context.Context
// parameter of a reachable function that reachable code passes one to. Flow-insensitive:
// a variable assigned the task's context anywhere holds it everywhere.
func (c *checker) trackContexts() {
	for _, t := range c.tasks {
		sig := t.fn.obj.Type().(*types.Signature)
		for v := range sig.Params().Variables() {
			if isContext(v.Type()) {
				c.contexts[v] = true
			}
		}
	}
	for changed := true; changed; {
		changed = false
		mark := func(v *types.Var) {
			if v != nil && isContext(v.Type()) && !c.contexts[v] {
				c.contexts[v] = true
				changed = true
			}
		}
		for _, f := range c.reachable {
			ast.Inspect(f.decl.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.AssignStmt:
					c.assigned(n.Lhs, n.Rhs, mark)
				case *ast.ValueSpec:
					lhs := make([]ast.Expr, len(n.Names))
					for i, name := range n.Names {
						lhs[i] = name
					}
					c.assigned(lhs, n.Values, mark)
				case *ast.CallExpr:
					params := c.paramsOf(n)
					if params == nil {
						break
					}
					for i, arg := range n.Args {
						if i < params.Len() && c.isTaskContext(arg) {
							mark(params.At(i))
						}
					}
				}
				return true
			})
		}
	}
}

// assigned marks the variables of lhs assigned the task's context by rhs: one by one, or
// the first of several results of one context.With* call (ctx, cancel :=
// context.WithTimeout(ctx, d)).
func (c *checker) assigned(lhs, rhs []ast.Expr, mark func(*types.Var)) {
	switch {
	case len(lhs) == len(rhs):
		for i := range lhs {
			if c.isTaskContext(rhs[i]) {
				mark(c.varOf(lhs[i]))
			}
		}
	case len(rhs) == 1 && len(lhs) > 1:
		if c.isTaskContext(rhs[0]) {
			mark(c.varOf(lhs[0]))
		}
	}
}

// paramsOf returns the parameters of the function a call calls when that is a function
// of the package or a function literal called where it is written, nil for any other
// call. The variadic parameter is left out: no context is passed through one.
func (c *checker) paramsOf(call *ast.CallExpr) *types.Tuple {
	var sig *types.Signature
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.FuncLit:
		sig, _ = c.pass.TypesInfo.TypeOf(fun).(*types.Signature)
	default:
		callee, ok := typeutil.Callee(c.pass.TypesInfo, call).(*types.Func)
		if !ok || c.funcs[callee.Origin()] == nil {
			return nil
		}
		sig = callee.Origin().Type().(*types.Signature)
	}
	if sig == nil {
		return nil
	}
	params := sig.Params()
	if sig.Variadic() {
		vars := make([]*types.Var, 0, params.Len()-1)
		for i := range params.Len() - 1 {
			vars = append(vars, params.At(i))
		}
		return types.NewTuple(vars...)
	}
	return params
}

// varOf returns the variable an expression names, nil when it names none.
func (c *checker) varOf(e ast.Expr) *types.Var {
	id, ok := ast.Unparen(e).(*ast.Ident)
	if !ok {
		return nil
	}
	v, _ := c.pass.TypesInfo.ObjectOf(id).(*types.Var)
	return v
}

// isTaskContext reports whether e is the task's context: a variable holding it, or a
// context.With* call deriving a context from it. context.Background() and what is derived
// from it are not: a context the task made itself holds only the task's own values.
func (c *checker) isTaskContext(e ast.Expr) bool {
	switch e := ast.Unparen(e).(type) {
	case *ast.Ident:
		v := c.varOf(e)
		return v != nil && c.contexts[v]
	case *ast.CallExpr:
		callee, ok := typeutil.Callee(c.pass.TypesInfo, e).(*types.Func)
		return ok && callee.Pkg() != nil && callee.Pkg().Path() == "context" &&
			strings.HasPrefix(callee.Name(), "With") && len(e.Args) > 0 && c.isTaskContext(e.Args[0])
	}
	return false
}

// isContext reports whether t is context.Context.
func isContext(t types.Type) bool {
	named, ok := types.Unalias(t).(*types.Named)
	return ok && qualifiedName(named.Obj()) == "context.Context"
}

// report reports every ambient read in reachable code, each position once.
func (c *checker) report() {
	for _, f := range c.reachable {
		writes := assignedIdents(f.decl.Body)
		ast.Inspect(f.decl.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CallExpr:
				c.checkValueCall(f, n)
			case *ast.SelectorExpr:
				// A qualified identifier, pkg.Name, is reported from its start.
				if x, ok := n.X.(*ast.Ident); ok {
					if _, ok := c.pass.TypesInfo.Uses[x].(*types.PkgName); ok {
						c.checkUse(f, n.Sel, n.Pos(), x.Name+"."+n.Sel.Name, writes)
						return false
					}
				}
			case *ast.Ident:
				c.checkUse(f, n, n.Pos(), n.Name, writes)
			}
			return true
		})
	}
}

// checkValueCall reports call when it is ctx.Value(...) on the task's context.
func (c *checker) checkValueCall(f *fn, call *ast.CallExpr) {
	sel, ok := ast.Unparen(call.Fun).(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Value" {
		return
	}
	method, ok := c.pass.TypesInfo.Uses[sel.Sel].(*types.Func)
	if !ok || method.Pkg() == nil || method.Pkg().Path() != "context" || !c.isTaskContext(sel.X) {
		return
	}
	c.reportf(f, call.Pos(), "%s.Value %s: the worker's context carries nothing of the submitter's (no user, no token, no request values); take a task.Caller parameter for who asked, or a lifespan= value for the worker's state",
		types.ExprString(sel.X), c.where(f))
}

// checkUse reports id, written as name at pos, when it calls or refers to an ambient
// getter, or reads a package-level variable holding lifespan state.
func (c *checker) checkUse(f *fn, id *ast.Ident, pos token.Pos, name string, writes map[*ast.Ident]bool) {
	switch obj := c.pass.TypesInfo.Uses[id].(type) {
	case *types.Func:
		if c.isAmbient(obj) {
			c.reportf(f, pos, "%s %s reads ambient state (it is listed by -ambient), which the worker does not have; take a task.Caller parameter for who asked, or a lifespan= value for the worker's state",
				name, c.where(f))
		}
	case *types.Var:
		if writes[id] || !c.isPackageVar(obj) {
			return
		}
		if _, ok := c.stateType(obj.Type()); !ok {
			return
		}
		c.reportf(f, pos, "package variable %s (%s) read %s: %s", name, types.TypeString(obj.Type(), c.qualifier), c.where(f), c.lifespanAdvice(f.owner, obj))
	}
}

// isAmbient reports whether f is a function listed by -ambient. Methods are not: a
// method M of a type in package p would otherwise be taken for a function p.M.
func (c *checker) isAmbient(f *types.Func) bool {
	f = f.Origin()
	return f.Type().(*types.Signature).Recv() == nil && c.ambient[qualifiedName(f)]
}

// isPackageVar reports whether v is a package-level variable of this package or of a
// package outside the standard library. The standard library's (http.DefaultClient) are
// initialised by the library itself, so they are there in a worker too.
func (c *checker) isPackageVar(v *types.Var) bool {
	if v.IsField() || v.Pkg() == nil || v.Pkg().Scope().Lookup(v.Name()) != v {
		return false
	}
	if v.Pkg() == c.pass.Pkg {
		return true
	}
	first, _, _ := strings.Cut(v.Pkg().Path(), "/")
	return strings.Contains(first, ".")
}

// stateType returns importpath.Type of t, or of what t points to, when it is a type
// holding lifespan state.
func (c *checker) stateType(t types.Type) (string, bool) {
	t = types.Unalias(t)
	if p, ok := t.(*types.Pointer); ok {
		t = types.Unalias(p.Elem())
	}
	named, ok := t.(*types.Named)
	if !ok {
		return "", false
	}
	name := qualifiedName(named.Obj())
	return name, c.state[name]
}

// lifespanAdvice says what to do instead of reading v: use the lifespan value of the same
// type the task already takes, or add one.
func (c *checker) lifespanAdvice(t *task, v *types.Var) string {
	sig := t.fn.obj.Type().(*types.Signature)
	for p := range sig.Params().Variables() {
		for _, name := range t.lifespan {
			if p.Name() == name && types.Identical(p.Type(), v.Type()) {
				return fmt.Sprintf("task %s already takes it as lifespan=%s: use that parameter, passed down to where it is needed", t.name(), name)
			}
		}
	}
	name := lowerCamel(v.Name())
	if token.IsKeyword(name) {
		// store.Default: name the parameter after its type instead, store.Pool → pool.
		typ, _ := c.stateType(v.Type())
		name = lowerCamel(typ[strings.LastIndex(typ, ".")+1:])
		if token.IsKeyword(name) {
			name += "Value"
		}
	}
	return fmt.Sprintf("lifespan state belongs in a parameter: add lifespan=%s to the directive of task %s, a parameter %s %s, and give the value to RegisterTasks in the worker",
		name, t.name(), name, types.TypeString(v.Type(), c.qualifier))
}

// where says in which function a finding is, and for a function other than a task, from
// which task it is reached.
func (c *checker) where(f *fn) string {
	if f.owner.fn == f {
		return "in task " + f.owner.name()
	}
	return fmt.Sprintf("in %s, reached from task %s", funcName(f.decl), f.owner.name())
}

// qualifier prints types of this package unqualified and others by package name, as
// the code spells them.
func (c *checker) qualifier(p *types.Package) string {
	if p == c.pass.Pkg {
		return ""
	}
	return p.Name()
}

func (c *checker) reportf(f *fn, pos token.Pos, format string, args ...any) {
	if c.reported[pos] {
		return
	}
	c.reported[pos] = true
	c.pass.Report(analysis.Diagnostic{Pos: pos, Message: fmt.Sprintf(format, args...)})
}

// assignedIdents returns the identifiers body assigns to: the variables on the left of
// = (x = v, pkg.X = v), which are writes, not reads.
func assignedIdents(body *ast.BlockStmt) map[*ast.Ident]bool {
	writes := map[*ast.Ident]bool{}
	ast.Inspect(body, func(n ast.Node) bool {
		assign, ok := n.(*ast.AssignStmt)
		if !ok || assign.Tok != token.ASSIGN {
			return true
		}
		for _, lhs := range assign.Lhs {
			switch lhs := ast.Unparen(lhs).(type) {
			case *ast.Ident:
				writes[lhs] = true
			case *ast.SelectorExpr:
				writes[lhs.Sel] = true
			}
		}
		return true
	})
	return writes
}

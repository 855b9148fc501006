package taskvet

import (
	"fmt"
	"go/ast"
	"go/token"
	"go/types"
	"strings"

	"golang.org/x/tools/go/analysis"
)

// Analyzer reports ambient reads inside tasks; see the package documentation.
var Analyzer = &analysis.Analyzer{
	Name: "taskvet",
	Doc:  "report code run as a task that reads ambient state (ctx.Value on the task's context, configured getters, package-level clients) instead of a task.Caller or lifespan= parameter",
	URL:  "https://pkg.go.dev/github.com/taskgen/taskgen/taskvet",
	Run:  run,
	// The analyzer reads types where it finds them and skips what it cannot resolve, so a
	// package with type errors (in taskgen, references to the names it is about to
	// generate) is still worth checking.
	RunDespiteErrors: true,
}

// defaultStateTypes are the types, as importpath.Type, whose package-level variables are
// lifespan state without any -state flag: connection pools and clients a server opens at
// startup. Not loggers: a package-level logger works the same in a worker.
var defaultStateTypes = []string{
	"database/sql.DB",
	"net/http.Client",
	"github.com/redis/go-redis/v9.Client",
	"github.com/redis/go-redis/v9.ClusterClient",
	"github.com/redis/go-redis/v9.Ring",
	"github.com/redis/go-redis/v9.UniversalClient",
}

// The flag values. They are set once, by the driver's flag parsing, before any Run.
var (
	ambientFuncs = nameList{what: "function"}
	stateTypes   = nameList{what: "type"}
)

func init() {
	Analyzer.Flags.Var(&ambientFuncs, "ambient", "comma-separated `functions`, as importpath.Func (example.com/auth.FromContext), that read ambient state a task must take as a parameter")
	Analyzer.Flags.Var(&stateTypes, "state", "comma-separated `types`, as importpath.Type (example.com/store.Pool), whose package-level variables are lifespan state, in addition to *sql.DB, *http.Client and go-redis's clients")
}

// nameList is a flag holding comma-separated qualified names, importpath.Name.
type nameList struct {
	what  string
	names []string
}

func (l *nameList) String() string { return strings.Join(l.names, ",") }

// Set replaces the list, so that the last -ambient or -state given wins, as for any other
// flag. A name without a package path is refused: it would silently match nothing.
func (l *nameList) Set(s string) error {
	var names []string
	for _, n := range strings.Split(s, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		dot := strings.LastIndex(n, ".")
		if dot <= 0 || dot == len(n)-1 || strings.LastIndex(n, "/") > dot || !token.IsIdentifier(n[dot+1:]) {
			return fmt.Errorf("%q: want a %s as importpath.Name, such as example.com/auth.FromContext", n, l.what)
		}
		names = append(names, n)
	}
	l.names = names
	return nil
}

// set returns the names as a set.
func (l *nameList) set(extra ...string) map[string]bool {
	m := map[string]bool{}
	for _, n := range append(extra, l.names...) {
		m[n] = true
	}
	return m
}

func run(pass *analysis.Pass) (any, error) {
	c := newChecker(pass, ambientFuncs.set(), stateTypes.set(defaultStateTypes...))
	if len(c.tasks) == 0 {
		return nil, nil
	}
	c.reach()
	c.trackContexts()
	c.report()
	return nil, nil
}

// qualifiedName returns importpath.Name of a package-level object, "" for any other.
func qualifiedName(obj types.Object) string {
	if obj == nil || obj.Pkg() == nil {
		return ""
	}
	return obj.Pkg().Path() + "." + obj.Name()
}

// funcName is how a function is named in messages: f, T.m or (*T).m.
func funcName(decl *ast.FuncDecl) string {
	if decl.Recv == nil || len(decl.Recv.List) == 0 {
		return decl.Name.Name
	}
	recv := decl.Recv.List[0].Type
	star := false
	for {
		switch e := recv.(type) {
		case *ast.StarExpr:
			star, recv = true, e.X
			continue
		case *ast.ParenExpr:
			recv = e.X
			continue
		case *ast.IndexExpr:
			recv = e.X
			continue
		case *ast.IndexListExpr:
			recv = e.X
			continue
		}
		break
	}
	name := types.ExprString(recv)
	if star {
		return "(*" + name + ")." + decl.Name.Name
	}
	return name + "." + decl.Name.Name
}

// lowerCamel turns a variable's name into a parameter name: DB → db, RedisClient →
// redisClient, HTTPClient → httpClient.
func lowerCamel(name string) string {
	upper := 0
	for upper < len(name) && name[upper] >= 'A' && name[upper] <= 'Z' {
		upper++
	}
	switch {
	case upper == len(name):
		return strings.ToLower(name)
	case upper > 1:
		// HTTPClient: the last capital starts the next word.
		return strings.ToLower(name[:upper-1]) + name[upper-1:]
	case upper == 1:
		return strings.ToLower(name[:1]) + name[1:]
	}
	return name
}

package gen

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The emitter writes the generated file in gofmt's layout itself (emit.go). The golden
// cases pin that layout for the shapes they show; this test throws many more at it:
// random signatures, written as Go source and run through the whole generator, whose
// output must be what gofmt and goimports print, and must compile and vet.

// layoutTypes writes random type expressions. serial types are what a task argument or
// result may be; any types, what a lifespan value may be.
type layoutTypes struct{ r *rand.Rand }

func (g layoutTypes) pick(options ...string) string { return options[g.r.IntN(len(options))] }

func (g layoutTypes) serial(depth int) string {
	leaf := g.pick("int", "string", "bool", "float64", "uint8", "int64", "rune", "byte",
		"time.Time", "time.Duration", "Item", "Money", "Ident", "Label", "[]byte", "json.RawMessage",
		"netip.Addr", "struct{}", "Pair[string, int]", "Pair[Ident, []Item]")
	if depth >= 3 || g.r.IntN(3) == 0 {
		return leaf
	}
	switch g.r.IntN(8) {
	case 0:
		return "[]" + g.serial(depth+1)
	case 1:
		return fmt.Sprintf("[%d]", g.r.IntN(5)) + g.serial(depth+1)
	case 2:
		return "*" + g.serial(depth+1)
	case 3:
		return "map[" + g.pick("string", "int", "Ident", "uint16", "netip.Addr") + "]" + g.serial(depth+1)
	case 4:
		// A struct literal spans lines unless it is small and untagged.
		if g.r.IntN(2) == 0 {
			return "struct{ N " + g.serial(depth+1) + " }"
		}
		return "struct {\n\t\tA " + g.serial(depth+1) + " `json:\"a\"`\n\t\tLonger_Name " + g.serial(depth+1) + "\n\t}"
	case 5:
		return "Pair[" + g.pick("string", "int") + ", " + g.serial(depth+1) + "]"
	default:
		return leaf
	}
}

func (g layoutTypes) any(depth int) string {
	if depth >= 2 || g.r.IntN(2) == 0 {
		return g.serial(depth)
	}
	return g.pick(
		"chan int", "<-chan string", "chan<- "+g.any(depth+1), "chan (<-chan int)", "func()",
		"func("+g.any(depth+1)+") error", "func(...int) ("+g.any(depth+1)+", error)", "*Deps",
		"interface{}", "any", "io.Reader", "interface {\n\t\tio.Closer\n\t\tName() string\n\t}",
		"map[string]func(int) bool", "*[2]map[string]chan<- []Item", "unsafe.Pointer",
		"*atomic.Pointer[Deps]", "struct {\n\t\tio.Writer\n\t\tLimit int\n\t}")
}

// layoutNames are parameter names, among them every name the generated code uses
// itself, names that differ in case only, and names wider than ASCII.
var layoutNames = []string{
	"ctx", "c", "w", "opts", "caller", "args", "err", "task", "context", "time", "nil",
	"x", "id", "ID", "Id", "_x", "a_very_long_parameter_name", "é", "名前", "naïve", "F0Args",
	"json", "netip", "payload", "cfg", "n", "Item", "string",
}

// layoutTask writes task function i: a random signature under a random directive.
// lifespans holds the type of every lifespan name used so far in the package: lifespan
// values are identified by name, so a name keeps its type across tasks.
func layoutTask(r *rand.Rand, i int, lifespans map[string]string) string {
	g := layoutTypes{r}
	var params []string
	used := map[string]bool{}
	name := func() string {
		for {
			n := layoutNames[r.IntN(len(layoutNames))]
			if !used[n] {
				used[n] = true
				return n
			}
			if len(used) >= len(layoutNames)-2 {
				n = fmt.Sprintf("p%d", len(used))
				used[n] = true
				return n
			}
		}
	}
	unnamed := r.IntN(6) == 0 // Go allows no mix of named and unnamed parameters
	param := func(n, t string) {
		if unnamed {
			params = append(params, t)
		} else {
			params = append(params, n+" "+t)
		}
	}
	// Types the parameters named context, task, time, json... would shadow are written
	// before them, so declare those names after every use of the packages.
	if r.IntN(3) > 0 {
		param(name(), "context.Context")
	}
	if r.IntN(2) == 0 {
		param(name(), "task.Caller")
	}
	if r.IntN(3) == 0 {
		param(name(), "task.Info")
	}
	var lifespan []string
	if !unnamed {
		for range r.IntN(3) {
			n := name()
			t, ok := lifespans[n]
			if !ok {
				t = g.any(0)
				lifespans[n] = t
			}
			lifespan = append(lifespan, n)
			param(n, t)
		}
	}
	for range r.IntN(5) {
		param(name(), g.serial(0))
	}
	if r.IntN(4) == 0 {
		if unnamed {
			params = append(params, "..."+g.serial(1))
		} else {
			params = append(params, name()+" ..."+g.serial(1))
		}
	}
	var dir []string
	if r.IntN(2) == 0 {
		dir = append(dir, "queue="+g.pick("email", "q-1", "a.b_c"))
	}
	if r.IntN(2) == 0 {
		dir = append(dir, fmt.Sprintf("retries=%d", r.IntN(12)))
	}
	if r.IntN(2) == 0 {
		dir = append(dir, "timeout="+g.pick("30s", "1500ms", "2m", "1h30m", "7ns"))
	}
	if len(lifespan) > 0 {
		dir = append(dir, "lifespan="+strings.Join(lifespan, ","))
	}
	// The body cannot say nil: a parameter may be named nil.
	var b strings.Builder
	results, ret := "error", "*new(error)"
	if r.IntN(2) == 0 {
		fmt.Fprintf(&b, "\ntype R%d = %s\n", i, g.serial(0))
		results, ret = fmt.Sprintf("(R%d, error)", i), fmt.Sprintf("*new(R%d), *new(error)", i)
	}
	recv := ""
	if r.IntN(4) == 0 {
		recv = g.pick("(s *Service) ", "(Service) ", "(_ *Service) ")
	}
	fmt.Fprintf(&b, "\n// F%d is random.\n//\n//task:layout.f%d %s\n", i, i, strings.Join(dir, " "))
	fmt.Fprintf(&b, "func %sF%d(%s) %s {\n\treturn %s\n}\n", recv, i, strings.Join(params, ", "), results, ret)
	return b.String()
}

const layoutPrelude = `package layout

import (
	"context"
	"encoding/json"
	"io"
	"net/netip"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/taskgen/taskgen/runtime/task"
)

var (
	_ context.Context
	_ json.RawMessage
	_ io.Reader
	_ netip.Addr
	_ atomic.Bool
	_ time.Time
	_ unsafe.Pointer
	_ task.Caller
)

type (
	Deps    struct{}
	Service struct{}
	Item    struct {
		SKU string ` + "`json:\"sku\"`" + `
		Qty int
	}
	Money int64
	Ident string
	Label = string
)

type Pair[K comparable, V any] struct {
	Key   K
	Value V
}
`

func TestRandomSignaturesGenerateFormattedCode(t *testing.T) {
	const seeds, tasks = 4, 60
	files := map[string]string{}
	for seed := range uint64(seeds) {
		r := rand.New(rand.NewPCG(seed, 0x7a5c9e))
		var b strings.Builder
		lifespans := map[string]string{}
		b.WriteString(strings.Replace(layoutPrelude, "package layout", fmt.Sprintf("package layout%d", seed), 1))
		for i := range tasks {
			b.WriteString(layoutTask(r, i, lifespans))
		}
		files[fmt.Sprintf("layout%d/tasks.go", seed)] = b.String()
	}
	dir, env := tempModule(t, files)
	res, err := Run(Config{Dir: dir, Patterns: []string{"./..."}, Env: env})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(res.Files) != seeds {
		t.Fatalf("generated %d files, want %d: %+v", len(res.Files), seeds, res.Files)
	}
	for seed := range seeds {
		name := fmt.Sprintf("layout%d/%s", seed, DefaultOutput)
		src, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(src), "\n\tif err := task.Register(") + strings.Count(string(src), "\n\tif err := task.RegisterWithInfo("); got != tasks {
			t.Errorf("%s registers %d tasks, want %d", name, got, tasks)
		}
		checkFormatStable(t, name, src)
	}
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet of the generated code: %v\n%s", err, out)
	}
}

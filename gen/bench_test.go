package gen

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// benchTasks is the size of the synthetic package of BenchmarkGenerate.
const benchTasks = 1000

// BenchmarkGenerate measures the generator against its floor: "load" is a bare
// packages.Load of a synthetic package of 1,000 task functions, with exactly the
// generator's packages.Config (loadConfig: its Mode and BuildFlags); "generate" is a full
// Run on the same package (load, directives, model and checks, emit, compare with the
// file on disk), as a repeated go generate does it. Both run in the same module with a
// warm build cache. The goals are generate <= 1.5 × load at 1,000 tasks and <= 1.1 × at
// 10; see BENCHMARKS.md.
//
//	make bench-gen
func BenchmarkGenerate(b *testing.B) { benchmarkGenerate(b, benchTasks) }

// BenchmarkGenerateTen is BenchmarkGenerate on a package of ten tasks, the size of most
// real packages: there the emitter's cost is small against the go command's.
func BenchmarkGenerateTen(b *testing.B) { benchmarkGenerate(b, 10) }

func benchmarkGenerate(b *testing.B, tasks int) {
	dir, env := benchModule(b, tasks)
	pkgDir := filepath.Join(dir, "tasks")
	// Generate once: the build cache is warm for both, and every measured Run finds an
	// up-to-date file, as a repeated go generate does.
	if _, err := Run(Config{Dir: pkgDir, Env: env}); err != nil {
		b.Fatalf("generate the synthetic package: %v", err)
	}

	b.Run("load", func(b *testing.B) {
		cfg := loadConfig(pkgDir, env, nil)
		for b.Loop() {
			pkgs, err := packages.Load(cfg, ".")
			if err != nil {
				b.Fatal(err)
			}
			if len(pkgs) != 1 || len(pkgs[0].Errors) > 0 || len(pkgs[0].Syntax) == 0 {
				b.Fatalf("load: %d packages, errors %v", len(pkgs), pkgs[0].Errors)
			}
		}
	})
	// "generate" is a repeated go generate or taskgen -check: the format cache knows the
	// file. "generate-uncached" is the same run with the cache off (TASKGEN_CACHE=off),
	// what a first run on a fresh machine, or after any change, costs. "generate-vet" is
	// "generate" with Config.Vet, as the taskgen command runs by default.
	uncached := append(append([]string(nil), env...), formatCacheEnv+"=off")
	for _, bench := range []struct {
		name string
		env  []string
		vet  bool
	}{{"generate", env, false}, {"generate-uncached", uncached, false}, {"generate-vet", env, true}} {
		b.Run(bench.name, func(b *testing.B) {
			for b.Loop() {
				res, err := Run(Config{Dir: pkgDir, Env: bench.env, Vet: bench.vet})
				if err != nil {
					b.Fatal(err)
				}
				if len(res.Files) != 1 || res.Files[0].Status != Unchanged {
					b.Fatalf("generate: %+v, want one unchanged file", res.Files)
				}
			}
		})
	}
}

// TestBenchmarkPackageGenerates keeps the synthetic package of BenchmarkGenerate valid: a
// small one generates without errors, in the form gofmt and goimports print, and the
// module vets with the generated code.
func TestBenchmarkPackageGenerates(t *testing.T) {
	dir, env := benchModule(t, 40)
	res, err := Run(Config{Dir: dir, Patterns: []string{"./..."}, Env: env})
	if err != nil {
		t.Fatalf("generate: %v", err)
	}
	if len(res.Files) != 1 || res.Files[0].Status != Written {
		t.Fatalf("files = %+v, want one written", res.Files)
	}
	src, err := os.ReadFile(filepath.Join(dir, "tasks", DefaultOutput))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(src), "\n\tif err := task.Register("); got != 40 {
		t.Errorf("RegisterTasks registers %d tasks, want 40", got)
	}
	checkFormatStable(t, "tasks/"+DefaultOutput, src)
	cmd := exec.Command("go", "vet", "./...")
	cmd.Dir = dir
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go vet of the synthetic module: %v\n%s", err, out)
	}
}

// benchModule writes a module requiring this repository with one package, tasks, of n
// task functions spread over files of 100, and returns its directory and the go
// command's environment for it.
func benchModule(tb testing.TB, n int) (string, []string) {
	tb.Helper()
	files := map[string]string{"tasks/types.go": benchTypes}
	for start := 0; start < n; start += 100 {
		var b strings.Builder
		b.WriteString(benchHeader)
		for i := start; i < n && i < start+100; i++ {
			b.WriteString(benchTask(i))
		}
		files[fmt.Sprintf("tasks/tasks%02d.go", start/100)] = b.String()
	}
	return tempModule(tb, files)
}

// tempModule writes a module, example.com/bench, of files (slash paths to contents) that
// requires this repository (replace to the checkout, its go.sum copied, requirements
// completed by go mod tidy from the module cache), and returns its directory and the go
// command's environment for it.
func tempModule(tb testing.TB, files map[string]string) (string, []string) {
	tb.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		tb.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		tb.Fatal(err)
	}
	dir := tb.TempDir()
	writeFile(tb, filepath.Join(dir, "go.mod"), []byte("module example.com/bench\n\ngo 1.24\n\n"+
		"require github.com/taskgen/taskgen v0.0.0\n\nreplace github.com/taskgen/taskgen => "+root+"\n"))
	writeFile(tb, filepath.Join(dir, "go.sum"), sum)
	for name, content := range files {
		writeFile(tb, filepath.Join(dir, filepath.FromSlash(name)), []byte(content))
	}
	var flags []string
	for _, f := range strings.Fields(os.Getenv("GOFLAGS")) {
		if !strings.HasPrefix(f, "-mod=") {
			flags = append(flags, f)
		}
	}
	env := append(os.Environ(), "GOFLAGS="+strings.Join(flags, " "), "GOWORK=off")
	cmd := exec.Command("go", "mod", "tidy")
	cmd.Dir = dir
	cmd.Env = append(env, "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	return dir, env
}

const benchHeader = `package tasks

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

var (
	_ context.Context
	_ json.RawMessage
	_ netip.Addr
	_ time.Time
	_ task.Caller
)
`

const benchTypes = `package tasks

import "time"

// Deps, DB, Service and Config are lifespan state.
type (
	Deps    struct{ From string }
	DB      struct{}
	Service struct{ Bucket string }
	Config  struct{ Locale string }
)

type Meta struct {
	Version int
	Labels  map[string]string
}

type Address struct {
	Street string ` + "`json:\"street\"`" + `
	Zip    string ` + "`json:\"zip,omitempty\"`" + `
}

type Person struct {
	Meta
	Name     string
	Home     *Address
	Previous []Address
}

type Item struct {
	SKU string
	Qty int
}

type Order struct {
	ID    string
	Items []Item
	At    time.Time
}

type Receipt struct{ Number string }

type Report struct {
	Lines []string
	At    time.Time
}

type Tree struct {
	Value    int
	Children []Tree
}
`

// benchTask is task function i of the synthetic package: ten shapes in turn, with
// contexts, callers, lifespan values, structs, slices, maps, times, results and methods.
func benchTask(i int) string {
	var dir, sig, body string
	switch i % 10 {
	case 0:
		dir = "queue=email retries=5 timeout=30s"
		sig = "func T%d(ctx context.Context, caller task.Caller, to, name string) error"
		body = "return nil"
	case 1:
		dir = "lifespan=deps"
		sig = "func T%d(ctx context.Context, deps *Deps, id int64, at time.Time) error"
		body = "return nil"
	case 2:
		dir = "queue=orders"
		sig = "func T%d(ctx context.Context, o Order) (Receipt, error)"
		body = "return Receipt{}, nil"
	case 3:
		dir = "retries=0"
		sig = "func T%d(ctx context.Context, items []Item, tags map[string][]string) (int, error)"
		body = "return len(items) + len(tags), nil"
	case 4:
		dir = "queue=images timeout=2m"
		sig = "func (s *Service) M%d(ctx context.Context, caller task.Caller, key string, width, height int) error"
		body = "return nil"
	case 5:
		dir = ""
		sig = "func T%d(ctx context.Context, wait time.Duration, ids ...int) error"
		body = "return nil"
	case 6:
		dir = "retries=2"
		sig = "func T%d(caller task.Caller, p *Person, byID map[int]*Person) (map[string]int, error)"
		body = "return nil, nil"
	case 7:
		dir = "lifespan=db,cache timeout=1500ms"
		sig = "func T%d(ctx context.Context, db *DB, cache map[string]string, tree Tree, raw []byte) error"
		body = "return nil"
	case 8:
		dir = "queue=net"
		sig = "func T%d(ctx context.Context, addr netip.Addr, doc json.RawMessage) ([]netip.Addr, error)"
		body = "return nil, nil"
	case 9:
		dir = "queue=reports retries=1"
		sig = "func (c Config) R%d(ctx context.Context, day string, at time.Time) (*Report, error)"
		body = "return nil, nil"
	}
	directive := fmt.Sprintf("//task:bench.t%d", i)
	if dir != "" {
		directive += " " + dir
	}
	return fmt.Sprintf("\n// Task %d is synthetic.\n//\n%s\n"+sig+" {\n\t%s\n}\n", i, directive, i, body)
}

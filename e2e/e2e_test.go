// Package e2e holds the end-to-end test: an application package written only against
// the contract in DESIGN.md is generated with the taskgen command in a module of its own,
// built, and run against a real redis-server.
package e2e

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/runtime/redistest"
	"golang.org/x/tools/txtar"
)

// app is the application: tasks of every shape (function and method, caller or not, task.Info,
// lifespan, results), and a main that runs a worker, submits through the generated
// functions, and prints what each task saw.
const app = `-- go.mod --
module example.com/shop

go 1.24

require github.com/taskgen/taskgen v0.0.0

replace github.com/taskgen/taskgen => REPO
-- orders/orders.go --
package orders

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

type DB struct{ Name string }

type Line struct {
	SKU string
	Qty int
}

type Receipt struct {
	Order string
	Total int
	By    string
}

// Checkout bills an order for the caller.
//
//task:orders.checkout queue=orders retries=2 timeout=5s lifespan=db
func Checkout(ctx context.Context, caller task.Caller, db *DB, order string, lines []Line, at time.Time) (Receipt, error) {
	if _, ok := ctx.Deadline(); !ok {
		return Receipt{}, fmt.Errorf("no deadline")
	}
	total := 0
	for _, l := range lines {
		total += l.Qty
	}
	return Receipt{Order: order, Total: total, By: caller.UserID + "@" + db.Name + "/" + caller.Token.Reveal()}, nil
}

// Mailer is worker state used by a method task.
type Mailer struct{ From string }

// Notify tells someone, with no caller at all.
//
//task:orders.notify queue=orders
func (m *Mailer) Notify(ctx context.Context, to string, attempts map[string]int) error {
	if m.From == "" {
		return fmt.Errorf("no sender")
	}
	fmt.Println("notify", to, "from", m.From, attempts["x"])
	return nil
}

// Runs records what Flaky saw on each attempt: worker state, shared by the attempts.
type Runs struct {
	mu   sync.Mutex
	seen []task.Info
}

// Flaky fails its first attempt; the second reports every attempt's Info.
//
//task:orders.flaky queue=orders retries=2 lifespan=runs
func Flaky(ctx context.Context, info task.Info, runs *Runs, order string) (string, error) {
	runs.mu.Lock()
	runs.seen = append(runs.seen, info)
	seen := append([]task.Info(nil), runs.seen...)
	runs.mu.Unlock()
	if info.Attempt == 1 {
		return "", fmt.Errorf("the first attempt fails")
	}
	var b strings.Builder
	for _, s := range seen {
		fmt.Fprintf(&b, " %s#%d/%d", s.ID, s.Attempt, s.MaxRetries)
		if s.Kind != "orders.flaky" || time.Since(s.SubmittedAt) > time.Minute {
			fmt.Fprintf(&b, "(kind %q, submitted %s)", s.Kind, s.SubmittedAt)
		}
	}
	return order + b.String(), nil
}
-- main.go --
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"example.com/shop/orders"
	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/task"
)

func main() {
	ctx := context.Background()
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs:         strings.Split(os.Getenv("REDIS_ADDRS"), ","),
		IsClusterMode: os.Getenv("REDIS_CLUSTER") == "1",
	})
	key, prefix := task.WithSigningKey("k", []byte("0123456789abcdef0123456789abcdef")), task.WithPrefix("shop")
	w, err := task.NewWorker(rdb, key, prefix, task.WithQueues("orders"), task.WithBackoff(20*time.Millisecond, 200*time.Millisecond))
	check(err)
	check(orders.RegisterTasks(w, &orders.DB{Name: "main"}, &orders.Mailer{From: "shop"}, &orders.Runs{}))
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- w.Run(wctx) }()
	c, err := task.NewClient(rdb, key, prefix)
	check(err)

	caller := task.Caller{UserID: "u1", Token: task.NewSecret("t1"), ExpiresAt: time.Now().Add(time.Hour)}
	id, err := orders.SubmitCheckout(ctx, c, caller, "o-1", []orders.Line{{SKU: "a", Qty: 2}, {SKU: "b", Qty: 3}}, time.Now())
	check(err)
	r, err := orders.ResultCheckout(ctx, c, id)
	check(err)
	fmt.Printf("checkout %s total=%d by=%s\n", r.Order, r.Total, r.By)

	nid, err := orders.SubmitMailerNotify(ctx, c, "ops@example.com", map[string]int{"x": 7})
	check(err)
	check(orders.ResultMailerNotify(ctx, c, nid))
	_, err = orders.ResultCheckout(ctx, c, nid)
	fmt.Println("result of another kind refused:", errors.Is(err, task.ErrKindMismatch))

	fid, err := orders.SubmitFlaky(ctx, c, "o-3")
	check(err)
	seen, err := orders.ResultFlaky(ctx, c, fid)
	check(err)
	fmt.Println("flaky", strings.ReplaceAll(seen, string(fid), "ID"))

	_, err = orders.SubmitCheckout(ctx, c, task.Caller{}, "o-2", nil, time.Now())
	fmt.Println("empty caller refused:", err != nil)
	fmt.Println("schema set:", orders.CheckoutTask.Schema != "" && orders.MailerNotifyTask.Schema != orders.CheckoutTask.Schema)
	stop()
	check(<-done)
}

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}
`

func TestGeneratedApplicationRunsOnRedis(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeArchive(t, dir, strings.ReplaceAll(app, "REPO", repo))
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "taskgen")
	goCmd(t, repo, "build", "-o", bin, "./cmd/taskgen")

	cmd := exec.Command(bin, "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("taskgen: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "orders", "tasks_gen.go")); err != nil {
		t.Fatalf("no generated file: %v", err)
	}
	goCmd(t, dir, "build", "-o", filepath.Join(dir, "shop"), ".")

	// The application runs on one redis-server, then on a 3-master Redis Cluster through
	// redis.NewClusterClient (a UniversalClient in cluster mode).
	for _, deployment := range []struct {
		name string
		env  func() []string
	}{
		{"server", func() []string { return []string{"REDIS_ADDRS=" + redistest.Start(t).Addr} }},
		{"cluster", func() []string {
			return []string{"REDIS_ADDRS=" + strings.Join(redistest.SharedCluster(t).Addrs(), ","), "REDIS_CLUSTER=1"}
		}},
	} {
		t.Run(deployment.name, func(t *testing.T) {
			run := exec.Command(filepath.Join(dir, "shop"))
			run.Env = append(os.Environ(), deployment.env()...)
			out, err := run.CombinedOutput()
			if err != nil {
				t.Fatalf("application: %v\n%s", err, out)
			}
			for _, want := range []string{
				"checkout o-1 total=5 by=u1@main/t1",
				"notify ops@example.com from shop 7",
				"empty caller refused: true",
				"result of another kind refused: true",
				// One task id across the retry, attempts counted from 1, MaxRetries 2.
				"flaky o-3 ID#1/2 ID#2/2",
				"schema set: true",
			} {
				if !bytes.Contains(out, []byte(want+"\n")) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
		})
	}
}

func goCmd(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, out)
	}
}

// writeArchive writes the files of a txtar archive under dir.
func writeArchive(t *testing.T, dir, archive string) {
	t.Helper()
	for _, f := range txtar.Parse([]byte(archive)).Files {
		p := filepath.Join(dir, f.Name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// The application of the rolling-deploy test, in three versions. shopMain is the same in
// all of them but for its submit function, which calls the generated Submit and Result
// functions of its version; each version of package shop changes the tasks:
//
//   - v2 against v1, compatible: the parameters of shop.order reordered and one added
//     (note), the fields of Item reordered, one removed (legacy) and one added (tags; of
//     another type, or the pair would be taken for a rename),
//     and a new kind, shop.refund, that v2's producer ships before any v2 worker runs;
//   - v3 against v2, breaking: the type of qty changed from int to string.
const shopModule = `-- go.mod --
module example.com/shop

go 1.24

require github.com/taskgen/taskgen v0.0.0

replace github.com/taskgen/taskgen => REPO
-- main.go --
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"example.com/shop/shop"
	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/task"
)

// The modes: "worker" runs a worker until SIGTERM; "submit" submits this version's tasks,
// then prints each one's result.
func main() {
	rdb := redis.NewClient(&redis.Options{Addr: os.Getenv("REDIS_ADDR")})
	shared := []task.Option{task.WithSigningKey("k1", []byte("deploy-test-signing-key-0123456789")), task.WithPrefix(os.Getenv("PREFIX"))}
	switch os.Args[1] {
	case "worker":
		grace, err := time.ParseDuration(os.Getenv("SKEW_GRACE"))
		check(err)
		opts := []task.WorkerOption{task.WithSkewGrace(grace), task.WithBackoff(20*time.Millisecond, 100*time.Millisecond)}
		for _, o := range shared {
			opts = append(opts, o)
		}
		w, err := task.NewWorker(rdb, opts...)
		check(err)
		check(shop.RegisterTasks(w))
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		fmt.Println("worker up")
		check(w.Run(ctx))
	case "submit":
		var opts []task.ClientOption
		for _, o := range shared {
			opts = append(opts, o)
		}
		c, err := task.NewClient(rdb, opts...)
		check(err)
		submit(c, os.Args[2])
	}
}

// wait prints the result of task id, read with its generated Result function.
func wait(id task.ID, read func(context.Context, task.ID) (string, error)) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	r, err := read(ctx, id)
	if err != nil {
		fmt.Printf("result %s error %s\n", id, strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	fmt.Printf("result %s %s\n", id, r)
}

func check(err error) {
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
}
`

// shopV1, shopV2 and shopV3 are package shop and the submit function of each version.
// Every task prints what it ran with, and returns it, prefixed with the version of the
// worker that ran it.
const shopV1 = `-- shop/shop.go --
package shop

import (
	"context"
	"fmt"

	"github.com/taskgen/taskgen/runtime/task"
)

type Item struct {
	SKU    string ` + "`json:\"sku\"`" + `
	Price  int    ` + "`json:\"price\"`" + `
	Legacy string ` + "`json:\"legacy\"`" + `
}

// Order places an order.
//
//task:shop.order retries=0
func Order(ctx context.Context, info task.Info, id string, qty int, item Item) (string, error) {
	r := fmt.Sprintf("v1 id=%s qty=%d sku=%s price=%d", id, qty, item.SKU, item.Price)
	fmt.Println("ran", info.ID, r)
	return r, nil
}
-- submit.go --
package main

import (
	"context"
	"fmt"

	"example.com/shop/shop"
	"github.com/taskgen/taskgen/runtime/task"
)

func submit(c *task.Client, batch string) {
	var ids []task.ID
	for i := range 3 {
		id, err := shop.SubmitOrder(context.Background(), c, fmt.Sprintf("%s-%d", batch, i), i+1, shop.Item{SKU: "sku", Price: 10 * (i + 1), Legacy: "old"})
		check(err)
		fmt.Println("submitted", id, "shop.order")
		ids = append(ids, id)
	}
	for _, id := range ids {
		wait(id, func(ctx context.Context, id task.ID) (string, error) { return shop.ResultOrder(ctx, c, id) })
	}
}
`

const shopV2 = `-- shop/shop.go --
package shop

import (
	"context"
	"fmt"

	"github.com/taskgen/taskgen/runtime/task"
)

type Item struct {
	Price int    ` + "`json:\"price\"`" + `
	SKU   string ` + "`json:\"sku\"`" + `
	Tags  []string ` + "`json:\"tags\"`" + `
}

// Order places an order.
//
//task:shop.order retries=0
func Order(ctx context.Context, info task.Info, qty int, id string, item Item, note string) (string, error) {
	r := fmt.Sprintf("v2 id=%s qty=%d sku=%s price=%d tags=%d note=%q", id, qty, item.SKU, item.Price, len(item.Tags), note)
	fmt.Println("ran", info.ID, r)
	return r, nil
}

// Refund is new in v2.
//
//task:shop.refund retries=0
func Refund(ctx context.Context, info task.Info, id string) (string, error) {
	r := "v2 refund " + id
	fmt.Println("ran", info.ID, r)
	return r, nil
}
-- submit.go --
package main

import (
	"context"
	"fmt"

	"example.com/shop/shop"
	"github.com/taskgen/taskgen/runtime/task"
)

func submit(c *task.Client, batch string) {
	var ids []task.ID
	for i := range 3 {
		id, err := shop.SubmitOrder(context.Background(), c, i+1, fmt.Sprintf("%s-%d", batch, i), shop.Item{SKU: "sku", Price: 10 * (i + 1), Tags: []string{"red"}}, "gift")
		check(err)
		fmt.Println("submitted", id, "shop.order")
		ids = append(ids, id)
	}
	refund, err := shop.SubmitRefund(context.Background(), c, batch)
	check(err)
	fmt.Println("submitted", refund, "shop.refund")
	for _, id := range ids {
		wait(id, func(ctx context.Context, id task.ID) (string, error) { return shop.ResultOrder(ctx, c, id) })
	}
	wait(refund, func(ctx context.Context, id task.ID) (string, error) { return shop.ResultRefund(ctx, c, id) })
}
`

const shopV3 = `-- shop/shop.go --
package shop

import (
	"context"
	"fmt"

	"github.com/taskgen/taskgen/runtime/task"
)

type Item struct {
	Price int    ` + "`json:\"price\"`" + `
	SKU   string ` + "`json:\"sku\"`" + `
	Tags  []string ` + "`json:\"tags\"`" + `
}

// Order places an order; qty became a string, which no queued task can be decoded into.
//
//task:shop.order retries=0
func Order(ctx context.Context, info task.Info, qty string, id string, item Item, note string) (string, error) {
	r := fmt.Sprintf("v3 id=%s qty=%s", id, qty)
	fmt.Println("ran", info.ID, r)
	return r, nil
}

// Refund is unchanged.
//
//task:shop.refund retries=0
func Refund(ctx context.Context, info task.Info, id string) (string, error) {
	r := "v3 refund " + id
	fmt.Println("ran", info.ID, r)
	return r, nil
}
-- submit.go --
package main

import (
	"context"

	"example.com/shop/shop"
	"github.com/taskgen/taskgen/runtime/task"
)

func submit(c *task.Client, batch string) {
	id, err := shop.SubmitOrder(context.Background(), c, "two", batch+"-0", shop.Item{SKU: "sku", Price: 10}, "")
	check(err)
	println("submitted", id)
	wait(id, func(ctx context.Context, id task.ID) (string, error) { return shop.ResultOrder(ctx, c, id) })
}
`

// shopBuild is one version of the application: its module directory and binary.
type shopBuild struct{ dir, bin string }

// buildShop writes version src of the application into dir, generates it with the
// taskgen binary and builds it.
func buildShop(t *testing.T, repo, taskgen, dir, src string) shopBuild {
	t.Helper()
	writeArchive(t, dir, strings.ReplaceAll(shopModule, "REPO", repo)+src)
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644); err != nil {
		t.Fatal(err)
	}
	runIn(t, dir, taskgen, "./...")
	bin := filepath.Join(dir, "shop-bin")
	goCmd(t, dir, "build", "-o", bin, ".")
	return shopBuild{dir: dir, bin: bin}
}

// runIn runs name in dir and fails the test if it fails.
func runIn(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// shopProcess is a running worker or submitter of the application, its output collected.
type shopProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (p *shopProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitFor waits until the process has printed want, or fails the test.
func (p *shopProcess) waitFor(t *testing.T, want string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.output(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s; output:\n%s", want, timeout, p.output())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits for the process to end.
func (p *shopProcess) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Errorf("%s did not stop; output:\n%s", p.cmd.Args, p.output())
	}
}

func startShop(t *testing.T, b shopBuild, env []string, args ...string) *shopProcess {
	t.Helper()
	p := &shopProcess{cmd: exec.Command(b.bin, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		_ = p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// runShop runs b to its end and returns what it printed.
func runShop(t *testing.T, p *shopProcess) string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(120 * time.Second):
		t.Fatalf("%s did not finish; output:\n%s", p.cmd.Args, p.output())
	}
	time.Sleep(50 * time.Millisecond) // the scanner's last lines
	return p.output()
}

// results parses the "submitted" and "result" lines of a submitter's output: task id to
// kind, and task id to result.
func results(out string) (kinds, got map[string]string) {
	kinds, got = map[string]string{}, map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 3 && f[0] == "submitted":
			kinds[f[1]] = f[2]
		case len(f) >= 3 && f[0] == "result":
			got[f[1]] = strings.Join(f[2:], " ")
		}
	}
	return kinds, got
}

// ranOnce counts the "ran" lines of the workers' outputs per task id.
func ranOnce(outs ...string) map[string]int {
	n := map[string]int{}
	for _, out := range outs {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "ran" {
				n[f[1]]++
			}
		}
	}
	return n
}

// A rolling deploy of v2 over v1, on one Redis: v2's producer ships first, while only a v1
// worker runs (its orders run there, decoded by v1's rules; its refunds, of a kind v1 does
// not know, wait); then a v2 worker comes up beside the v1 worker and runs the refunds;
// then the v1 worker goes, and v1's producer, not yet deployed, submits orders that the v2
// worker runs. Every task runs once, with the values the compatibility rules promise,
// and nothing is dead-lettered. Then v3 changes a type: taskgen -check -against the
// commit of v2 fails naming it, and at run time v3's order waits out the skew grace on
// the v2 worker and is dead-lettered schema_mismatch.
func TestARollingDeployHealsAndABreakingChangeFailsInCI(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	taskgen := filepath.Join(t.TempDir(), "taskgen")
	goCmd(t, repo, "build", "-o", taskgen, "./cmd/taskgen")
	root := t.TempDir()
	v1 := buildShop(t, repo, taskgen, filepath.Join(root, "v1"), shopV1)
	v2 := buildShop(t, repo, taskgen, filepath.Join(root, "v2"), shopV2)

	srv := redistest.Start(t)
	env := []string{"REDIS_ADDR=" + srv.Addr, "PREFIX=deploy", "SKEW_GRACE=10m"}

	old := startShop(t, v1, env, "worker")
	old.waitFor(t, "worker up", 30*time.Second)
	newProducer := startShop(t, v2, env, "submit", "new")
	// The v1 worker has met the refund, a kind it does not know, and handed it back.
	old.waitFor(t, "task handed back: a worker of another version may run it", 30*time.Second)
	current := startShop(t, v2, env, "worker")
	newOut := runShop(t, newProducer)
	old.stop(t)
	oldOut := runShop(t, startShop(t, v1, env, "submit", "old"))
	current.stop(t)

	ran := ranOnce(old.output(), current.output())
	for _, out := range []string{newOut, oldOut} {
		kinds, got := results(out)
		if len(kinds) == 0 {
			t.Fatalf("submitter output has no tasks:\n%s", out)
		}
		for id, kind := range kinds {
			if ran[id] != 1 {
				t.Errorf("%s %s ran %d times, want once", kind, id, ran[id])
			}
			if got[id] == "" || strings.HasPrefix(got[id], "error") {
				t.Errorf("%s %s: result %q", kind, id, got[id])
			}
		}
	}
	// v2's orders on the v1 worker: qty, id and item read by name whatever their order,
	// note and tags ignored. v1's orders on the v2 worker: legacy ignored, note and tags
	// zero. v2's refund on the v2 worker.
	for _, want := range []string{
		"v1 id=new-0 qty=1 sku=sku price=10", "v1 id=new-2 qty=3 sku=sku price=30",
		"v2 refund new",
		`v2 id=old-0 qty=1 sku=sku price=10 tags=0 note=""`, `v2 id=old-2 qty=3 sku=sku price=30 tags=0 note=""`,
	} {
		if !strings.Contains(newOut+oldOut, want) {
			t.Errorf("no result %q in\n%s%s", want, newOut, oldOut)
		}
	}
	if n := strings.Count(old.output(), "WARN task handed back"); n != 1 {
		t.Errorf("the v1 worker warned %d times of the refunds, want once per kind:\n%s", n, old.output())
	}
	deadLetters(t, srv, 0)

	// The breaking change, in CI: v2 is the merge base, v3 the change.
	ci := filepath.Join(root, "ci")
	buildShop(t, repo, taskgen, ci, shopV2)
	runIn(t, ci, "git", "init", "-q")
	runIn(t, ci, "git", "add", "-A")
	runIn(t, ci, "git", "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "v2")
	v3 := buildShop(t, repo, taskgen, ci, shopV3)
	check := exec.Command(taskgen, "-check", "-against", "HEAD", "./...")
	check.Dir = v3.dir
	check.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
	out, err := check.CombinedOutput()
	t.Logf("taskgen -check -against HEAD:\n%s", out)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("taskgen -check -against HEAD: %v, want exit 1\n%s", err, out)
	}
	for _, want := range []string{"shop.order", "qty", "int", "string", "shop.order.v2"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("-against report lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(string(out), "shop.refund") {
		t.Errorf("-against reports the unchanged shop.refund:\n%s", out)
	}

	// And at run time: the v2 worker hands v3's order back for the grace, then
	// dead-letters it.
	short := []string{"REDIS_ADDR=" + srv.Addr, "PREFIX=deploy", "SKEW_GRACE=2s"}
	current = startShop(t, v2, short, "worker")
	current.waitFor(t, "worker up", 30*time.Second)
	started := time.Now()
	v3Out := runShop(t, startShop(t, v3, short, "submit", "three"))
	current.stop(t)
	if !strings.Contains(v3Out, "schema_mismatch") || !strings.Contains(v3Out, "qty changed type") {
		t.Errorf("v3's order: %s, want it dead-lettered schema_mismatch naming qty", v3Out)
	}
	if took := time.Since(started); took < 2*time.Second {
		t.Errorf("v3's order ended after %s, within the skew grace", took)
	}
	if strings.Contains(current.output(), "v2 id=three") {
		t.Errorf("the v2 worker ran v3's order:\n%s", current.output())
	}
	deadLetters(t, srv, 1)
}

// deadLetters checks that the deploy test's queue holds want dead letters.
func deadLetters(t *testing.T, srv *redistest.Server, want int) {
	t.Helper()
	c, err := task.NewClient(srv.NewClient(), task.WithSigningKey("k1", []byte("deploy-test-signing-key-0123456789")), task.WithPrefix("deploy"))
	if err != nil {
		t.Fatal(err)
	}
	dead, err := c.DeadLetters(context.Background(), "default", "", 10)
	if err != nil || len(dead) != want {
		t.Errorf("dead letters = %+v, %v; want %d", dead, err, want)
		for _, d := range dead {
			fmt.Println(d.Reason, d.Error)
		}
	}
}

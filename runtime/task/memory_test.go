package task_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// The memory proof for oversized entries: a worker in a process of its own, under a hard
// memory limit it cannot hold a 256 MiB entry within, meets one followed by ordinary
// tasks. Had it read the entry, the limit would have killed it, and the tasks behind the
// entry would not run.

// memoryWorkerEnv, when set (to a memoryWorkerConfig in JSON), makes the test binary a
// worker under a memory limit (memoryWorker) instead of running tests: see TestMain.
const memoryWorkerEnv = "TASKGEN_MEMORY_WORKER"

// memoryHeadroom is how far the worker's memory may grow beyond what it has when it
// starts: half the entry, so that reading it would break the limit whatever else the
// worker holds.
const memoryHeadroom = 128 << 20

// memoryWorkerConfig is what the test tells its memory-limited worker.
type memoryWorkerConfig struct {
	Addrs   []string `json:"addrs"`   // one server, or the nodes of a cluster
	Cluster bool     `json:"cluster"` // Addrs are a cluster's
	Prefix  string   `json:"prefix"`
}

// A 256 MiB stream entry is never read into the worker: it is dead-lettered by its id and
// size from inside Redis, and the ordinary tasks around it all run, on a worker whose
// memory may grow by no more than 128 MiB (memoryHeadroom) while it runs: a hard limit
// (limitMemory says which; the test logs it), with GOMEMLIMIT set below it so that the
// garbage collector, not the limit, bounds the worker's ordinary use.
func TestAHugeEntryIsNeverReadIntoTheWorker(t *testing.T) {
	bin := buildMemoryWorker(t)
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		stream := redisq.QueueKeys(h.prefix, "q1").Stream()
		submit := func(msg string) task.ID {
			t.Helper()
			id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: msg})
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		ids := []task.ID{submit("before")}
		if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{redisq.EnvelopeField, strings.Repeat("x", 256<<20)}}).Err(); err != nil {
			t.Fatal(err)
		}
		for i := range 8 {
			ids = append(ids, submit(fmt.Sprint("after ", i)))
		}

		w := startMemoryWorker(t, bin, rdb, h.prefix)
		t.Logf("the worker runs under %s", w.limit)
		for _, id := range ids {
			if got, err := wait[string](t, h.client, id); err != nil || got == "" {
				t.Fatalf("task %s next to the huge entry: %q, %v\n%s", id, got, err, w.state())
			}
		}
		dead := waitDeadLetters(t, h, "q1", 1)
		if len(dead) != 1 || dead[0]["reason"] != task.ReasonMalformed || dead[0]["size"] != fmt.Sprint(256<<20) || dead[0]["env"] != "" {
			for _, d := range dead {
				delete(d, "env")
			}
			t.Errorf("dead letters = %v, want one, malformed, with its size and no envelope", dead)
		}
		if err := w.stop(); err != nil {
			t.Errorf("the worker under the memory limit: %v\n%s", err, w.state())
		}
	})
}

// buildMemoryWorker builds the test binary again for the memory-limited worker: without
// the race detector, whose shadow memory would make any limit meaningless, and without
// cgo, under which every thread reserves an 8 MiB stack (glibc's default) that an address
// space limit counts. It is built once per run of the test.
func buildMemoryWorker(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "memory-worker.test")
	cmd := exec.Command("go", "test", "-c", "-race=false", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the memory-limited worker: %v\n%s", err, out)
	}
	return bin
}

// memoryWorkerProc is a running memory-limited worker.
type memoryWorkerProc struct {
	cmd    *exec.Cmd
	limit  string        // the limit it runs under, as it reported it
	stderr *syncBuffer   // its logs
	exited chan struct{} // closed once it exited
	err    error         // how it exited, once exited is closed
}

// startMemoryWorker starts bin as a worker of queue q1 under prefix, on the deployment
// rdb reaches, and returns once it runs under its memory limit.
func startMemoryWorker(t *testing.T, bin string, rdb redis.UniversalClient, prefix string) *memoryWorkerProc {
	t.Helper()
	cfg := memoryWorkerConfig{Prefix: prefix}
	switch c := rdb.(type) {
	case *redis.Client:
		cfg.Addrs = []string{c.Options().Addr}
	case *redis.ClusterClient:
		cfg.Addrs, cfg.Cluster = c.Options().Addrs, true
	default:
		t.Fatalf("a memory-limited worker of a %T", rdb)
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &memoryWorkerProc{cmd: exec.Command(bin), stderr: &syncBuffer{}, exited: make(chan struct{})}
	// GOMEMLIMIT keeps the heap well inside the hard limit, so that only a read of the
	// entry could break it.
	p.cmd.Env = append(os.Environ(), memoryWorkerEnv+"="+string(raw), "GOMEMLIMIT=64MiB")
	p.cmd.Stderr = p.stderr
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- strings.TrimSpace(line)
		_, _ = io.Copy(io.Discard, stdout)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { _ = p.stop() })
	select {
	case line := <-lines:
		limit, ok := strings.CutPrefix(line, "running under ")
		if !ok {
			<-p.exited
			t.Fatalf("the worker did not start under a memory limit: %q (%v)\n%s", line, p.err, p.stderr)
		}
		p.limit = limit
		// Read back from the kernel: the limit is in force, not only said to be.
		set, err := addressSpaceLimit(p.cmd.Process.Pid)
		if err != nil || set == "unlimited" {
			t.Fatalf("the worker's address space limit is %q (%v), want the one it reported: %s", set, err, limit)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the memory-limited worker did not start in 30 s\n%s", p.stderr)
	}
	return p
}

// state says whether the worker still runs, and what it logged: why it died first, if it
// says (the runtime's fatal error precedes a dump of every goroutine), then the end.
func (p *memoryWorkerProc) state() string {
	out := p.stderr.String()
	var fatal []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "fatal error:") || strings.HasPrefix(line, "runtime: ") || strings.HasPrefix(line, "panic:") {
			fatal = append(fatal, line)
		}
	}
	select {
	case <-p.exited:
		return fmt.Sprintf("the worker exited (%v), saying:\n%s\nits output ends:\n%s", p.err, strings.Join(fatal, ""), tailOf(out))
	default:
		return "the worker runs; its output ends:\n" + tailOf(out)
	}
}

// stop ends the worker as a deployment would (SIGTERM) and returns how it exited: nil
// when it ran until told to stop, then shut down cleanly.
func (p *memoryWorkerProc) stop() error {
	select {
	case <-p.exited:
		if p.err == nil {
			return nil
		}
		return fmt.Errorf("it exited before it was stopped: %w", p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(time.Minute):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return errors.New("it did not stop within a minute of SIGTERM")
	}
}

func tailOf(s string) string {
	if len(s) > 4000 {
		return "..." + s[len(s)-4000:]
	}
	return s
}

// memoryWorker is the test binary as a memory-limited worker: it limits its own memory,
// says under what limit it runs on stdout ("running under ..."), then runs a worker of
// echoDef on queue q1 until SIGTERM. It returns the process's exit code.
func memoryWorker() int {
	var cfg memoryWorkerConfig
	if err := json.Unmarshal([]byte(os.Getenv(memoryWorkerEnv)), &cfg); err != nil {
		fmt.Printf("bad %s: %v\n", memoryWorkerEnv, err)
		return 2
	}
	// Before anything else allocates: the limit is measured from what the process holds now.
	limit, err := limitMemory(memoryHeadroom)
	if err != nil {
		fmt.Printf("no memory limit: %v\n", err)
		return 2
	}
	var rdb redis.UniversalClient
	if cfg.Cluster {
		rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cfg.Addrs})
	} else {
		rdb = redis.NewClient(&redis.Options{Addr: cfg.Addrs[0]})
	}
	defer rdb.Close()
	w, err := task.NewWorker(rdb, task.WithPrefix(cfg.Prefix), task.WithSigningKey("k1", signingKey), task.WithQueues("q1"))
	if err != nil {
		fmt.Println(err)
		return 2
	}
	if err := task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil }); err != nil {
		fmt.Println(err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	fmt.Println("running under " + limit)
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

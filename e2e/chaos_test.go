package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

var (
	chaosTasks = flag.Int("chaos.tasks", 10000, "tasks the chaos test submits")
	chaosKill  = flag.Duration("chaos.kill", 300*time.Millisecond, "interval between worker kills")
)

// The environment of a chaos worker process: when chaosWorkerEnv is set to a Redis
// address, the test binary is a worker of the queues in chaosQueuesEnv (default the
// short tasks' queues) running chaosConcurrencyEnv tasks at once (default 8).
const (
	chaosWorkerEnv      = "TASKGEN_CHAOS_WORKER"
	chaosQueuesEnv      = "TASKGEN_CHAOS_QUEUES"
	chaosConcurrencyEnv = "TASKGEN_CHAOS_CONCURRENCY"
)

var (
	chaosQueues = []string{"alpha", "beta", "gamma"}
	chaosKey    = []byte("chaos-signing-key-0123456789abcdef")
	chaosLedger = "chaos-ledger" // outside the prefix: task number -> executions
)

type chaosArgs struct {
	N int `json:"n"`
}

func chaosDef(queue string) task.Def {
	return task.Def{Kind: "chaos.work." + queue, Queue: queue, MaxRetries: 25, Schema: "v1:chaos", Timeout: 10 * time.Second}
}

func chaosOptions() []task.Option {
	return []task.Option{
		task.WithSigningKey("chaos", chaosKey), task.WithQueues(chaosQueues...),
		task.WithLease(time.Second), task.WithConcurrency(8), task.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
	}
}

func TestMain(m *testing.M) {
	if addr := os.Getenv(chaosWorkerEnv); addr != "" {
		os.Exit(chaosWorker(addr))
	}
	os.Exit(redistest.Main(m))
}

// chaosWorker is one worker process: it runs until killed (or SIGTERM), recording every
// execution in the ledger before returning the task number as the result.
func chaosWorker(addr string) int {
	queues := chaosQueues
	if q := os.Getenv(chaosQueuesEnv); q != "" {
		queues = strings.Split(q, ",")
	}
	concurrency := 8
	if c := os.Getenv(chaosConcurrencyEnv); c != "" {
		concurrency, _ = strconv.Atoi(c)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts := append(chaosOptions(), task.WithQueues(queues...), task.WithConcurrency(concurrency), task.WithLogger(log))
	w, err := task.NewWorker(rdb, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, q := range queues {
		if err := task.Register(w, chaosDef(q), shortTask(rdb)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// shortTask counts its execution and returns at once.
func shortTask(rdb *redis.Client) func(context.Context, task.Caller, chaosArgs) (int, error) {
	return func(ctx context.Context, _ task.Caller, a chaosArgs) (int, error) {
		if err := rdb.HIncrBy(ctx, chaosLedger, strconv.Itoa(a.N), 1).Err(); err != nil {
			return 0, err // Redis is away: a failed attempt, retried
		}
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		return a.N, nil
	}
}

// chaosProc is one worker process of the chaos test.
type chaosProc struct {
	addr        string
	queues      []string
	concurrency int
	cmd         *exec.Cmd // nil while not running
}

func (p *chaosProc) start() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), chaosWorkerEnv+"="+p.addr, chaosQueuesEnv+"="+strings.Join(p.queues, ","),
		chaosConcurrencyEnv+"="+strconv.Itoa(p.concurrency))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker process of %v: %w", p.queues, err)
	}
	p.cmd = cmd
	return nil
}

// kill SIGKILLs the process, stopped (SIGSTOP) or not, and waits for it.
func (p *chaosProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// stop ends the process with SIGTERM, as a deployment would, and waits for it.
func (p *chaosProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// TestChaosNoTaskIsLost submits tasks over three queues to four worker processes while
// a random worker is SIGKILLed and restarted every 300 ms and redis-server itself is
// killed and restarted once (appendonly, fsync always). Every task must finish, as seen
// by Result; executions beyond one per task are counted and printed, not failed on.
func TestChaosNoTaskIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: runs in make test and make chaos, skipped with -short")
	}
	began := time.Now()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 3})
	defer rdb.Close()
	client, err := task.NewClient(rdb, chaosOptions()...)
	if err != nil {
		t.Fatal(err)
	}

	workers := make([]*chaosProc, 4)
	for i := range workers {
		workers[i] = &chaosProc{addr: srv.Addr, queues: chaosQueues, concurrency: 8}
	}
	t.Cleanup(func() { // after a Fatal: leave no worker process behind
		for _, w := range workers {
			w.kill()
		}
	})
	for _, w := range workers {
		if err := w.start(); err != nil {
			t.Fatal(err)
		}
	}
	var killsMu sync.Mutex
	kills := 0
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
	var stopOnce sync.Once
	stopKills := func() {
		stopOnce.Do(func() { close(stopChaos) })
		<-chaosDone
	}
	t.Cleanup(stopKills) // runs before the processes are killed
	var redisRestarted atomic.Bool
	go func() {
		defer close(chaosDone)
		tick := time.NewTicker(*chaosKill)
		defer tick.Stop()
		for {
			select {
			case <-stopChaos:
				return
			case <-tick.C:
			}
			w := workers[rand.IntN(len(workers))]
			w.kill()
			killsMu.Lock()
			kills++
			killsMu.Unlock()
			if err := w.start(); err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
			if !redisRestarted.Load() {
				if n, _ := rdb.HLen(context.Background(), chaosLedger).Result(); n > int64(*chaosTasks)/3 {
					srv.Kill()
					time.Sleep(200 * time.Millisecond)
					if err := srv.Restart(); err != nil {
						t.Errorf("restart redis: %v", err)
						return
					}
					redisRestarted.Store(true)
					t.Logf("redis-server killed and restarted after %d executions", n)
				}
			}
		}
	}()

	// Submit with a uniqueness key per task: a submit whose reply was lost while Redis
	// restarted is repeated, and returns the first submit's id instead of a second task.
	submit := func(def task.Def, key string, args any) task.ID {
		t.Helper()
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			id, err := task.Submit(ctx, client, def, task.Caller{}, args, task.Unique(key, time.Hour))
			cancel()
			if err == nil {
				return id
			}
			if attempt > 200 {
				t.Fatalf("submit %s: %v", key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	ids := make([]task.ID, *chaosTasks)
	for n := range ids {
		ids[n] = submit(chaosDef(chaosQueues[n%len(chaosQueues)]), "n"+strconv.Itoa(n), chaosArgs{N: n})
	}

	lost := 0
	for n, id := range ids {
		got, err := resultOf(client, id, time.Minute)
		if err != nil || got != n {
			lost++
			if lost <= 10 {
				t.Errorf("task %d (%s): result %d, %v", n, id, got, err)
			}
		}
	}
	stopKills()
	for _, w := range workers {
		w.stop()
	}
	ledger, err := rdb.HGetAll(context.Background(), chaosLedger).Result()
	if err != nil {
		t.Fatal(err)
	}
	duplicates, unrecorded := 0, 0
	for n := range ids {
		c, _ := strconv.Atoi(ledger[strconv.Itoa(n)])
		if c == 0 {
			unrecorded++
		}
		duplicates += max(c-1, 0)
	}
	summary := fmt.Sprintf("chaos: submitted %d, lost %d, unrecorded %d, duplicate executions %d, worker kills %d, redis restarted %v, wall %s",
		len(ids), lost, unrecorded, duplicates, kills, redisRestarted.Load(), time.Since(began).Round(time.Millisecond))
	fmt.Println(summary)
	t.Log(summary)
	if lost > 0 || unrecorded > 0 {
		t.Fatalf("tasks were lost: %s", summary)
	}
	if !redisRestarted.Load() {
		t.Error("redis-server was never restarted: the run did not test what it claims")
	}
}

func resultOf(c *task.Client, id task.ID, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := task.Result[int](ctx, c, id)
		cancel()
		var failed *task.FailedError
		if err == nil || errors.As(err, &failed) || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(100 * time.Millisecond) // Redis restarting: ask again
	}
}

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

// chaosWorkerEnv, when set to a Redis address, makes the test binary a chaos worker.
const chaosWorkerEnv = "TASKGEN_CHAOS_WORKER"

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

// chaosSigning is the key the client and the worker processes share.
var chaosSigning = task.WithSigningKey("chaos", chaosKey)

func chaosWorkerOptions() []task.WorkerOption {
	return []task.WorkerOption{
		chaosSigning, task.WithQueues(chaosQueues...),
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
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	w, err := task.NewWorker(rdb, append(chaosWorkerOptions(), task.WithLogger(log))...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, q := range chaosQueues {
		err := task.Register(w, chaosDef(q), func(ctx context.Context, _ task.Caller, a chaosArgs) (int, error) {
			if err := rdb.HIncrBy(ctx, chaosLedger, strconv.Itoa(a.N), 1).Err(); err != nil {
				return 0, err // Redis is away: a failed attempt, retried
			}
			time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
			return a.N, nil
		})
		if err != nil {
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
	client, err := task.NewClient(rdb, chaosSigning)
	if err != nil {
		t.Fatal(err)
	}

	workers := make([]*exec.Cmd, 4)
	startWorker := func(i int) error {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), chaosWorkerEnv+"="+srv.Addr)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start worker process %d: %w", i, err)
		}
		workers[i] = cmd
		return nil
	}
	for i := range workers {
		if err := startWorker(i); err != nil {
			t.Fatal(err)
		}
	}
	var killsMu sync.Mutex
	kills := 0
	stopChaos := make(chan struct{})
	chaosDone := make(chan struct{})
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
			i := rand.IntN(len(workers))
			_ = workers[i].Process.Kill()
			_ = workers[i].Wait()
			killsMu.Lock()
			kills++
			killsMu.Unlock()
			if err := startWorker(i); err != nil {
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
	ids := make([]task.ID, *chaosTasks)
	for n := range ids {
		def := chaosDef(chaosQueues[n%len(chaosQueues)])
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			id, err := task.Submit(ctx, client, def, task.Caller{}, chaosArgs{N: n}, task.Unique("n"+strconv.Itoa(n), time.Hour))
			cancel()
			if err == nil {
				ids[n] = id
				break
			}
			if attempt > 200 {
				t.Fatalf("submit %d: %v", n, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
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
	close(stopChaos)
	<-chaosDone
	for _, w := range workers {
		_ = w.Process.Signal(syscall.SIGTERM)
		_ = w.Wait()
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

package task_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// Work longer than the runtime's own timeouts and leases: the bugs users hit first.

type sleepArgs struct {
	Name  string        `json:"name"`
	Sleep time.Duration `json:"sleep"`
}

var sleepDef = task.Def{Kind: "test.sleep", Queue: "q1", MaxRetries: 2, Schema: "v1:sleep", Timeout: 10 * time.Minute}

// sleeper counts the runs of each task by name and sleeps as told, minding its context.
type sleeper struct {
	mu   sync.Mutex
	runs map[string]int
}

func (s *sleeper) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[name]
}

func (s *sleeper) fn(worker string) func(ctx context.Context, _ task.Caller, a sleepArgs) (string, error) {
	return func(ctx context.Context, _ task.Caller, a sleepArgs) (string, error) {
		s.mu.Lock()
		if s.runs == nil {
			s.runs = map[string]int{}
		}
		s.runs[a.Name]++
		s.mu.Unlock()
		select {
		case <-time.After(a.Sleep):
			return a.Name + " by " + worker, nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}
}

// waitLong is wait for tasks that take minutes.
func waitLong[R any](t *testing.T, c *task.Client, id task.ID, d time.Duration) (R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return task.Result[R](ctx, c, id)
}

// Tasks of 1 s, 15 s and 2 minutes, on two workers whose lease is half a second: each
// runs many times longer than its lease and than every internal timeout of the worker
// (writes 5 s, reads 6 s), completes exactly once, records its result once, and Result
// returns it.
func TestTasksLongerThanTheLeaseCompleteExactlyOnce(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		t.Parallel() // two minutes: both backends at once
		h := newHarness(t, rdb)
		var s sleeper
		for _, name := range []string{"w1", "w2"} {
			w := h.worker(t, task.WithLease(500*time.Millisecond), task.WithConsumerName(name))
			if err := task.Register(w, sleepDef, s.fn(name)); err != nil {
				t.Fatal(err)
			}
			run(t, w)
		}
		for _, d := range []time.Duration{time.Second, 15 * time.Second, 2 * time.Minute} {
			t.Run(d.String(), func(t *testing.T) {
				t.Parallel()
				name := "sleep " + d.String()
				id, err := task.Submit(context.Background(), h.client, sleepDef, alice, sleepArgs{Name: name, Sleep: d})
				if err != nil {
					t.Fatal(err)
				}
				got, err := waitLong[string](t, h.client, id, d+time.Minute)
				if err != nil || !strings.HasPrefix(got, name+" by w") {
					t.Fatalf("Result = %q, %v", got, err)
				}
				if n := s.count(name); n != 1 {
					t.Errorf("the task ran %d times, want once", n)
				}
				st, err := h.rdb.HGetAll(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id))).Result()
				if err != nil || st[redisq.FieldState] != redisq.StateSucceeded || st[redisq.FieldAttempts] != "1" || st[redisq.FieldLease] != "1" {
					t.Errorf("state = %v, %v; want succeeded after one attempt under the first lease", st, err)
				}
			})
		}
	})
}

// A 15 s task cancelled by a shutdown with a 1 s timeout is handed back at once, run again
// by another worker, and its Result is that worker's.
func TestALongTaskCancelledByShutdownRunsAgainOnAnotherWorker(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		var s sleeper
		first := h.worker(t, task.WithLease(500*time.Millisecond), task.WithShutdownTimeout(time.Second), task.WithConsumerName("first"))
		if err := task.Register(first, sleepDef, s.fn("first")); err != nil {
			t.Fatal(err)
		}
		stopFirst := run(t, first)
		id, err := task.Submit(context.Background(), h.client, sleepDef, alice, sleepArgs{Name: "long", Sleep: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the first worker to begin the task", func() bool { return s.count("long") == 1 })
		stopFirst()
		second := h.worker(t, task.WithLease(500*time.Millisecond), task.WithConsumerName("second"))
		if err := task.Register(second, sleepDef, s.fn("second")); err != nil {
			t.Fatal(err)
		}
		run(t, second)
		got, err := waitLong[string](t, h.client, id, time.Minute)
		if err != nil || got != "long by second" {
			t.Fatalf("Result = %q, %v; want the second worker's", got, err)
		}
		if n := s.count("long"); n != 2 {
			t.Errorf("the task ran %d times, want twice: cut short once, then to the end", n)
		}
		st, _ := h.rdb.HGetAll(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id))).Result()
		if st[redisq.FieldAttempts] != "1" {
			t.Errorf("attempts = %s, want 1: the handed-back run spends none", st[redisq.FieldAttempts])
		}
	})
}

// 30 s at full load, with a lease of 1 s (a heartbeat every third of it) and tasks
// finishing all the time: not one warning that a lease was lost or taken over, and every task runs
// once.
func TestNoLeaseIsLostUnderFullLoad(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		logs := &countingHandler{counts: map[string]int{}}
		h := newHarness(t, rdb)
		const workers, concurrency = 2, 20
		var mu sync.Mutex
		runs := map[string]int{}
		for i := range workers {
			w := h.worker(t, task.WithLease(time.Second), task.WithConcurrency(concurrency),
				task.WithLogger(slog.New(logs)), task.WithConsumerName(fmt.Sprint("load-", i)))
			task.Register(w, sleepDef, func(ctx context.Context, _ task.Caller, a sleepArgs) (string, error) {
				mu.Lock()
				runs[a.Name]++
				mu.Unlock()
				time.Sleep(a.Sleep)
				return a.Name, nil
			})
			run(t, w)
		}
		ctx := context.Background()
		var ids []task.ID
		var submitted atomic.Int64
		end := time.Now().Add(30 * time.Second)
		for time.Now().Before(end) {
			// Keep about twice what the workers can run queued, so they never wait for work.
			if backlog, _ := h.rdb.XLen(ctx, redisq.QueueKeys(h.prefix, "q1").Stream()).Result(); backlog > 2*workers*concurrency {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			n := submitted.Add(1)
			id, err := task.Submit(ctx, h.client, sleepDef, alice, sleepArgs{Name: fmt.Sprint(n), Sleep: time.Duration(rand.IntN(30)) * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if _, err := wait[string](t, h.client, id); err != nil {
				t.Fatalf("task %s: %v", id, err)
			}
		}
		for _, msg := range []string{
			"lost the lease of a running task to another worker: stopping this run",
			"took over a task whose worker stopped renewing its lease",
		} {
			if n := logs.count(msg); n != 0 {
				t.Errorf("%d times %q in %d tasks", n, msg, len(ids))
			}
		}
		mu.Lock()
		defer mu.Unlock()
		for name, n := range runs {
			if n != 1 {
				t.Errorf("task %s ran %d times", name, n)
			}
		}
		t.Logf("%d tasks in 30 s on %d workers of %d slots", len(ids), workers, concurrency)
	})
}

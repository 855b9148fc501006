package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// tickDef is a periodic task of every second, on the harness's queue. It takes a caller:
// the schedule's System caller.
var tickDef = task.Def{Kind: "test.tick", Queue: "q1", MaxRetries: 1, Schema: "v1:tick", Caller: true, Schedule: "@every 1s"}

// tickRuns records the runs of tickDef's tasks.
type tickRuns struct {
	mu        sync.Mutex
	runs      map[task.ID]int
	callers   map[string]bool
	submitted map[task.ID]time.Time
}

// register registers tickDef on w; each run takes longer than lease, so its lease is
// renewed while it runs.
func (r *tickRuns) register(t *testing.T, w *task.Worker, lease time.Duration) {
	t.Helper()
	err := task.RegisterWithInfo(w, tickDef, func(ctx context.Context, info task.Info, caller task.Caller, _ struct{}) (struct{}, error) {
		r.mu.Lock()
		r.runs[info.ID]++
		r.callers[caller.UserID] = true
		r.submitted[info.ID] = info.SubmittedAt
		r.mu.Unlock()
		select {
		case <-time.After(lease + lease/2):
		case <-ctx.Done():
			return struct{}{}, ctx.Err()
		}
		return struct{}{}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newTickRuns() *tickRuns {
	return &tickRuns{runs: map[task.ID]int{}, callers: map[string]bool{}, submitted: map[task.ID]time.Time{}}
}

// tickIDs returns the task of every tick of tickDef from first to last, by its unique
// key; a tick not submitted has "".
func tickIDs(t *testing.T, h *harness, first, last int64) map[int64]task.ID {
	t.Helper()
	k := redisq.QueueKeys(h.prefix, tickDef.Queue)
	out := map[int64]task.ID{}
	for s := first; s <= last; s++ {
		id, err := h.rdb.Get(context.Background(), k.Unique(tickDef.Kind, strconv.FormatInt(s, 10))).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
		out[s] = task.ID(id)
	}
	return out
}

// checkTicks checks that every tick from first to last was submitted once, its task
// distinct from every other tick's, that every task that ran is a tick's, and that all
// of them ran as the schedule's System caller. once says each ran exactly once (no
// worker crashed).
//
// It returns the longest delay from a tick to its submit.
func checkTicks(t *testing.T, h *harness, r *tickRuns, first, last int64, once bool) (late time.Duration) {
	t.Helper()
	// The tasks of the last ticks may still be queued: wait for them to run.
	ids := tickIDs(t, h, first, last)
	deadline := time.Now().Add(20 * time.Second)
	for {
		r.mu.Lock()
		missing := 0
		for _, id := range ids {
			if id != "" && r.runs[id] == 0 {
				missing++
			}
		}
		r.mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	tickOf := map[task.ID]int64{}
	for s := first; s <= last; s++ {
		id := ids[s]
		switch {
		case id == "":
			t.Errorf("tick %s was not submitted", time.Unix(s, 0).UTC().Format(time.TimeOnly))
			continue
		case tickOf[id] != 0:
			t.Errorf("ticks %d and %d share task %s", tickOf[id], s, id)
		case r.runs[id] == 0:
			t.Errorf("the task %s of tick %d did not run", id, s)
		case once && r.runs[id] != 1:
			t.Errorf("the task %s of tick %d ran %d times", id, s, r.runs[id])
		}
		tickOf[id] = s
		late = max(late, r.submitted[id].Sub(time.Unix(s, 0)))
	}
	// Every task that ran is a tick's: none was submitted twice under two ids. (Tasks of
	// the ticks just before first and after last may have run too.)
	around := tickIDs(t, h, first-30, last+30)
	known := map[task.ID]bool{}
	for _, id := range around {
		known[id] = true
	}
	for id := range r.runs {
		if !known[id] {
			t.Errorf("task %s ran, but it is no tick's: a tick was submitted twice", id)
		}
	}
	want := task.System(task.SchedulePrefix + tickDef.Kind).UserID
	if len(r.callers) != 1 || !r.callers[want] {
		t.Errorf("the tasks ran as %v, want only %s", r.callers, want)
	}
	return late
}

// redisNow is the Redis server's time, by which ticks are due.
func redisNow(t *testing.T, rdb redis.UniversalClient) time.Time {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return now
}

// Three workers run one schedule of every second: each tick is submitted once, by
// whichever worker leads, and runs once, each run longer than the worker's lease.
func TestEachTickIsSubmittedOnceAmongSeveralWorkers(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		const lease = 500 * time.Millisecond
		r := newTickRuns()
		start := redisNow(t, rdb)
		for i := range 3 {
			w := h.worker(t, task.WithLease(lease), task.WithConsumerName(fmt.Sprintf("w%d", i)))
			r.register(t, w, lease)
			run(t, w)
		}
		time.Sleep(5 * time.Second)
		end := redisNow(t, rdb)
		// The first leader starts the schedule at its first pass: the ticks from a second
		// after the start on are all due.
		checkTicks(t, h, r, start.Unix()+2, end.Unix()-1, true)
		infos := schedules(t, h)
		if len(infos) != 1 || infos[0].Kind != tickDef.Kind || infos[0].Spec != tickDef.Schedule || infos[0].Queue != tickDef.Queue || infos[0].Leader == "" {
			t.Errorf("schedules = %+v, want test.tick led by one of the workers", infos)
		}
	})
}

// newClientLike returns a new client of the Redis that rdb talks to, for a worker that
// is to lose its connection without touching the others'.
func newClientLike(t *testing.T, rdb redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	switch c := rdb.(type) {
	case *redis.Client:
		return redis.NewClient(c.Options())
	case *redis.ClusterClient:
		return redis.NewClusterClient(c.Options())
	}
	t.Fatalf("unknown Redis client %T", rdb)
	return nil
}

// The leader of a schedule dies mid-schedule, without releasing its lock (its process
// loses Redis at once): another worker takes over once the lock's lease runs out and
// submits the ticks missed meanwhile. No tick is missed, none is doubled. The schedule
// lease is two ticks long, so that ticks fall due while no worker leads.
func TestAScheduleSurvivesItsLeadersCrash(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		const lease, scheduleLease = 500 * time.Millisecond, 2 * time.Second
		r := newTickRuns()
		start := redisNow(t, rdb)
		conns := map[string]redis.UniversalClient{}
		cancels := map[string]context.CancelFunc{}
		var stopped sync.WaitGroup
		for i := range 3 {
			name := fmt.Sprintf("w%d", i)
			conn := newClientLike(t, rdb)
			w, err := task.NewWorker(conn, workerOptions(h.opts, task.WithQueues("q1"), task.WithLease(lease),
				task.WithScheduleLease(scheduleLease), task.WithShutdownTimeout(lease), task.WithConsumerName(name))...)
			if err != nil {
				t.Fatal(err)
			}
			r.register(t, w, lease)
			ctx, cancel := context.WithCancel(context.Background())
			conns[name], cancels[name] = conn, cancel
			stopped.Add(1)
			go func() { defer stopped.Done(); _ = w.Run(ctx) }() // a crashed worker's Run fails
		}
		t.Cleanup(func() {
			for _, cancel := range cancels {
				cancel()
			}
			stopped.Wait()
			for _, c := range conns {
				c.Close()
			}
		})
		time.Sleep(2500 * time.Millisecond)
		leader := schedules(t, h)[0].Leader
		if conns[leader] == nil {
			t.Fatalf("the schedule's leader is %q, not one of the workers", leader)
		}
		conns[leader].Close() // the crash: no unlock, no more renewals
		cancels[leader]()
		time.Sleep(scheduleLease + 3*time.Second) // the lease, then several ticks
		end := redisNow(t, rdb)
		late := checkTicks(t, h, r, start.Unix()+2, end.Unix()-1, false)
		// The crashed leader renewed its lock a third of a lease before the crash at
		// most: the lock stands for two thirds of a lease more, over a tick that is then
		// submitted at least a third of a second late.
		if late < 300*time.Millisecond {
			t.Errorf("every tick was submitted within %s of its time: none fell due while no worker led, the test proves nothing", late)
		}
		if now := schedules(t, h)[0].Leader; now == leader || conns[now] == nil {
			t.Errorf("after the crash of %s the schedule is led by %q, want another worker", leader, now)
		}
	})
}

// schedules reads the schedule records, as an inspector would.
func schedules(t *testing.T, h *harness) []task.ScheduleInfo {
	t.Helper()
	in, err := task.NewInspector(h.rdb, h.opts...)
	if err != nil {
		t.Fatal(err)
	}
	infos, err := in.Schedules(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// The schedule's lock and records are under the prefix, passed in KEYS, so a worker
// logged in as a Redis user limited to the prefix leads a schedule, on a server of its
// own to set the ACL user on.
func TestSchedulesRunAsAnACLUserLimitedToThePrefix(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.NewClient()
	defer admin.Close()
	ctx := context.Background()
	if err := setACLUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "app", Password: "app-password"})
	defer rdb.Close()
	if err := rdb.Set(ctx, "outside:{schedule}:key", "x", 0).Err(); err == nil {
		t.Fatal("the ACL does not restrict keys, the test would prove nothing")
	}
	const lease = 300 * time.Millisecond
	w, err := task.NewWorker(rdb, task.WithSigningKey("k1", signingKey), task.WithQueues("q1"), task.WithLease(lease),
		task.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))))
	if err != nil {
		t.Fatal(err)
	}
	r := newTickRuns()
	r.register(t, w, lease)
	start := redisNow(t, rdb)
	stop := run(t, w)
	time.Sleep(3500 * time.Millisecond)
	end := redisNow(t, rdb)
	h := &harness{rdb: admin, prefix: task.DefaultPrefix}
	checkTicks(t, h, r, start.Unix()+2, end.Unix()-1, true)
	stop()
}

// A worker given WithoutSchedules runs the tasks of scheduled kinds but never submits
// them: alone, it leaves the schedule without a leader.
func TestAWorkerWithoutSchedulesNeverLeads(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		const lease = 200 * time.Millisecond
		w := h.worker(t, task.WithLease(lease), task.WithoutSchedules())
		r := newTickRuns()
		r.register(t, w, lease)
		start := redisNow(t, rdb)
		run(t, w)
		time.Sleep(2 * time.Second)
		for s, id := range tickIDs(t, h, start.Unix()-1, start.Unix()+3) {
			if id != "" {
				t.Errorf("tick %d was submitted, by a worker without schedules", s)
			}
		}
		if infos := schedules(t, h); len(infos) != 0 {
			t.Errorf("schedules = %+v, want none", infos)
		}
	})
}

func TestScheduleOptionsAreChecked(t *testing.T) {
	rdb := redistest.Client(t)
	for _, c := range []struct {
		opt  task.WorkerOption
		want string
	}{
		{task.WithScheduleLease(10 * time.Millisecond), "WithScheduleLease"},
		{task.WithScheduleCatchUp(-time.Second), "WithScheduleCatchUp"},
	} {
		_, err := task.NewWorker(rdb, task.WithSigningKey("k1", signingKey), c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("NewWorker with a bad %s: %v, want an error naming it", c.want, err)
		}
	}
	w, err := task.NewWorker(rdb, task.WithSigningKey("k1", signingKey))
	if err != nil {
		t.Fatal(err)
	}
	bad := tickDef
	bad.Schedule = "0 6 * *"
	if err := task.Register(w, bad, func(context.Context, task.Caller, struct{}) (struct{}, error) { return struct{}{}, nil }); err == nil || !strings.Contains(err.Error(), "invalid schedule") {
		t.Errorf("Register with schedule %q: %v, want an invalid schedule error", bad.Schedule, err)
	}
}

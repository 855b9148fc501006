package task

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/taskspec"
	"github.com/taskgen/taskgen/runtime/redistest"
)

// A leader that stalls past its lease loses its schedule to another worker, and when it
// comes back it submits nothing more: its fencing token is not the lock's. The tick it
// stalled on is submitted once, by the new leader.
func TestAStalledScheduleLeaderCannotSubmit(t *testing.T) {
	redistest.ForEachBackend(t, testStalledLeader)
}

func testStalledLeader(t *testing.T, rdb redis.UniversalClient) {
	prefix := redistest.Prefix(t)
	const lease = 300 * time.Millisecond
	def := Def{Kind: "test.stall", Queue: "q1", Schema: "v1:stall", Schedule: "@every 1s"}
	var mu sync.Mutex
	submitted := map[string][]time.Time{}
	stalled := time.Time{}
	released := make(chan struct{})
	scheduler := func(name string) *scheduler {
		w, err := NewWorker(rdb, WithPrefix(prefix), WithSigningKey("k1", []byte("test-signing-key-0123456789abcdef")),
			WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))), WithConsumerName(name), WithScheduleLease(lease))
		if err != nil {
			t.Fatal(err)
		}
		if err := Register(w, def, func(context.Context, Caller, struct{}) (struct{}, error) { return struct{}{}, nil }); err != nil {
			t.Fatal(err)
		}
		s, err := w.newScheduler()
		if err != nil || s == nil {
			t.Fatalf("newScheduler = %v, %v; want the scheduler of %s", s, err, def.Kind)
		}
		s.submitted = func(_ string, tick time.Time, _ ID) {
			mu.Lock()
			defer mu.Unlock()
			submitted[name] = append(submitted[name], tick)
		}
		return s
	}
	a, b := scheduler("a"), scheduler("b")
	// a stalls before the fence of its second tick, for three leases.
	a.stall = func(_ string, tick time.Time) {
		mu.Lock()
		stall := len(submitted["a"]) == 1 && stalled.IsZero()
		if stall {
			stalled = tick
		}
		mu.Unlock()
		if stall {
			time.Sleep(3 * lease)
			close(released)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	wg.Add(1)
	go func() { defer wg.Done(); a.run(ctx) }()
	waitUntil(t, 5*time.Second, "a's first tick", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(submitted["a"]) > 0
	})
	wg.Add(1)
	go func() { defer wg.Done(); b.run(ctx) }()
	select {
	case <-released:
	case <-time.After(10 * time.Second):
		t.Fatal("a never stalled")
	}
	time.Sleep(2 * time.Second) // a is back: ticks fall due, b submits them

	mu.Lock()
	defer mu.Unlock()
	if len(submitted["a"]) != 1 {
		t.Errorf("the stalled leader submitted %v after its stall; want only its first tick", submitted["a"][1:])
	}
	if !slices.ContainsFunc(submitted["b"], stalled.Equal) {
		t.Errorf("the tick the leader stalled on (%s) was not submitted by the new leader: %v", stalled, submitted["b"])
	}
	if len(submitted["b"]) < 2 {
		t.Errorf("the new leader submitted %v, want the ticks since the stall", submitted["b"])
	}
	// The stalled worker stopped leading; the other leads (read while both still run).
	infos, err := schedulesOf(context.Background(), a.broker)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Leader != "b" {
		t.Errorf("schedules = %+v, want %s led by b", infos, def.Kind)
	}
	if !infos[0].Last.After(stalled) || !infos[0].Next.After(infos[0].Last) {
		t.Errorf("schedule last %s, next %s: want last after the stalled tick %s, next after last", infos[0].Last, infos[0].Next, stalled)
	}
}

// waitUntil polls cond until it holds, failing the test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// The catch-up rules: every missed tick within the window, older ones skipped, except the
// newest missed tick when none is within the window.
func TestMissedTicksAreCaughtUpWithinTheWindow(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 5, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 3, 10, h, m, 0, 0, time.UTC) }
	day := func(d int) time.Time { return time.Date(2026, 3, d, 6, 0, 0, 0, time.UTC) }
	for _, c := range []struct {
		name     string
		spec     string
		catchUp  time.Duration
		covered  time.Time
		due      []time.Time
		skipped  int
		lastSkip time.Time
	}{
		{"nothing missed", "*/10 * * * *", time.Hour, at(12, 0), nil, 0, time.Time{}},
		{"all within the window", "*/10 * * * *", time.Hour, at(11, 35), []time.Time{at(11, 40), at(11, 50), at(12, 0)}, 0, time.Time{}},
		{"older ones skipped", "*/20 * * * *", time.Hour, at(9, 0), []time.Time{at(11, 20), at(11, 40), at(12, 0)}, 6, at(11, 0)},
		{"only the newest of a daily schedule", "0 6 * * *", time.Hour, day(7), []time.Time{day(10)}, 2, day(9)},
		{"no window: the newest only", "*/10 * * * *", 0, at(11, 0), []time.Time{at(12, 0)}, 5, at(11, 50)},
	} {
		t.Run(c.name, func(t *testing.T) {
			sched, err := taskspec.ParseSchedule(c.spec)
			if err != nil {
				t.Fatal(err)
			}
			s := &scheduler{catchUp: c.catchUp}
			due, skipped, last := s.dueTicks(&scheduled{sched: sched, covered: c.covered}, now)
			if !slices.EqualFunc(due, c.due, time.Time.Equal) || skipped != c.skipped || !last.Equal(c.lastSkip) {
				t.Errorf("dueTicks = %v, %d skipped through %s; want %v, %d skipped through %s", due, skipped, last, c.due, c.skipped, c.lastSkip)
			}
		})
	}
}

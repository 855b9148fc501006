package task_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/tasktest"
)

// echoes returns n echo arguments, "m0" to "m<n-1>".
func echoes(n int) []echoArgs {
	args := make([]echoArgs, n)
	for i := range args {
		args[i] = echoArgs{Msg: fmt.Sprint("m", i)}
	}
	return args
}

// mustSubmitMany submits args with SubmitMany and fails the test on an error.
func mustSubmitMany(t *testing.T, c *task.Client, args []echoArgs, opts ...task.SubmitOption) []task.ID {
	t.Helper()
	ids, err := task.SubmitMany(context.Background(), c, echoDef, alice, args, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != len(args) {
		t.Fatalf("SubmitMany returned %d ids for %d tasks", len(ids), len(args))
	}
	return ids
}

// More tasks than one pipeline holds: each is a task of its own, with its own ID and
// arguments, run by a worker with its caller, and the IDs come back in order.
func TestSubmitManyEnqueuesEachTaskWithItsOwnIDInOrder(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithConcurrency(32))
		err := task.Register(w, echoDef, func(_ context.Context, c task.Caller, a echoArgs) (string, error) {
			return c.UserID + "/" + a.Msg, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, w)
		ids := mustSubmitMany(t, h.client, echoes(600))
		seen := map[task.ID]bool{}
		for i, id := range ids {
			if id == "" || seen[id] || id.Queue() != "q1" {
				t.Fatalf("id %d = %q: want a new id on q1", i, id)
			}
			seen[id] = true
		}
		for i, id := range ids {
			got, err := wait[string](t, h.client, id)
			if want := fmt.Sprint("alice/m", i); got != want || err != nil {
				t.Fatalf("task %d (%s) = %q, %v; want %q", i, id, got, err, want)
			}
		}
	})
}

func TestSubmitManyOfNoTasksReturnsNothing(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ids, err := task.SubmitMany(context.Background(), h.client, echoDef, alice, []echoArgs{})
		if ids != nil || err != nil {
			t.Errorf("SubmitMany of none = %v, %v; want nil, nil", ids, err)
		}
	})
}

// The caller is checked once for the batch as Submit checks it, and a batch it fails
// enqueues nothing.
func TestSubmitManyChecksTheCallerAsSubmitDoes(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		expiring := alice
		expiring.ExpiresAt = time.Now().Add(time.Minute)
		for _, tc := range []struct {
			name   string
			caller task.Caller
			opts   []task.SubmitOption
			want   error
		}{
			{"empty", task.Caller{}, nil, task.ErrNoCaller},
			{"expired", task.Caller{UserID: "bob", ExpiresAt: time.Now().Add(-time.Minute)}, nil, task.ErrCallerExpired},
			{"due after expiry", expiring, []task.SubmitOption{task.Delay(time.Hour)}, task.ErrCallerExpired},
		} {
			ids, err := task.SubmitMany(ctx, h.client, echoDef, tc.caller, echoes(3), tc.opts...)
			if !errors.Is(err, tc.want) || ids != nil {
				t.Errorf("%s: SubmitMany = %v, %v; want nil, %v", tc.name, ids, err, tc.want)
			}
		}
		if n, err := rdb.XLen(ctx, redisq.QueueKeys(h.prefix, "q1").Stream()).Result(); n != 0 || err != nil {
			t.Errorf("stream length = %d, %v; want nothing enqueued", n, err)
		}
	})
}

// A task that fails alone (here, its envelope is too large) leaves the others
// enqueued; the error counts the failures and wraps the first.
func TestSubmitManyReportsTheTasksThatFailedAndEnqueuesTheOthers(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithMaxEnvelopeSize(1024))
		args := echoes(4)
		args[1].Msg = strings.Repeat("x", 2000)
		ids, err := task.SubmitMany(context.Background(), h.client, echoDef, alice, args)
		if !errors.Is(err, task.ErrMalformed) || !strings.Contains(err.Error(), "1 of 4 tasks failed") || !strings.Contains(err.Error(), "task 1") {
			t.Errorf("err = %v; want 1 of 4 failed, the first task 1, wrapping ErrMalformed", err)
		}
		if len(ids) != 4 || ids[1] != "" {
			t.Fatalf("ids = %v; want 4, the second empty", ids)
		}
		for _, i := range []int{0, 2, 3} {
			if !h.exists(t, rdb, ids[i]) {
				t.Errorf("task %d (%s) was not enqueued", i, ids[i])
			}
		}
	})
}

// Unique would make a batch one task, so it is refused; UniqueKeys gives each task its
// key, one per task.
func TestSubmitManyTakesOneUniqueKeyPerTask(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		if _, err := task.SubmitMany(ctx, h.client, echoDef, alice, echoes(2), task.Unique("k", time.Minute)); err == nil || !strings.Contains(err.Error(), "UniqueKeys") {
			t.Errorf("Unique with 2 tasks: %v; want an error pointing to UniqueKeys", err)
		}
		if _, err := task.SubmitMany(ctx, h.client, echoDef, alice, echoes(3), task.UniqueKeys([]string{"a", "b"}, time.Minute)); err == nil || !strings.Contains(err.Error(), "2 keys for 3 tasks") {
			t.Errorf("UniqueKeys with 2 keys for 3 tasks: %v; want an error naming both counts", err)
		}
		if _, err := task.SubmitMany(ctx, h.client, echoDef, alice, echoes(1), task.UniqueKeys([]string{"a"}, 0)); err == nil || !strings.Contains(err.Error(), "positive ttl") {
			t.Errorf("UniqueKeys without a ttl: %v; want a positive ttl asked for", err)
		}
		// One task with Unique is fine: it is Submit's case.
		held := mustSubmitMany(t, h.client, echoes(1), task.Unique("held", time.Minute))
		ids := mustSubmitMany(t, h.client, echoes(4), task.UniqueKeys([]string{"a", "held", "a", ""}, time.Minute))
		if ids[1] != held[0] || ids[2] != ids[0] || ids[0] == ids[3] || ids[3] == "" {
			t.Errorf("ids = %v (held %s); want the held key's id second, the first id again third, a new one last", ids, held[0])
		}
		again := mustSubmitMany(t, h.client, echoes(2), task.UniqueKeys([]string{"a", "b"}, time.Minute))
		if again[0] != ids[0] || again[1] == "" {
			t.Errorf("again = %v; want %s first, then a new id", again, ids[0])
		}
	})
}

// The observer hears of every task of a batch, each with its own ID.
func TestSubmitManyTellsTheObserverOfEachTask(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		var o observed
		h := newHarness(t, rdb)
		c, err := task.NewClient(rdb, clientOptions(h.opts, o.client(nil))...)
		if err != nil {
			t.Fatal(err)
		}
		ids := mustSubmitMany(t, c, echoes(5))
		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.submissions) != 5 || len(o.submitIDs) != 5 {
			t.Fatalf("observer saw %d submissions and %d ends; want 5 of each", len(o.submissions), len(o.submitIDs))
		}
		for i, id := range ids {
			if o.submissions[i].ID != id || o.submitIDs[i] != id || o.submitEnds[i] != nil {
				t.Errorf("task %d: observed %s, ended %s, %v; want %s", i, o.submissions[i].ID, o.submitIDs[i], o.submitEnds[i], id)
			}
		}
	})
}

// A tasktest client records each task of a batch as it records a Submit.
func TestSubmitManyOnATasktestClientRecordsEachTask(t *testing.T) {
	env, err := tasktest.New()
	if err != nil {
		t.Fatal(err)
	}
	ids, err := task.SubmitMany(context.Background(), env.Client(), echoDef, alice, echoes(3))
	if err != nil {
		t.Fatal(err)
	}
	subs := env.Submitted()
	if len(subs) != 3 {
		t.Fatalf("recorded %d submissions; want 3", len(subs))
	}
	for i, s := range subs {
		var a echoArgs
		if err := s.Decode(&a); err != nil || task.ID(s.ID) != ids[i] || a.Msg != fmt.Sprint("m", i) || s.UserID != "alice" {
			t.Errorf("submission %d = %+v (args %+v, %v); want %s with m%d by alice", i, s, a, err, ids[i], i)
		}
	}
}

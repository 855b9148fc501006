package task_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// handBack is what a worker logs when it hands a task back for a worker of another
// version.
const handBack = "task handed back: a worker of another version may run it (logged once per kind)"

// A new kind shipped to the producers before the workers: the old worker hands its tasks
// back, spending none of their retries (retries=0 here), and a new worker that comes up
// later runs each once; nothing is dead-lettered, and the old worker warns once for the
// kind, not once per task.
func TestAnUnknownKindWaitsForAWorkerThatKnowsIt(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		logs := &countingHandler{counts: map[string]int{}}
		old := h.worker(t, task.WithLogger(slog.New(logs)))
		if err := task.Register(old, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) { return "", nil }); err != nil {
			t.Fatal(err)
		}
		run(t, old)
		newKind := task.Def{Kind: "test.new_kind", Queue: "q1", MaxRetries: 0, Schema: "v1:echo", Caller: true}
		var ids []task.ID
		for range 5 {
			id, err := task.Submit(context.Background(), h.client, newKind, alice, echoArgs{Msg: "hi"})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		deadline := time.Now().Add(20 * time.Second)
		for logs.count(handBack) < len(ids) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := logs.count(handBack); n < len(ids) {
			t.Fatalf("%d hand-backs logged, want every one of the %d tasks handed back (logs: %s)", n, len(ids), logs)
		}

		var runs atomic.Int32
		current := h.worker(t)
		if err := task.Register(current, newKind, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			runs.Add(1)
			return "ran " + a.Msg, nil
		}); err != nil {
			t.Fatal(err)
		}
		run(t, current)
		for _, id := range ids {
			got, err := wait[string](t, h.client, id)
			if err != nil || got != "ran hi" {
				t.Errorf("task %s: %q, %v; want it run by the worker that knows its kind", id, got, err)
			}
		}
		if n := runs.Load(); n != int32(len(ids)) {
			t.Errorf("%d runs, want %d: one each", n, len(ids))
		}
		if n := logs.count("WARN: " + handBack); n != 1 {
			t.Errorf("%d warnings for the kind, want 1 (logs: %s)", n, logs)
		}
		dead, err := h.client.DeadLetters(context.Background(), "q1", "", 10)
		if err != nil || len(dead) != 0 {
			t.Errorf("dead letters = %+v, %v; want none", dead, err)
		}
	})
}

// When no worker runs a kind within the skew grace, the task is dead-lettered with the
// reason, after hand-backs spaced out by a growing delay (at least a second), not passed
// around in a tight loop.
func TestAnUnknownKindIsDeadLetteredAfterTheSkewGrace(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		logs := &countingHandler{counts: map[string]int{}}
		const grace = 3 * time.Second
		old := h.worker(t, task.WithLogger(slog.New(logs)), task.WithSkewGrace(grace))
		if err := task.Register(old, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) { return "", nil }); err != nil {
			t.Fatal(err)
		}
		run(t, old)
		orphan := task.Def{Kind: "test.never_deployed", Queue: "q1", MaxRetries: 3, Schema: "v1:echo", Caller: true}
		submitted := time.Now()
		id, err := task.Submit(context.Background(), h.client, orphan, alice, echoArgs{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = wait[string](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || failed.Reason != task.ReasonUnknownKind || !errors.Is(err, task.ErrUnknownKind) {
			t.Fatalf("Result = %v, want the task dead-lettered unknown_kind", err)
		}
		if took := time.Since(submitted); took < grace {
			t.Errorf("dead-lettered after %s, within the skew grace of %s", took, grace)
		}
		// 1 s, 1 s, 2 s: three hand-backs fill a grace of 3 s; a tight loop makes hundreds.
		if n := logs.count(handBack); n < 2 || n > 5 {
			t.Errorf("%d hand-backs in a grace of %s, want a few, spaced out", n, grace)
		}
		dead, err := h.client.DeadLetters(context.Background(), "q1", "", 10)
		if err != nil || len(dead) != 1 || dead[0].Reason != task.ReasonUnknownKind {
			t.Fatalf("dead letters = %+v, %v; want the task, unknown_kind", dead, err)
		}
	})
}

package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/wireschema"
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
		stopOld := run(t, old)
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
		// The deploy then retires the old worker. While both run, a task the old one keeps
		// catching waits longer at each hand-back (the delay grows with the time waited,
		// up to a minute): it runs, but later than the 20 s each wait below allows.
		stopOld()
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
		// The grace spans six leases: the hand-backs, not reclaims, keep the task alive.
		old := h.worker(t, task.WithLogger(slog.New(logs)), task.WithSkewGrace(grace), task.WithLease(500*time.Millisecond))
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
		// 1 s, 1 s, 2 s: about three hand-backs fill a grace of 3 s (fewer when the
		// machine is slow to deliver them again); a tight loop makes hundreds.
		if n := logs.count(handBack); n < 1 || n > 5 {
			t.Errorf("%d hand-backs in a grace of %s, want a few, spaced out", n, grace)
		}
		dead, err := h.client.DeadLetters(context.Background(), "q1", "", 10)
		if err != nil || len(dead) != 1 || dead[0].Reason != task.ReasonUnknownKind {
			t.Fatalf("dead letters = %+v, %v; want the task, unknown_kind", dead, err)
		}
	})
}

// defOf is a Def of kind test.compat on q1 whose arguments have the wire shape wire, as
// the generator would write it.
func defOf(t *testing.T, wire string) task.Def {
	t.Helper()
	canonical, err := wireschema.Canonical(wire)
	if err != nil {
		t.Fatal(err)
	}
	return task.Def{Kind: "test.compat", Queue: "q1", Schema: wireschema.Fingerprint(canonical), Wire: canonical}
}

type compatV1 struct {
	Msg string `json:"msg"`
}

type compatV2 struct {
	Msg string `json:"msg"`
	N   int    `json:"n"`
}

// A field added in v2: a v1 worker runs v2's envelopes (the new field ignored), a v2
// worker runs v1's (the new field zero). Nothing waits, nothing is dead-lettered.
func TestCompatibleSchemasRunInBothDirections(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		v1, v2 := defOf(t, `{"msg":string}`), defOf(t, `{"n":int,"msg":string}`)
		if v1.Schema == v2.Schema {
			t.Fatal("the two versions share a fingerprint")
		}
		h := newHarness(t, rdb)
		old := h.worker(t)
		if err := task.Register(old, v1, func(_ context.Context, _ task.Caller, a compatV1) (string, error) { return "v1 got " + a.Msg, nil }); err != nil {
			t.Fatal(err)
		}
		stopOld := run(t, old)
		id, err := task.Submit(context.Background(), h.client, v2, task.Caller{}, compatV2{Msg: "hi", N: 7})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, id); err != nil || got != "v1 got hi" {
			t.Errorf("v2 envelope on a v1 worker: %q, %v", got, err)
		}
		stopOld()

		current := h.worker(t)
		if err := task.Register(current, v2, func(_ context.Context, _ task.Caller, a compatV2) (string, error) {
			return fmt.Sprintf("v2 got %s/%d", a.Msg, a.N), nil
		}); err != nil {
			t.Fatal(err)
		}
		run(t, current)
		id, err = task.Submit(context.Background(), h.client, v1, task.Caller{}, compatV1{Msg: "hello"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, id); err != nil || got != "v2 got hello/0" {
			t.Errorf("v1 envelope on a v2 worker: %q, %v", got, err)
		}
		if dead, _ := h.client.DeadLetters(context.Background(), "q1", "", 10); len(dead) != 0 {
			t.Errorf("dead letters = %+v, want none", dead)
		}
	})
}

// A field whose type changed cannot be decoded: the task waits out the skew grace and is
// dead-lettered schema_mismatch, naming the field. So is a description in the schema hash
// that is not the one the envelope's signed fingerprint stands for: the hash is Redis's,
// not the producer's.
func TestIncompatibleSchemasWaitOutTheGraceThenDeadLetter(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		v1 := defOf(t, `{"msg":string}`)
		retyped := defOf(t, `{"msg":int}`)
		forged := defOf(t, `{"msg":string,"extra":bool}`)
		h := newHarness(t, rdb)
		// Someone with write access to Redis records a compatible-looking description
		// under the fingerprint of forged's real one.
		if err := rdb.HSet(context.Background(), redisq.QueueKeys(h.prefix, "q1").Schemas(), forged.Schema, `{"msg":string}`).Err(); err != nil {
			t.Fatal(err)
		}
		w := h.worker(t, task.WithSkewGrace(2*time.Second))
		var runs atomic.Int32
		if err := task.Register(w, v1, func(context.Context, task.Caller, compatV1) (string, error) { runs.Add(1); return "", nil }); err != nil {
			t.Fatal(err)
		}
		run(t, w)
		for _, tc := range []struct {
			def  task.Def
			args any
			want string
		}{
			{retyped, map[string]int{"msg": 1}, "msg changed type from int to string"},
			{forged, map[string]any{"msg": "x", "extra": true}, "not the one its fingerprint stands for"},
		} {
			id, err := task.Submit(context.Background(), h.client, tc.def, task.Caller{}, tc.args)
			if err != nil {
				t.Fatal(err)
			}
			_, err = wait[string](t, h.client, id)
			var failed *task.FailedError
			if !errors.As(err, &failed) || failed.Reason != task.ReasonSchemaMismatch || !strings.Contains(failed.Message, tc.want) {
				t.Errorf("Result = %v, want schema_mismatch saying %q", err, tc.want)
			}
		}
		if n := runs.Load(); n != 0 {
			t.Errorf("%d runs of envelopes the worker cannot decode", n)
		}
	})
}

// Envelopes queued by producers of the taskgen before Def.Wire carry the v1 fingerprint,
// and no description: a worker runs them when its Def names that fingerprint as
// PreviousSchema, so upgrading taskgen itself strands no queued task (workers first).
func TestEnvelopesOfThePreviousSchemaRun(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		current := defOf(t, `{"msg":string}`)
		current.PreviousSchema = "v1:5f1e2d3c4b5a6978"
		older := task.Def{Kind: current.Kind, Queue: current.Queue, Schema: current.PreviousSchema}
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithSkewGrace(time.Second))
		if err := task.Register(w, current, func(_ context.Context, _ task.Caller, a compatV1) (string, error) { return "ran " + a.Msg, nil }); err != nil {
			t.Fatal(err)
		}
		run(t, w)
		id, err := task.Submit(context.Background(), h.client, older, task.Caller{}, compatV1{Msg: "old"})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, id); err != nil || got != "ran old" {
			t.Errorf("v1 envelope: %q, %v; want it run", got, err)
		}
	})
}

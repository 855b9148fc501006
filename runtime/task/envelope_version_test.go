package task_test

import (
	"context"
	"errors"
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

// In a rolling deploy's second half, clients of this release write envelope version 2
// while others still write version 1: a worker of this release runs both, retries each
// in its own version, and a first attempt that outlives the worker's lease still counts
// once.
func TestAWorkerRunsTasksOfBothEnvelopeVersions(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb) // h.client writes version 1, the default
		v2, err := task.NewClient(rdb, clientOptions(append(h.opts, task.WithEnvelopeVersion(2)))...)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		id1, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "one"})
		if err != nil {
			t.Fatal(err)
		}
		id2, err := task.Submit(ctx, v2, echoDef, alice, echoArgs{Msg: "two"})
		if err != nil {
			t.Fatal(err)
		}
		entries, err := rdb.XRange(ctx, redisq.QueueKeys(h.prefix, "q1").Stream(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var starts []string
		for _, x := range entries {
			env, _ := x.Values[redisq.EnvelopeField].(string)
			starts = append(starts, env[:min(len(env), 7)])
		}
		if len(starts) != 2 || starts[0] != `{"v":1,` || starts[1] != `{"v":2,` {
			t.Fatalf("envelopes in the stream start %q, want version 1 then version 2", starts)
		}

		w := h.worker(t, task.WithLease(200*time.Millisecond))
		var mu sync.Mutex
		attempts := map[string]int{}
		err = task.Register(w, echoDef, func(ctx context.Context, c task.Caller, a echoArgs) (string, error) {
			mu.Lock()
			attempts[a.Msg]++
			n := attempts[a.Msg]
			mu.Unlock()
			if n == 1 {
				time.Sleep(600 * time.Millisecond) // three leases
				return "", errFlaky
			}
			return c.UserID + "/" + a.Msg, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, w)
		for id, want := range map[task.ID]string{id1: "alice/one", id2: "alice/two"} {
			if got, err := wait[string](t, h.client, id); err != nil || got != want {
				t.Errorf("Result(%s) = %q, %v; want %q", id, got, err, want)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if attempts["one"] != 2 || attempts["two"] != 2 {
			t.Errorf("attempts = %v, want 2 each: one that failed past the lease, one that succeeded", attempts)
		}
	})
}

// A version 2 task dead-lettered under a key that is gone since runs again with
// RequeueResigned, re-signed in version 2, on a worker whose lease it outlives.
func TestRequeueResignedKeepsEnvelopeVersion2(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithPlainCallers(), task.WithEnvelopeVersion(2))
		ctx := context.Background()
		oldKey, newKey := task.WithSigningKey("k1", signingKey), task.WithSigningKey("k2", []byte("the-new-signing-key-0123456789abc"))
		common := []task.WorkerOption{task.WithPrefix(h.prefix), task.WithQueues("q1"), task.WithPlainCallers(), task.WithLease(200 * time.Millisecond)}
		var fail atomic.Bool
		fail.Store(true)
		fn := func(_ context.Context, c task.Caller, a echoArgs) (string, error) {
			if fail.Load() {
				return "", task.Permanent(errors.New("not yet"))
			}
			time.Sleep(600 * time.Millisecond) // three leases
			return c.UserID + "/" + a.Msg, nil
		}
		rotating, err := task.NewWorker(rdb, append(common, newKey, oldKey)...)
		if err != nil {
			t.Fatal(err)
		}
		task.Register(rotating, echoDef, fn)
		stop := run(t, rotating)
		id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "again"}) // version 2, signed with k1
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wait[string](t, h.client, id); err == nil {
			t.Fatal("first run succeeded, want a permanent failure")
		}
		stop()

		// k1 is gone everywhere.
		c, err := task.NewClient(rdb, task.WithPrefix(h.prefix), newKey, task.WithPlainCallers())
		if err != nil {
			t.Fatal(err)
		}
		dead, err := c.DeadLetters(ctx, "q1", "", 10)
		if err != nil || len(dead) != 1 || !dead[0].Verified {
			t.Fatalf("dead letters = %+v, %v; want one, vouched for", dead, err)
		}
		if err := c.Requeue(ctx, dead[0]); !errors.Is(err, task.ErrBadSignature) {
			t.Fatalf("Requeue with the key gone = %v, want ErrBadSignature", err)
		}
		if err := c.RequeueResigned(ctx, dead[0]); err != nil {
			t.Fatalf("RequeueResigned = %v", err)
		}
		entries, err := rdb.XRange(ctx, redisq.QueueKeys(h.prefix, "q1").Stream(), "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		var starts []string
		for _, x := range entries {
			env, _ := x.Values[redisq.EnvelopeField].(string)
			starts = append(starts, env[:min(len(env), len(`{"v":2,"kid":"k2",`))])
		}
		if len(starts) == 0 || starts[len(starts)-1] != `{"v":2,"kid":"k2",` {
			t.Fatalf("requeued envelopes start %q, want version 2 signed with k2 last", starts)
		}
		fail.Store(false)
		renewed, err := task.NewWorker(rdb, append(common, newKey)...)
		if err != nil {
			t.Fatal(err)
		}
		task.Register(renewed, echoDef, fn)
		run(t, renewed)
		if got, err := wait[string](t, c, id); err != nil || got != "alice/again" {
			t.Errorf("Result after RequeueResigned = %q, %v", got, err)
		}
	})
}

type flakyError struct{}

func (flakyError) Error() string { return "flaky" }

var errFlaky error = flakyError{}

func TestWithEnvelopeVersionRefusesAVersionItCannotWrite(t *testing.T) {
	_, err := task.NewClient(redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}),
		task.WithSigningKey("k1", signingKey), task.WithEnvelopeVersion(3))
	if err == nil || !strings.Contains(err.Error(), "WithEnvelopeVersion") {
		t.Fatalf("NewClient with envelope version 3: err = %v, want a refusal naming WithEnvelopeVersion", err)
	}
}

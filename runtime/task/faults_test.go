package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

// Faults users meet: stalls, replays, forgeries, huge entries, trims, reshards, keys
// that went away, tokens that expire between attempts.

// A task due after its caller's token expires is refused at Submit, in the request
// handler, with both times in the message, and nothing reaches Redis.
func TestSubmitRefusesATaskDueAfterItsCallerExpires(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		expiresAt := time.Now().Add(time.Hour).Truncate(time.Second)
		caller := task.Caller{UserID: "dave", ExpiresAt: expiresAt}
		dueAt := expiresAt.Add(time.Minute)
		for _, opt := range []struct {
			name string
			opt  task.SubmitOption
		}{{"Delay", task.Delay(time.Until(dueAt))}, {"At", task.At(dueAt)}} {
			t.Run(opt.name, func(t *testing.T) {
				_, err := task.Submit(context.Background(), h.client, echoDef, caller, echoArgs{}, opt.opt)
				if !errors.Is(err, task.ErrCallerExpired) {
					t.Fatalf("err = %v, want ErrCallerExpired", err)
				}
				if !strings.Contains(err.Error(), expiresAt.UTC().Format(time.RFC3339)) || !strings.Contains(err.Error(), "before the task is due at") {
					t.Errorf("err = %q, want it to give the expiry and the due time", err)
				}
			})
		}
		id, err := task.Submit(context.Background(), h.client, echoDef, caller, echoArgs{}, task.Delay(time.Minute))
		if err != nil {
			t.Fatalf("a task due before the expiry was refused: %v", err)
		}
		if keys := prefixKeys(t, h); len(keys) != 3 || keys[0] != h.prefix+":queues" || !strings.HasSuffix(keys[1], ":delayed") || !strings.HasSuffix(keys[2], ":task:"+string(id)) {
			t.Errorf("keys = %v, want only the registry of queues, the delayed set and the state of the one task accepted", keys)
		}
	})
}

// A token that expires between two attempts: the retry is not made, and the result keeps
// the error that caused it, says the token expired before the retry, and counts the
// attempts as the state and the log do.
func TestATokenExpiringBeforeTheRetryKeepsTheRealError(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		logs := &countingHandler{counts: map[string]int{}}
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithBackoff(2*time.Second, 2*time.Second), task.WithLogger(slog.New(logs)))
		var runs atomic.Int32
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) {
			runs.Add(1)
			return "", errors.New("upstream said 503")
		})
		run(t, w)
		soon := task.Caller{UserID: "erin", ExpiresAt: time.Now().Add(time.Second)}
		id, err := task.Submit(context.Background(), h.client, echoDef, soon, echoArgs{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = wait[string](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || !errors.Is(err, task.ErrCallerExpired) {
			t.Fatalf("Result = %v, want a FailedError matching ErrCallerExpired", err)
		}
		if failed.Attempts != 1 || !strings.Contains(failed.Message, "upstream said 503") || !strings.Contains(failed.Message, "before the next attempt") {
			t.Errorf("failure = %+v, want 1 attempt, the upstream error and why it was not retried", failed)
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the task ran %d times, want once", n)
		}
		const logged = "task failed for good: failed, and the caller's token expires before the retry"
		waitFor(t, "the failure to be logged", func() bool { return logs.count(logged) > 0 })
		if n := logs.count(logged); n != 1 {
			t.Errorf("the failure was logged %d times, want once", n)
		}
		if a := logs.attr(logged, "attempt"); a != "1" {
			t.Errorf("the log gives attempt %q, want 1 as the state does", a)
		}
	})
}

// A Redis stall (SIGSTOP) two and a half leases long, while tasks run on two workers: no
// task is taken over, none runs twice, and tasks with no retries are not dead-lettered
// as lost. It needs a server of its own, to stop.
func TestARedisStallLongerThanTheLeaseMakesNoDuplicate(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.NewClient()
	defer rdb.Close()
	logs := &countingHandler{counts: map[string]int{}}
	h := newHarness(t, rdb)
	var s sleeper
	const lease = time.Second
	for _, name := range []string{"w1", "w2"} {
		w := h.worker(t, task.WithLease(lease), task.WithConsumerName(name), task.WithLogger(slog.New(logs)))
		def := sleepDef
		def.MaxRetries = 0
		if err := task.Register(w, def, s.fn(name)); err != nil {
			t.Fatal(err)
		}
		run(t, w)
	}
	def := sleepDef
	def.MaxRetries = 0
	var ids []task.ID
	for i := range 6 {
		id, err := task.Submit(context.Background(), h.client, def, alice, sleepArgs{Name: fmt.Sprint("t", i), Sleep: 4 * lease})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	waitFor(t, "every task to begin", func() bool {
		for i := range ids {
			if s.count(fmt.Sprint("t", i)) == 0 {
				return false
			}
		}
		return true
	})
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * lease / 2)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if _, err := waitLong[string](t, h.client, id, time.Minute); err != nil {
			t.Errorf("task t%d: %v", i, err)
		}
		if n := s.count(fmt.Sprint("t", i)); n != 1 {
			t.Errorf("task t%d ran %d times, want once", i, n)
		}
	}
	if n := logs.count("took over a task whose worker stopped renewing its lease"); n != 0 {
		t.Errorf("%d takeovers of tasks whose workers were alive", n)
	}
	if n, _ := rdb.XLen(context.Background(), redisq.QueueKeys(h.prefix, "q1").Dead()).Result(); n != 0 {
		t.Errorf("%d dead letters, want none", n)
	}
}

// A result or failure in Redis that no worker holding the deployment's signing keys wrote
// (someone who can write Redis edited it, or made it up) is refused by Result.
func TestResultRefusesAnOutcomeNoWorkerWrote(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil })
		run(t, w)
		ctx := context.Background()
		id, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "genuine"})
		if got, err := wait[string](t, h.client, id); err != nil || got != "genuine" {
			t.Fatalf("Result = %q, %v", got, err)
		}
		state := redisq.QueueKeys(h.prefix, "q1").State(string(id))
		for name, forge := range map[string][]any{
			"result edited":         {redisq.FieldResult, `"forged"`},
			"turned into a failure": {redisq.FieldState, redisq.StateDead, redisq.FieldReason, task.ReasonPermanent},
			"MAC removed":           {redisq.FieldMAC, ""},
		} {
			t.Run(name, func(t *testing.T) {
				saved, _ := h.rdb.HGetAll(ctx, state).Result()
				ttl, _ := h.rdb.PTTL(ctx, state).Result()
				defer func() { h.rdb.Del(ctx, state); h.rdb.HSet(ctx, state, saved); h.rdb.PExpire(ctx, state, ttl) }()
				if err := h.rdb.HSet(ctx, state, forge...).Err(); err != nil {
					t.Fatal(err)
				}
				got, err := wait[string](t, h.client, id)
				if !errors.Is(err, task.ErrBadSignature) {
					t.Errorf("Result of a forged outcome = %q, %v; want ErrBadSignature", got, err)
				}
			})
		}
		if got, err := wait[string](t, h.client, id); err != nil || got != "genuine" {
			t.Errorf("Result once restored = %q, %v", got, err)
		}
	})
}

// A running task whose stream entry is trimmed away (XTRIM by an operator, or MAXLEN on
// another writer) still records its outcome once, and nobody takes it over, though the
// other worker's reclaims find the entry idle (a heartbeat cannot claim a deleted entry):
// its worker renews its leases. The outcome is fenced by the task's state, not by the
// entry, and the entries hash is empty once it is written.
func TestARunningTaskWhoseEntryIsTrimmedStillFinishes(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		logs := &countingHandler{counts: map[string]int{}}
		var s sleeper
		for _, name := range []string{"w1", "w2"} {
			w := h.worker(t, task.WithLease(300*time.Millisecond), task.WithLogger(slog.New(logs)), task.WithConsumerName(name))
			task.Register(w, sleepDef, s.fn(name))
			run(t, w)
		}
		ctx := context.Background()
		id, err := task.Submit(ctx, h.client, sleepDef, alice, sleepArgs{Name: "trimmed", Sleep: 3 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the task to begin", func() bool { return s.count("trimmed") == 1 })
		keys := redisq.QueueKeys(h.prefix, "q1")
		if err := h.rdb.XTrimMaxLen(ctx, keys.Stream(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, err := waitLong[string](t, h.client, id, time.Minute); err != nil || !strings.HasPrefix(got, "trimmed by w") {
			t.Fatalf("Result = %q, %v", got, err)
		}
		if n := s.count("trimmed"); n != 1 {
			t.Errorf("the task ran %d times, want once", n)
		}
		for _, msg := range []string{
			"lost the lease of a running task to another worker: stopping this run",
			"task failed for good: its stream entry was deleted while it ran, and its worker died",
		} {
			if n := logs.count(msg); n != 0 {
				t.Errorf("%d times %q", n, msg)
			}
		}
		if n, _ := h.rdb.HLen(ctx, keys.Entries()).Result(); n != 0 {
			t.Errorf("the entries hash holds %d entries after the outcome, want none", n)
		}
	})
}

// A long task whose stream entry is trimmed while it runs, and whose worker then dies (it
// loses Redis for good: its client is closed, so it neither renews nor settles), is ended
// by another worker once the dead one has renewed nothing for a lease: Result returns the
// reason, the dead letter names the task, and nothing is left pending or mapped. It does
// not run again: its envelope went with the entry.
func TestATaskWhoseEntryIsTrimmedUnderADeadWorkerEnds(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		var s sleeper
		const lease = 300 * time.Millisecond
		own := ownClient(t, rdb) // the doomed worker's own connection to Redis
		doomed, err := task.NewWorker(own, workerOptions(h.opts, task.WithQueues("q1"), task.WithLease(lease),
			task.WithShutdownTimeout(100*time.Millisecond), task.WithConsumerName("doomed"))...)
		if err != nil {
			t.Fatal(err)
		}
		task.Register(doomed, sleepDef, s.fn("doomed"))
		run(t, doomed)
		ctx := context.Background()
		id, err := task.Submit(ctx, h.client, sleepDef, alice, sleepArgs{Name: "long", Sleep: time.Minute})
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the task to begin", func() bool { return s.count("long") == 1 })
		time.Sleep(lease) // a heartbeat or two: the doomed worker's record is fresh
		keys := redisq.QueueKeys(h.prefix, "q1")
		if err := h.rdb.XTrimMaxLen(ctx, keys.Stream(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		own.Close() // the worker dies, as far as Redis can tell

		rescuer := h.worker(t, task.WithLease(lease), task.WithConsumerName("rescuer"))
		task.Register(rescuer, sleepDef, s.fn("rescuer"))
		run(t, rescuer)
		_, err = waitLong[string](t, h.client, id, time.Minute)
		var failed *task.FailedError
		if !errors.As(err, &failed) || failed.Reason != task.ReasonEntryLost || failed.Attempts != 1 {
			t.Fatalf("Result = %v, want a failure %s after 1 attempt", err, task.ReasonEntryLost)
		}
		if n := s.count("long"); n != 1 {
			t.Errorf("the task ran %d times, want once", n)
		}
		dead := deadLetters(t, h, "q1")
		if len(dead) != 1 || dead[0]["id"] != string(id) || dead[0]["reason"] != task.ReasonEntryLost {
			t.Errorf("dead letters = %v, want one naming %s, %s", dead, id, task.ReasonEntryLost)
		}
		if p, _ := h.rdb.XPending(ctx, keys.Stream(), redisq.Group).Result(); p.Count != 0 {
			t.Errorf("%d entries still pending", p.Count)
		}
		if n, _ := h.rdb.HLen(ctx, keys.Entries()).Result(); n != 0 {
			t.Errorf("the entries hash holds %d entries, want none", n)
		}
	})
}

// ownClient returns a new client of the deployment rdb reaches, closed when the test ends
// (or before, by the test).
func ownClient(t *testing.T, rdb redis.UniversalClient) redis.UniversalClient {
	t.Helper()
	var c redis.UniversalClient
	switch r := rdb.(type) {
	case *redis.Client:
		c = redis.NewClient(&redis.Options{Addr: r.Options().Addr})
	case *redis.ClusterClient:
		c = redis.NewClusterClient(&redis.ClusterOptions{Addrs: r.Options().Addrs})
	default:
		t.Fatalf("ownClient: a %T", rdb)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// The entries hash that maps each delivery in flight to its task is empty once the tasks
// have finished, however they finished: succeeded, after a retry, dead-lettered, or
// refused by entry.
func TestTheEntriesHashIsEmptyOnceTasksFinish(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithConcurrency(4))
		var failed sync.Map
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			switch a.Msg {
			case "permanent":
				return "", task.Permanent(errors.New("no"))
			case "flaky":
				if _, again := failed.LoadOrStore(a.Msg, true); !again {
					return "", errors.New("once")
				}
			}
			return a.Msg, nil
		})
		run(t, w)
		ctx := context.Background()
		keys := redisq.QueueKeys(h.prefix, "q1")
		var ids []task.ID
		for _, msg := range []string{"ok", "flaky", "permanent", "ok too"} {
			id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: msg})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(), Values: []any{redisq.EnvelopeField, "garbage"}})
		for _, id := range ids {
			if _, err := wait[string](t, h.client, id); err != nil && !task.IsPermanent(err) && !errors.As(err, new(*task.FailedError)) {
				t.Fatalf("task %s: %v", id, err)
			}
		}
		waitDeadLetters(t, h, "q1", 2)
		waitFor(t, "nothing to be pending", func() bool {
			p, err := h.rdb.XPending(ctx, keys.Stream(), redisq.Group).Result()
			return err == nil && p.Count == 0
		})
		if m, _ := h.rdb.HGetAll(ctx, keys.Entries()).Result(); len(m) != 0 {
			t.Errorf("the entries hash holds %v once every task finished, want nothing", m)
		}
	})
}

// Replay windows: a finished task's record lives at least until its envelope's not-after
// time, so a copy of the envelope written back meanwhile is dropped as a duplicate; once
// the not-after time has passed, a copy is refused as stale, unrun, even though the record
// is gone. Submit refuses a task due further ahead than MaxTaskLife.
func TestAReplayedEnvelopeNeverRunsAgain(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		var s sleeper
		w := h.worker(t, task.WithResultTTL(100*time.Millisecond))
		task.Register(w, sleepDef, s.fn("w"))
		run(t, w)
		ctx := context.Background()
		keys := redisq.QueueKeys(h.prefix, "q1")
		notAfter := time.Now().Add(3 * time.Second)
		id, env := h.enqueueRaw(t, sleepDef, alice, sleepArgs{Name: "once"}, 0, notAfter)
		if _, err := wait[string](t, h.client, id); err != nil {
			t.Fatal(err)
		}
		if ttl, _ := h.rdb.PTTL(ctx, keys.State(string(id))).Result(); ttl < time.Until(notAfter) {
			t.Errorf("the record expires in %s, before the envelope's not-after time in %s", ttl, time.Until(notAfter))
		}
		replay := func() {
			t.Helper()
			if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: keys.Stream(), Values: []any{redisq.EnvelopeField, env}}).Err(); err != nil {
				t.Fatal(err)
			}
		}
		replay()
		waitFor(t, "the duplicate to be dropped", func() bool { n, _ := h.rdb.XLen(ctx, keys.Stream()).Result(); return n == 0 })
		time.Sleep(time.Until(notAfter) + 100*time.Millisecond)
		h.rdb.Del(ctx, keys.State(string(id))) // gone, as it would be once its TTL ran out
		replay()
		dead := waitDeadLetters(t, h, "q1", 1)
		if len(dead) != 1 || dead[0]["reason"] != task.ReasonStale {
			t.Fatalf("dead letters = %v, want the stale copy", dead)
		}
		if n := s.count("once"); n != 1 {
			t.Errorf("the task ran %d times, want once", n)
		}
		if _, err := task.Submit(ctx, h.client, sleepDef, alice, sleepArgs{}, task.Delay(task.MaxTaskLife+time.Hour)); err == nil {
			t.Error("Submit accepted a task due after MaxTaskLife")
		}
	})
}

// Key lifetimes: a task signed with a key that is gone since it was dead-lettered is
// refused by Requeue, and run again by RequeueResigned, because the worker that
// dead-lettered it vouched for its envelope with a key the client still holds. A dead
// letter whose envelope was changed is refused either way.
func TestRequeueResignedRunsADeadLetterWhoseKeyIsGone(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithPlainCallers())
		ctx := context.Background()
		oldKey, newKey := task.WithSigningKey("k1", signingKey), task.WithSigningKey("k2", []byte("the-new-signing-key-0123456789abc"))
		common := []task.WorkerOption{task.WithPrefix(h.prefix), task.WithQueues("q1"), task.WithPlainCallers()}
		var fail atomic.Bool
		fail.Store(true)
		fn := func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			if fail.Load() {
				return "", task.Permanent(errors.New("not yet"))
			}
			return a.Msg, nil
		}
		rotating, err := task.NewWorker(h.rdb, append(common, newKey, oldKey)...)
		if err != nil {
			t.Fatal(err)
		}
		task.Register(rotating, echoDef, fn)
		stop := run(t, rotating)
		id, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "again"}) // signed with k1
		if _, err := wait[string](t, h.client, id); err == nil {
			t.Fatalf("first run = %v, want a failure", err)
		}
		stop()

		// k1 is gone everywhere.
		c, err := task.NewClient(h.rdb, task.WithPrefix(h.prefix), newKey, task.WithPlainCallers())
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
		// A copy of the dead letter with its envelope changed keeps the vouch, which no
		// longer matches.
		deadKey := redisq.QueueKeys(h.prefix, "q1").Dead()
		xs, _ := h.rdb.XRange(ctx, deadKey, "-", "+").Result()
		forged := map[string]any{}
		for k, v := range xs[0].Values {
			forged[k] = v
		}
		forged[redisq.EnvelopeField] = strings.Replace(forged[redisq.EnvelopeField].(string), `"again"`, `"evil!"`, 1)
		forgedID, _ := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: deadKey, Values: forged}).Result()
		if err := c.RequeueResigned(ctx, task.DeadLetter{EntryID: forgedID, Queue: "q1", ID: id}); !errors.Is(err, task.ErrBadSignature) {
			t.Errorf("RequeueResigned of a changed envelope = %v, want ErrBadSignature", err)
		}
		if err := c.RequeueResigned(ctx, dead[0]); err != nil {
			t.Fatalf("RequeueResigned = %v", err)
		}
		fail.Store(false)
		renewed, err := task.NewWorker(h.rdb, append(common, newKey)...)
		if err != nil {
			t.Fatal(err)
		}
		task.Register(renewed, echoDef, fn)
		run(t, renewed)
		if got, err := wait[string](t, c, id); err != nil || got != "again" {
			t.Errorf("Result after RequeueResigned = %q, %v", got, err)
		}
	})
}

// Resharding: while the queue's slot is being migrated, Redis refuses the enqueue script
// with TRYAGAIN for longer than go-redis retries; Submit tries again within its context
// and succeeds once the slot is settled. It needs a cluster of its own, to move slots.
func TestSubmitWaitsOutAReshard(t *testing.T) {
	cluster, err := redistest.StartCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	rdb := cluster.NewClient()
	defer rdb.Close()
	h := newHarness(t, rdb)
	ctx := context.Background()
	if _, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}); err != nil { // the stream exists
		t.Fatal(err)
	}
	m := startMigration(t, cluster, redisq.QueueKeys(h.prefix, "q1").Stream())
	slot, owner, target := m.slot, m.owner, m.target
	done := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		defer cancel()
		_, err := task.Submit(sctx, h.client, echoDef, alice, echoArgs{Msg: "during the reshard"})
		done <- err
	}()
	time.Sleep(3 * time.Second) // longer than go-redis's own retries
	select {
	case err := <-done:
		t.Fatalf("Submit returned during the reshard: %v", err)
	default:
	}
	for _, c := range []*redis.Client{owner, target} {
		if err := c.Do(ctx, "CLUSTER", "SETSLOT", slot, "STABLE").Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Errorf("Submit after the reshard = %v", err)
	}
}

// A durable Submit waits out a reshard too, and is confirmed where the queue lives once
// the slot has moved: while the queue's slot is migrating, the master refuses the enqueue
// on the pinned connection (TRYAGAIN); once the slot is on another master, the old one
// answers MOVED; Submit pins the new master, enqueues there and its replica confirms the
// task. It needs a cluster of its own, with replicas, to move slots and to WAIT.
func TestADurableSubmitWaitsOutAReshard(t *testing.T) {
	cluster, err := redistest.StartReplicatedCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Stop()
	rdb := cluster.NewClient()
	defer rdb.Close()
	h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 5 * time.Second})
	ctx := context.Background()
	if _, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}); err != nil { // the stream exists
		t.Fatal(err)
	}
	keys := redisq.QueueKeys(h.prefix, "q1")
	m := startMigration(t, cluster, keys.Stream())
	type submitted struct {
		id  task.ID
		err error
	}
	done := make(chan submitted, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		id, err := task.Submit(sctx, h.client, echoDef, alice, echoArgs{Msg: "during the reshard"})
		done <- submitted{id, err}
	}()
	time.Sleep(3 * time.Second) // longer than go-redis's own retries
	select {
	case s := <-done:
		t.Fatalf("Submit returned while the slot was migrating: %s, %v", s.id, s.err)
	default:
	}
	m.finish(t)
	s := <-done
	if s.err != nil {
		t.Fatalf("Submit after the slot moved = %s, %v; want it confirmed", s.id, s.err)
	}
	replica, err := cluster.Replica(m.targetAddr)
	if err != nil {
		t.Fatal(err)
	}
	// A cluster replica answers reads of its master's slots only on READONLY connections.
	onReplica := redis.NewClient(&redis.Options{Addr: replica.Addr, OnConnect: func(ctx context.Context, cn *redis.Conn) error {
		return cn.ReadOnly(ctx).Err()
	}})
	defer onReplica.Close()
	if !h.exists(t, m.target, s.id) || !h.exists(t, onReplica, s.id) {
		t.Errorf("task %s is not on the slot's new master and its replica", s.id)
	}
}

// migration is a slot of a test's own cluster being moved from the master that holds it
// to another master.
type migration struct {
	slot                  int64
	owner, target         *redis.Client
	ownerID, targetID     string
	ownerAddr, targetAddr string
}

// startMigration marks the slot of key as migrating from its master to another master,
// as redis-cli --cluster reshard does before it moves keys.
func startMigration(t *testing.T, cluster *redistest.Cluster, key string) *migration {
	t.Helper()
	ctx := context.Background()
	m := &migration{}
	for _, n := range cluster.Nodes {
		c := n.NewClient()
		t.Cleanup(func() { c.Close() })
		if m.slot == 0 {
			slot, err := c.ClusterKeySlot(ctx, key).Result()
			if err != nil {
				t.Fatal(err)
			}
			m.slot = slot
		}
		if role, _ := c.Do(ctx, "ROLE").Slice(); len(role) == 0 || role[0] != "master" {
			continue // a replica holds the slot's keys too, but serves none
		}
		id, _ := c.ClusterMyID(ctx).Result()
		if n2, _ := c.ClusterCountKeysInSlot(ctx, int(m.slot)).Result(); n2 > 0 && m.owner == nil {
			m.owner, m.ownerID, m.ownerAddr = c, id, n.Addr
		} else if m.target == nil {
			m.target, m.targetID, m.targetAddr = c, id, n.Addr
		}
	}
	if m.owner == nil || m.target == nil {
		t.Fatal("cannot find the slot's master and another master")
	}
	if err := m.target.Do(ctx, "CLUSTER", "SETSLOT", m.slot, "IMPORTING", m.ownerID).Err(); err != nil {
		t.Fatal(err)
	}
	if err := m.owner.Do(ctx, "CLUSTER", "SETSLOT", m.slot, "MIGRATING", m.targetID).Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

// finish moves the slot's keys to the target and gives it the slot, on every master.
func (m *migration) finish(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	keys, err := m.owner.ClusterGetKeysInSlot(ctx, int(m.slot), 1000).Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys of slot %d = %v, %v", m.slot, keys, err)
	}
	host, port, _ := net.SplitHostPort(m.targetAddr)
	args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
	for _, k := range keys {
		args = append(args, k)
	}
	if err := m.owner.Do(ctx, args...).Err(); err != nil {
		t.Fatalf("MIGRATE: %v", err)
	}
	// The target first, then the old owner: the order redis-cli uses, so that no client
	// is sent back and forth between them.
	for _, c := range []*redis.Client{m.target, m.owner} {
		if err := c.Do(ctx, "CLUSTER", "SETSLOT", m.slot, "NODE", m.targetID).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

// Deaths are crashes: a delivery lost before it began (the reply of the read that handed
// it over was lost, or Redis stalled) costs a task with no retries nothing: it is taken
// over and runs, instead of being dead-lettered worker_lost unrun.
func TestADeliveryLostBeforeItBeganCostsNoAttempt(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		def := echoDef
		def.MaxRetries = 0
		id, _ := task.Submit(ctx, h.client, def, alice, echoArgs{Msg: "ran"})
		b := h.broker(t)
		if msgs, err := b.Fetch(ctx, "q1", "lost-reply-1", 1, time.Second, 1<<20); err != nil || len(msgs) != 1 {
			t.Fatalf("fetch = %v, %v", msgs, err)
		}
		// A second consumer takes it over once the lease ran out, and loses it the same way.
		waitFor(t, "the takeover", func() bool {
			msgs, _, _, err := b.Reclaim(ctx, "q1", "lost-reply-2", 200*time.Millisecond, 1, "", nil)
			if err != nil {
				t.Fatal(err)
			}
			time.Sleep(20 * time.Millisecond)
			return len(msgs) == 1
		})
		w := h.worker(t, task.WithLease(200*time.Millisecond))
		task.Register(w, def, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil })
		run(t, w)
		if got, err := wait[string](t, h.client, id); err != nil || got != "ran" {
			t.Fatalf("Result = %q, %v; want it run", got, err)
		}
	})
}

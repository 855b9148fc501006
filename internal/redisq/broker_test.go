package redisq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// env is one broker test's Redis: a broker on queue "q" under a prefix of the test's own,
// and a plain client to look at and corrupt keys with.
type env struct {
	b      *redisq.Broker
	rdb    redis.UniversalClient
	prefix string
	keys   redisq.Keys
}

// each runs test once per backend (redistest.Backends).
func each(t *testing.T, test func(t *testing.T, e env)) {
	for _, be := range redistest.Backends() {
		t.Run(be.Name, func(t *testing.T) {
			rdb := be.Client(t)
			prefix := redistest.Prefix(t)
			b := redisq.New(rdb, prefix)
			if err := b.EnsureGroup(context.Background(), "q"); err != nil {
				t.Fatal(err)
			}
			test(t, env{b: b, rdb: rdb, prefix: prefix, keys: redisq.QueueKeys(prefix, "q")})
		})
	}
}

func TestKeysShareTheQueueHashTagUnderThePrefix(t *testing.T) {
	k := redisq.QueueKeys("app", "email")
	for _, key := range []string{k.Stream(), k.Delayed(), k.Dead(), k.State("email/1"), k.Done("email/1"), k.Unique("k", "u")} {
		if !strings.HasPrefix(key, "app:{email}:") {
			t.Errorf("key %q is not under app:{email}:", key)
		}
	}
}

func TestEnqueueFetchStartComplete(t *testing.T) { each(t, testEnqueueFetchStartComplete) }

func testEnqueueFetchStartComplete(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	id, err := b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("env-1")})
	if err != nil || id != "q/1" {
		t.Fatalf("Enqueue = %q, %v", id, err)
	}
	msgs, err := b.Fetch(ctx, "q", "c1", 10, time.Second, 1<<20)
	if err != nil || len(msgs) != 1 || string(msgs[0].Envelope) != "env-1" {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	// A Result about to wait watches the task: the watch reads the state and marks it.
	if st, err := b.WatchState(ctx, "q", "q/1"); err != nil || st.State != redisq.StatePending || st.Kind != "k" {
		t.Errorf("state before completion = %+v, %v", st, err)
	}
	st := begin(t, b, msgs[0], "q/1", "c1")
	if st.Attempts != 1 || st.Lease != 1 {
		t.Errorf("start = %+v, want attempt 1, lease 1", st)
	}
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: msgs[0], TaskID: "q/1", Lease: st.Lease, Result: []byte(`"ok"`), TTL: time.Minute})
	state, err := b.GetState(ctx, "q", "q/1")
	if err != nil || !state.Finished() || string(state.Result) != `"ok"` || state.Attempts != 1 {
		t.Errorf("state = %+v, %v", state, err)
	}
	if done, err := b.WaitDone(ctx, "q", "q/1", time.Second); !done || err != nil {
		t.Errorf("WaitDone = %v, %v", done, err)
	}
	if done, _ := b.WaitDone(ctx, "q", "q/1", time.Second); !done {
		t.Error("a second waiter did not see the completion")
	}

	// A task nobody watched finishes without a done list; a watch of a finished task
	// marks nothing, and reads the outcome.
	if _, err := b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("env-2")}); err != nil {
		t.Fatal(err)
	}
	msgs, err = b.Fetch(ctx, "q", "c1", 10, time.Second, 1<<20)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	st = begin(t, b, msgs[0], "q/2", "c1")
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: msgs[0], TaskID: "q/2", Lease: st.Lease, Result: []byte(`"ok"`), TTL: time.Minute})
	if n, err := e.rdb.Exists(ctx, e.keys.Done("q/2")).Result(); n != 0 || err != nil {
		t.Errorf("an unwatched task left a done list: exists = %d, %v", n, err)
	}
	// What a succeeded task keeps for its TTL: nothing that served only its run.
	h, err := e.rdb.HGetAll(ctx, e.keys.State("q/2")).Result()
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	for f := range h {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	want := []string{redisq.FieldAttempts, redisq.FieldFinished, redisq.FieldKind, redisq.FieldLease,
		redisq.FieldMAC, redisq.FieldResult, redisq.FieldStarted, redisq.FieldState}
	sort.Strings(want)
	if !slices.Equal(fields, want) {
		t.Errorf("a succeeded task keeps %v, want %v", fields, want)
	}
	if state, err := b.WatchState(ctx, "q", "q/2"); err != nil || string(state.Result) != `"ok"` {
		t.Errorf("watch of a finished task = %+v, %v", state, err)
	}
	if w, err := e.rdb.HExists(ctx, e.keys.State("q/2"), redisq.FieldWaiting).Result(); w || err != nil {
		t.Errorf("a watch of a finished task marked it: %v, %v", w, err)
	}
}

// A read of fewer entries than asked returns the notify mark it saw; given it, the next
// read blocks from there first and reads once something was added, and only then. A
// read of as many as asked, and a block that runs out, return "": read at once.
func TestFetchAfterBlocksFromTheMarkOfAShortRead(t *testing.T) { each(t, testFetchAfter) }

func testFetchAfter(t *testing.T, e env) {
	ctx := context.Background()
	b := e.b // each made the group
	enqueue := func(id string) {
		t.Helper()
		if _, err := b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)}); err != nil {
			t.Error(err)
		}
	}
	enqueue("q/1")
	enqueue("q/2")
	msgs, mark, err := b.FetchAfter(ctx, "q", "w", 2, time.Second, 1<<20, "")
	if err != nil || len(msgs) != 2 || mark != "" {
		t.Fatalf("a read of as many as asked = %d, %q, %v; want 2 entries and no mark", len(msgs), mark, err)
	}
	enqueue("q/3")
	msgs, mark, err = b.FetchAfter(ctx, "q", "w", 10, time.Second, 1<<20, "")
	if err != nil || len(msgs) != 1 || mark == "" {
		t.Fatalf("a short read = %d, %q, %v; want 1 entry and a mark", len(msgs), mark, err)
	}
	// Nothing came since the mark: the block runs out, nothing is read.
	scripts := &scriptCounter{}
	e.rdb.AddHook(scripts)
	msgs, next, err := b.FetchAfter(ctx, "q", "w", 10, 50*time.Millisecond, 1<<20, mark)
	if err != nil || len(msgs) != 0 || next != "" {
		t.Fatalf("a block from the mark with nothing new = %d, %q, %v; want nothing and no mark", len(msgs), next, err)
	}
	if n := scripts.n.Load(); n != 0 {
		t.Errorf("the block from the mark ran %d scripts, want none", n)
	}
	// An entry added while it blocks is read at once.
	// (The enqueue is waited for: its reply may come after the read's.)
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		time.Sleep(50 * time.Millisecond)
		enqueue("q/4")
	})
	msgs, next, err = b.FetchAfter(ctx, "q", "w", 10, 10*time.Second, 1<<20, mark)
	if err != nil || len(msgs) != 1 || string(msgs[0].Envelope) != "q/4" || next == "" {
		t.Fatalf("a block from the mark with q/4 added = %+v, %q, %v; want q/4 and a new mark", msgs, next, err)
	}
}

// scriptCounter is a go-redis hook that counts the scripts a client runs.
type scriptCounter struct{ n atomic.Int64 }

func (c *scriptCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *scriptCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name == "evalsha" || name == "eval" {
			c.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (c *scriptCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A read of a queue whose stream or consumer group is gone (FLUSHDB, a deleted key, a
// failover to a replica that never had them) reports ErrNoGroup, on which the worker
// creates them again; a start on a stream that is gone reports it corrupt.
func TestFetchReportsAMissingGroup(t *testing.T) { each(t, testFetchReportsAMissingGroup) }

func testFetchReportsAMissingGroup(t *testing.T, e env) {
	ctx := context.Background()
	b := e.b // each made the group
	if _, err := b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")}); err != nil {
		t.Fatal(err)
	}
	m := fetchOne(t, b, "w")
	if err := e.rdb.XGroupDestroy(ctx, e.keys.Stream(), redisq.Group).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Fetch(ctx, "q", "w", 10, 0, 1<<20); !errors.Is(err, redisq.ErrNoGroup) {
		t.Errorf("fetch without the group: err = %v, want ErrNoGroup", err)
	}
	e.rdb.Del(ctx, e.keys.Stream())
	if _, err := b.Fetch(ctx, "q", "w", 10, 0, 1<<20); !errors.Is(err, redisq.ErrNoGroup) {
		t.Errorf("fetch without the stream: err = %v, want ErrNoGroup", err)
	}
	if _, err := b.StartDelivery(ctx, startRequest(m, "q/1", "w")); !errors.Is(err, redisq.ErrCorrupt) {
		t.Errorf("start without the stream: err = %v, want ErrCorrupt", err)
	}
}

// Several promoters running at once move each due task exactly once.
func TestConcurrentPromotersDeliverEachTaskOnce(t *testing.T) { each(t, testConcurrentPromoters) }

func testConcurrentPromoters(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	for i := range 300 {
		if _, err := b.Enqueue(ctx, redisq.Task{ID: fmt.Sprintf("q/%d", i), Kind: "k", Queue: "q", Envelope: []byte(fmt.Sprint("env-", i)), Delay: 50 * time.Millisecond}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				n, _, err := b.Promote(ctx, "q", 7)
				if err != nil {
					t.Error(err)
					return
				}
				if n == 0 {
					return
				}
			}
		}()
	}
	wg.Wait()
	seen := map[string]int{}
	for {
		msgs, err := b.Fetch(ctx, "q", "c", 100, 10*time.Millisecond, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			seen[string(m.Envelope)]++
		}
	}
	if len(seen) != 300 {
		t.Errorf("%d distinct tasks delivered, want 300", len(seen))
	}
	for env, n := range seen {
		if n != 1 {
			t.Errorf("%s delivered %d times", env, n)
		}
	}
}

// A delayed task waits by Redis's clock: Promote takes no time from its caller, and says
// how long until the next task is due.
func TestTasksNotDueStayDelayed(t *testing.T) { each(t, testTasksNotDueStayDelayed) }

func testTasksNotDueStayDelayed(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("later"), Delay: time.Minute})
	n, next, err := b.Promote(ctx, "q", 10)
	if err != nil || n != 0 {
		t.Errorf("Promote = %d, %v; want nothing promoted before it is due", n, err)
	}
	if next <= 59*time.Second || next > time.Minute {
		t.Errorf("next due in %s, want about a minute", next)
	}
	if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StateScheduled {
		t.Errorf("state = %q, want scheduled", st.State)
	}
	if _, next, _ := redisq.New(e.rdb, e.prefix+"-empty").Promote(ctx, "q", 10); next >= 0 {
		t.Errorf("next due in %s with nothing delayed, want negative", next)
	}
}

// Every enqueue records its arguments' schema for the queue, once: the first description
// of a fingerprint stays, and a task without one records nothing.
func TestEnqueueRecordsTheSchemaOnce(t *testing.T) { each(t, testEnqueueRecordsTheSchemaOnce) }

func testEnqueueRecordsTheSchemaOnce(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	for i, w := range []string{`{"a":int}`, `{"b":int}`} {
		if _, err := b.Enqueue(ctx, redisq.Task{ID: fmt.Sprint("q/", i), Kind: "k", Queue: "q", Envelope: []byte("e"), Schema: "v2:s", Wire: w}); err != nil {
			t.Fatal(err)
		}
	}
	b.Enqueue(ctx, redisq.Task{ID: "q/x", Kind: "k", Queue: "q", Envelope: []byte("e"), Schema: "v2:none"})
	if got, ok, err := b.Schema(ctx, "q", "v2:s"); err != nil || !ok || got != `{"a":int}` {
		t.Errorf("Schema(v2:s) = %q, %v, %v; want the first description", got, ok, err)
	}
	if got, ok, err := b.Schema(ctx, "q", "v2:none"); err != nil || ok {
		t.Errorf("Schema(v2:none) = %q, %v, %v; want none recorded", got, ok, err)
	}
}

func TestUniqueKeyHoldsForItsTTL(t *testing.T) { each(t, testUniqueKeyHoldsForItsTTL) }

func testUniqueKeyHoldsForItsTTL(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	task := func(id string) redisq.Task {
		return redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id), UniqueKey: "once", UniqueTTL: 200 * time.Millisecond}
	}
	first, _ := b.Enqueue(ctx, task("q/1"))
	second, _ := b.Enqueue(ctx, task("q/2"))
	time.Sleep(300 * time.Millisecond)
	third, _ := b.Enqueue(ctx, task("q/3"))
	if first != "q/1" || second != "q/1" || third != "q/3" {
		t.Errorf("ids = %s %s %s; want q/1 q/1 q/3", first, second, third)
	}

	// A unique key that is not a string is a corrupt key, reported; nothing is enqueued.
	bad := task("q/4")
	bad.UniqueKey = "hash"
	e.rdb.HSet(ctx, e.keys.Unique("k", "hash"), "x", "y")
	before, _ := e.rdb.XLen(ctx, e.keys.Stream()).Result()
	if _, err := b.Enqueue(ctx, bad); !errors.Is(err, redisq.ErrCorrupt) {
		t.Errorf("enqueue with a unique key of the wrong type: err = %v, want ErrCorrupt", err)
	}
	after, _ := e.rdb.XLen(ctx, e.keys.Stream()).Result()
	if n, _ := e.rdb.Exists(ctx, e.keys.State("q/4")).Result(); n != 0 || after != before {
		t.Errorf("the refused enqueue wrote: state exists %d, stream %d -> %d entries", n, before, after)
	}
}

func TestRetryDeadReleaseAndRequeue(t *testing.T) { each(t, testRetryDeadReleaseAndRequeue) }

func testRetryDeadReleaseAndRequeue(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("env")})
	m := fetchOne(t, b, "c")
	st := begin(t, b, m, "q/1", "c")
	settle(t, b, redisq.Settlement{Kind: redisq.Retry, Message: m, TaskID: "q/1", Lease: st.Lease, Error: "boom"})
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateRetrying || s.Error != "boom" || s.Attempts != 1 {
		t.Errorf("state after Retry = %+v", s)
	}
	if n, _, err := b.Promote(ctx, "q", 10); n != 1 || err != nil {
		t.Fatalf("Promote = %d, %v", n, err)
	}
	m = fetchOne(t, b, "c")
	if string(m.Envelope) != "env" {
		t.Fatalf("retried envelope = %q, want the same envelope", m.Envelope)
	}
	st = begin(t, b, m, "q/1", "c")
	if st.Attempts != 2 || st.Lease != 2 {
		t.Errorf("second start = %+v, want attempt 2, lease 2", st)
	}
	settle(t, b, redisq.Settlement{Kind: redisq.Release, Message: m, TaskID: "q/1", Lease: st.Lease})
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StatePending || s.Attempts != 1 {
		t.Errorf("state after Release = %+v, want pending with the released attempt unspent", s)
	}
	m = fetchOne(t, b, "other")
	st = begin(t, b, m, "q/1", "other")
	settle(t, b, redisq.Settlement{Kind: redisq.Dead, Message: m, TaskID: "q/1", Lease: st.Lease, Reason: "permanent", Error: "no", TTL: time.Minute})
	dead, _ := b.DeadLetters(ctx, "q", "", 10)
	want := redisq.Failure{ID: "q/1", Kind: "k", Reason: "permanent", Error: "no", Attempts: 2, Entry: m.EntryID}
	if len(dead) != 1 || dead[0].Failure != want || string(dead[0].Envelope) != "env" {
		t.Fatalf("dead letters = %+v, want %+v", dead, want)
	}
	if err := b.Requeue(ctx, "q", dead[0].EntryID, "q/1", "k", []byte("fresh")); err != nil {
		t.Fatal(err)
	}
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StatePending || s.Reason != "" || s.Attempts != 0 {
		t.Errorf("state after Requeue = %+v", s)
	}
	if done, _ := b.WaitDone(ctx, "q", "q/1", time.Second); done {
		t.Error("the done signal of the dead run survived the requeue: Result would spin")
	}
	m = fetchOne(t, b, "c")
	if string(m.Envelope) != "fresh" {
		t.Errorf("requeued envelope = %q", m.Envelope)
	}
	if st := begin(t, b, m, "q/1", "c"); st.Lease != 4 {
		t.Errorf("lease after a requeue = %d, want 4: tokens only grow", st.Lease)
	}
}

// A deferred task (a worker of another version may run it) waits in the delayed set with
// its envelope, spends no attempt, and keeps the time of its first hand-back.
func TestDeferHandsBackUnspentAndRecordsTheFirstHandBack(t *testing.T) {
	each(t, testDeferHandsBackUnspent)
}

func testDeferHandsBackUnspent(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("env")})
	if since, err := b.SkewSince(ctx, "q", "q/1"); err != nil || !since.IsZero() {
		t.Fatalf("SkewSince before any hand-back = %v, %v; want zero", since, err)
	}
	var first time.Time
	for i := range 2 {
		m := fetchOne(t, b, "old")
		st := begin(t, b, m, "q/1", "old")
		settle(t, b, redisq.Settlement{Kind: redisq.Defer, Message: m, TaskID: "q/1", Lease: st.Lease, Delay: 50 * time.Millisecond, Error: "unknown task kind"})
		s, _ := b.GetState(ctx, "q", "q/1")
		if s.State != redisq.StateScheduled || s.Attempts != 0 || s.Error != "unknown task kind" {
			t.Errorf("state after hand-back %d = %+v, want scheduled, no attempt spent, the error", i+1, s)
		}
		since, err := b.SkewSince(ctx, "q", "q/1")
		if err != nil || since.IsZero() || time.Since(since) > time.Minute {
			t.Fatalf("SkewSince = %v, %v; want about now", since, err)
		}
		if i == 0 {
			first = since
		} else if !since.Equal(first) {
			t.Errorf("second hand-back moved the first one's time from %v to %v", first, since)
		}
		if n, _ := e.rdb.XLen(ctx, e.keys.Stream()).Result(); n != 0 {
			t.Errorf("%d entries left in the stream, want the handed-back entry gone", n)
		}
		time.Sleep(80 * time.Millisecond)
		if n, _, err := b.Promote(ctx, "q", 10); n != 1 || err != nil {
			t.Fatalf("Promote = %d, %v; want the task due again after its delay", n, err)
		}
		time.Sleep(10 * time.Millisecond) // distinct Redis milliseconds for the two hand-backs
	}
	m := fetchOne(t, b, "new")
	if string(m.Envelope) != "env" {
		t.Errorf("envelope after hand-backs = %q, want the same", m.Envelope)
	}
	if st := begin(t, b, m, "q/1", "new"); st.Attempts != 1 {
		t.Errorf("attempt of the run after two hand-backs = %d, want 1", st.Attempts)
	}
}

func TestPruneRemovesOnlyIdleConsumersHoldingNothing(t *testing.T) { each(t, testPrune) }

func testPrune(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("x")})
	b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("y")})
	fetchOne(t, b, "holder") // keeps an entry
	m := fetchOne(t, b, "gone")
	st := begin(t, b, m, "q/2", "gone")
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/2", Lease: st.Lease, Result: []byte("1"), TTL: time.Minute})
	time.Sleep(50 * time.Millisecond)
	n, err := b.PruneConsumers(ctx, "q", "self", 20*time.Millisecond)
	if err != nil || n != 1 {
		t.Fatalf("pruned %d, %v; want 1", n, err)
	}
	cs, _ := e.rdb.XInfoConsumers(ctx, e.keys.Stream(), redisq.Group).Result()
	if len(cs) != 1 || cs[0].Name != "holder" {
		t.Errorf("consumers left = %+v, want only holder", cs)
	}
}

func fetchOne(t *testing.T, b *redisq.Broker, consumer string) redisq.Message {
	t.Helper()
	msgs, err := b.Fetch(context.Background(), "q", consumer, 1, time.Second, 1<<20)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	return msgs[0]
}

// begin begins delivery m of task id for consumer, which must succeed.
func begin(t *testing.T, b *redisq.Broker, m redisq.Message, id, consumer string) redisq.Start {
	t.Helper()
	st, err := b.StartDelivery(context.Background(), startRequest(m, id, consumer))
	if err != nil || st.Outcome != redisq.StartRun {
		t.Fatalf("StartDelivery = %+v, %v; want it to begin", st, err)
	}
	return st
}

func startRequest(m redisq.Message, id, consumer string) redisq.StartRequest {
	return redisq.StartRequest{Message: m, TaskID: id, Consumer: consumer, Runs: 3}
}

// settle makes settlement s, which must succeed.
func settle(t *testing.T, b *redisq.Broker, s redisq.Settlement) {
	t.Helper()
	if err := b.Settle(context.Background(), []redisq.Settlement{s})[0]; err != nil {
		t.Fatalf("%s: %v", s.Kind, err)
	}
}

// Fencing: a worker that lost its lease and finishes late writes nothing over the new
// owner's delivery, whatever it writes, whether the new owner has settled yet or not.
func TestAStaleHolderWritesNothing(t *testing.T) { each(t, testAStaleHolderWritesNothing) }

func testAStaleHolderWritesNothing(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
	m := fetchOne(t, b, "stale")
	old := begin(t, b, m, "q/1", "stale")
	time.Sleep(20 * time.Millisecond)
	taken, _, _, err := b.Reclaim(ctx, "q", "owner", 10*time.Millisecond, 1, "", nil)
	if err != nil || len(taken) != 1 {
		t.Fatalf("Reclaim = %v, %v", taken, err)
	}
	cur := begin(t, b, taken[0], "q/1", "owner")
	stale := []redisq.Settlement{
		{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: old.Lease, Result: []byte(`"late"`), TTL: time.Minute},
		{Kind: redisq.Retry, Message: m, TaskID: "q/1", Lease: old.Lease, Error: "late"},
		{Kind: redisq.Dead, Message: m, TaskID: "q/1", Lease: old.Lease, Reason: "late", TTL: time.Minute},
		{Kind: redisq.Release, Message: m, TaskID: "q/1", Lease: old.Lease},
		{Kind: redisq.Defer, Message: m, TaskID: "q/1", Lease: old.Lease, Delay: time.Second, Error: "late"},
	}
	check := func(when string) {
		t.Helper()
		for i, err := range b.Settle(ctx, stale) {
			if !errors.Is(err, redisq.ErrFenced) {
				t.Errorf("%s: stale %s: err = %v, want ErrFenced", when, stale[i].Kind, err)
			}
		}
		if n, _ := e.rdb.ZCard(ctx, e.keys.Delayed()).Result(); n != 0 {
			t.Errorf("%s: the stale retry was scheduled", when)
		}
		if n, _ := e.rdb.XLen(ctx, e.keys.Dead()).Result(); n != 0 {
			t.Errorf("%s: the stale dead letter was written", when)
		}
	}
	check("while the owner runs")
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateRunning || s.Attempts != 2 {
		t.Errorf("state = %+v, want the owner's run", s)
	}
	if p, _ := e.rdb.XPending(ctx, e.keys.Stream(), redisq.Group).Result(); p.Count != 1 {
		t.Errorf("%d entries pending, want the owner's entry still pending", p.Count)
	}
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: taken[0], TaskID: "q/1", Lease: cur.Lease, Result: []byte(`"owner"`), TTL: time.Minute})
	check("after the owner settled")
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateSucceeded || string(s.Result) != `"owner"` {
		t.Errorf("state = %+v, want the owner's outcome", s)
	}
}

// A delivery of a task that has finished (an envelope copied back into the stream) does
// not begin: the outcome stays and the entry goes. One whose task has no record (it
// expired: a replay) does not begin either, and is not given a record.
func TestStartRefusesFinishedAndUnrecordedTasks(t *testing.T) { each(t, testStartRefuses) }

func testStartRefuses(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
	m := fetchOne(t, b, "w")
	st := begin(t, b, m, "q/1", "w")
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: st.Lease, Result: []byte(`"done"`), TTL: time.Minute})
	if err := e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Stream(), Values: []any{redisq.EnvelopeField, "e"}}).Err(); err != nil {
		t.Fatal(err)
	}
	replay := fetchOne(t, b, "w")
	if st, err := b.StartDelivery(ctx, startRequest(replay, "q/1", "w")); err != nil || st.Outcome != redisq.StartFinished {
		t.Fatalf("start of a finished task = %+v, %v; want StartFinished", st, err)
	}
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateSucceeded || string(s.Result) != `"done"` {
		t.Errorf("state after the replay = %+v, want the first outcome", s)
	}
	if n, _ := e.rdb.XLen(ctx, e.keys.Stream()).Result(); n != 0 {
		t.Errorf("stream holds %d entries, want the replayed one removed", n)
	}
	b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2")})
	e.rdb.Del(ctx, e.keys.State("q/2"))
	gone := fetchOne(t, b, "w")
	if st, err := b.StartDelivery(ctx, startRequest(gone, "q/2", "w")); err != nil || st.Outcome != redisq.StartNoRecord {
		t.Errorf("start without a record = %+v, %v; want StartNoRecord", st, err)
	}
	if n, _ := e.rdb.Exists(ctx, e.keys.State("q/2")).Result(); n != 0 {
		t.Error("start recreated a record that had gone")
	}
	if st, err := b.StartDelivery(ctx, startRequest(gone, "q/2", "another")); err != nil || st.Outcome != redisq.StartTaken {
		t.Errorf("start by a consumer that does not hold the entry = %+v, %v; want StartTaken", st, err)
	}
}

// A heartbeat renews only what the consumer still holds: a stalled worker coming back does
// not claim back the entry another worker took over, and learns that it lost it; an
// entry settled since is reported gone, not lost.
func TestHeartbeatReportsHeldGoneAndTaken(t *testing.T) { each(t, testHeartbeat) }

func testHeartbeat(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	for _, id := range []string{"q/1", "q/2", "q/3"} {
		b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
	}
	stalled, kept, settled := fetchOne(t, b, "w"), fetchOne(t, b, "w"), fetchOne(t, b, "w")
	s1, s2, s3 := begin(t, b, stalled, "q/1", "w"), begin(t, b, kept, "q/2", "w"), begin(t, b, settled, "q/3", "w")
	time.Sleep(30 * time.Millisecond)
	if _, err := b.Heartbeat(ctx, "q", "w", time.Minute, []redisq.Lease{{EntryID: kept.EntryID, TaskID: "q/2", Token: s2.Lease}}); err != nil {
		t.Fatal(err)
	}
	taken, _, _, err := b.Reclaim(ctx, "q", "other", 20*time.Millisecond, 10, "", nil)
	if err != nil || len(taken) != 2 {
		t.Fatalf("Reclaim = %+v, %v; want the stalled and the settled entry", taken, err)
	}
	// "other" gives the third entry back to w (as if w had taken it back), and w settles it.
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: settled, TaskID: "q/3", Lease: s3.Lease, TTL: time.Minute})
	got, err := b.Heartbeat(ctx, "q", "w", time.Minute, []redisq.Lease{
		{EntryID: stalled.EntryID, TaskID: "q/1", Token: s1.Lease},
		{EntryID: kept.EntryID, TaskID: "q/2", Token: s2.Lease},
		{EntryID: settled.EntryID, TaskID: "q/3", Token: s3.Lease},
	})
	want := []redisq.LeaseStatus{redisq.LeaseTaken, redisq.LeaseHeld, redisq.LeaseGone}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Heartbeat = %v, %v; want %v", got, err, want)
	}
	p, _ := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: e.keys.Stream(), Group: redisq.Group, Start: "-", End: "+", Count: 10}).Result()
	owners := map[string]string{}
	for _, x := range p {
		owners[x.ID] = x.Consumer
	}
	if owners[stalled.EntryID] != "other" || owners[kept.EntryID] != "w" {
		t.Errorf("owners = %v, want %s with other and %s still with w", owners, stalled.EntryID, kept.EntryID)
	}
	// A delivery of the same task that began elsewhere fences this one off too.
	b.Enqueue(ctx, redisq.Task{ID: "q/4", Kind: "k", Queue: "q", Envelope: []byte("q/4")})
	m4 := fetchOne(t, b, "w")
	s4 := begin(t, b, m4, "q/4", "w")
	e.rdb.HIncrBy(ctx, e.keys.State("q/4"), redisq.FieldLease, 1)
	if got, _ := b.Heartbeat(ctx, "q", "w", time.Minute, []redisq.Lease{{EntryID: m4.EntryID, TaskID: "q/4", Token: s4.Lease}}); len(got) != 1 || got[0] != redisq.LeaseTaken {
		t.Errorf("heartbeat after another delivery began = %v, want taken", got)
	}
}

// Reclaim goes on from its cursor, and never takes what its own consumer runs.
func TestReclaimScansOnAndSkipsWhatItsConsumerRuns(t *testing.T) { each(t, testReclaim) }

func testReclaim(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	var mine []string
	for i := range 25 {
		id := fmt.Sprintf("q/mine%d", i)
		b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
		mine = append(mine, fetchOne(t, b, "taker").EntryID)
	}
	b.Enqueue(ctx, redisq.Task{ID: "q/orphan", Kind: "k", Queue: "q", Envelope: []byte("orphan")})
	fetchOne(t, b, "dead")
	b.Enqueue(ctx, redisq.Task{ID: "q/lost", Kind: "k", Queue: "q", Envelope: []byte("lost")})
	fetchOne(t, b, "taker") // handed to taker, which lost track of it
	time.Sleep(40 * time.Millisecond)
	got := map[string]bool{}
	cursor := ""
	for range 20 {
		msgs, _, next, err := b.Reclaim(ctx, "q", "taker", 30*time.Millisecond, 2, cursor, mine)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			got[string(m.Envelope)] = true
		}
		cursor = next
	}
	if len(got) != 2 || !got["orphan"] || !got["lost"] {
		t.Errorf("reclaimed %v, want the orphan and the entry taker lost track of, none it runs", got)
	}
}

// A delivery whose entry is deleted from the stream (XTRIM) while its consumer runs it,
// and whose consumer then dies, is found by the next reclaim once the consumer has been
// silent for a lease, and ended: the task is dead with the reason given, Result's waiters
// are woken, its dead letter names it, the entry leaves the pending list and the entries
// hash, and a late write of the dead consumer is fenced off.
func TestALostDeliveryOfADeadConsumerIsEnded(t *testing.T) { each(t, testLostDeadConsumer) }

func testLostDeadConsumer(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	const lease = 50 * time.Millisecond
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
	m := fetchOne(t, b, "dead")
	st := begin(t, b, m, "q/1", "dead")
	if _, err := b.WatchState(ctx, "q", "q/1"); err != nil { // a Result waits
		t.Fatal(err)
	}
	if id, _ := e.rdb.HGet(ctx, e.keys.Entries(), m.EntryID).Result(); id != "q/1" {
		t.Fatalf("entries[%s] = %q after the start, want q/1", m.EntryID, id)
	}
	if _, err := b.Heartbeat(ctx, "q", "dead", lease, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}}); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.XTrimMaxLen(ctx, e.keys.Stream(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * lease) // "dead" renews nothing from now on
	msgs, lost, _, err := b.Reclaim(ctx, "q", "other", lease, 10, "", nil)
	want := []redisq.Lost{{Queue: "q", EntryID: m.EntryID, TaskID: "q/1", Consumer: "dead"}}
	if err != nil || len(msgs) != 0 || fmt.Sprint(lost) != fmt.Sprint(want) {
		t.Fatalf("Reclaim = %v, lost %v, %v; want nothing taken, %v lost", msgs, lost, err, want)
	}
	end := redisq.EndLost{Lost: lost[0], Consumer: "other", Lease: lease, Reason: "entry_lost", Error: "gone", TTL: time.Minute, MAC: "mac"}
	if ended, err := b.EndLost(ctx, end); err != nil || !ended {
		t.Fatalf("EndLost = %v, %v; want the task ended", ended, err)
	}
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateDead || s.Reason != "entry_lost" || s.Error != "gone" || s.MAC != "mac" || s.Attempts != 1 {
		t.Errorf("state = %+v, want dead, entry_lost, after 1 attempt", s)
	}
	if done, _ := b.WaitDone(ctx, "q", "q/1", time.Second); !done {
		t.Error("Result's waiters were not woken")
	}
	dead, _ := b.DeadLetters(ctx, "q", "", 10)
	wantDead := redisq.Failure{ID: "q/1", Kind: "k", Reason: "entry_lost", Error: "gone", Attempts: 1, Entry: m.EntryID}
	if len(dead) != 1 || dead[0].Failure != wantDead || len(dead[0].Envelope) != 0 {
		t.Errorf("dead letters = %+v, want %+v without an envelope", dead, wantDead)
	}
	if p, _ := e.rdb.XPending(ctx, e.keys.Stream(), redisq.Group).Result(); p.Count != 0 {
		t.Errorf("%d entries still pending", p.Count)
	}
	if n, _ := e.rdb.HLen(ctx, e.keys.Entries()).Result(); n != 0 {
		t.Errorf("the entries hash holds %d entries, want none", n)
	}
	late := redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: st.Lease, Result: []byte(`"late"`), TTL: time.Minute}
	if err := b.Settle(ctx, []redisq.Settlement{late})[0]; !errors.Is(err, redisq.ErrFenced) {
		t.Errorf("the dead consumer's late completion: err = %v, want ErrFenced", err)
	}
	if got, _ := b.Heartbeat(ctx, "q", "dead", lease, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}}); len(got) != 1 || got[0] != redisq.LeaseTaken {
		t.Errorf("the dead consumer's heartbeat = %v, want its lease taken", got)
	}
	if ended, err := b.EndLost(ctx, end); err != nil || ended {
		t.Errorf("a second EndLost = %v, %v; want nothing done", ended, err)
	}
}

// A deleted entry of a consumer that is alive is left to it: its heartbeat keeps the
// entry pending (XCLAIM would drop a deleted entry) and the consumer's record fresh, so
// no reclaim and no EndLost touch it, and its outcome is written as usual.
func TestADeletedEntryOfALiveConsumerIsLeftToIt(t *testing.T) { each(t, testDeletedEntryLiveConsumer) }

func testDeletedEntryLiveConsumer(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	const lease = 50 * time.Millisecond
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
	m := fetchOne(t, b, "alive")
	st := begin(t, b, m, "q/1", "alive")
	if err := e.rdb.XTrimMaxLen(ctx, e.keys.Stream(), 0).Err(); err != nil {
		t.Fatal(err)
	}
	renew := func() {
		t.Helper()
		got, err := b.Heartbeat(ctx, "q", "alive", lease, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}})
		if err != nil || len(got) != 1 || got[0] != redisq.LeaseHeld {
			t.Fatalf("heartbeat = %v, %v; want held", got, err)
		}
	}
	for range 4 {
		renew()
		time.Sleep(lease / 2)
	}
	renew()
	// The entry has been idle for two leases, but its consumer renewed just now.
	msgs, lost, _, err := b.Reclaim(ctx, "q", "other", lease, 10, "", nil)
	if err != nil || len(msgs) != 0 || len(lost) != 0 {
		t.Fatalf("Reclaim = %v, lost %v, %v; want nothing", msgs, lost, err)
	}
	end := redisq.EndLost{Lost: redisq.Lost{Queue: "q", EntryID: m.EntryID, TaskID: "q/1", Consumer: "alive"}, Consumer: "other", Lease: lease, Reason: "entry_lost", TTL: time.Minute}
	if ended, err := b.EndLost(ctx, end); err != nil || ended {
		t.Fatalf("EndLost of a live consumer's entry = %v, %v; want nothing done", ended, err)
	}
	if p, _ := e.rdb.XPending(ctx, e.keys.Stream(), redisq.Group).Result(); p.Count != 1 {
		t.Fatalf("%d entries pending, want the live consumer's still pending", p.Count)
	}
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: st.Lease, Result: []byte(`"ok"`), TTL: time.Minute})
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateSucceeded || string(s.Result) != `"ok"` {
		t.Errorf("state = %+v, want the live consumer's outcome", s)
	}
	if p, _ := e.rdb.XPending(ctx, e.keys.Stream(), redisq.Group).Result(); p.Count != 0 {
		t.Errorf("%d entries pending after the outcome, want none", p.Count)
	}
	if n, _ := e.rdb.HLen(ctx, e.keys.Entries()).Result(); n != 0 {
		t.Errorf("the entries hash holds %d entries after the outcome, want none", n)
	}
}

// The entries hash holds a delivery from its start until it is settled, however it is
// settled, and a delivery that supersedes another of the same task replaces its record:
// nothing is left behind.
func TestTheEntriesHashHoldsOnlyDeliveriesInFlight(t *testing.T) { each(t, testEntriesInFlight) }

func testEntriesInFlight(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	entries := func() map[string]string { return e.rdb.HGetAll(ctx, e.keys.Entries()).Val() }
	for i, kind := range []redisq.SettleKind{redisq.Complete, redisq.Retry, redisq.Dead, redisq.Release} {
		id := fmt.Sprintf("q/%d", i)
		b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
		m := fetchOne(t, b, "w")
		st := begin(t, b, m, id, "w")
		if got := entries(); len(got) != 1 || got[m.EntryID] != id {
			t.Fatalf("entries after the start of %s = %v", id, got)
		}
		settle(t, b, redisq.Settlement{Kind: kind, Message: m, TaskID: id, Lease: st.Lease, TTL: time.Minute})
		if got := entries(); len(got) != 0 {
			t.Errorf("entries after %s = %v, want none", kind, got)
		}
		if kind == redisq.Release { // settle what was handed back, so the stream is empty
			m = fetchOne(t, b, "w")
			settle(t, b, redisq.Settlement{Kind: redisq.Refuse, Message: m, Consumer: "w", TTL: time.Minute})
		}
	}
	// A copy of a running task's envelope begins a second delivery: it replaces the first.
	b.Enqueue(ctx, redisq.Task{ID: "q/9", Kind: "k", Queue: "q", Envelope: []byte("q/9")})
	first := fetchOne(t, b, "w1")
	begin(t, b, first, "q/9", "w1")
	e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Stream(), Values: []any{redisq.EnvelopeField, "q/9"}})
	second := fetchOne(t, b, "w2")
	st := begin(t, b, second, "q/9", "w2")
	if got := entries(); len(got) != 1 || got[second.EntryID] != "q/9" {
		t.Fatalf("entries after the second delivery began = %v, want only it", got)
	}
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: second, TaskID: "q/9", Lease: st.Lease, TTL: time.Minute})
	if got := entries(); len(got) != 0 {
		t.Errorf("entries after the outcome = %v, want none", got)
	}
}

// One task's state of the wrong type costs its lease alone: the heartbeat renews the
// others and reports that one taken.
func TestACorruptStateCostsOnlyItsOwnLease(t *testing.T) { each(t, testCorruptStateHeartbeat) }

func testCorruptStateHeartbeat(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	var leases []redisq.Lease
	for _, id := range []string{"q/1", "q/2", "q/3"} {
		b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
		m := fetchOne(t, b, "w")
		leases = append(leases, redisq.Lease{EntryID: m.EntryID, TaskID: id, Token: begin(t, b, m, id, "w").Lease})
	}
	e.rdb.Del(ctx, e.keys.State("q/2"))
	e.rdb.Set(ctx, e.keys.State("q/2"), "not-a-taskgen-key", 0)
	time.Sleep(100 * time.Millisecond)
	got, err := b.Heartbeat(ctx, "q", "w", time.Minute, leases)
	want := []redisq.LeaseStatus{redisq.LeaseHeld, redisq.LeaseTaken, redisq.LeaseHeld}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Heartbeat = %v, %v; want %v", got, err, want)
	}
	p, _ := e.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: e.keys.Stream(), Group: redisq.Group, Start: "-", End: "+", Count: 10}).Result()
	for i, x := range p {
		if renewed := x.Idle < 100*time.Millisecond; renewed != (i != 1) {
			t.Errorf("entry of %s idle for %s after the heartbeat; renewed = %v, want %v", leases[i].TaskID, x.Idle, renewed, i != 1)
		}
	}
}

// Every script, whether it checks the types of the keys it touches before it writes or
// meets them first with a read or its first write (prelude's try): with one key of the
// wrong type, it fails with ErrCorrupt and leaves every key as it was.
func TestScriptsChangeNothingOnAKeyOfTheWrongType(t *testing.T) { each(t, testScriptsCheckTypes) }

func testScriptsCheckTypes(t *testing.T, e env) {
	ctx := context.Background()
	// An op runs one script against the keys that setup (q/1 enqueued and fetched by w,
	// its delivery begun unless the op begins it) and prepare left; prepare returns what
	// run needs. want checks what run returned; nil: ErrCorrupt.
	type op struct {
		name    string
		keys    func(k redisq.Keys) []string
		prepare func(t *testing.T, b *redisq.Broker, k redisq.Keys, m redisq.Message, lease int64) string
		run     func(b *redisq.Broker, m redisq.Message, lease int64, prepared string) error
		want    func(err error) error
	}
	keys := func(names ...func(redisq.Keys) string) func(redisq.Keys) []string {
		return func(k redisq.Keys) []string {
			out := make([]string, len(names))
			for i, n := range names {
				out[i] = n(k)
			}
			return out
		}
	}
	var (
		stream  = redisq.Keys.Stream
		delayed = redisq.Keys.Delayed
		retry   = redisq.Keys.Retry
		dead    = redisq.Keys.Dead
		tick    = redisq.Keys.Tick
		notify  = redisq.Keys.Notify
		entries = redisq.Keys.Entries
		schemas = redisq.Keys.Schemas
		state   = func(k redisq.Keys) string { return k.State("q/1") }
		done    = func(k redisq.Keys) string { return k.Done("q/1") }
		state2  = func(k redisq.Keys) string { return k.State("q/2") }
	)
	// watch marks q/1 as waited for, as a Result about to wait does.
	watch := func(t *testing.T, b *redisq.Broker) {
		if _, err := b.WatchState(ctx, "q", "q/1"); err != nil {
			t.Fatal(err)
		}
	}
	// settleOne makes the settlement of q/1's delivery; the ops that need one begun make
	// it with the lease setup began.
	settleOne := func(b *redisq.Broker, s redisq.Settlement) error { return b.Settle(ctx, []redisq.Settlement{s})[0] }
	ops := []op{
		// The enqueue writes without checking types first: a failing write undoes those
		// before it, so each key is set wrong in turn with every write before it done.
		// (The unique key is a string: a held one, so nothing is enqueued; see
		// TestUniqueKeyHoldsForItsTTL for one of another type.)
		{name: "enqueue", keys: keys(stream, state2, notify), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			_, err := b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2")})
			return err
		}},
		{name: "enqueue-unique-schema", keys: keys(schemas, stream, notify, state2), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			_, err := b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2"),
				UniqueKey: "u", UniqueTTL: time.Minute, Schema: "fp-new", Wire: "{}"})
			return err
		}},
		{name: "enqueue-delayed", keys: keys(delayed, state2), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			_, err := b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2"), Delay: time.Hour,
				UniqueKey: "u", UniqueTTL: time.Minute})
			return err
		}},
		{name: "fetch", keys: keys(stream, notify), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			_, err := b.Fetch(ctx, "q", "w", 10, 0, 1<<20)
			return err
		}},
		{name: "start", keys: keys(stream, state, entries), run: func(b *redisq.Broker, m redisq.Message, _ int64, _ string) error {
			_, err := b.StartDelivery(ctx, startRequest(m, "q/1", "w"))
			return err
		}},
		// The start touches the done list only to wake a Result waiting for a canceled
		// end: a cancel request pending, a waiter.
		{name: "start-canceled-watched", keys: keys(done),
			prepare: func(t *testing.T, b *redisq.Broker, k redisq.Keys, _ redisq.Message, _ int64) string {
				watch(t, b)
				e.rdb.HSet(ctx, k.State("q/1"), redisq.FieldCancel, "k1:mac")
				return ""
			},
			run: func(b *redisq.Broker, m redisq.Message, _ int64, _ string) error {
				_, err := b.StartDelivery(ctx, startRequest(m, "q/1", "w"))
				return err
			}},
		{name: "heartbeat", keys: keys(stream, tick), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			_, err := b.Heartbeat(ctx, "q", "w", time.Minute, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: l}})
			return err
		}},
		// A task's state of the wrong type costs its lease alone (Broker.Heartbeat renews
		// the others without it): the heartbeat reports it taken, and writes nothing.
		{name: "heartbeat", keys: keys(state), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			got, err := b.Heartbeat(ctx, "q", "w", time.Minute, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: l}})
			if err == nil && (len(got) != 1 || got[0] != redisq.LeaseTaken) {
				return fmt.Errorf("heartbeat = %v, want the lease taken", got)
			}
			return err
		}, want: func(err error) error { return err }},
		{name: "reclaim", keys: keys(stream, tick, entries), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			time.Sleep(5 * time.Millisecond) // the entry has been idle for longer than the lease
			_, _, _, err := b.Reclaim(ctx, "q", "other", time.Millisecond, 10, "", nil)
			return err
		}},
		{name: "complete", keys: keys(stream, state, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: l, TTL: time.Minute})
		}},
		{name: "complete-watched", keys: keys(done),
			prepare: func(t *testing.T, b *redisq.Broker, _ redisq.Keys, _ redisq.Message, _ int64) string {
				watch(t, b)
				return ""
			},
			run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
				return settleOne(b, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: "q/1", Lease: l, TTL: time.Minute})
			}},
		{name: "retry", keys: keys(stream, retry, state, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Retry, Message: m, TaskID: "q/1", Lease: l})
		}},
		{name: "dead", keys: keys(stream, dead, state, done, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Dead, Message: m, TaskID: "q/1", Lease: l, TTL: time.Minute})
		}},
		{name: "defer", keys: keys(stream, delayed, state, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Defer, Message: m, TaskID: "q/1", Lease: l, Delay: time.Second})
		}},
		{name: "release", keys: keys(stream, state, notify, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Release, Message: m, TaskID: "q/1", Lease: l})
		}},
		{name: "refuse", keys: keys(stream, dead, entries), run: func(b *redisq.Broker, m redisq.Message, _ int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Refuse, Message: m, Consumer: "w", ClaimedID: "q/1", TTL: time.Minute})
		}},
		{name: "cancel", keys: keys(stream, state, done, entries), run: func(b *redisq.Broker, m redisq.Message, l int64, _ string) error {
			return settleOne(b, redisq.Settlement{Kind: redisq.Cancel, Message: m, TaskID: "q/1", Lease: l, TTL: time.Minute})
		}},
		{name: "promote", keys: keys(delayed, retry, stream, notify), run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
			_, _, err := b.Promote(ctx, "q", 10)
			return err
		}},
		{name: "requeue", keys: keys(dead, stream, state, done, notify),
			prepare: func(t *testing.T, b *redisq.Broker, _ redisq.Keys, m redisq.Message, l int64) string {
				settle(t, b, redisq.Settlement{Kind: redisq.Dead, Message: m, TaskID: "q/1", Lease: l, TTL: time.Minute})
				d, err := b.DeadLetters(ctx, "q", "", 1)
				if err != nil || len(d) != 1 {
					t.Fatalf("dead letters = %v, %v", d, err)
				}
				return d[0].EntryID
			},
			run: func(b *redisq.Broker, _ redisq.Message, _ int64, entry string) error {
				return b.Requeue(ctx, "q", entry, "q/1", "k", []byte("again"))
			}},
		{name: "prune", keys: keys(stream, tick),
			prepare: func(t *testing.T, b *redisq.Broker, k redisq.Keys, _ redisq.Message, _ int64) string {
				if err := e.rdb.XGroupCreateConsumer(ctx, k.Stream(), redisq.Group, "idle").Err(); err != nil {
					t.Fatal(err)
				}
				return ""
			},
			run: func(b *redisq.Broker, _ redisq.Message, _ int64, _ string) error {
				_, err := b.PruneConsumers(ctx, "q", "self", 0)
				return err
			}},
		{name: "endLost", keys: keys(stream, tick, entries, dead, state, done),
			prepare: func(t *testing.T, b *redisq.Broker, k redisq.Keys, _ redisq.Message, _ int64) string {
				if err := e.rdb.XTrimMaxLen(ctx, k.Stream(), 0).Err(); err != nil {
					t.Fatal(err)
				}
				time.Sleep(5 * time.Millisecond)
				if _, lost, _, err := b.Reclaim(ctx, "q", "other", time.Millisecond, 10, "", nil); err != nil || len(lost) != 1 {
					t.Fatalf("Reclaim found %v lost, %v; want q/1's delivery", lost, err)
				}
				return ""
			},
			run: func(b *redisq.Broker, m redisq.Message, _ int64, _ string) error {
				_, err := b.EndLost(ctx, redisq.EndLost{Lost: redisq.Lost{Queue: "q", EntryID: m.EntryID, TaskID: "q/1", Consumer: "w"},
					Consumer: "other", Lease: time.Millisecond, Reason: "entry_lost", TTL: time.Minute})
				return err
			}},
	}
	for _, o := range ops {
		for _, key := range o.keys(redisq.QueueKeys("", "q")) {
			t.Run(o.name+"/"+strings.TrimPrefix(key, ":{q}:"), func(t *testing.T) {
				prefix := redistest.Prefix(t)
				b := redisq.New(e.rdb, prefix)
				kk := redisq.QueueKeys(prefix, "q")
				key := prefix + key
				if err := b.EnsureGroup(ctx, "q"); err != nil {
					t.Fatal(err)
				}
				b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
				m := fetchOne(t, b, "w")
				var lease int64
				if o.name != "start" && o.name != "refuse" && o.name != "enqueue" && o.name != "fetch" {
					lease = begin(t, b, m, "q/1", "w").Lease
				}
				var prepared string
				if o.prepare != nil {
					prepared = o.prepare(t, b, kk, m, lease)
				}
				e.rdb.Del(ctx, key)
				e.rdb.Set(ctx, key, "not-a-taskgen-key", 0)
				before := dump(t, e.rdb, prefix)
				err := o.run(b, m, lease, prepared)
				if o.want != nil {
					if err := o.want(err); err != nil {
						t.Fatal(err)
					}
				} else if !errors.Is(err, redisq.ErrCorrupt) {
					t.Fatalf("err = %v, want ErrCorrupt", err)
				}
				if after := dump(t, e.rdb, prefix); after != before {
					t.Errorf("the script changed keys before it failed:\nbefore %s\nafter  %s", before, after)
				}
			})
		}
	}
}

// dump describes every key under prefix, on every node of a cluster: type and content,
// and for a stream its pending entries and their consumers.
func dump(t *testing.T, rdb redis.UniversalClient, prefix string) string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	collect := func(ctx context.Context, node *redis.Client) error {
		ks, err := node.Keys(ctx, prefix+":*").Result()
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, ks...)
		return err
	}
	var err error
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, collect)
	} else {
		err = collect(ctx, rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, key := range keys {
		typ, _ := rdb.Type(ctx, key).Result()
		fmt.Fprintf(&b, "%s=%s:", strings.TrimPrefix(key, prefix), typ)
		switch typ {
		case "stream":
			xs, _ := rdb.XRange(ctx, key, "-", "+").Result()
			fmt.Fprint(&b, xs)
			if p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: key, Group: redisq.Group, Start: "-", End: "+", Count: 100}).Result(); err == nil {
				fmt.Fprint(&b, " pending")
				for _, x := range p {
					fmt.Fprintf(&b, " %s@%s", x.ID, x.Consumer)
				}
			}
		case "zset":
			fmt.Fprint(&b, rdb.ZRangeWithScores(ctx, key, 0, -1).Val())
		case "hash":
			fmt.Fprint(&b, rdb.HGetAll(ctx, key).Val())
		case "list":
			fmt.Fprint(&b, rdb.LRange(ctx, key, 0, -1).Val())
		case "string":
			fmt.Fprint(&b, rdb.Get(ctx, key).Val())
		}
		b.WriteString("; ")
	}
	return b.String()
}

// An entry that does not verify is dead-lettered by entry. It ends the task it claims to
// be only when it is byte for byte the envelope submitted for it: a forged copy never
// kills the genuine task.
func TestRefuseEndsTheClaimedTaskOnlyForItsOwnEnvelope(t *testing.T) { each(t, testRefuse) }

func testRefuse(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("genuine")})
	e.rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.keys.Stream(), Values: []any{redisq.EnvelopeField, "forged claiming q/1"}})
	genuine, forged := fetchOne(t, b, "w"), fetchOne(t, b, "w")
	refuse := func(m redisq.Message) {
		t.Helper()
		settle(t, b, redisq.Settlement{Kind: redisq.Refuse, Message: m, Consumer: "w", ClaimedID: "q/1", Reason: "bad_signature", Error: "no", TTL: time.Minute})
	}
	refuse(forged)
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StatePending {
		t.Errorf("state after a forged copy was refused = %+v, want the genuine task untouched", s)
	}
	refuse(genuine)
	if s, _ := b.GetState(ctx, "q", "q/1"); s.State != redisq.StateDead || s.Reason != "bad_signature" {
		t.Errorf("state after its own envelope was refused = %+v, want dead", s)
	}
	dead, _ := b.DeadLetters(ctx, "q", "", 10)
	if len(dead) != 2 || dead[0].Failure.ID != "" || dead[1].Failure.ID != "q/1" {
		t.Errorf("dead letters = %+v, want the forged one naming no task, the genuine one naming q/1", dead)
	}
	err := b.Settle(ctx, []redisq.Settlement{{Kind: redisq.Refuse, Message: genuine, Consumer: "w", TTL: time.Minute}})[0]
	if !errors.Is(err, redisq.ErrEntryTaken) {
		t.Errorf("refusing an entry no longer held: err = %v, want ErrEntryTaken", err)
	}
}

// A batch of settlements goes in one round trip, and each gets its own answer.
func TestSettleBatchesAndAnswersEach(t *testing.T) { each(t, testSettleBatch) }

func testSettleBatch(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	var ss []redisq.Settlement
	for i := range 5 {
		id := fmt.Sprintf("q/%d", i)
		b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
		m := fetchOne(t, b, "w")
		st := begin(t, b, m, id, "w")
		lease := st.Lease
		if i == 3 {
			lease++ // a stale token
		}
		ss = append(ss, redisq.Settlement{Kind: redisq.Complete, Message: m, TaskID: id, Lease: lease, Result: []byte(fmt.Sprint(i)), TTL: time.Minute})
	}
	e.rdb.ScriptFlush(ctx) // the batch must cope with a server that forgot the scripts
	for i, err := range b.Settle(ctx, ss) {
		if i == 3 && !errors.Is(err, redisq.ErrFenced) || i != 3 && err != nil {
			t.Errorf("settlement %d: %v", i, err)
		}
	}
	if s, _ := b.GetState(ctx, "q", "q/4"); s.State != redisq.StateSucceeded || string(s.Result) != "4" {
		t.Errorf("state of q/4 = %+v", s)
	}
}

// Every quoted string in a script is a Redis command, a key type, or a protocol name
// defined once in protocol.go: a field or state spelled differently in Lua cannot pass.
func TestScriptsUseOnlyProtocolNames(t *testing.T) {
	allowed := map[string]bool{}
	for _, v := range redisq.ProtocolNames() {
		allowed[v] = true
	}
	// Empty ids and kinds, the lease token of a delivery not begun, a flag, a stream id.
	allowed[""], allowed["0"], allowed["1"], allowed["0-0"] = true, true, true, true
	for _, w := range strings.Fields(`TYPE TIME DEL RPUSH PEXPIRE HMGET SET GET ZADD XADD HSET HSETNX ZRANGEBYSCORE ZREM ZRANGE
		XPENDING XCLAIM XACK XDEL HINCRBY HDEL HGET HGETALL XRANGE PERSIST XGROUP DELCONSUMER
		NX PX KEEPTTL * -inf LIMIT WITHSCORES IDLE JUSTID - + ( ok stream none zset hash list string
		WRONGTYPE NOGROUP > MAXLEN ~ XREADGROUP GROUP COUNT STREAMS XREVRANGE XTRIM MINID EXISTS HEXISTS table`) {
		allowed[w] = true
	}
	quoted := regexp.MustCompile(`'([^'\n]*)'`)
	comment := regexp.MustCompile(`--[^\n]*`)
	for name, src := range redisq.ScriptSources() {
		src = comment.ReplaceAllString(src, "")
		if strings.Contains(src, "$") {
			t.Errorf("script %s keeps a placeholder: %s", name, src[strings.Index(src, "$"):][:20])
		}
		for _, m := range quoted.FindAllStringSubmatch(src, -1) {
			word := m[1]
			// The text of error replies, and the form of FieldBegun (a call's name, a space,
			// its answer).
			if strings.HasPrefix(word, "WRONGTYPE taskgen:") || word == ", want " || word == " holds a " || word == " or " ||
				word == " " || word == "^(%S+) (%S+)" || word == " holds a hash whose lease or attempts is not a number" {
				continue
			}
			if !allowed[word] {
				t.Errorf("script %s uses %q, which is neither a Redis word nor a protocol name", name, word)
			}
		}
	}
}

// A Redis that heard from no worker for longer than half a lease (it stalled, or nobody could
// reach it) lets no lease be taken over for one more lease: the live workers renew first.
// A worker that is really gone is taken over after that.
func TestNoTakeoverRightAfterRedisWasSilentForALease(t *testing.T) { each(t, testStallGrace) }

func testStallGrace(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	const lease = 100 * time.Millisecond
	b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
	m := fetchOne(t, b, "owner")
	st := begin(t, b, m, "q/1", "owner")
	if _, err := b.Heartbeat(ctx, "q", "owner", lease, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1200 * time.Millisecond) // no worker reaches Redis for over a second: as if it had stalled
	if got, _, _, err := b.Reclaim(ctx, "q", "other", lease, 10, "", nil); err != nil || len(got) != 0 {
		t.Fatalf("Reclaim right after the silence = %v, %v; want nothing taken", got, err)
	}
	statuses, err := b.Heartbeat(ctx, "q", "owner", lease, []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}})
	if err != nil || len(statuses) != 1 || statuses[0] != redisq.LeaseHeld {
		t.Fatalf("the owner's heartbeat after the silence = %v, %v; want held", statuses, err)
	}
	// The owner dies now: once its lease runs out, and the grace with it, it is taken over.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _, _, err := b.Reclaim(ctx, "q", "other", lease, 10, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the entry of a dead owner was never taken over")
		}
		time.Sleep(lease / 4)
	}
}

// An enqueue Redis runs twice, because the client library sent it again after a read
// timeout or a dropped connection (go-redis retries a pipeline then), writes once: the
// second run finds the task's state and answers with its id. Written twice, the task
// would have a second stream entry and its state reset to pending while a worker runs
// it, so that another worker could start the copy beside the first.
func TestAnEnqueueSentAgainWritesNothing(t *testing.T) { each(t, testAnEnqueueSentAgainWritesNothing) }

func testAnEnqueueSentAgainWritesNothing(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	task := redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("env-1")}
	if _, err := b.Enqueue(ctx, task); err != nil {
		t.Fatal(err)
	}
	msgs, err := b.Fetch(ctx, "q", "c1", 10, time.Second, 1<<20)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	st := begin(t, b, msgs[0], "q/1", "c1")
	// The same call again, while the task runs, then in a pipeline beside a new task
	// sent twice itself, and as the same call of a delayed task.
	if id, err := b.Enqueue(ctx, task); id != "q/1" || err != nil {
		t.Errorf("enqueue sent again = %q, %v; want the task's id", id, err)
	}
	later := redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("env-2"), Delay: time.Hour}
	for i, r := range b.EnqueueMany(ctx, []redisq.Task{task, later, later}) {
		if want := []string{"q/1", "q/2", "q/2"}[i]; r.ID != want || r.Err != nil {
			t.Errorf("pipelined enqueue %d = %+v, want %s", i, r, want)
		}
	}
	if n, err := e.rdb.XLen(ctx, e.keys.Stream()).Result(); n != 1 || err != nil {
		t.Errorf("stream holds %d entries (%v), want the one first written", n, err)
	}
	if n, err := e.rdb.ZCard(ctx, e.keys.Delayed()).Result(); n != 1 || err != nil {
		t.Errorf("delayed set holds %d tasks (%v), want 1", n, err)
	}
	state, err := b.GetState(ctx, "q", "q/1")
	if err != nil || state.State != redisq.StateRunning || state.Attempts != 1 {
		t.Errorf("state of the running task after its enqueue came again = %+v, %v; want running, attempt 1", state, err)
	}
	if more, err := b.Fetch(ctx, "q", "c2", 10, 10*time.Millisecond, 1<<20); len(more) != 0 || err != nil {
		t.Errorf("another worker fetched %+v (%v): a copy of the running task", more, err)
	}
	// The run goes on under its lease and ends as if nothing had come again.
	settle(t, b, redisq.Settlement{Kind: redisq.Complete, Message: msgs[0], TaskID: "q/1", Lease: st.Lease, Result: []byte(`"ok"`), TTL: time.Minute})
	if id, err := b.Enqueue(ctx, task); id != "q/1" || err != nil {
		t.Errorf("enqueue sent again after the task finished = %q, %v", id, err)
	}
	if state, err := b.GetState(ctx, "q", "q/1"); err != nil || state.State != redisq.StateSucceeded || string(state.Result) != `"ok"` {
		t.Errorf("state of the finished task after its enqueue came again = %+v, %v; want its outcome kept", state, err)
	}
}

// A start Redis runs twice (the client library sent it again after a read timeout or a
// dropped connection) answers the second time as the first and counts one attempt: a
// task allowed one run is not dead-lettered worker_lost before it ran, and no retry is
// spent on a run that never was. Another start of the same delivery, a call of its own,
// still counts: that is how a task whose worker died is found.
func TestAStartRedisRunsTwiceCountsOneAttempt(t *testing.T) {
	each(t, testAStartRedisRunsTwiceCountsOneAttempt)
}

func testAStartRedisRunsTwiceCountsOneAttempt(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	for _, id := range []string{"q/1", "q/2"} {
		if _, err := b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)}); err != nil {
			t.Fatal(err)
		}
	}
	msgs, err := b.Fetch(ctx, "q", "c1", 10, time.Second, 1<<20)
	if err != nil || len(msgs) != 2 {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	once := redisq.StartRequest{Message: msgs[0], TaskID: "q/1", Consumer: "c1", Runs: 1}
	twice := &sentTwice{}
	e.rdb.AddHook(twice)
	twice.on.Store(true)
	st, err := b.StartDelivery(ctx, once)
	if err != nil || st.Outcome != redisq.StartRun || st.Attempts != 1 || st.Lease != 1 {
		t.Errorf("a start run twice answered %+v, %v; want the first answer: run, attempt 1, lease 1", st, err)
	}
	starts, errs := b.StartDeliveries(ctx, []redisq.StartRequest{{Message: msgs[1], TaskID: "q/2", Consumer: "c1", Runs: 3}})
	if errs[0] != nil || starts[0].Outcome != redisq.StartRun || starts[0].Attempts != 1 || starts[0].Lease != 1 {
		t.Errorf("a pipelined start run twice answered %+v, %v; want run, attempt 1, lease 1", starts[0], errs[0])
	}
	twice.on.Store(false)
	if twice.runs.Load() < 2 {
		t.Fatalf("the hook ran %d commands, want each start twice", twice.runs.Load())
	}
	for _, id := range []string{"q/1", "q/2"} {
		if s, err := b.GetState(ctx, "q", id); err != nil || s.Attempts != 1 || s.State != redisq.StateRunning {
			t.Errorf("state of %s = %+v, %v; want running, attempt 1", id, s, err)
		}
	}
	// A start of its own: the run it began never settled, so its one run is spent.
	st, err = b.StartDelivery(ctx, once)
	if err != nil || st.Outcome != redisq.StartWorkerLost || st.Lease != 2 {
		t.Errorf("a new start of the unsettled delivery = %+v, %v; want its runs spent, lease 2", st, err)
	}
}

// sentTwice is a go-redis hook that, while on, runs every command and pipeline twice
// and keeps the second answer, as a client that sent them again does.
type sentTwice struct {
	on   atomic.Bool
	runs atomic.Int64
}

func (h *sentTwice) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *sentTwice) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.on.Load() {
			h.runs.Add(1)
			_ = next(ctx, cmd)
		}
		return next(ctx, cmd)
	}
}

func (h *sentTwice) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.on.Load() {
			h.runs.Add(int64(len(cmds)))
			_ = next(ctx, cmds)
		}
		return next(ctx, cmds)
	}
}

// A state whose lease token or attempt count is not a number was written by something
// else: its start fails with ErrCorrupt, as for a key of the wrong type, and writes
// nothing (the start counts both up from what it read, in one write).
func TestAStartRefusesAStateWhoseCountsAreNotNumbers(t *testing.T) {
	each(t, testAStartRefusesAStateWhoseCountsAreNotNumbers)
}

func testAStartRefusesAStateWhoseCountsAreNotNumbers(t *testing.T, e env) {
	ctx := context.Background()
	for _, field := range []string{redisq.FieldLease, redisq.FieldAttempts} {
		t.Run(field, func(t *testing.T) {
			prefix := redistest.Prefix(t)
			b := redisq.New(e.rdb, prefix)
			if err := b.EnsureGroup(ctx, "q"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")}); err != nil {
				t.Fatal(err)
			}
			m := fetchOne(t, b, "w")
			if err := e.rdb.HSet(ctx, redisq.QueueKeys(prefix, "q").State("q/1"), field, "many").Err(); err != nil {
				t.Fatal(err)
			}
			before := dump(t, e.rdb, prefix)
			if _, err := b.StartDelivery(ctx, startRequest(m, "q/1", "w")); !errors.Is(err, redisq.ErrCorrupt) {
				t.Errorf("start of a task whose %s is not a number: %v, want ErrCorrupt", field, err)
			}
			if after := dump(t, e.rdb, prefix); after != before {
				t.Errorf("the start changed keys before it failed:\nbefore %s\nafter  %s", before, after)
			}
		})
	}
}

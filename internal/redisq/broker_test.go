package redisq_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// newBroker returns a broker over rdb under a prefix of the test's own, with the group of
// queue q made. Every test that calls it runs on each backend (redistest.ForEachBackend).
func newBroker(t *testing.T, rdb redis.UniversalClient) (*redisq.Broker, string) {
	t.Helper()
	prefix := redistest.Prefix(t)
	b := redisq.New(rdb, prefix)
	if err := b.EnsureGroup(context.Background(), "q"); err != nil {
		t.Fatal(err)
	}
	return b, prefix
}

func TestKeysShareTheQueueHashTagUnderThePrefix(t *testing.T) {
	k := redisq.QueueKeys("app", "email")
	for _, key := range []string{k.Stream(), k.Delayed(), k.Dead(), k.State("email/1"), k.Done("email/1"), k.Unique("k", "u")} {
		if !strings.HasPrefix(key, "app:{email}:") {
			t.Errorf("key %q is not under app:{email}:", key)
		}
	}
	for _, name := range []string{"", "{x}", "a:b", "a/b", "a b", ".a", "a..b"} {
		if redisq.ValidQueueName(name) {
			t.Errorf("ValidQueueName(%q) = true", name)
		}
	}
}

func TestEnqueueFetchComplete(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		id, err := b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("env-1")})
		if err != nil || id != "q/1" {
			t.Fatalf("Enqueue = %q, %v", id, err)
		}
		msgs, err := b.Fetch(ctx, "q", "c1", 10, time.Second)
		if err != nil || len(msgs) != 1 || string(msgs[0].Envelope) != "env-1" || msgs[0].Deliveries != 1 {
			t.Fatalf("Fetch = %+v, %v", msgs, err)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StatePending || st.Kind != "k" {
			t.Errorf("state before completion = %+v", st)
		}
		if err := b.Complete(ctx, msgs[0], "q/1", 1, []byte(`"ok"`), time.Minute); err != nil {
			t.Fatal(err)
		}
		st, err := b.GetState(ctx, "q", "q/1")
		if err != nil || !st.Finished() || string(st.Result) != `"ok"` || st.Attempts != 1 {
			t.Errorf("state = %+v, %v", st, err)
		}
		if done, err := b.WaitDone(ctx, "q", "q/1", time.Second); !done || err != nil {
			t.Errorf("WaitDone = %v, %v", done, err)
		}
		if done, _ := b.WaitDone(ctx, "q", "q/1", time.Second); !done {
			t.Error("a second waiter did not see the completion")
		}
	})
}

// Several promoters running at once move each due task exactly once.
func TestConcurrentPromotersDeliverEachTaskOnce(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		past := time.Now().Add(time.Hour)
		for i := range 300 {
			if _, err := b.Enqueue(ctx, redisq.Task{ID: fmt.Sprintf("q/%d", i), Kind: "k", Queue: "q", Envelope: []byte(fmt.Sprint("env-", i)), Due: past}); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					n, err := b.Promote(ctx, "q", past.Add(time.Second), 7)
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
			msgs, err := b.Fetch(ctx, "q", "c", 100, 10*time.Millisecond)
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
	})
}

func TestTasksNotDueStayDelayed(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		due := time.Now().Add(time.Minute)
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("later"), Due: due})
		if n, _ := b.Promote(ctx, "q", time.Now(), 10); n != 0 {
			t.Errorf("promoted %d tasks before they were due", n)
		}
		next, ok, err := b.NextDue(ctx, "q")
		if err != nil || !ok || next.UnixMilli() != due.UnixMilli() {
			t.Errorf("NextDue = %v, %v, %v; want %v", next, ok, err, due)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StateScheduled {
			t.Errorf("state = %q, want scheduled", st.State)
		}
	})
}

func TestUniqueKeyHoldsForItsTTL(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
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
	})
}

func TestRetryDeadReleaseAndRequeue(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("attempt-0")})
		m := fetchOne(t, b, "c")
		if err := b.Retry(ctx, m, "q/1", 1, []byte("attempt-1"), time.Now().Add(-time.Millisecond), "boom"); err != nil {
			t.Fatal(err)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StateRetrying || st.Error != "boom" {
			t.Errorf("state after Retry = %+v", st)
		}
		b.Promote(ctx, "q", time.Now(), 10)
		m = fetchOne(t, b, "c")
		if string(m.Envelope) != "attempt-1" {
			t.Fatalf("retried envelope = %q", m.Envelope)
		}
		if err := b.Release(ctx, m, "q/1"); err != nil {
			t.Fatal(err)
		}
		m = fetchOne(t, b, "other")
		if string(m.Envelope) != "attempt-1" {
			t.Fatalf("released envelope = %q", m.Envelope)
		}
		f := redisq.Failure{ID: "q/1", Kind: "k", Reason: "permanent", Error: "no", Attempts: 2}
		if err := b.Dead(ctx, m, f, time.Minute); err != nil {
			t.Fatal(err)
		}
		dead, _ := b.DeadLetters(ctx, "q", "", 10)
		if len(dead) != 1 || dead[0].Failure != f || string(dead[0].Envelope) != "attempt-1" {
			t.Fatalf("dead letters = %+v", dead)
		}
		if err := b.Requeue(ctx, "q", dead[0].EntryID, "q/1", []byte("fresh")); err != nil {
			t.Fatal(err)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StatePending || st.Reason != "" {
			t.Errorf("state after Requeue = %+v", st)
		}
		if done, _ := b.WaitDone(ctx, "q", "q/1", time.Second); done {
			t.Error("the done signal of the dead run survived the requeue: Result would spin")
		}
		if m := fetchOne(t, b, "c"); string(m.Envelope) != "fresh" {
			t.Errorf("requeued envelope = %q", m.Envelope)
		}
	})
}

func TestPruneRemovesOnlyIdleConsumersHoldingNothing(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, prefix := newBroker(t, rdb)
		ctx := context.Background()
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("x")})
		b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("y")})
		fetchOne(t, b, "holder") // keeps an entry
		m := fetchOne(t, b, "gone")
		if err := b.Complete(ctx, m, "q/2", 1, []byte("1"), time.Minute); err != nil { // now holds nothing
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		n, err := b.PruneConsumers(ctx, "q", "self", 20*time.Millisecond)
		if err != nil || n != 1 {
			t.Fatalf("pruned %d, %v; want 1", n, err)
		}
		cs, _ := rdb.XInfoConsumers(ctx, redisq.QueueKeys(prefix, "q").Stream(), redisq.Group).Result()
		if len(cs) != 1 || cs[0].Name != "holder" {
			t.Errorf("consumers left = %+v, want only holder", cs)
		}
	})
}

func fetchOne(t *testing.T, b *redisq.Broker, consumer string) redisq.Message {
	t.Helper()
	msgs, err := b.Fetch(context.Background(), "q", consumer, 1, time.Second)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Fetch = %+v, %v", msgs, err)
	}
	return msgs[0]
}

// A worker that lost its lease and finishes late does not overwrite the outcome of the
// worker that took the task over and settled it first.
func TestLateSettlementDoesNotOverwriteTheFirst(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
		m := fetchOne(t, b, "slow")
		time.Sleep(20 * time.Millisecond)
		taken, _, err := b.Reclaim(ctx, "q", "fast", 10*time.Millisecond, 1, "")
		if err != nil || len(taken) != 1 {
			t.Fatalf("Reclaim = %v, %v", taken, err)
		}
		if err := b.Complete(ctx, taken[0], "q/1", 1, []byte(`"first"`), time.Minute); err != nil {
			t.Fatal(err)
		}
		late := []error{
			b.Complete(ctx, m, "q/1", 1, []byte(`"late"`), time.Minute),
			b.Retry(ctx, m, "q/1", 1, []byte("e2"), time.Now(), "late"),
			b.Dead(ctx, m, redisq.Failure{ID: "q/1", Reason: "late"}, time.Minute),
			b.Release(ctx, m, "q/1"),
		}
		for i, err := range late {
			if !errors.Is(err, redisq.ErrSettled) {
				t.Errorf("late settlement %d: err = %v, want ErrSettled", i, err)
			}
		}
		st, _ := b.GetState(ctx, "q", "q/1")
		if st.State != redisq.StateSucceeded || string(st.Result) != `"first"` {
			t.Errorf("state = %+v, want the first outcome", st)
		}
		if _, scheduled, _ := b.NextDue(ctx, "q"); scheduled {
			t.Error("the late retry was scheduled")
		}
	})
}

// A delivery of a task that has finished (an envelope copied back into the stream, or an
// entry a stalled worker still holds) does not start: the outcome stays, the entry goes.
func TestStartRefusesATaskThatHasFinished(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, prefix := newBroker(t, rdb)
		ctx := context.Background()
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
		m := fetchOne(t, b, "w")
		if ok, err := b.Start(ctx, m, "q/1", 1); err != nil || !ok {
			t.Fatalf("first Start = %v, %v; want true", ok, err)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StateRunning || st.Attempts != 1 {
			t.Errorf("state after Start = %+v, want running, attempt 1", st)
		}
		if err := b.Complete(ctx, m, "q/1", 1, []byte(`"done"`), time.Minute); err != nil {
			t.Fatal(err)
		}
		stream := redisq.QueueKeys(prefix, "q").Stream()
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: []any{redisq.EnvelopeField, "e"}}).Err(); err != nil {
			t.Fatal(err)
		}
		replay := fetchOne(t, b, "w")
		if ok, err := b.Start(ctx, replay, "q/1", 1); err != nil || ok {
			t.Fatalf("Start of a finished task = %v, %v; want false", ok, err)
		}
		if st, _ := b.GetState(ctx, "q", "q/1"); st.State != redisq.StateSucceeded || string(st.Result) != `"done"` {
			t.Errorf("state after the replay = %+v, want the first outcome", st)
		}
		if n, _ := rdb.XLen(ctx, stream).Result(); n != 0 {
			t.Errorf("stream holds %d entries, want the replayed one removed", n)
		}
		if p, _ := rdb.XPending(ctx, stream, redisq.Group).Result(); p.Count != 0 {
			t.Errorf("%d entries pending, want none", p.Count)
		}
		// A task whose state is gone runs, and gets no state without a TTL.
		b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2")})
		rdb.Del(ctx, redisq.QueueKeys(prefix, "q").State("q/2"))
		if ok, err := b.Start(ctx, fetchOne(t, b, "w"), "q/2", 1); err != nil || !ok {
			t.Errorf("Start without a state = %v, %v; want true", ok, err)
		}
		if n, _ := rdb.Exists(ctx, redisq.QueueKeys(prefix, "q").State("q/2")).Result(); n != 0 {
			t.Error("Start recreated a state that had gone")
		}
	})
}

// A heartbeat renews only what the consumer still holds: a stalled worker coming back does
// not claim back the entry another worker took over, and learns that it lost it.
func TestHeartbeatDoesNotTakeBackAnEntryAnotherWorkerTookOver(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, prefix := newBroker(t, rdb)
		ctx := context.Background()
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e")})
		b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e")})
		stalled := fetchOne(t, b, "stalled")
		kept := fetchOne(t, b, "stalled")
		time.Sleep(30 * time.Millisecond)
		if _, err := b.Heartbeat(ctx, "q", "stalled", kept.EntryID); err != nil {
			t.Fatal(err)
		}
		taken, _, err := b.Reclaim(ctx, "q", "other", 20*time.Millisecond, 1, "")
		if err != nil || len(taken) != 1 || taken[0].EntryID != stalled.EntryID {
			t.Fatalf("Reclaim = %+v, %v; want the stalled entry", taken, err)
		}
		lost, err := b.Heartbeat(ctx, "q", "stalled", stalled.EntryID, kept.EntryID)
		if err != nil || len(lost) != 1 || lost[0] != stalled.EntryID {
			t.Fatalf("Heartbeat = %v, %v; want the taken entry reported lost", lost, err)
		}
		p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: redisq.QueueKeys(prefix, "q").Stream(), Group: redisq.Group, Start: "-", End: "+", Count: 10}).Result()
		if err != nil {
			t.Fatal(err)
		}
		owners := map[string]string{}
		for _, e := range p {
			owners[e.ID] = e.Consumer
		}
		if owners[stalled.EntryID] != "other" || owners[kept.EntryID] != "stalled" {
			t.Errorf("owners = %v, want %s with other and %s still with stalled", owners, stalled.EntryID, kept.EntryID)
		}
	})
}

// Reclaim goes on from its cursor: an orphan behind many entries that live workers hold
// is reached in a few calls. Redis scans at most ten pending entries per entry asked for,
// so a scan that always began at the start would never get past the live ones.
func TestReclaimScansOnFromItsCursor(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		b, _ := newBroker(t, rdb)
		ctx := context.Background()
		var live []string
		for i := range 25 {
			id := fmt.Sprintf("q/live%d", i)
			b.Enqueue(ctx, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
			live = append(live, fetchOne(t, b, "live").EntryID)
		}
		b.Enqueue(ctx, redisq.Task{ID: "q/orphan", Kind: "k", Queue: "q", Envelope: []byte("orphan")})
		fetchOne(t, b, "dead")
		time.Sleep(40 * time.Millisecond)
		if _, err := b.Heartbeat(ctx, "q", "live", live...); err != nil {
			t.Fatal(err)
		}
		cursor := ""
		for range 4 {
			msgs, next, err := b.Reclaim(ctx, "q", "taker", 30*time.Millisecond, 1, cursor)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				if string(m.Envelope) != "orphan" {
					t.Fatalf("reclaimed %s, which a live worker holds", m.Envelope)
				}
				return
			}
			cursor = next
		}
		t.Error("four reclaims did not reach the orphan behind 25 live entries")
	})
}

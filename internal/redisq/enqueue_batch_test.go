package redisq_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// A batch enqueues each task as Enqueue would, across queues (on a cluster, across
// nodes), and answers each in order: a delayed task waits, a held unique key returns the
// id holding it, even when the holder is earlier in the same batch.
func TestEnqueueManyAnswersEachTaskInOrder(t *testing.T) { each(t, testEnqueueManyInOrder) }

func testEnqueueManyInOrder(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	if _, err := b.Enqueue(ctx, redisq.Task{ID: "q/held", Kind: "k", Queue: "q", Envelope: []byte("held"), UniqueKey: "held", UniqueTTL: time.Minute}); err != nil {
		t.Fatal(err)
	}
	unique := func(id, key string) redisq.Task {
		return redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id), UniqueKey: key, UniqueTTL: time.Minute}
	}
	ts := []redisq.Task{
		{ID: "q/now", Kind: "k", Queue: "q", Envelope: []byte("q/now")},
		{ID: "q/later", Kind: "k", Queue: "q", Envelope: []byte("q/later"), Delay: time.Hour},
		unique("q/first", "once"),
		unique("q/second", "once"),
		unique("q/late", "held"),
	}
	for i := range 6 { // queues whose slots fall on every master of the cluster
		id := fmt.Sprintf("other%d/1", i)
		ts = append(ts, redisq.Task{ID: id, Kind: "k", Queue: fmt.Sprintf("other%d", i), Envelope: []byte(id)})
	}
	want := []string{"q/now", "q/later", "q/first", "q/first", "q/held"}
	for _, task := range ts[len(want):] {
		want = append(want, task.ID)
	}
	got := b.EnqueueMany(ctx, ts)
	for i, r := range got {
		if r.Err != nil || r.ID != want[i] {
			t.Errorf("task %d (%s) = %q, %v; want %q", i, ts[i].ID, r.ID, r.Err, want[i])
		}
	}
	states := map[string]string{"q/now": redisq.StatePending, "q/later": redisq.StateScheduled, "q/first": redisq.StatePending, "other5/1": redisq.StatePending}
	for id, want := range states {
		queue, _, _ := strings.Cut(id, "/")
		if s, err := b.GetState(ctx, queue, id); err != nil || s.State != want {
			t.Errorf("state of %s = %+v, %v; want %s", id, s, err, want)
		}
	}
	for _, id := range []string{"q/second", "q/late"} {
		if _, err := b.GetState(ctx, "q", id); !errors.Is(err, redisq.ErrNoTask) {
			t.Errorf("state of %s, refused by its unique key: %v; want ErrNoTask", id, err)
		}
	}
	// On the stream: the held task, then the batch's ready ones, in order.
	var envs []string
	for _, m := range fetchAll(t, b, "q") {
		envs = append(envs, string(m.Envelope))
	}
	if fmt.Sprint(envs) != "[held q/now q/first]" {
		t.Errorf("stream of q holds %v; want [held q/now q/first]", envs)
	}
	if got := b.EnqueueMany(ctx, nil); len(got) != 0 {
		t.Errorf("EnqueueMany(nil) = %v; want none", got)
	}
}

// A server that forgot the enqueue script (SCRIPT FLUSH, a restart) gets it loaded, and
// every task of the batch is enqueued once.
func TestEnqueueManyLoadsTheScriptAfterNoscript(t *testing.T) { each(t, testEnqueueManyNoscript) }

func testEnqueueManyNoscript(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	var ts []redisq.Task
	for i := range 20 {
		id := fmt.Sprintf("q/%d", i)
		ts = append(ts, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
	}
	for i, r := range b.EnqueueMany(ctx, ts) {
		if r.Err != nil || r.ID != ts[i].ID {
			t.Errorf("task %d = %q, %v; want %q", i, r.ID, r.Err, ts[i].ID)
		}
	}
	if n, err := e.rdb.XLen(ctx, e.keys.Stream()).Result(); n != 20 || err != nil {
		t.Errorf("stream length = %d, %v; want each of the 20 tasks once", n, err)
	}
}

// A task whose queue has a key of the wrong type fails alone, with ErrCorrupt naming the
// key; the others of the batch are enqueued.
func TestEnqueueManyFailsOnlyTheTaskThatFails(t *testing.T) { each(t, testEnqueueManyFailsAlone) }

func testEnqueueManyFailsAlone(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	bad := redisq.QueueKeys(e.prefix, "bad")
	if err := e.rdb.Set(ctx, bad.Stream(), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	ts := []redisq.Task{
		{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("q/1")},
		{ID: "bad/1", Kind: "k", Queue: "bad", Envelope: []byte("bad/1")},
		{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("q/2")},
	}
	got := b.EnqueueMany(ctx, ts)
	var corrupt *redisq.CorruptError
	if !errors.As(got[1].Err, &corrupt) || corrupt.Key != bad.Stream() || got[1].ID != "" {
		t.Errorf("task on the corrupt queue = %q, %v; want a CorruptError naming %s", got[1].ID, got[1].Err, bad.Stream())
	}
	if got[0].Err != nil || got[2].Err != nil || got[0].ID != "q/1" || got[2].ID != "q/2" {
		t.Errorf("the other tasks = %+v, %+v; want q/1 and q/2 enqueued", got[0], got[2])
	}
	if n, err := e.rdb.XLen(ctx, e.keys.Stream()).Result(); n != 2 || err != nil {
		t.Errorf("stream length = %d, %v; want 2", n, err)
	}
}

// fetchAll reads every new entry of queue for a consumer of its own.
func fetchAll(t *testing.T, b *redisq.Broker, queue string) []redisq.Message {
	t.Helper()
	msgs, err := b.Fetch(context.Background(), queue, "all", 100, time.Second, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return msgs
}

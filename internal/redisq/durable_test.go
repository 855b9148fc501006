package redisq_test

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
)

// durable enqueues t on a connection pinned by b and waits for w there.
func durable(t *testing.T, b *redisq.Broker, task redisq.Task, w redisq.Wait) (string, redisq.Acks) {
	t.Helper()
	ctx := context.Background()
	p, err := b.Pin(ctx, task.Queue)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	id, err := p.Enqueue(ctx, task)
	if err != nil {
		t.Fatal(err)
	}
	acks, err := p.Wait(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	return id, acks
}

func TestAPinnedEnqueueIsConfirmedByTheReplicasThatReceivedIt(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb := primary.NewClient()
	defer rdb.Close()
	b := redisq.New(rdb, redistest.Prefix(t))
	// A live replica gets two seconds, so that a loaded machine (the race suite beside
	// it) cannot fail the test; a paused one is given a tenth of a second to fail.
	w := redisq.Wait{Replicas: 1, Timeout: 2 * time.Second}

	if _, acks := durable(t, b, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e1")}, w); acks.Short(w) != "" {
		t.Fatalf("with the replica live: %+v, short: %s", acks, acks.Short(w))
	}
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer replica.Resume()
	w.Timeout = 100 * time.Millisecond
	if _, acks := durable(t, b, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2")}, w); acks.Replicas != 0 {
		t.Errorf("with the replica paused: %+v, want no replica", acks)
	}
}

// The tasks of one pinned EnqueueMany are confirmed by one Wait: each is on the replica
// when it returns.
func TestAPinnedEnqueueManyIsConfirmedByOneWait(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb, onReplica := primary.NewClient(), replica.NewClient()
	defer rdb.Close()
	defer onReplica.Close()
	prefix := redistest.Prefix(t)
	b := redisq.New(rdb, prefix)
	ctx := context.Background()
	p, err := b.Pin(ctx, "q")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var ts []redisq.Task
	for i := range 50 {
		ts = append(ts, redisq.Task{ID: fmt.Sprint("q/", i), Kind: "k", Queue: "q", Envelope: []byte(fmt.Sprint("e", i))})
	}
	for i, r := range p.EnqueueMany(ctx, ts) {
		if r.Err != nil || r.ID != ts[i].ID {
			t.Fatalf("task %d: %+v", i, r)
		}
	}
	w := redisq.Wait{Replicas: 1, Timeout: 2 * time.Second}
	acks, err := p.Wait(ctx, w)
	if err != nil || acks.Short(w) != "" {
		t.Fatalf("Wait = %+v, %v", acks, err)
	}
	keys := redisq.QueueKeys(prefix, "q")
	for _, task := range ts {
		if n, err := onReplica.Exists(ctx, keys.State(task.ID)).Result(); n != 1 || err != nil {
			t.Fatalf("task %s is not on the replica when the Wait returned: %d, %v", task.ID, n, err)
		}
	}
	if n, err := onReplica.XLen(ctx, keys.Stream()).Result(); n != 50 || err != nil {
		t.Errorf("the replica's stream holds %d entries, %v; want 50", n, err)
	}
}

// WAIT counts the writes of its own connection. A unique submit that finds its key held
// writes nothing of its own, so on a fresh connection WAIT would confirm at once a first
// task that no replica has: the script rewrites the key unchanged to prevent that, and
// the task's kind when it finds the task itself (an enqueue sent again). (From
// Redis 7.2 on, only a command that writes moves the offset WAIT waits for; Redis 7.0
// moves it after every command, so there the test passes without the rewrite too; on
// 7.2.6 it fails without it.)
func TestAUniqueRetryIsNotConfirmedBeforeTheFirstTaskIsReplicated(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	prefix := redistest.Prefix(t)
	w := redisq.Wait{Replicas: 1, Timeout: 100 * time.Millisecond}
	task := func(id string) redisq.Task {
		return redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id), UniqueKey: "u", UniqueTTL: time.Minute}
	}
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer replica.Resume()
	first := primary.NewClient()
	defer first.Close()
	if id, acks := durable(t, redisq.New(first, prefix), task("q/1"), w); id != "q/1" || acks.Replicas != 0 {
		t.Fatalf("first submit: %s, %+v; want q/1 unconfirmed", id, acks)
	}
	fresh := primary.NewClient() // a client of its own: its connections wrote nothing yet
	defer fresh.Close()
	id, acks := durable(t, redisq.New(fresh, prefix), task("q/2"), w)
	if id != "q/1" {
		t.Fatalf("retry returned %s, want the first task q/1", id)
	}
	if acks.Replicas != 0 {
		t.Errorf("retry on a fresh connection confirmed by %d replicas, which have not received q/1", acks.Replicas)
	}
	if ttl := fresh.PTTL(context.Background(), redisq.QueueKeys(prefix, "q").Unique("k", "u")).Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("the unique key's TTL after the retry is %s, want the first submit's", ttl)
	}
	// Likewise an enqueue that Redis runs again (the client library re-sent it): it finds
	// the task's state, and rewrites its kind so as not to be confirmed at once.
	plain := redisq.Task{ID: "q/3", Kind: "k", Queue: "q", Envelope: []byte("q/3")}
	if id, acks := durable(t, redisq.New(first, prefix), plain, w); id != "q/3" || acks.Replicas != 0 {
		t.Fatalf("first submit: %s, %+v; want q/3 unconfirmed", id, acks)
	}
	again := primary.NewClient()
	defer again.Close()
	if id, acks := durable(t, redisq.New(again, prefix), plain, w); id != "q/3" || acks.Replicas != 0 {
		t.Errorf("the same enqueue again on a fresh connection: %s, confirmed by %d replicas, which have not received q/3", id, acks.Replicas)
	}
}

func TestAClusterEnqueueIsConfirmedByTheMasterOfItsSlot(t *testing.T) {
	c, err := redistest.StartReplicatedCluster()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	rdb := c.NewClient()
	defer rdb.Close()
	ctx := context.Background()
	b := redisq.New(rdb, redistest.Prefix(t))
	w := redisq.Wait{Replicas: 1, Timeout: time.Second}

	// Queues on three different masters; pause the replica of the first one's.
	queues := queuesOnMasters(t, rdb, b)
	m, err := rdb.MasterForKey(ctx, b.Keys(queues[0]).Stream())
	if err != nil {
		t.Fatal(err)
	}
	replica, err := c.Replica(m.Options().Addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer replica.Resume()
	for i, q := range queues {
		_, acks := durable(t, b, redisq.Task{ID: q + "/1", Kind: "k", Queue: q, Envelope: []byte("e")}, w)
		if want := min(i, 1); acks.Replicas != want {
			t.Errorf("queue %s (replica paused: %v): %d replicas confirmed, want %d", q, i == 0, acks.Replicas, want)
		}
	}
}

// queuesOnMasters returns three queue names whose slots three different masters serve.
func queuesOnMasters(t *testing.T, rdb *redis.ClusterClient, b *redisq.Broker) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for i := 0; len(out) < 3 && i < 1000; i++ {
		q := "q" + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + string(rune('a'+i/26%26))
		m, err := rdb.MasterForKey(context.Background(), b.Keys(q).Stream())
		if err != nil {
			t.Fatal(err)
		}
		if addr := m.Options().Addr; !seen[addr] {
			seen[addr] = true
			out = append(out, q)
		}
	}
	if len(out) < 3 {
		t.Fatalf("found queues on %d masters only", len(out))
	}
	return out
}

func TestPinRefusesAClientThatCannotPinAConnection(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": redistest.Shared(t).Addr}})
	defer ring.Close()
	if err := redisq.CanPin(ring); !errors.Is(err, redisq.ErrNoPin) {
		t.Errorf("CanPin(Ring) = %v, want ErrNoPin", err)
	}
	if _, err := redisq.New(ring, "p").Pin(context.Background(), "q"); !errors.Is(err, redisq.ErrNoPin) {
		t.Errorf("Pin on a Ring = %v, want ErrNoPin", err)
	}
	for _, rdb := range []redis.UniversalClient{redistest.Client(t), redistest.ClusterClient(t)} {
		if err := redisq.CanPin(rdb); err != nil {
			t.Errorf("CanPin(%T) = %v", rdb, err)
		}
	}
}

func TestVersionAtLeast(t *testing.T) {
	tests := []struct {
		version string
		want    bool
	}{
		{"7.2.0", true}, {"7.2", true}, {"7.4.1", true}, {"8.0.0", true}, {"10.0.0", true},
		{"7.0.15", false}, {"6.2.14", false}, {"7", false}, {"", false}, {"x.y", false},
	}
	for _, tt := range tests {
		if got := redisq.VersionAtLeast(tt.version, redisq.WaitAOFVersion); got != tt.want {
			t.Errorf("VersionAtLeast(%q, %q) = %v, want %v", tt.version, redisq.WaitAOFVersion, got, tt.want)
		}
	}
}

func TestCheckWaitAOFNamesTheVersionItNeedsAndTheOneItFound(t *testing.T) {
	ctx := context.Background()
	rdb := redistest.Client(t)
	version := redistest.Version(t, rdb)
	err := redisq.New(rdb, "p").CheckWaitAOF(ctx, false)
	if redisq.VersionAtLeast(version, redisq.WaitAOFVersion) {
		if err != nil {
			t.Errorf("Redis %s: %v", version, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), "Redis "+redisq.WaitAOFVersion+" or later") || !strings.Contains(err.Error(), version) {
		t.Errorf("Redis %s: CheckWaitAOF = %v, want the versions needed and found", version, err)
	}
}

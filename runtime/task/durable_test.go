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
)

// durableHarness is a harness whose client waits for d after every submit.
func durableHarness(t *testing.T, rdb redis.UniversalClient, d task.Durability) *harness {
	t.Helper()
	h := newHarness(t, rdb)
	c, err := task.NewClient(rdb, clientOptions(h.opts, task.WithDurability(d))...)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	return h
}

// exists reports whether rdb holds the state of task id of the harness's queue q1.
func (h *harness) exists(t *testing.T, rdb redis.UniversalClient, id task.ID) bool {
	t.Helper()
	n, err := rdb.Exists(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id))).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// Each of these tests has a primary and a replica of its own: it pauses the replica.

func TestADurableSubmitIsOnTheReplicaWhenItReturns(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb, onReplica := primary.NewClient(), replica.NewClient()
	defer rdb.Close()
	defer onReplica.Close()
	h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 5 * time.Second})

	for range 20 {
		id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if !h.exists(t, onReplica, id) {
			t.Fatalf("task %s is not on the replica when Submit returns", id)
		}
	}
}

// A durable SubmitMany confirms its tasks together: each is on the replica when it
// returns; with the replica paused, each has its ID and fails with ErrNotDurable.
func TestADurableSubmitManyIsOnTheReplicaWhenItReturns(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb, onReplica := primary.NewClient(), replica.NewClient()
	defer rdb.Close()
	defer onReplica.Close()
	h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 5 * time.Second})
	args := make([]echoArgs, 700) // two chunks
	for i := range args {
		args[i] = echoArgs{Msg: fmt.Sprint("m", i)}
	}
	ids, err := task.SubmitMany(context.Background(), h.client, echoDef, alice, args)
	if err != nil || len(ids) != len(args) {
		t.Fatalf("SubmitMany = %d ids, %v", len(ids), err)
	}
	for _, id := range ids {
		if !h.exists(t, onReplica, id) {
			t.Fatalf("task %s is not on the replica when SubmitMany returns", id)
		}
	}

	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer replica.Resume()
	h = durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 200 * time.Millisecond})
	ids, err = task.SubmitMany(context.Background(), h.client, echoDef, alice, args[:3])
	if !errors.Is(err, task.ErrNotDurable) || !strings.Contains(err.Error(), "3 of 3 tasks failed") {
		t.Fatalf("SubmitMany with the replica paused: %v; want 3 of 3 failed, ErrNotDurable", err)
	}
	for _, id := range ids {
		if id == "" || !h.exists(t, rdb, id) {
			t.Errorf("SubmitMany returned ID %q with ErrNotDurable, want the ID of a task on the primary", id)
		}
	}
}

func TestADurableSubmitNoReplicaConfirmsReturnsItsIDWithErrNotDurable(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb := primary.NewClient()
	defer rdb.Close()
	h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 200 * time.Millisecond})
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	defer replica.Resume()

	id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"})
	if !errors.Is(err, task.ErrNotDurable) {
		t.Fatalf("Submit with the replica paused = %s, %v; want ErrNotDurable", id, err)
	}
	if id == "" || !h.exists(t, rdb, id) {
		t.Errorf("Submit returned ID %q with ErrNotDurable, want the ID of the task on the primary", id)
	}
	if msg := err.Error(); !strings.Contains(msg, "is enqueued") || !strings.Contains(msg, "0 of 1 replicas") {
		t.Errorf("the error does not say that the task is enqueued, nor what confirmed it: %s", msg)
	}
}

func TestAUniqueDurableSubmitCanBeRetriedUntilItIsConfirmed(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	rdb := primary.NewClient()
	defer rdb.Close()
	// Two seconds: a replica resumed from SIGSTOP takes a moment to catch up.
	h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 2 * time.Second})
	ctx := context.Background()
	once := task.Unique("welcome:alice", time.Minute)
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	first, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}, once)
	if !errors.Is(err, task.ErrNotDurable) {
		t.Fatalf("first submit = %s, %v; want ErrNotDurable", first, err)
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	again, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}, once)
	if err != nil || again != first {
		t.Fatalf("retry with the replica back = %s, %v; want %s confirmed", again, err, first)
	}
	if n := rdb.XLen(ctx, redisq.QueueKeys(h.prefix, "q1").Stream()).Val(); n != 1 {
		t.Errorf("the stream holds %d tasks after the retry, want 1", n)
	}
}

// The shared server and cluster have no replicas: a submit asking for one is enqueued
// but not confirmed. On the cluster, the WAIT runs on the master of the queue's slot
// (redisq's TestAClusterEnqueueIsConfirmedByTheMasterOfItsSlot shows it picks the right
// one on a cluster with replicas).
func TestADurableSubmitAskingForAMissingReplicaIsEnqueuedButNotDurable(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := durableHarness(t, rdb, task.Durability{Replicas: 1, Timeout: 50 * time.Millisecond})
		id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"})
		if !errors.Is(err, task.ErrNotDurable) {
			t.Fatalf("Submit = %s, %v; want ErrNotDurable", id, err)
		}
		if id == "" || !h.exists(t, rdb, id) {
			t.Errorf("Submit returned ID %q, want the ID of the enqueued task", id)
		}
		// SubmitMany pins the queue's master as Submit does, and waits there once.
		ids, err := task.SubmitMany(context.Background(), h.client, echoDef, alice, []echoArgs{{Msg: "a"}, {Msg: "b"}})
		if !errors.Is(err, task.ErrNotDurable) || len(ids) != 2 {
			t.Fatalf("SubmitMany = %v, %v; want two IDs and ErrNotDurable", ids, err)
		}
		for _, id := range ids {
			if id == "" || !h.exists(t, rdb, id) {
				t.Errorf("SubmitMany returned ID %q, want the ID of an enqueued task", id)
			}
		}
	})
}

func TestADurableSubmitWhoseContextEndsWhileWaitingStillGivesItsID(t *testing.T) {
	h := durableHarness(t, redistest.Client(t), task.Durability{Replicas: 1, Timeout: 5 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "hi"})
	if !errors.Is(err, task.ErrNotDurable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Submit = %s, %v; want ErrNotDurable and the deadline", id, err)
	}
	if id == "" || !h.exists(t, h.rdb, id) {
		t.Errorf("Submit returned ID %q, want the ID of the enqueued task", id)
	}
}

func TestNewClientRefusesADurabilityItCannotGive(t *testing.T) {
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": redistest.Shared(t).Addr}})
	defer ring.Close()
	tests := []struct {
		name string
		rdb  redis.UniversalClient
		d    task.Durability
		want string
	}{
		{"negative replicas", redistest.Client(t), task.Durability{Replicas: -1}, "want 0 or more"},
		{"negative AOF replicas", redistest.Client(t), task.Durability{ReplicasAOF: -1}, "want 0 or more"},
		{"negative timeout", redistest.Client(t), task.Durability{Replicas: 1, Timeout: -time.Second}, "timeout -1s"},
		{"a Ring", ring, task.Durability{Replicas: 1}, "got a *redis.Ring"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := task.NewClient(tt.rdb, task.WithSigningKey("k1", signingKey), task.WithDurability(tt.d))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewClient = %v, want an error saying %q", err, tt.want)
			}
		})
	}
	// Without a confirmation to wait for, the option changes nothing, even on a Ring.
	if _, err := task.NewClient(ring, task.WithSigningKey("k1", signingKey), task.WithDurability(task.Durability{})); err != nil {
		t.Errorf("NewClient with Durability{} = %v", err)
	}
}

// atLeast72 reports whether version is Redis 7.2 or later, which has WAITAOF.
func atLeast72(version string) bool {
	var major, minor int
	_, _ = fmt.Sscanf(version, "%d.%d", &major, &minor)
	return major > 7 || major == 7 && minor >= 2
}

func TestNewClientRefusesAOFConfirmationOnRedisBefore72(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		version := redistest.Version(t, rdb)
		if atLeast72(version) {
			t.Skipf("Redis %s has WAITAOF; TestAOFConfirmationOnRedis72 tests it", version)
		}
		for _, d := range []task.Durability{{LocalAOF: true}, {Replicas: 1, ReplicasAOF: 1}} {
			_, err := task.NewClient(rdb, task.WithSigningKey("k1", signingKey), task.WithDurability(d))
			if err == nil || !strings.Contains(err.Error(), "needs Redis 7.2 or later") || !strings.Contains(err.Error(), version) {
				t.Errorf("NewClient(%+v) on Redis %s = %v; want a refusal naming 7.2 and %s", d, version, err, version)
			}
		}
	})
}

// This test runs only on Redis 7.2 or later: set REDIS_SERVER to such a redis-server.
func TestAOFConfirmationOnRedis72(t *testing.T) {
	withAOF := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "everysec")
	rdb := withAOF.NewClient()
	defer rdb.Close()
	if version := redistest.Version(t, rdb); !atLeast72(version) {
		t.Skipf("Redis %s has no WAITAOF; set REDIS_SERVER to a redis-server 7.2 or later to run this test", version)
	}
	replica := redistest.StartReplica(t, withAOF, "--appendonly", "yes", "--appendfsync", "everysec")
	h := durableHarness(t, rdb, task.Durability{LocalAOF: true, ReplicasAOF: 1, Timeout: 5 * time.Second})
	if _, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"}); err != nil {
		t.Errorf("Submit confirmed by the local AOF and the replica's: %v", err)
	}
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	h = durableHarness(t, rdb, task.Durability{LocalAOF: true, ReplicasAOF: 1, Timeout: 200 * time.Millisecond})
	id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"})
	if !errors.Is(err, task.ErrNotDurable) || !strings.Contains(err.Error(), "0 of 1 replicas fsynced it") || id == "" {
		t.Errorf("Submit with the replica paused = %q, %v; want its ID and ErrNotDurable naming the replica's AOF", id, err)
	}
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}

	noAOF := redistest.Start(t)
	plain := noAOF.NewClient()
	defer plain.Close()
	_, err = task.NewClient(plain, task.WithSigningKey("k1", signingKey), task.WithDurability(task.Durability{LocalAOF: true}))
	if err == nil || !strings.Contains(err.Error(), "appendonly") {
		t.Errorf("NewClient with LocalAOF on a server without AOF = %v, want a refusal naming appendonly", err)
	}
}

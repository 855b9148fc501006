package task_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

func TestDeadLettersCanBeListedRequeuedAndDeleted(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var healthy atomic.Bool
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			if !healthy.Load() {
				return "", task.Permanent(errors.New("downstream is down"))
			}
			return "done " + a.Msg, nil
		})
		run(t, w)
		ctx := context.Background()
		first, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "first"})
		second, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "second"})
		for _, id := range []task.ID{first, second} {
			if _, err := wait[string](t, h.client, id); err == nil {
				t.Fatal("task should have failed")
			}
		}
		// A forged entry: listed, not requeueable, deletable.
		h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: redisq.QueueKeys(h.prefix, "q1").Stream(), Values: []any{"env", "{}"}})
		var dead []task.DeadLetter
		for deadline := time.Now().Add(10 * time.Second); len(dead) < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			dead, _ = h.client.DeadLetters(ctx, "q1", "", 10)
		}
		// The two tasks fail concurrently, in either order; the forged entry is last.
		if dead[0].ID == second {
			dead[0], dead[1] = dead[1], dead[0]
		}
		if len(dead) != 3 || dead[0].ID != first || dead[1].ID != second || dead[0].Reason != task.ReasonPermanent || dead[2].ID != "" {
			t.Fatalf("dead letters = %+v", dead)
		}
		all, _ := h.client.DeadLetters(ctx, "q1", "", 10)
		page, _ := h.client.DeadLetters(ctx, "q1", all[0].EntryID, 1)
		if len(page) != 1 || page[0].EntryID != all[1].EntryID {
			t.Errorf("second page = %+v, want %+v", page, all[1])
		}

		healthy.Store(true)
		if err := h.client.Requeue(ctx, dead[0]); err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, first); err != nil || got != "done first" {
			t.Errorf("requeued task: %q, %v", got, err)
		}
		if err := h.client.Requeue(ctx, dead[0]); !errors.Is(err, task.ErrNoDeadLetter) {
			t.Errorf("second requeue of one dead letter: %v, want ErrNoDeadLetter", err)
		}
		if err := h.client.Requeue(ctx, dead[2]); !errors.Is(err, task.ErrMalformed) {
			t.Errorf("requeue of a forged entry: %v, want ErrMalformed", err)
		}
		if err := h.client.DeleteDeadLetter(ctx, dead[2]); err != nil {
			t.Fatal(err)
		}
		left, _ := h.client.DeadLetters(ctx, "q1", "", 10)
		if len(left) != 1 || left[0].ID != second {
			t.Errorf("after requeue and delete: %+v", left)
		}
	})
}

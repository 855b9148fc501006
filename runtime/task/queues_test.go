package task_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// Without WithQueues a worker consumes the queue of every task registered on it, so the
// list is the directives' and cannot drift from them.
func TestAWorkerConsumesTheQueuesOfItsRegisteredTasks(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w, err := task.NewWorker(h.rdb, workerOptions(h.opts)...)
		if err != nil {
			t.Fatal(err)
		}
		mail := task.Def{Kind: "test.mail", Queue: "mail", Schema: "v1:echo", Caller: true}
		maint := task.Def{Kind: "test.vacuum", Queue: "maint", Schema: "v1:echo", Caller: true}
		for _, d := range []task.Def{mail, maint} {
			if err := task.Register(w, d, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return d.Queue + ":" + a.Msg, nil }); err != nil {
				t.Fatal(err)
			}
		}
		run(t, w)
		for _, d := range []task.Def{mail, maint} {
			id, err := task.Submit(context.Background(), h.client, d, alice, echoArgs{Msg: "x"})
			if err != nil {
				t.Fatal(err)
			}
			got, err := wait[string](t, h.client, id)
			if want := d.Queue + ":x"; err != nil || got != want {
				t.Errorf("task on queue %s: %q, %v; want %q", d.Queue, got, err, want)
			}
		}
	})
}

// A worker whose WithQueues leaves out a registered task's queue (a queue renamed in the
// directive, maintenance to maint, and not in the worker's list) fails at Run, naming the
// task and its queue: a warning would leave its submitters' Results waiting forever.
func TestRunFailsWhenARegisteredTasksQueueIsNotConsumed(t *testing.T) {
	h := newHarness(t, redistest.Client(t))
	w := h.worker(t, task.WithQueues("maintenance"))
	maint := task.Def{Kind: "test.vacuum", Queue: "maint", Schema: "v1:echo"}
	if err := task.Register(w, maint, func(context.Context, task.Caller, echoArgs) (struct{}, error) { return struct{}{}, nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := w.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), `test.vacuum (queue "maint")`) || !strings.Contains(err.Error(), "WithQueues") {
		t.Fatalf("Run = %v, want an error naming test.vacuum on queue maint", err)
	}
	if _, err := task.NewWorker(h.rdb, workerOptions(h.opts, task.WithQueues())...); err == nil {
		t.Error("NewWorker accepted WithQueues with no queue")
	}
}

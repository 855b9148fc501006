package task_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// inspector returns an inspector with the harness's options.
func (h *harness) inspector(t *testing.T, opts ...task.Option) *task.Inspector {
	t.Helper()
	in, err := task.NewInspector(h.rdb, append(append([]task.Option(nil), h.opts...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// eventually polls cond every 20ms for up to 10s: the inspector reads what workers wrote,
// which they write when they get to it.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// aliceLong is alice with a token that outlives the tasks delayed by hours.
var aliceLong = task.Caller{UserID: "alice", Token: task.NewSecret("alice-token"), ExpiresAt: time.Now().Add(24 * time.Hour), Scopes: []string{"mail"}}

// The inspector's tasks: q1 is served by a worker, q2 by none (its tasks stay pending).
var (
	inspectSlow  = task.Def{Kind: "inspect.slow", Queue: "q1", Schema: "v1:msg", Caller: true}
	inspectFlaky = task.Def{Kind: "inspect.flaky", Queue: "q1", MaxRetries: 5, Schema: "v1:msg", Caller: true}
	inspectPerm  = task.Def{Kind: "inspect.perm", Queue: "q1", Schema: "v1:msg", Caller: true}
	inspectGhost = task.Def{Kind: "inspect.ghost", Queue: "q1", Schema: "v1:msg", Caller: true} // registered nowhere
	inspectIdle  = task.Def{Kind: "inspect.idle", Queue: "q2", Schema: "v1:msg", Caller: true}
)

func listAll(t *testing.T, in *task.Inspector, queue string, o task.ListOptions) []task.TaskSummary {
	t.Helper()
	var out []task.TaskSummary
	for pages := 0; ; pages++ {
		p, err := in.List(context.Background(), queue, o)
		if err != nil {
			t.Fatalf("List(%s, %+v): %v", queue, o, err)
		}
		out = append(out, p.Tasks...)
		if p.Next == "" {
			return out
		}
		if pages > 100 {
			t.Fatalf("List(%s, %+v) does not end", queue, o)
		}
		o.Cursor = p.Next
	}
}

func ids(ts []task.TaskSummary) []task.ID {
	out := make([]task.ID, len(ts))
	for i, t := range ts {
		out[i] = t.ID
	}
	return out
}

// Every count and listing of the inspector matches a known set of tasks in each state:
// pending, scheduled, running (tasks that run past their lease), retrying and dead with
// several reasons.
func TestInspectorCountsAndListsKnownTaskSets(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		h := newHarness(t, rdb)
		in := h.inspector(t)
		var pending, scheduled []task.ID
		for i := range 3 {
			id, err := task.Submit(ctx, h.client, inspectIdle, aliceLong, echoArgs{Msg: fmt.Sprint("idle", i)})
			if err != nil {
				t.Fatal(err)
			}
			pending = append(pending, id)
		}
		for i := range 2 {
			id, err := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: fmt.Sprint("later", i)}, task.Delay(time.Duration(i+1)*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			scheduled = append(scheduled, id)
		}

		w := h.worker(t, task.WithBackoff(time.Hour, time.Hour), task.WithLease(500*time.Millisecond), task.WithSkewGrace(0))
		release := make(chan struct{})
		var started atomic.Int32
		task.Register(w, inspectSlow, func(ctx context.Context, _ task.Caller, _ echoArgs) (string, error) {
			started.Add(1)
			<-release
			return "done", nil
		})
		task.Register(w, inspectFlaky, func(context.Context, task.Caller, echoArgs) (string, error) {
			return "", errors.New("smtp down")
		})
		task.Register(w, inspectPerm, func(context.Context, task.Caller, echoArgs) (string, error) {
			return "", task.Permanent(errors.New("no such user"))
		})
		defer close(release)
		run(t, w)
		var running []task.ID
		for i := range 2 {
			id, _ := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: fmt.Sprint("slow", i)})
			running = append(running, id)
		}
		retrying, _ := task.Submit(ctx, h.client, inspectFlaky, aliceLong, echoArgs{Msg: "flaky"})
		perm1, _ := task.Submit(ctx, h.client, inspectPerm, aliceLong, echoArgs{Msg: "p1"})
		perm2, _ := task.Submit(ctx, h.client, inspectPerm, aliceLong, echoArgs{Msg: "p2"})
		ghost, _ := task.Submit(ctx, h.client, inspectGhost, aliceLong, echoArgs{Msg: "ghost"})
		for _, id := range []task.ID{perm1, perm2, ghost} {
			if _, err := wait[string](t, h.client, id); err == nil {
				t.Fatalf("%s succeeded, want it dead", id)
			}
		}
		eventually(t, "the flaky task to wait for its retry", func() bool {
			st, err := in.Status(ctx, retrying)
			return err == nil && st.State == task.StateRetrying
		})
		eventually(t, "both slow tasks to start", func() bool { return started.Load() == 2 })
		time.Sleep(time.Second) // past two leases: the heartbeats keep them running

		want := map[string]task.QueueInfo{
			"q1": {Name: "q1", Running: 2, Delayed: 2, Retrying: 1, Dead: 3,
				Retention: task.DeadRetention{MaxCount: task.DefaultDeadLetterMaxCount, MaxAge: task.DefaultDeadLetterMaxAge}},
			"q2": {Name: "q2", Pending: 3},
		}
		qs, err := in.Queues(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(qs) != 2 {
			t.Fatalf("Queues = %+v, want q1 and q2", qs)
		}
		for _, q := range qs {
			if q.Name == "q2" {
				if q.OldestPending <= 0 || q.OldestPending > time.Minute {
					t.Errorf("q2 oldest pending %s, want the age of its first task", q.OldestPending)
				}
				q.OldestPending = 0
			}
			if q != want[q.Name] {
				t.Errorf("queue %s:\n got %+v\nwant %+v", q.Name, q, want[q.Name])
			}
		}

		if got := ids(listAll(t, in, "q2", task.ListOptions{State: task.StatePending, Limit: 2})); fmt.Sprint(got) != fmt.Sprint(pending) {
			t.Errorf("pending, 2 a page: %v, want %v", got, pending)
		}
		sched := listAll(t, in, "q1", task.ListOptions{State: task.StateScheduled, Limit: 1})
		if fmt.Sprint(ids(sched)) != fmt.Sprint(scheduled) {
			t.Errorf("scheduled, 1 a page: %v, want %v", ids(sched), scheduled)
		}
		for _, s := range sched {
			if s.DueAt.Before(time.Now().Add(50*time.Minute)) || s.Kind != inspectSlow.Kind || s.UserID != "alice" {
				t.Errorf("scheduled task %+v: want due in an hour or two, kind %s, user alice", s, inspectSlow.Kind)
			}
		}
		run1 := listAll(t, in, "q1", task.ListOptions{State: task.StateRunning})
		if got := ids(run1); len(got) != 2 || !(got[0] == running[0] && got[1] == running[1] || got[0] == running[1] && got[1] == running[0]) {
			t.Errorf("running: %v, want %v", got, running)
		}
		if r := listAll(t, in, "q1", task.ListOptions{State: task.StateRetrying}); len(r) != 1 || r[0].ID != retrying || r[0].Attempts != 1 || r[0].Error != "smtp down" {
			t.Errorf("retrying: %+v, want %s after 1 attempt", r, retrying)
		}
		dead := listAll(t, in, "q1", task.ListOptions{State: task.StateDead, Limit: 2})
		if len(dead) != 3 {
			t.Fatalf("dead: %+v, want 3", dead)
		}
		// The two permanent failures may die in either order.
		if p := ids(listAll(t, in, "q1", task.ListOptions{State: task.StateDead, Reason: task.ReasonPermanent, Limit: 1})); len(p) != 2 ||
			!(p[0] == perm1 && p[1] == perm2 || p[0] == perm2 && p[1] == perm1) {
			t.Errorf("dead, reason permanent: %v, want %v", p, []task.ID{perm1, perm2})
		}
		deadEntry := map[task.ID]string{}
		for _, d := range dead {
			deadEntry[d.ID] = d.DeadEntry
		}
		if g := listAll(t, in, "q1", task.ListOptions{State: task.StateDead, Kind: inspectGhost.Kind}); len(g) != 1 || g[0].ID != ghost || g[0].Reason != task.ReasonUnknownKind {
			t.Errorf("dead of kind %s: %+v, want %s, unknown_kind", inspectGhost.Kind, g, ghost)
		}
		if _, err := in.List(ctx, "q1", task.ListOptions{State: task.StateDead, Cursor: "pending/0-1"}); err == nil {
			t.Error("List took a cursor of another state's listing")
		}

		d, err := in.Task(ctx, retrying)
		if err != nil {
			t.Fatal(err)
		}
		if d.State != task.StateRetrying || d.TaskSummary.Attempts != 1 || len(d.Attempts) != 1 || d.Attempts[0].Error != "smtp down" ||
			d.Attempts[0].N != 1 || d.DueAt.IsZero() || string(d.Args) != `{"msg":"flaky"}` || d.MaxRetries != 5 ||
			!d.Signature.Verified || d.Signature.KeyID != "k1" || d.Caller == nil || !d.Caller.Sealed || !d.Caller.Readable ||
			d.Caller.UserID != "alice" || fmt.Sprint(d.Caller.Scopes) != "[mail]" {
			t.Errorf("Task(retrying) = %+v", d)
		}
		if s := d.Caller.ExpiresIn(time.Now()); !strings.HasPrefix(s, "expires in ") {
			t.Errorf("ExpiresIn = %q", s)
		}
		d, err = in.Task(ctx, running[0])
		if err != nil || d.State != task.StateRunning || d.StartedAt.IsZero() || string(d.Args) != `{"msg":"slow0"}` || !d.Signature.Verified {
			t.Errorf("Task(running) = %+v, %v", d, err)
		}
		d, err = in.Task(ctx, pending[1])
		if err != nil || d.State != task.StatePending || string(d.Args) != `{"msg":"idle1"}` {
			t.Errorf("Task(pending) = %+v, %v", d, err)
		}
		d, err = in.Task(ctx, scheduled[1])
		if err != nil || d.State != task.StateScheduled || string(d.Args) != `{"msg":"later1"}` {
			t.Errorf("Task(scheduled) = %+v, %v", d, err)
		}
		d, err = in.Task(ctx, perm2)
		if err != nil || d.State != task.StateDead || d.Reason != task.ReasonPermanent || d.DeadEntry != deadEntry[perm2] || string(d.Args) != `{"msg":"p2"}` {
			t.Errorf("Task(dead) = %+v, %v; want dead entry %s", d, err, deadEntry[perm2])
		}
		if dd, err := in.DeadTask(ctx, "q1", deadEntry[perm2]); err != nil || dd.ID != perm2 || dd.Error != "no such user" {
			t.Errorf("DeadTask = %+v, %v", dd, err)
		}
		if _, err := in.Task(ctx, task.ID("q1/00000000000000000000000000")); !errors.Is(err, task.ErrNotFound) {
			t.Errorf("Task of an unknown id: %v, want ErrNotFound", err)
		}
		st, err := h.client.Status(ctx, running[1])
		if err != nil || st.State != task.StateRunning || st.Kind != inspectSlow.Kind || st.Attempts != 1 {
			t.Errorf("Client.Status(running) = %+v, %v", st, err)
		}
	})
}

// Each action of the inspector does what it says: requeue one dead letter, and all of a
// kind with progress, skipping a forged one; delete; cancel a queued, a delayed and a
// running task (which sees ErrCanceled as its context's cause, past its lease); pause
// and resume; purge.
func TestInspectorActions(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ctx := context.Background()
		h := newHarness(t, rdb)
		in := h.inspector(t)
		const lease = 2 * time.Second
		w := h.worker(t, task.WithLease(lease), task.WithQueues("q1", "q2"))
		var permCalls, idleCalls atomic.Int32
		causes := make(chan error, 4)
		healed := atomic.Bool{}
		task.Register(w, inspectPerm, func(context.Context, task.Caller, echoArgs) (string, error) {
			permCalls.Add(1)
			if healed.Load() {
				return "healed", nil
			}
			return "", task.Permanent(errors.New("no such user"))
		})
		task.Register(w, inspectFlaky, func(context.Context, task.Caller, echoArgs) (string, error) {
			return "", task.Permanent(errors.New("flaky for good"))
		})
		task.Register(w, inspectIdle, func(context.Context, task.Caller, echoArgs) (string, error) {
			idleCalls.Add(1)
			return "ran", nil
		})
		started := make(chan struct{}, 1)
		task.Register(w, inspectSlow, func(ctx context.Context, _ task.Caller, a echoArgs) (string, error) {
			started <- struct{}{}
			select {
			case <-ctx.Done():
				causes <- context.Cause(ctx)
				return "", ctx.Err()
			case <-time.After(10 * time.Second):
				causes <- nil
				return "not canceled", nil
			}
		})

		// Delete and cancel before any worker reads the queues.
		delayed, _ := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: "later"}, task.Delay(time.Hour))
		delayed2, _ := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: "later2"}, task.Delay(time.Hour))
		queued, _ := task.Submit(ctx, h.client, inspectIdle, aliceLong, echoArgs{Msg: "queued"})
		queued2, _ := task.Submit(ctx, h.client, inspectIdle, aliceLong, echoArgs{Msg: "queued2"})
		if err := in.Delete(ctx, delayed); err != nil {
			t.Fatal(err)
		}
		if err := in.Delete(ctx, queued); err != nil {
			t.Fatal(err)
		}
		if err := in.Cancel(ctx, delayed2); err != nil {
			t.Fatal(err)
		}
		if err := in.Cancel(ctx, queued2); err != nil {
			t.Fatal(err)
		}
		for _, id := range []task.ID{delayed, queued} {
			if _, err := in.Status(ctx, id); !errors.Is(err, task.ErrNotFound) {
				t.Errorf("Status of deleted %s: %v, want ErrNotFound", id, err)
			}
		}
		for _, id := range []task.ID{delayed2, queued2} {
			var failed *task.FailedError
			if _, err := wait[string](t, h.client, id); !errors.Is(err, task.ErrCanceled) || !errors.As(err, &failed) || failed.Reason != task.ReasonCanceled {
				t.Errorf("Result of canceled %s: %v, want a FailedError wrapping ErrCanceled", id, err)
			}
		}
		for _, q := range []string{"q1", "q2"} {
			if qi, err := in.Queue(ctx, q); err != nil || qi.Pending+qi.Delayed+qi.Running != 0 {
				t.Errorf("queue %s after deletes and cancels: %+v, %v; want empty", q, qi, err)
			}
		}

		// Pause: nothing is fetched; resume: it runs.
		if err := in.Pause(ctx, "q2"); err != nil {
			t.Fatal(err)
		}
		run(t, w)
		paused, _ := task.Submit(ctx, h.client, inspectIdle, aliceLong, echoArgs{Msg: "paused"})
		time.Sleep(1500 * time.Millisecond)
		if qi, _ := in.Queue(ctx, "q2"); !qi.Paused || qi.Pending != 1 || idleCalls.Load() != 0 {
			t.Errorf("paused queue: %+v after %d runs, want paused with 1 pending and none run", qi, idleCalls.Load())
		}
		if err := in.Resume(ctx, "q2"); err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, paused); err != nil || got != "ran" || idleCalls.Load() != 1 {
			t.Errorf("after resume: %q, %v, %d runs; want the paused task run once (the canceled one never)", got, err, idleCalls.Load())
		}

		// Cancel a running task: its context ends with cause ErrCanceled, it is not retried.
		slow, _ := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: "slow"})
		<-started
		time.Sleep(lease + lease/2) // past its lease: the heartbeat renews it
		if err := in.Delete(ctx, slow); err == nil {
			t.Error("Delete of a running task succeeded")
		}
		if err := in.Cancel(ctx, slow); err != nil {
			t.Fatal(err)
		}
		select {
		case cause := <-causes:
			if !errors.Is(cause, task.ErrCanceled) || cause != task.ErrCanceled {
				t.Errorf("the running task's cause = %v, want task.ErrCanceled", cause)
			}
		case <-time.After(lease):
			t.Fatal("the running task did not see its cancel within a lease")
		}
		if _, err := wait[string](t, h.client, slow); !errors.Is(err, task.ErrCanceled) {
			t.Errorf("Result of the canceled running task: %v, want ErrCanceled", err)
		}
		if st, _ := in.Status(ctx, slow); st.State != task.StateCanceled || st.Attempts != 1 {
			t.Errorf("status of the canceled running task: %+v, want canceled after 1 attempt", st)
		}
		if err := in.Cancel(ctx, slow); err == nil {
			t.Error("Cancel of a finished task succeeded")
		}

		// Requeue one, then all of a kind with progress, skipping a forged letter.
		var perms []task.ID
		for i := range 3 {
			id, _ := task.Submit(ctx, h.client, inspectPerm, aliceLong, echoArgs{Msg: fmt.Sprint("p", i)})
			perms = append(perms, id)
		}
		flaky, _ := task.Submit(ctx, h.client, inspectFlaky, aliceLong, echoArgs{Msg: "f"})
		for _, id := range append(perms, flaky) {
			wait[string](t, h.client, id)
		}
		k := redisq.QueueKeys(h.prefix, "q1")
		if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: k.Dead(), Values: []any{"id", "", "kind", inspectPerm.Kind, "reason", "permanent", "env", "forged"}}).Err(); err != nil {
			t.Fatal(err)
		}
		dead := listAll(t, in, "q1", task.ListOptions{State: task.StateDead})
		if len(dead) != 5 {
			t.Fatalf("dead: %+v, want 5", dead)
		}
		healed.Store(true)
		first := ""
		for _, d := range dead {
			if d.ID == perms[0] {
				first = d.DeadEntry
			}
		}
		if err := in.Requeue(ctx, "q1", first); err != nil {
			t.Fatal(err)
		}
		if got, err := wait[string](t, h.client, perms[0]); err != nil || got != "healed" {
			t.Errorf("requeued task: %q, %v", got, err)
		}
		var calls [][2]int
		res, err := in.RequeueMatching(ctx, "q1", inspectPerm.Kind, "", func(done, total int) { calls = append(calls, [2]int{done, total}) })
		if res.Done != 2 || res.Skipped != 1 || !errors.Is(err, task.ErrMalformed) {
			t.Errorf("RequeueMatching = %+v, %v; want 2 done, the forged one skipped", res, err)
		}
		if len(calls) == 0 || calls[len(calls)-1] != [2]int{4, 4} {
			t.Errorf("progress calls %v, want the last (4, 4)", calls)
		}
		for _, id := range perms[1:] {
			if got, err := wait[string](t, h.client, id); err != nil || got != "healed" {
				t.Errorf("requeued %s: %q, %v", id, got, err)
			}
		}
		if qi, _ := in.Queue(ctx, "q1"); qi.Dead != 2 {
			t.Errorf("dead after requeues: %d, want the flaky one and the forged one", qi.Dead)
		}

		// Delete a dead task and a dead letter, then purge.
		if err := in.Delete(ctx, flaky); err != nil {
			t.Fatal(err)
		}
		rest := listAll(t, in, "q1", task.ListOptions{State: task.StateDead})
		if len(rest) != 1 || rest[0].ID != "" {
			t.Fatalf("dead after deleting %s: %+v, want the forged letter alone", flaky, rest)
		}
		dd, err := in.DeadTask(ctx, "q1", rest[0].DeadEntry)
		if err != nil || dd.Signature.Verified || dd.Signature.Problem == "" {
			t.Errorf("DeadTask(forged) = %+v, %v; want an unverified signature with its problem", dd, err)
		}
		for range 2 {
			h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: k.Dead(), Values: []any{"id", "", "env", "x"}})
		}
		if err := in.DeleteDead(ctx, "q1", rest[0].DeadEntry); err != nil {
			t.Fatal(err)
		}
		if n, err := in.PurgeDead(ctx, "q1"); n != 2 || err != nil {
			t.Errorf("PurgeDead = %d, %v; want 2", n, err)
		}
		if qi, _ := in.Queue(ctx, "q1"); qi.Dead != 0 {
			t.Errorf("dead after purge: %d", qi.Dead)
		}
		if permCalls.Load() != 3+3 {
			t.Errorf("the perm task ran %d times, want 3 + 3 requeued", permCalls.Load())
		}
	})
}

// A listing of 20,000 dead letters, a thousand a page, visits each once. They are made
// through the runtime: a worker running a task that fails for good.
func TestInspectorPagesTwentyThousandDeadTasks(t *testing.T) {
	const n = 20_000
	h := newHarness(t, redistest.Client(t))
	ctx := context.Background()
	def := task.Def{Kind: "inspect.bulk", Queue: "q1", Schema: "v1:msg"}
	// 20,000 lines of "task failed for good" would take longer than the tasks.
	w := h.worker(t, task.WithConcurrency(256), task.WithLogger(nil))
	var calls atomic.Int32
	task.Register(w, def, func(context.Context, task.Caller, echoArgs) (struct{}, error) {
		calls.Add(1)
		return struct{}{}, task.Permanent(errors.New("bulk"))
	})
	run(t, w)
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 16 {
				if _, err := task.Submit(ctx, h.client, def, task.Caller{}, echoArgs{Msg: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	in := h.inspector(t)
	deadline := time.Now().Add(120 * time.Second)
	for {
		q, err := in.Queue(ctx, "q1")
		if err != nil {
			t.Fatal(err)
		}
		if q.Dead == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead after 2 minutes, want %d", q.Dead, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	seen := map[string]bool{}
	tasks := map[task.ID]bool{}
	o := task.ListOptions{State: task.StateDead, Limit: 1000}
	pages := 0
	for {
		p, err := in.List(ctx, "q1", o)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, s := range p.Tasks {
			if seen[s.DeadEntry] || tasks[s.ID] {
				t.Fatalf("page %d: %s (%s) seen twice", pages, s.DeadEntry, s.ID)
			}
			seen[s.DeadEntry], tasks[s.ID] = true, true
		}
		if p.Next == "" {
			break
		}
		o.Cursor = p.Next
	}
	if len(seen) != n || len(tasks) != n || pages < 20 || pages > 21 {
		t.Errorf("visited %d dead letters of %d tasks in %d pages, want %d in 20", len(seen), len(tasks), pages, n)
	}
}

// The dead-letter stream is capped by count and by age, approximately, and the cap the
// workers apply shows in QueueInfo.
func TestDeadLetterRetentionTrimsByCountAndAge(t *testing.T) {
	ctx := context.Background()
	def := task.Def{Kind: "inspect.trim", Queue: "q1", Schema: "v1:msg"}
	deadN := func(t *testing.T, h *harness, from, n int) {
		t.Helper()
		var idsN []task.ID
		for i := range n {
			id, err := task.Submit(ctx, h.client, def, task.Caller{}, echoArgs{Msg: fmt.Sprint(from + i)})
			if err != nil {
				t.Fatal(err)
			}
			idsN = append(idsN, id)
		}
		for _, id := range idsN {
			wait[struct{}](t, h.client, id)
		}
	}
	for _, c := range []struct {
		name   string
		count  int64
		age    time.Duration
		before int // dead letters before a pause of the age
		after  int // and after it
		max    int64
	}{
		// Approximate trimming removes whole stream nodes (100 entries by default).
		{name: "count", count: 100, before: 350, max: 200},
		{name: "age", age: 300 * time.Millisecond, before: 250, after: 1, max: 60},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, redistest.Client(t))
			w := h.worker(t, task.WithConcurrency(50), task.WithDeadLetterRetention(c.count, c.age))
			task.Register(w, def, func(context.Context, task.Caller, echoArgs) (struct{}, error) {
				return struct{}{}, task.Permanent(errors.New("trim me"))
			})
			run(t, w)
			deadN(t, h, 0, c.before)
			if c.after > 0 {
				time.Sleep(2 * c.age)
				deadN(t, h, c.before, c.after)
			}
			q, err := h.inspector(t).Queue(ctx, "q1")
			if err != nil {
				t.Fatal(err)
			}
			if q.Dead > c.max || q.Dead < int64(c.after) || q.Dead == int64(c.before+c.after) {
				t.Errorf("dead letters kept: %d of %d, want at most %d", q.Dead, c.before+c.after, c.max)
			}
			if q.Retention != (task.DeadRetention{MaxCount: c.count, MaxAge: c.age}) {
				t.Errorf("retention shown: %+v, want %d and %s", q.Retention, c.count, c.age)
			}
		})
	}
}

// No value any inspector method returns holds a caller's token, in any form it could be
// printed or encoded, with plain callers and with sealed ones.
func TestInspectorNeverReturnsAToken(t *testing.T) {
	const token = "tok-Zq8XvLr2-distinctive"
	for _, mode := range []struct {
		name string
		opts []task.Option
	}{
		{"plain", []task.Option{task.WithPlainCallers()}},
		{"sealed", nil},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, redistest.Client(t), mode.opts...)
			bob := task.Caller{UserID: "bob", Token: task.NewSecret(token), ExpiresAt: time.Now().Add(24 * time.Hour), Scopes: []string{"s"}}
			w := h.worker(t, task.WithBackoff(time.Hour, time.Hour))
			task.Register(w, inspectFlaky, func(context.Context, task.Caller, echoArgs) (string, error) { return "", errors.New("again") })
			task.Register(w, inspectPerm, func(context.Context, task.Caller, echoArgs) (string, error) {
				return "", task.Permanent(errors.New("no"))
			})
			run(t, w)
			var all []task.ID
			for _, d := range []task.Def{inspectIdle, inspectFlaky, inspectPerm} {
				id, err := task.Submit(ctx, h.client, d, bob, echoArgs{Msg: "m"})
				if err != nil {
					t.Fatal(err)
				}
				all = append(all, id)
			}
			later, _ := task.Submit(ctx, h.client, inspectSlow, bob, echoArgs{Msg: "later"}, task.Delay(time.Hour))
			all = append(all, later)
			wait[string](t, h.client, all[2])
			in := h.inspector(t)
			eventually(t, "the flaky task to retry", func() bool {
				st, _ := in.Status(ctx, all[1])
				return st.State == task.StateRetrying
			})
			var values []any
			qs, err := in.Queues(ctx)
			values = append(values, qs, err)
			for _, q := range []string{"q1", "q2"} {
				qi, err := in.Queue(ctx, q)
				values = append(values, qi, err)
				for _, s := range []task.TaskState{task.StatePending, task.StateScheduled, task.StateRunning, task.StateRetrying, task.StateDead} {
					p, err := in.List(ctx, q, task.ListOptions{State: s})
					values = append(values, p, err)
					for _, ts := range p.Tasks {
						if ts.DeadEntry != "" {
							d, err := in.DeadTask(ctx, q, ts.DeadEntry)
							values = append(values, d, err, d.Caller)
						}
					}
				}
			}
			callers := 0
			for _, id := range all {
				d, err := in.Task(ctx, id)
				values = append(values, d, err, d.Caller)
				if d.Caller != nil {
					callers++
					values = append(values, d.Caller.ExpiresIn(time.Now()))
					if !d.Caller.Readable || d.Caller.UserID != "bob" || d.Caller.Sealed != (mode.name == "sealed") {
						t.Errorf("caller of %s: %+v", id, d.Caller)
					}
				}
				st, err := in.Status(ctx, id)
				values = append(values, st, err)
			}
			if callers != len(all) {
				t.Errorf("%d of %d tasks show their caller", callers, len(all))
			}
			forms := []string{token, base64.StdEncoding.EncodeToString([]byte(token)), base64.RawStdEncoding.EncodeToString([]byte(token)),
				base64.URLEncoding.EncodeToString([]byte(token)), base64.RawURLEncoding.EncodeToString([]byte(token)), hex.EncodeToString([]byte(token))}
			for i, v := range values {
				j, _ := json.Marshal(v)
				for _, out := range []string{fmt.Sprintf("%+v", v), fmt.Sprintf("%#v", v), fmt.Sprintf("%v", v), string(j)} {
					for _, f := range forms {
						if strings.Contains(out, f) || strings.Contains(strings.ToLower(out), strings.ToLower(f)) {
							t.Fatalf("value %d (%T) holds the token as %q: %s", i, v, f, out)
						}
					}
				}
			}
			if mode.name == "plain" {
				// The test would prove nothing if the token were not in Redis to be found.
				if !strings.Contains(dumpPrefix(t, h), token) {
					t.Fatal("the plain token is not in Redis: the test proves nothing")
				}
			}
		})
	}
}

// The inspector works as the ACL user the README describes, limited to the prefix's keys:
// counts, listings, detail and every action.
func TestInspectorAsTheACLUser(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.NewClient()
	defer admin.Close()
	ctx := context.Background()
	if err := setACLUser(ctx, admin); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "app", Password: "app-password"})
	defer rdb.Close()
	if err := rdb.Set(ctx, "outside:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the ACL does not restrict keys (err = %v), the test would prove nothing", err)
	}
	h := newHarness(t, rdb, task.WithPrefix("taskgen"))
	in := h.inspector(t)
	w := h.worker(t, task.WithLease(500*time.Millisecond))
	task.Register(w, inspectPerm, func(context.Context, task.Caller, echoArgs) (string, error) {
		time.Sleep(time.Second) // past its lease
		return "", task.Permanent(errors.New("no"))
	})
	run(t, w)
	dead, _ := task.Submit(ctx, h.client, inspectPerm, aliceLong, echoArgs{Msg: "d"})
	later, _ := task.Submit(ctx, h.client, inspectSlow, aliceLong, echoArgs{Msg: "later"}, task.Delay(time.Hour))
	idle, _ := task.Submit(ctx, h.client, inspectIdle, aliceLong, echoArgs{Msg: "idle"})
	wait[string](t, h.client, dead)
	qs, err := in.Queues(ctx)
	if err != nil || len(qs) != 2 || qs[0].Dead != 1 || qs[0].Delayed != 1 || qs[1].Pending != 1 {
		t.Fatalf("Queues as the ACL user = %+v, %v", qs, err)
	}
	for _, s := range []task.TaskState{task.StatePending, task.StateScheduled, task.StateRunning, task.StateRetrying, task.StateDead} {
		for _, q := range []string{"q1", "q2"} {
			if _, err := in.List(ctx, q, task.ListOptions{State: s}); err != nil {
				t.Errorf("List(%s, %s) as the ACL user: %v", q, s, err)
			}
		}
	}
	for _, id := range []task.ID{dead, later, idle} {
		if _, err := in.Task(ctx, id); err != nil {
			t.Errorf("Task(%s) as the ACL user: %v", id, err)
		}
	}
	if err := in.Cancel(ctx, later); err != nil {
		t.Errorf("Cancel as the ACL user: %v", err)
	}
	if err := in.Delete(ctx, idle); err != nil {
		t.Errorf("Delete as the ACL user: %v", err)
	}
	if err := in.Pause(ctx, "q1"); err != nil {
		t.Errorf("Pause as the ACL user: %v", err)
	}
	if err := in.Resume(ctx, "q1"); err != nil {
		t.Errorf("Resume as the ACL user: %v", err)
	}
	d := listAll(t, in, "q1", task.ListOptions{State: task.StateDead})
	if len(d) != 1 {
		t.Fatalf("dead = %+v", d)
	}
	if err := in.Requeue(ctx, "q1", d[0].DeadEntry); err != nil {
		t.Errorf("Requeue as the ACL user: %v", err)
	}
	wait[string](t, h.client, dead)
	if _, err := in.RequeueMatching(ctx, "q1", "", "", nil); err != nil {
		t.Errorf("RequeueMatching as the ACL user: %v", err)
	}
	wait[string](t, h.client, dead)
	if n, err := in.PurgeDead(ctx, "q1"); err != nil || n != 1 {
		t.Errorf("PurgeDead as the ACL user = %d, %v", n, err)
	}
}

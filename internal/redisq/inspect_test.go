package redisq_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// A cancel request on a running task reaches its worker through the heartbeat; when the
// run hands the task back before it learns of it (a retry, a shutdown), the next start
// ends the task canceled, unrun, with the request's MAC, and wakes Result waiters.
func TestACancelRequestEndsTheTaskAtItsNextStart(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		b := e.b
		if _, err := b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e1")}); err != nil {
			t.Fatal(err)
		}
		m := fetchOne(t, b, "w")
		st := begin(t, b, m, "q/1", "w")
		lease := []redisq.Lease{{EntryID: m.EntryID, TaskID: "q/1", Token: st.Lease}}
		if got, err := b.Heartbeat(ctx, "q", "w", time.Minute, lease); err != nil || got[0] != redisq.LeaseHeld {
			t.Fatalf("heartbeat before the cancel = %v, %v", got, err)
		}
		if err := b.CancelTask(ctx, "q", "q/1", redisq.Place{State: redisq.StatePending}, "mac", time.Minute); !errors.Is(err, redisq.ErrMoved) {
			t.Errorf("cancel of a running task as if pending: %v, want ErrMoved", err)
		}
		if err := b.CancelTask(ctx, "q", "q/1", redisq.Place{State: redisq.StateRunning}, "k1:mac", time.Minute); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Heartbeat(ctx, "q", "w", time.Minute, lease); err != nil || got[0] != redisq.LeaseCancel {
			t.Fatalf("heartbeat after the cancel = %v, %v; want LeaseCancel", got, err)
		}
		settle(t, b, redisq.Settlement{Kind: redisq.Release, Message: m, TaskID: "q/1", Lease: st.Lease})
		if _, err := b.WatchState(ctx, "q", "q/1"); err != nil { // a Result waits
			t.Fatal(err)
		}
		m2 := fetchOne(t, b, "w2")
		again, err := b.StartDelivery(ctx, redisq.StartRequest{Message: m2, TaskID: "q/1", Consumer: "w2", Runs: 3, TTL: time.Minute})
		if err != nil || again.Outcome != redisq.StartFinished {
			t.Fatalf("start after the cancel = %+v, %v; want StartFinished", again, err)
		}
		s, err := b.GetState(ctx, "q", "q/1")
		if err != nil || s.State != redisq.StateCanceled || s.MAC != "k1:mac" || s.Reason != redisq.StateCanceled || s.Error != redisq.CancelMessage {
			t.Errorf("state = %+v, %v; want canceled with the request's MAC", s, err)
		}
		if ok, err := b.WaitDone(ctx, "q", "q/1", time.Second); !ok || err != nil {
			t.Errorf("done signal = %v, %v", ok, err)
		}
		if qs, err := b.QueueStats(ctx, "q"); err != nil || qs.Pending+qs.Running != 0 {
			t.Errorf("queue after the canceled start: %+v, %v; want empty", qs, err)
		}
	})
}

// Retries wait in the retry set, apart from the delayed set, and the promoter drains both;
// the state records the due time and the attempt's error in its history.
func TestRetriesWaitInTheirOwnSet(t *testing.T) {
	each(t, func(t *testing.T, e env) {
		ctx := context.Background()
		b := e.b
		b.Enqueue(ctx, redisq.Task{ID: "q/1", Kind: "k", Queue: "q", Envelope: []byte("e1")})
		b.Enqueue(ctx, redisq.Task{ID: "q/2", Kind: "k", Queue: "q", Envelope: []byte("e2"), Delay: time.Hour})
		m := fetchOne(t, b, "w")
		st := begin(t, b, m, "q/1", "w")
		settle(t, b, redisq.Settlement{Kind: redisq.Retry, Message: m, TaskID: "q/1", Lease: st.Lease, Delay: 50 * time.Millisecond, Error: "boom"})
		qs, err := b.QueueStats(ctx, "q")
		if err != nil || qs.Retrying != 1 || qs.Delayed != 1 {
			t.Fatalf("stats = %+v, %v; want 1 retrying, 1 delayed", qs, err)
		}
		h, _ := b.StateHash(ctx, "q", "q/1")
		if h[redisq.FieldDue] == "" || h[redisq.FieldHistory] == "" {
			t.Errorf("state %v: want its due time and history", h)
		}
		time.Sleep(100 * time.Millisecond)
		if moved, _, err := b.Promote(ctx, "q", 10); err != nil || moved != 1 {
			t.Errorf("Promote = %d, %v; want the retry moved", moved, err)
		}
		if m := fetchOne(t, b, "w"); string(m.Envelope) != "e1" {
			t.Errorf("promoted %q, want e1", m.Envelope)
		}
	})
}

package redisq_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/taskgen/taskgen/internal/redisq"
)

// The deliveries of one fetch begin together, each as StartDelivery would begin it: in
// order, on a server that forgot the start script, and with one whose task's state is of
// the wrong type failing alone, with ErrCorrupt, and the others begun.
func TestStartDeliveriesBeginsEachDeliveryAlone(t *testing.T) { each(t, testStartDeliveries) }

func testStartDeliveries(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	var ts []redisq.Task
	for i := range 5 {
		id := fmt.Sprintf("q/%d", i)
		ts = append(ts, redisq.Task{ID: id, Kind: "k", Queue: "q", Envelope: []byte(id)})
	}
	for i, r := range b.EnqueueMany(ctx, ts) {
		if r.Err != nil {
			t.Fatalf("enqueue %s: %v", ts[i].ID, r.Err)
		}
	}
	msgs := fetchAll(t, b, "q")
	if len(msgs) != len(ts) {
		t.Fatalf("fetched %d entries; want %d", len(msgs), len(ts))
	}
	// q/2's state is replaced by a string; q/3 is begun by a consumer that does not hold
	// its entry ("all" fetched it).
	if err := e.rdb.Set(ctx, e.keys.State("q/2"), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	reqs := make([]redisq.StartRequest, len(msgs))
	for i, m := range msgs {
		reqs[i] = startRequest(m, string(m.Envelope), "all")
	}
	reqs[3].Consumer = "other"
	starts, errs := b.StartDeliveries(ctx, reqs)
	for i := range reqs {
		switch i {
		case 2:
			if !errors.Is(errs[i], redisq.ErrCorrupt) {
				t.Errorf("start of q/2, whose state is a string: %+v, %v; want ErrCorrupt", starts[i], errs[i])
			}
		case 3:
			if errs[i] != nil || starts[i].Outcome != redisq.StartTaken {
				t.Errorf("start of q/3 by a consumer that does not hold it: %+v, %v; want StartTaken", starts[i], errs[i])
			}
		default:
			if errs[i] != nil || starts[i].Outcome != redisq.StartRun || starts[i].Attempts != 1 || starts[i].Lease != 1 {
				t.Errorf("start of %s = %+v, %v; want it begun, attempt 1, lease 1", reqs[i].TaskID, starts[i], errs[i])
			}
			if s, err := b.GetState(ctx, "q", reqs[i].TaskID); err != nil || s.State != redisq.StateRunning {
				t.Errorf("state of %s = %+v, %v; want running", reqs[i].TaskID, s, err)
			}
		}
	}
	if s, err := b.GetState(ctx, "q", "q/3"); err != nil || s.State != redisq.StatePending {
		t.Errorf("state of q/3, not begun = %+v, %v; want pending", s, err)
	}
}

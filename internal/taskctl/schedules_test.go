package taskctl

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// tickDef is a periodic task of the deployment's queue, run by a worker of its own.
var tickDef = task.Def{Kind: "ctl.tick", Queue: "ctlq", Schema: "v1:tick", Caller: true, Schedule: "@every 1s"}

// A worker leading a schedule shows in `taskctl schedules`, human and --json, with the
// spec, a next run after its last one and the leader's name; `queues` shows the dead
// letter cap that worker recorded.
func TestSchedulesAndTheDeadLetterCapAreShown(t *testing.T) {
	d := newDeployment(t, false)
	var wopts []task.WorkerOption
	for _, o := range d.opts {
		wopts = append(wopts, o)
	}
	wopts = append(wopts, task.WithQueues("ctlq"), task.WithConsumerName("ticker"), task.WithLease(lease),
		task.WithDeadLetterRetention(500, 2*time.Hour))
	w, err := task.NewWorker(d.rdb, wopts...)
	if err != nil {
		t.Fatal(err)
	}
	ran := make(chan string, 64)
	if err := task.Register(w, tickDef, func(ctx context.Context, caller task.Caller, _ struct{}) (struct{}, error) {
		ran <- caller.UserID
		return struct{}{}, nil
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	}()
	select {
	case who := <-ran:
		if who != "system:schedule:ctl.tick" {
			t.Errorf("a tick ran as %q, want the schedule's system caller", who)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no tick ran within 10s")
	}

	out, stderr, code := ctl(t, d.env, "schedules")
	if code != ExitOK || !strings.Contains(out, "ctl.tick") || !strings.Contains(out, "@every 1s") || !strings.Contains(out, "ticker") {
		t.Fatalf("schedules: exit %d\n%s%s", code, out, stderr)
	}
	out, stderr, code = ctl(t, d.env, "schedules", "--json")
	var got []scheduleJSON
	if err := json.Unmarshal([]byte(out), &got); code != ExitOK || err != nil || len(got) != 1 {
		t.Fatalf("schedules --json: exit %d, %v\n%s%s", code, err, out, stderr)
	}
	s := got[0]
	if s.Kind != tickDef.Kind || s.Queue != "ctlq" || s.Spec != "@every 1s" || s.Leader != "ticker" || s.Next == nil || s.Last == nil || !s.Next.After(*s.Last) {
		t.Errorf("schedules --json = %+v, want ctl.tick led by ticker, next after last", s)
	}

	// Two workers of ctlq recorded their caps; the queue shows the one recorded last,
	// and the cap the ticker set is one of the two the deployment's workers have.
	out, _, code = ctl(t, d.env, "queues")
	if code != ExitOK || !strings.Contains(out, "DEAD CAP") || !(strings.Contains(out, "500 entries / 2h0m0s") || strings.Contains(out, "100000 entries / 720h0m0s")) {
		t.Errorf("queues does not show the dead-letter cap:\n%s", out)
	}
}

package task_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

type observeKey struct{ name string }

// observed records what a ClientObserver and a WorkerObserver were told.
type observed struct {
	mu          sync.Mutex
	submissions []task.Submission
	submitEnds  []error
	submitIDs   []task.ID
	attempts    []task.AttemptStart
	ends        []task.AttemptEnd
	refusals    []task.Refusal
}

func (o *observed) client(inject func(context.Context, map[string]string)) task.ClientOption {
	return task.WithClientObserver(task.ClientObserver{
		Submit: func(ctx context.Context, s task.Submission) (context.Context, func(task.ID, error)) {
			o.mu.Lock()
			o.submissions = append(o.submissions, s)
			o.mu.Unlock()
			return context.WithValue(ctx, observeKey{"submit"}, "from the submit hook"), func(id task.ID, err error) {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.submitIDs, o.submitEnds = append(o.submitIDs, id), append(o.submitEnds, err)
			}
		},
		Inject: inject,
	})
}

func (o *observed) worker() task.WorkerOption {
	return task.WithWorkerObserver(task.WorkerObserver{
		Attempt: func(ctx context.Context, a task.AttemptStart) (context.Context, func(task.AttemptEnd)) {
			o.mu.Lock()
			o.attempts = append(o.attempts, a)
			o.mu.Unlock()
			return context.WithValue(ctx, observeKey{"attempt"}, a.Attempt), func(end task.AttemptEnd) {
				o.mu.Lock()
				defer o.mu.Unlock()
				o.ends = append(o.ends, end)
			}
		},
		Refused: func(r task.Refusal) {
			o.mu.Lock()
			defer o.mu.Unlock()
			o.refusals = append(o.refusals, r)
		},
	})
}

// The observers see every submit and every attempt with its outcome; the carrier that
// Inject writes from the submit hook's ctx arrives, without its empty entries, as the
// attempt's Trace; and the ctx the Attempt hook returns is the task function's.
func TestObserversSeeSubmitsAndAttempts(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		var o observed
		inject := func(ctx context.Context, carrier map[string]string) {
			carrier["traceparent"], _ = ctx.Value(observeKey{"submit"}).(string)
			carrier["tracestate"] = ""
		}
		c, err := task.NewClient(rdb, clientOptions(h.opts, o.client(inject))...)
		if err != nil {
			t.Fatal(err)
		}
		w := h.worker(t, o.worker())
		flaky := task.Def{Kind: "test.observed", Queue: "q1", MaxRetries: 1}
		var seen []any
		if err := task.RegisterWithInfo(w, flaky, func(ctx context.Context, info task.Info, _ task.Caller, _ string) (string, error) {
			o.mu.Lock()
			seen = append(seen, ctx.Value(observeKey{"attempt"}))
			o.mu.Unlock()
			if info.Attempt == 1 {
				return "", errors.New("first attempt fails")
			}
			return "ok", nil
		}); err != nil {
			t.Fatal(err)
		}
		run(t, w)
		id, err := task.Submit(context.Background(), c, flaky, task.Caller{}, "x")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wait[string](t, c, id); err != nil {
			t.Fatal(err)
		}

		o.mu.Lock()
		defer o.mu.Unlock()
		if len(o.submissions) != 1 || o.submissions[0].ID != id || o.submissions[0].Kind != flaky.Kind || o.submissions[0].Queue != "q1" ||
			o.submitIDs[0] != id || o.submitEnds[0] != nil {
			t.Errorf("submissions %+v ended with %v, %v; want one of %s ended without an error", o.submissions, o.submitIDs, o.submitEnds, id)
		}
		if len(o.attempts) != 2 || len(o.ends) != 2 {
			t.Fatalf("%d attempts and %d ends, want 2 of each", len(o.attempts), len(o.ends))
		}
		for i, a := range o.attempts {
			if a.ID != id || a.Attempt != i+1 || a.MaxRetries != 1 || a.Ready.IsZero() || a.Ready.After(time.Now()) ||
				!maps.Equal(a.Trace, map[string]string{"traceparent": "from the submit hook"}) {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
			if seen[i] != i+1 {
				t.Errorf("attempt %d: the function's ctx has %v from the Attempt hook, want %d", i+1, seen[i], i+1)
			}
		}
		if e := o.ends[0]; e.Outcome != task.OutcomeRetry || e.Err == nil || e.RetryIn <= 0 {
			t.Errorf("first attempt ended %+v, want a retry with its error and backoff", e)
		}
		if e := o.ends[1]; e.Outcome != task.OutcomeSucceeded || e.Err != nil || e.Reason != "" {
			t.Errorf("second attempt ended %+v, want succeeded", e)
		}
		if len(o.refusals) != 0 {
			t.Errorf("refusals %+v, want none", o.refusals)
		}
	})
}

// A carrier that breaks the envelope's limits fails the Submit, which the Submit hook
// sees end with the error.
func TestASubmitWithABadTraceCarrierFails(t *testing.T) {
	h := newHarness(t, redistest.Client(t))
	var o observed
	c, err := task.NewClient(h.rdb, clientOptions(h.opts, o.client(func(_ context.Context, carrier map[string]string) {
		carrier["Trace Parent"] = "x"
	}))...)
	if err != nil {
		t.Fatal(err)
	}
	_, err = task.Submit(context.Background(), c, task.Def{Kind: "test.observed", Queue: "q1"}, task.Caller{}, "x")
	if !errors.Is(err, task.ErrMalformed) {
		t.Fatalf("Submit: err = %v, want ErrMalformed", err)
	}
	if len(o.submitEnds) != 1 || !errors.Is(o.submitEnds[0], task.ErrMalformed) || o.submitIDs[0] != "" {
		t.Errorf("the Submit hook ended with %v, %v; want the error and no id", o.submitIDs, o.submitEnds)
	}
}

// A task interrupted by shutdown after running past several leases is one attempt,
// ended handed back with the time it ran.
func TestObserverSeesAHandBackOnShutdown(t *testing.T) {
	h := newHarness(t, redistest.Client(t))
	var o observed
	const lease = 300 * time.Millisecond
	w := h.worker(t, o.worker(), task.WithLease(lease), task.WithShutdownTimeout(100*time.Millisecond))
	d := task.Def{Kind: "test.observed.slow", Queue: "q1"}
	started := make(chan struct{})
	if err := task.Register(w, d, func(ctx context.Context, _ task.Caller, _ string) (string, error) {
		close(started)
		<-ctx.Done()
		return "", context.Cause(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	stop := run(t, w)
	if _, err := task.Submit(context.Background(), h.client, d, task.Caller{}, "x"); err != nil {
		t.Fatal(err)
	}
	<-started
	time.Sleep(4 * lease) // renewed by the heartbeat meanwhile
	stop()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.ends) != 1 || o.ends[0].Outcome != task.OutcomeHandedBack || o.ends[0].Took < 4*lease || o.ends[0].Err == nil {
		t.Fatalf("ends %+v, want one handed back after running at least %s, with its error", o.ends, 4*lease)
	}
}

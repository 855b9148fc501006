package task_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// roundTrips counts what a go-redis client sends: each pipeline and each single command
// is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		r.n.Add(1)
		return next(ctx, cmds)
	}
}

// Submits from many goroutines at once share pipelines: far fewer round trips than
// submits, and every task is enqueued once and run once.
func TestConcurrentSubmitsCoalesceIntoFewerRoundTrips(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		var trips roundTrips
		rdb.AddHook(&trips)
		h := newHarness(t, rdb)
		var mu sync.Mutex
		runs := map[string]int{}
		w := h.worker(t, task.WithConcurrency(32))
		err := task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			mu.Lock()
			defer mu.Unlock()
			runs[a.Msg]++
			return a.Msg, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		const goroutines, each = 50, 20
		ids := make([]task.ID, goroutines*each)
		start := trips.n.Load()
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range each {
					n := g*each + i
					id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: fmt.Sprint("m", n)})
					if err != nil {
						t.Error(err)
					}
					ids[n] = id
				}
			})
		}
		wg.Wait()
		sent := trips.n.Load() - start
		if sent >= goroutines*each/2 {
			t.Errorf("%d submits took %d round trips; want them coalesced into far fewer", goroutines*each, sent)
		}
		t.Logf("%d submits, %d round trips", goroutines*each, sent)
		run(t, w)
		for n, id := range ids {
			if got, err := wait[string](t, h.client, id); err != nil || got != fmt.Sprint("m", n) {
				t.Fatalf("task %d (%s) = %q, %v", n, id, got, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if len(runs) != goroutines*each {
			t.Errorf("%d tasks ran; want %d", len(runs), goroutines*each)
		}
		for msg, n := range runs {
			if n != 1 {
				t.Errorf("task %s ran %d times", msg, n)
			}
		}
	})
}

// A Submit whose ctx ends returns at once, while Redis does not answer; a task still
// waiting for a flush is then never sent.
func TestASubmitWaitingForAFlushReturnsWhenItsContextEnds(t *testing.T) {
	s := redistest.Start(t) // its own server: the test pauses it
	rdb := s.NewClient()
	defer rdb.Close()
	h := newHarness(t, rdb)
	// Register the queue and load the script first, so that the paused server holds up
	// the enqueue itself.
	if _, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "warm"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			s.Resume()
		}
	}()
	submit := func(msg string, within time.Duration) (time.Duration, error) {
		ctx, cancel := context.WithTimeout(context.Background(), within)
		defer cancel()
		began := time.Now()
		_, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: msg})
		return time.Since(began), err
	}
	// As many Submits as may be in flight each start a flush, which waits for the paused
	// server; the next one waits for a flush.
	type outcome struct {
		name   string
		took   time.Duration
		err    error
		within time.Duration
	}
	var wg sync.WaitGroup
	inFlight := make([]outcome, task.MaxFlushes)
	for i := range inFlight {
		o := &inFlight[i]
		o.name, o.within = fmt.Sprint("in flight #", i+1), 300*time.Millisecond
		wg.Go(func() { o.took, o.err = submit(o.name, o.within) })
		time.Sleep(50 * time.Millisecond) // its flush is sent, and waits for the paused server
	}
	waiting := outcome{name: "waiting", within: 100 * time.Millisecond}
	waiting.took, waiting.err = submit(waiting.name, waiting.within)
	wg.Wait()
	for _, r := range append(inFlight, waiting) {
		if !errors.Is(r.err, context.DeadlineExceeded) || r.took > r.within+time.Second {
			t.Errorf("the %s submit returned %v after %s; want DeadlineExceeded right after %s", r.name, r.err, r.took, r.within)
		}
	}
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	resumed = true
	// The flush in flight is answered now; the waiting task was taken off the list.
	ctx := context.Background()
	stream := redisq.QueueKeys(h.prefix, "q1").Stream()
	deadline := time.Now().Add(10 * time.Second)
	for {
		entries, err := rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) == 1+task.MaxFlushes || time.Now().After(deadline) {
			if len(entries) != 1+task.MaxFlushes {
				t.Fatalf("stream holds %d entries; want the warm-up task and the %d in flight", len(entries), task.MaxFlushes)
			}
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A later submit finds the client's flushing ended and goes through.
	if _, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "after"}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if n, err := rdb.XLen(ctx, stream).Result(); n != 2+task.MaxFlushes || err != nil {
		t.Errorf("stream length = %d, %v; want %d: the waiting task must never have been sent", n, err, 2+task.MaxFlushes)
	}
}

// A flush that fails hands its error to every Submit that shared it.
func TestAFailedFlushFailsEverySubmitInIt(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: time.Second})
	defer rdb.Close()
	h := newHarness(t, rdb)
	var wg sync.WaitGroup
	errs := make([]error, 20)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: fmt.Sprint(i)})
		})
	}
	wg.Wait()
	for i, err := range errs {
		var op *net.OpError
		if !errors.As(err, &op) {
			t.Errorf("submit %d: %v; want the connection's error", i, err)
		}
	}
}

// Submits while Redis stalls for longer than the client's read timeout, with a worker
// running: go-redis times out reads, may send a pipeline again on a fresh connection,
// and what was sent runs once Redis resumes, some of it while the worker already runs
// other tasks. Every Submit returns, with its ID or the timeout's error (its task may
// still have been enqueued, as Submit's doc says); every task whose ID came back runs,
// and no task runs twice. (TestAnEnqueueSentAgainWritesNothing, in internal/redisq,
// runs an enqueue twice for certain.)
func TestSubmitsThroughAStallLongerThanTheReadTimeoutRunOnce(t *testing.T) {
	s := redistest.Start(t) // its own server: the test pauses it
	const readTimeout, stall = time.Second, 2500 * time.Millisecond
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, ReadTimeout: readTimeout}) // MaxRetries: go-redis's 3
	defer rdb.Close()
	workerRDB := s.NewClient()
	defer workerRDB.Close()
	h := newHarness(t, rdb)
	var mu sync.Mutex
	runs := map[string]int{}
	w, err := task.NewWorker(workerRDB, workerOptions(h.opts, task.WithQueues("q1"), task.WithConcurrency(16))...)
	if err != nil {
		t.Fatal(err)
	}
	err = task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
		mu.Lock()
		runs[a.Msg]++
		mu.Unlock()
		time.Sleep(300 * time.Millisecond) // still running when a late copy of its enqueue lands
		return a.Msg, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := run(t, w)
	defer stop() // before the clients close
	if id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "warm"}); err != nil {
		t.Fatal(err)
	} else if _, err := wait[string](t, h.client, id); err != nil {
		t.Fatal(err)
	}

	if err := s.Pause(); err != nil {
		t.Fatal(err)
	}
	const submits = 12
	ids, errs, took := make([]task.ID, submits), make([]error, submits), make([]time.Duration, submits)
	var wg sync.WaitGroup
	for i := range submits {
		wg.Go(func() {
			began := time.Now()
			ids[i], errs[i] = task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: fmt.Sprint("m", i)})
			took[i] = time.Since(began)
		})
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(stall - submits*50*time.Millisecond)
	if err := s.Resume(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	enqueued := 0
	for i := range submits {
		switch {
		case took[i] > stall+5*readTimeout:
			t.Errorf("submit %d returned after %s", i, took[i])
		case errs[i] == nil:
			enqueued++
			if got, err := wait[string](t, h.client, ids[i]); err != nil || got != fmt.Sprint("m", i) {
				t.Errorf("task %d (%s) = %q, %v", i, ids[i], got, err)
			}
		default:
			t.Logf("submit %d: %v after %s (its task may still have been enqueued)", i, errs[i], took[i])
		}
	}
	if enqueued == 0 {
		t.Fatal("no submit got its task in: the stall outlasted every retry, and the test proves nothing")
	}
	time.Sleep(2 * time.Second) // for a duplicate to start, were one queued
	mu.Lock()
	defer mu.Unlock()
	for msg, n := range runs {
		if n != 1 {
			t.Errorf("task %s ran %d times", msg, n)
		}
	}
	t.Logf("%d of %d submits returned an ID; %d tasks ran", enqueued, submits, len(runs)-1)
}

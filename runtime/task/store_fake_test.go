package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// fakeStore stands in for Redis in the tests of the worker's decisions about failures. It
// hands out the messages it is given, begins every delivery, and fails where a test says.
// It is no model of Redis: the broker's own behaviour is tested against redis-server.
type fakeStore struct {
	mu       sync.Mutex
	pending  []redisq.Message
	tokens   map[string]int64 // entry -> lease token of its start
	settled  []redisq.Settlement
	tries    map[string]int // entry -> settle calls
	writes   int            // Settle calls: round trips of outcome writes
	beats    map[string]int // entry -> heartbeats that named it
	changed  chan struct{}  // signalled on every settle and heartbeat
	startErr error

	// settleErr, when set, answers each settle try; nil lets it land.
	settleErr func(s redisq.Settlement, try int) error
	// heartbeatErr, when set, fails every heartbeat.
	heartbeatErr error
	// status, when set, answers a heartbeat for each lease; nil: held.
	status func(l redisq.Lease) redisq.LeaseStatus
	// readErr, when set, fails the reads of a version skew (SkewSince, Schema).
	readErr error
}

func newFakeStore() *fakeStore {
	return &fakeStore{tokens: map[string]int64{}, tries: map[string]int{}, beats: map[string]int{}, changed: make(chan struct{}, 1)}
}

func (f *fakeStore) signal() {
	select {
	case f.changed <- struct{}{}:
	default:
	}
}

func (f *fakeStore) EnsureGroup(context.Context, string) error { return nil }

// FetchAfter hands out what is pending; it keeps no notify stream, so it never returns a
// mark to block from.
func (f *fakeStore) FetchAfter(ctx context.Context, queue, _ string, count int, block time.Duration, _ int, _ string) ([]redisq.Message, string, error) {
	f.mu.Lock()
	n := min(count, len(f.pending))
	msgs := append([]redisq.Message(nil), f.pending[:n]...)
	f.pending = f.pending[n:]
	f.mu.Unlock()
	if n == 0 {
		t := time.NewTimer(min(block, 20*time.Millisecond))
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	return msgs, "", nil
}

func (f *fakeStore) Reclaim(context.Context, string, string, time.Duration, int, string, []string) ([]redisq.Message, []redisq.Lost, string, error) {
	return nil, nil, redisq.ReclaimStart, nil
}

func (f *fakeStore) EndLost(context.Context, redisq.EndLost) (bool, error) { return false, nil }

func (f *fakeStore) PruneConsumers(context.Context, string, string, time.Duration) (int, error) {
	return 0, nil
}

func (f *fakeStore) Promote(context.Context, string, int) (int, time.Duration, error) {
	return 0, -1, nil
}

func (f *fakeStore) Heartbeat(_ context.Context, _, _ string, _ time.Duration, leases []redisq.Lease) ([]redisq.LeaseStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.signal()
	if f.heartbeatErr != nil {
		return nil, f.heartbeatErr
	}
	out := make([]redisq.LeaseStatus, len(leases))
	for i, l := range leases {
		f.beats[l.EntryID]++
		out[i] = redisq.LeaseHeld
		if f.status != nil {
			out[i] = f.status(l)
		}
	}
	return out, nil
}

func (f *fakeStore) StartDeliveries(_ context.Context, rs []redisq.StartRequest) ([]redisq.Start, []error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	starts, errs := make([]redisq.Start, len(rs)), make([]error, len(rs))
	for i, r := range rs {
		if f.startErr != nil {
			errs[i] = f.startErr
			continue
		}
		f.tokens[r.Message.EntryID]++
		starts[i] = redisq.Start{Outcome: redisq.StartRun, Attempts: 1, Lease: f.tokens[r.Message.EntryID]}
	}
	return starts, errs
}

func (f *fakeStore) SkewSince(context.Context, string, string) (time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Time{}, f.readErr
}

func (f *fakeStore) Schema(context.Context, string, string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "", false, f.readErr
}

func (f *fakeStore) Settle(_ context.Context, ss []redisq.Settlement) []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	defer f.signal()
	f.writes++
	errs := make([]error, len(ss))
	for i, s := range ss {
		f.tries[s.Message.EntryID]++
		if f.settleErr != nil {
			errs[i] = f.settleErr(s, f.tries[s.Message.EntryID])
		}
		if errs[i] == nil {
			f.settled = append(f.settled, s)
		}
	}
	return errs
}

// deliver queues a signed envelope of task d with args for the worker's next fetch and
// returns its entry id.
func (f *fakeStore) deliver(t *testing.T, w *Worker, d Def, args any) string {
	t.Helper()
	return f.deliverAs(t, w, d, Caller{}, args)
}

// deliverAs is deliver with a caller, sealed or not as w's keys have it.
func (f *fakeStore) deliverAs(t *testing.T, w *Worker, d Def, c Caller, args any) string {
	t.Helper()
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	id := newID(d.queue(), time.Now())
	e := &envelope.Envelope{ID: string(id), Kind: d.Kind, Queue: d.queue(), Schema: d.Schema,
		MaxRetries: d.MaxRetries, SubmittedAt: time.Now(), Args: raw}
	if !c.IsZero() {
		if err := w.keys.SetCaller(e, c.wire()); err != nil {
			t.Fatal(err)
		}
	}
	data, err := w.keys.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	entry := fmt.Sprintf("%d-0", len(f.tokens)+len(f.pending)+1)
	f.pending = append(f.pending, redisq.Message{Queue: d.queue(), EntryID: entry, Envelope: data})
	return entry
}

// waitUntil waits up to 20 s for cond, checked on every settle and heartbeat.
func (f *fakeStore) waitUntil(t *testing.T, what string, cond func(f *fakeStore) bool) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		f.mu.Lock()
		ok := cond(f)
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-f.changed:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (f *fakeStore) settledOf(entry string) []redisq.Settlement {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []redisq.Settlement
	for _, s := range f.settled {
		if s.Message.EntryID == entry {
			out = append(out, s)
		}
	}
	return out
}

// fakeWorker returns a worker on f. Its Redis client points nowhere: every Redis call
// goes to f.
func fakeWorker(t *testing.T, f *fakeStore, opts ...WorkerOption) *Worker {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { rdb.Close() })
	base := []WorkerOption{WithSigningKey("k1", []byte("fake-store-signing-key-0123456789")), WithQueues("q"),
		WithLease(300 * time.Millisecond), WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))}
	w, err := NewWorker(rdb, append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	w.store = f
	w.settler = newSettler(f, w.leases, w.log, w.cfg.concurrency)
	return w
}

// runFake runs w until the returned stop is called (or the test ends).
func runFake(t *testing.T, w *Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() { cancel(); err = <-done })
		return err
	}
	t.Cleanup(func() { stop() })
	return stop
}

var fakeDef = Def{Kind: "fake.work", Queue: "q", MaxRetries: 2, Schema: "v1:fake"}

type fakeArgs struct {
	Sleep time.Duration `json:"sleep"`
	Fail  bool          `json:"fail"`
}

// fakeTask sleeps as told, minding its context, and reports each run on runs.
func fakeTask(runs chan<- error) func(ctx context.Context, _ Caller, a fakeArgs) (string, error) {
	return func(ctx context.Context, _ Caller, a fakeArgs) (string, error) {
		var err error
		select {
		case <-time.After(a.Sleep):
			if a.Fail {
				err = errors.New("failed on purpose")
			}
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		if runs != nil {
			runs <- err
		}
		return "done", err
	}
}

var errRedisDown = errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")

// Redis down while the outcome is written: the write is tried again, with the lease
// renewed meanwhile, until it lands, once.
func TestAnOutcomeWriteThatFailsIsTriedAgainUntilItLands(t *testing.T) {
	f := newFakeStore()
	f.settleErr = func(_ redisq.Settlement, try int) error {
		if try <= 4 {
			return errRedisDown
		}
		return nil
	}
	w := fakeWorker(t, f)
	runs := make(chan error, 10)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	entry := f.deliver(t, w, fakeDef, fakeArgs{})
	runFake(t, w)
	f.waitUntil(t, "the outcome to land", func(f *fakeStore) bool { return len(f.settled) == 1 })
	got := f.settledOf(entry)
	if len(got) != 1 || got[0].Kind != redisq.Complete || string(got[0].Result) != `"done"` || got[0].Lease != 1 {
		t.Fatalf("settled %+v, want one complete with lease 1", got)
	}
	if len(runs) != 1 {
		t.Errorf("the task ran %d times, want once", len(runs))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tries[entry] != 5 || f.beats[entry] == 0 {
		t.Errorf("%d tries, %d heartbeats of the entry; want 5 tries with the lease renewed meanwhile", f.tries[entry], f.beats[entry])
	}
}

// A version skew met while Redis fails: the reads that would tell when the task was first
// handed back, and what its producer's schema is, fail, and so do the first writes of the
// hand-back, for longer than the lease. The task is still handed back, spending nothing,
// never dead-lettered for Redis's failure: a late dead letter beats a lost task.
func TestAVersionSkewIsHandedBackWhileRedisFails(t *testing.T) {
	f := newFakeStore()
	f.readErr = errRedisDown
	f.settleErr = func(_ redisq.Settlement, try int) error {
		if try <= 4 {
			return errRedisDown
		}
		return nil
	}
	w := fakeWorker(t, f)
	runs := make(chan error, 10)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	unknown := f.deliver(t, w, Def{Kind: "fake.newer", Queue: "q", Schema: "v1:fake"}, fakeArgs{})
	otherSchema := fakeDef
	otherSchema.Schema = "v2:another"
	mismatch := f.deliver(t, w, otherSchema, fakeArgs{})
	began := time.Now()
	runFake(t, w)
	f.waitUntil(t, "both hand-backs to land", func(f *fakeStore) bool { return len(f.settled) == 2 })
	for _, entry := range []string{unknown, mismatch} {
		got := f.settledOf(entry)
		if len(got) != 1 || got[0].Kind != redisq.Defer || got[0].Delay < time.Second {
			t.Errorf("entry %s settled %+v, want one hand-back after at least a second", entry, got)
		}
	}
	if took := time.Since(began); took < w.cfg.lease {
		t.Errorf("the failing writes lasted %s, want longer than the lease (%s)", took, w.cfg.lease)
	}
	if len(runs) != 0 {
		t.Errorf("the task ran %d times, want never", len(runs))
	}
}

// A write the scripts refused (another worker owns the task now) is final: not tried
// again, and the lease is let go.
func TestAFencedOffOutcomeIsNotTriedAgain(t *testing.T) {
	f := newFakeStore()
	f.settleErr = func(redisq.Settlement, int) error { return fmt.Errorf("complete: %w", redisq.ErrFenced) }
	w := fakeWorker(t, f)
	if err := Register(w, fakeDef, fakeTask(nil)); err != nil {
		t.Fatal(err)
	}
	entry := f.deliver(t, w, fakeDef, fakeArgs{})
	runFake(t, w)
	f.waitUntil(t, "the write to be tried", func(f *fakeStore) bool { return f.tries[entry] == 1 })
	waitLeases(t, w, 0)
	time.Sleep(200 * time.Millisecond)
	if n := f.triesOf(entry); n != 1 {
		t.Errorf("the fenced-off write was tried %d times, want once", n)
	}
}

func (f *fakeStore) triesOf(entry string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries[entry]
}

func waitLeases(t *testing.T, w *Worker, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for w.leases.count() != n {
		if time.Now().After(deadline) {
			t.Fatalf("the worker holds %d leases, want %d", w.leases.count(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A slot is freed when the task function returns, not when its outcome is written: with
// one slot and Redis refusing writes, the next task still runs.
func TestASlotIsFreedWhenTheFunctionReturns(t *testing.T) {
	f := newFakeStore()
	block := make(chan struct{})
	f.settleErr = func(s redisq.Settlement, _ int) error {
		select {
		case <-block:
			return nil
		default:
			return errRedisDown
		}
	}
	w := fakeWorker(t, f, WithConcurrency(1))
	runs := make(chan error, 10)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	first := f.deliver(t, w, fakeDef, fakeArgs{})
	second := f.deliver(t, w, fakeDef, fakeArgs{})
	runFake(t, w)
	for range 2 {
		select {
		case <-runs:
		case <-time.After(10 * time.Second):
			t.Fatal("the second task did not run while the first's outcome was unwritten")
		}
	}
	close(block)
	f.waitUntil(t, "both outcomes", func(f *fakeStore) bool { return len(f.settled) == 2 })
	if len(f.settledOf(first)) != 1 || len(f.settledOf(second)) != 1 {
		t.Errorf("settled %+v", f.settled)
	}
}

// A heartbeat that cannot reach Redis stops nothing: a run four leases long goes on and
// its outcome is written.
func TestFailingHeartbeatsStopNoRun(t *testing.T) {
	f := newFakeStore()
	f.heartbeatErr = errRedisDown
	w := fakeWorker(t, f)
	runs := make(chan error, 1)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	entry := f.deliver(t, w, fakeDef, fakeArgs{Sleep: 1200 * time.Millisecond})
	runFake(t, w)
	if err := <-runs; err != nil {
		t.Fatalf("the run ended with %v", err)
	}
	f.waitUntil(t, "the outcome", func(f *fakeStore) bool { return len(f.settled) == 1 })
	if got := f.settledOf(entry); got[0].Kind != redisq.Complete {
		t.Errorf("settled %+v, want complete", got)
	}
}

// A lease taken over mid-run stops the run with errLeaseLost as its context's cause, and
// the failure it returns is not written: the new owner decides.
func TestALeaseTakenMidRunStopsTheRunAndWritesNothing(t *testing.T) {
	f := newFakeStore()
	f.status = func(l redisq.Lease) redisq.LeaseStatus {
		if l.Token > 0 {
			return redisq.LeaseTaken
		}
		return redisq.LeaseHeld
	}
	w := fakeWorker(t, f)
	runs := make(chan error, 1)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, w, fakeDef, fakeArgs{Sleep: time.Minute})
	runFake(t, w)
	select {
	case err := <-runs:
		if !errors.Is(err, errLeaseLost) {
			t.Errorf("the run's context ended with cause %v, want errLeaseLost", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the run went on after its lease was taken")
	}
	waitLeases(t, w, 0)
	if len(f.settled) != 0 || len(f.tries) != 0 {
		t.Errorf("the stopped run wrote %+v", f.settled)
	}
}

// A delivery whose start cannot be written does not run and writes nothing: its lease is
// let go, so it is taken over once the lease runs out.
func TestADeliveryThatCannotBeginDoesNotRun(t *testing.T) {
	f := newFakeStore()
	f.startErr = errRedisDown
	w := fakeWorker(t, f)
	runs := make(chan error, 1)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, w, fakeDef, fakeArgs{})
	runFake(t, w)
	waitLeases(t, w, 0)
	time.Sleep(100 * time.Millisecond)
	if len(runs) != 0 || len(f.settled) != 0 {
		t.Errorf("ran %d times, wrote %+v; want nothing", len(runs), f.settled)
	}
}

// A run longer than every internal timeout of the worker records its outcome: the write's
// context is made when the write starts, not when the task did.
func TestARunLongerThanTheWriteTimeoutRecordsItsOutcome(t *testing.T) {
	f := newFakeStore()
	w := fakeWorker(t, f)
	if err := Register(w, fakeDef, fakeTask(nil)); err != nil {
		t.Fatal(err)
	}
	entry := f.deliver(t, w, fakeDef, fakeArgs{Sleep: settleWriteTimeout + startTimeout + time.Second})
	runFake(t, w)
	f.waitUntil(t, "the outcome", func(f *fakeStore) bool { return len(f.settled) == 1 })
	if got := f.settledOf(entry); got[0].Kind != redisq.Complete {
		t.Errorf("settled %+v, want complete", got)
	}
}

// Shutdown: a run still going when the shutdown timeout ends is cancelled with
// errShutdown and handed back; the hand-back is written after the run ended.
func TestShutdownHandsBackARunningTask(t *testing.T) {
	f := newFakeStore()
	w := fakeWorker(t, f, WithShutdownTimeout(100*time.Millisecond))
	runs := make(chan error, 1)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	entry := f.deliver(t, w, fakeDef, fakeArgs{Sleep: time.Minute})
	stop := runFake(t, w)
	f.waitUntil(t, "the run to begin", func(f *fakeStore) bool { return f.tokens[entry] == 1 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := <-runs; !errors.Is(err, errShutdown) {
		t.Errorf("the run's context ended with cause %v, want errShutdown", err)
	}
	if got := f.settledOf(entry); len(got) != 1 || got[0].Kind != redisq.Release || got[0].Lease != 1 {
		t.Errorf("settled %+v, want one release with lease 1", got)
	}
}

// Shutdown with Redis away: Run gives up the unwritten outcome after one lease, and
// returns; the task runs again elsewhere when its lease runs out.
func TestShutdownGivesUpUnwritableOutcomesAfterALease(t *testing.T) {
	f := newFakeStore()
	f.settleErr = func(redisq.Settlement, int) error { return errRedisDown }
	w := fakeWorker(t, f)
	runs := make(chan error, 1)
	if err := Register(w, fakeDef, fakeTask(runs)); err != nil {
		t.Fatal(err)
	}
	f.deliver(t, w, fakeDef, fakeArgs{})
	stop := runFake(t, w)
	<-runs
	done := make(chan error, 1)
	go func() { done <- stop() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return with its outcome unwritable")
	}
	if w.leases.count() != 0 {
		t.Errorf("%d leases still held after Run returned", w.leases.count())
	}
}

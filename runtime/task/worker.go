package task

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Worker runs registered tasks from its queues. Register tasks (RegisterTasks of each
// generated package), then call Run.
type Worker struct {
	cfg    workerConfig
	keys   *envelope.Keyring
	broker *redisq.Broker
	log    *slog.Logger

	mu       sync.Mutex
	handlers map[string]*handler
	started  atomic.Bool

	inflightMu sync.Mutex
	// inflight holds, per queue, the stream entries being run here, each with the cancel
	// of its run: a task whose lease another worker took over is stopped.
	inflight map[string]map[string]context.CancelCauseFunc

	// promote wakes a queue's promoter when this worker schedules a retry, so a short
	// backoff is not stretched to the promoter's idle interval.
	promote map[string]chan struct{}
}

// NewWorker returns a worker over rdb (one server, Sentinel or Cluster). A signing key is
// required (WithSigningKey): the worker verifies every envelope and re-signs retries.
func NewWorker(rdb redis.UniversalClient, opts ...WorkerOption) (*Worker, error) {
	cfg, keys, err := newWorkerConfig(rdb, opts)
	if err != nil {
		return nil, fmt.Errorf("task.NewWorker: %w", err)
	}
	return &Worker{
		cfg: cfg, keys: keys, broker: redisq.New(rdb, cfg.prefix),
		log:      cfg.logger.With("consumer", cfg.consumer),
		handlers: map[string]*handler{}, inflight: map[string]map[string]context.CancelCauseFunc{},
		promote: promoteSignals(cfg.queues),
	}, nil
}

// Kinds returns the registered task kinds, sorted.
func (w *Worker) Kinds() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := make([]string, 0, len(w.handlers))
	for k := range w.handlers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Run fetches and runs tasks until ctx ends. Then it stops fetching, waits up to the
// shutdown timeout (WithShutdownTimeout) for running tasks, cancels the contexts of those
// still running and returns once they have returned. A task that ends because of that
// cancellation is handed back to its queue unspent, for another worker to run at once.
// Run may be called once.
func (w *Worker) Run(ctx context.Context) error {
	if len(w.Kinds()) == 0 {
		// Such a worker would dead-letter every task of its queues as an unknown kind.
		return errors.New("task.Worker.Run: no task registered; call the RegisterTasks of your task packages first")
	}
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("task.Worker.Run called twice")
	}
	w.warnUnconsumed()
	w.log.Info("worker started", "queues", w.cfg.queues, "kinds", w.Kinds(), "concurrency", w.cfg.concurrency)

	// Tasks run under a context of their own, derived from nothing the caller of Run or
	// the submitter holds; it is cancelled only when the shutdown timeout runs out.
	taskCtx, cancelTasks := context.WithCancel(context.Background())
	defer cancelTasks()
	slots := make(chan struct{}, w.cfg.concurrency)
	var loops, tasks sync.WaitGroup
	start := func(m redisq.Message) {
		mctx, cancel := context.WithCancelCause(taskCtx)
		w.track(m, cancel)
		tasks.Add(1)
		go func() {
			defer func() { <-slots }()
			defer tasks.Done()
			defer cancel(nil)
			defer w.track(m, nil)
			w.process(mctx, m)
		}()
	}
	for _, q := range w.cfg.queues {
		loops.Add(2)
		go func() { defer loops.Done(); w.fetchLoop(ctx, q, slots, start) }()
		go func() { defer loops.Done(); w.promoteLoop(ctx, q) }()
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	go func() { defer close(hbDone); w.heartbeatLoop(hbCtx) }()

	<-ctx.Done()
	loops.Wait()
	w.log.Info("worker stopping: draining running tasks", "timeout", w.cfg.shutdownTimeout)
	drained := make(chan struct{})
	go func() { tasks.Wait(); close(drained) }()
	var err error
	select {
	case <-drained:
	case <-time.After(w.cfg.shutdownTimeout):
		w.log.Warn("shutdown timeout: cancelling running tasks")
		cancelTasks()
		select {
		case <-drained:
		case <-time.After(w.cfg.lease):
			err = errors.New("task.Worker.Run: tasks ignored their cancelled context; their leases will expire and other workers will run them again")
		}
	}
	stopHeartbeat()
	<-hbDone
	w.log.Info("worker stopped")
	return err
}

func (w *Worker) warnUnconsumed() {
	consumed := map[string]bool{}
	for _, q := range w.cfg.queues {
		consumed[q] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range w.handlers {
		if !consumed[h.def.queue()] {
			w.log.Warn("registered task's queue is not consumed by this worker (WithQueues)", "kind", h.def.Kind, "queue", h.def.queue())
		}
	}
}

// acquire takes one slot, waiting, then up to max-1 more without waiting. It returns 0
// when ctx ended first.
func acquire(ctx context.Context, slots chan struct{}, max int) int {
	select {
	case slots <- struct{}{}:
	case <-ctx.Done():
		return 0
	}
	if ctx.Err() != nil {
		// Both were ready and select chose the slot: do not start a fetch after the end.
		<-slots
		return 0
	}
	return 1 + tryAcquire(slots, max-1)
}

// tryAcquire takes up to max slots without waiting and returns how many it took.
func tryAcquire(slots chan struct{}, max int) int {
	for n := 0; n < max; n++ {
		select {
		case slots <- struct{}{}:
		default:
			return n
		}
	}
	return max
}

func release(slots chan struct{}, n int) {
	for range n {
		<-slots
	}
}

const (
	fetchBatch = 16
	fetchBlock = time.Second
)

// fetchLoop feeds the worker from one queue: entries whose lease ran out (a worker died
// holding them) first, every half lease, then new entries.
func (w *Worker) fetchLoop(ctx context.Context, queue string, slots chan struct{}, start func(redisq.Message)) {
	var fails int
	var lastReclaim time.Time
	reclaims := 0
	cursor := "0-0" // where the scan for orphaned entries goes on
	ready := false
	for ctx.Err() == nil {
		if !ready {
			if err := w.broker.EnsureGroup(ctx, queue); err != nil {
				w.pause(ctx, &fails, "cannot create consumer group", err)
				continue
			}
			ready = true
		}
		n := acquire(ctx, slots, fetchBatch)
		if n == 0 {
			return
		}
		// The read is not cancelled with ctx: entries Redis hands over while shutdown
		// begins must be started, not left leased to a worker that no longer runs them.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchBlock+5*time.Second)
		var msgs []redisq.Message
		var err error
		if time.Since(lastReclaim) >= w.cfg.lease/2 {
			lastReclaim = time.Now()
			if reclaims++; reclaims%20 == 1 {
				if n, err := w.broker.PruneConsumers(rctx, queue, w.cfg.consumer, pruneAfter(w.cfg.lease)); err != nil {
					w.log.Warn("cannot prune departed consumers", "queue", queue, "err", err)
				} else if n > 0 {
					w.log.Info("pruned departed consumers", "queue", queue, "count", n)
				}
			}
			msgs, cursor, err = w.broker.Reclaim(rctx, queue, w.cfg.consumer, w.cfg.lease, n, cursor)
			for _, m := range msgs {
				w.log.Warn("took over a task whose worker stopped renewing its lease", "queue", queue, "entry", m.EntryID)
			}
		}
		if err == nil && len(msgs) == 0 {
			msgs, err = w.broker.Fetch(rctx, queue, w.cfg.consumer, n, fetchBlock)
		}
		cancel()
		release(slots, n-len(msgs))
		// Entries handed over are this worker's even when the call then failed: run them.
		for _, m := range msgs {
			start(m)
		}
		if err != nil {
			ready = !errors.Is(err, redisq.ErrNoGroup)
			w.pause(ctx, &fails, "fetch failed", err)
			continue
		}
		fails = 0
	}
}

// pruneAfter is how long a consumer holding nothing must have been silent before it is
// taken for a departed worker; a running worker reads every second.
func pruneAfter(lease time.Duration) time.Duration { return max(10*lease, time.Minute) }

// pause logs a Redis failure and sleeps with exponential backoff, so that a worker
// whose Redis is away neither spins nor gives up.
func (w *Worker) pause(ctx context.Context, fails *int, msg string, err error) {
	*fails++
	d := min(50*time.Millisecond<<min(*fails, 7), 5*time.Second)
	level := slog.LevelDebug
	if *fails == 1 || *fails%20 == 0 {
		level = slog.LevelError
	}
	w.log.Log(ctx, level, msg, "err", err, "failures", *fails, "retry_in", d)
	sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

const promoteBatch = 100

func promoteSignals(queues []string) map[string]chan struct{} {
	m := map[string]chan struct{}{}
	for _, q := range queues {
		m[q] = make(chan struct{}, 1)
	}
	return m
}

func (w *Worker) wakePromoter(queue string) {
	select {
	case w.promote[queue] <- struct{}{}:
	default:
	}
}

func (w *Worker) promoteLoop(ctx context.Context, queue string) {
	var fails int
	for ctx.Err() == nil {
		n, err := w.broker.Promote(ctx, queue, time.Now(), promoteBatch)
		if err != nil {
			w.pause(ctx, &fails, "promote failed", err)
			continue
		}
		fails = 0
		if n == promoteBatch {
			continue
		}
		wait := time.Second
		if next, ok, err := w.broker.NextDue(ctx, queue); err == nil && ok {
			wait = min(max(time.Until(next), 5*time.Millisecond), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-w.promote[queue]:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// track records that entry m runs here, with the cancel of its run, or with nil that it
// stopped.
func (w *Worker) track(m redisq.Message, cancel context.CancelCauseFunc) {
	w.inflightMu.Lock()
	defer w.inflightMu.Unlock()
	runs := w.inflight[m.Queue]
	if runs == nil {
		runs = map[string]context.CancelCauseFunc{}
		w.inflight[m.Queue] = runs
	}
	if cancel != nil {
		runs[m.EntryID] = cancel
	} else {
		delete(runs, m.EntryID)
	}
}

// errLeaseLost is the cause of a run's cancellation when another worker took its entry
// over: that worker runs the task now, so this run must stop and settle nothing.
var errLeaseLost = errors.New("lease lost: another worker took the task over")

func (w *Worker) heartbeatLoop(ctx context.Context) {
	for {
		sleep(ctx, w.cfg.lease/3)
		if ctx.Err() != nil {
			return
		}
		w.inflightMu.Lock()
		batch := map[string][]string{}
		for q, runs := range w.inflight {
			for id := range runs {
				batch[q] = append(batch[q], id)
			}
		}
		w.inflightMu.Unlock()
		for q, ids := range batch {
			lost, err := w.broker.Heartbeat(ctx, q, w.cfg.consumer, ids...)
			if err != nil && ctx.Err() == nil {
				w.log.Error("lease heartbeat failed", "queue", q, "err", err)
			}
			for _, id := range lost {
				w.log.Warn("lost the lease of a running task to another worker: stopping this run", "queue", q, "entry", id)
				w.inflightMu.Lock()
				if cancel := w.inflight[q][id]; cancel != nil {
					cancel(errLeaseLost)
				}
				w.inflightMu.Unlock()
			}
		}
	}
}

// settleTimeout bounds the Redis writes that record an outcome. They run under a context
// of their own, so a task finished during shutdown is still recorded.
const settleTimeout = 10 * time.Second

// process verifies one delivered envelope and runs its task. Anything that cannot be
// verified or resolved ends the task at once, with the reason, in the dead-letter stream.
func (w *Worker) process(ctx context.Context, m redisq.Message) {
	sctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	log := w.log.With("queue", m.Queue, "entry", m.EntryID)
	untrusted := func(reason string, err error) {
		log.Error("task refused", "reason", reason, "err", err)
		f := redisq.Failure{ID: claimedID(m.Envelope, m.Queue), Untrusted: true, Reason: reason, Error: err.Error()}
		unsettled(log, w.broker.Dead(sctx, m, f, w.cfg.resultTTL), "cannot dead-letter refused task")
	}
	if m.Envelope == nil {
		untrusted(ReasonMalformed, fmt.Errorf("%w: stream entry has no %q field", ErrMalformed, redisq.EnvelopeField))
		return
	}
	e, err := w.keys.Open(m.Envelope, w.cfg.maxEnvelope)
	if err != nil {
		untrusted(errorReason(err), err)
		return
	}
	if e.Queue != m.Queue {
		untrusted(ReasonBadSignature, fmt.Errorf("%w: envelope signed for queue %q found on queue %q", ErrBadSignature, e.Queue, m.Queue))
		return
	}
	log = log.With("id", e.ID, "kind", e.Kind, "attempt", e.Attempt+1)
	dead := func(reason string, err error, attempts int) {
		log.Error("task failed for good", "reason", reason, "err", err)
		f := redisq.Failure{ID: e.ID, Kind: e.Kind, Reason: reason, Error: err.Error(), Attempts: attempts}
		unsettled(log, w.broker.Dead(sctx, m, f, w.cfg.resultTTL), "cannot dead-letter task")
	}
	fail := func(err error, attempts int) {
		reason := errorReason(err)
		if reason == "" {
			reason = ReasonRetriesSpent
		}
		dead(reason, err, attempts)
	}
	h, ok := w.handler(e.Kind)
	if !ok {
		fail(fmt.Errorf("%w: %q is not registered on this worker (registered: %v)", ErrUnknownKind, e.Kind, w.Kinds()), e.Attempt)
		return
	}
	if e.Schema != h.def.Schema {
		fail(fmt.Errorf("%w: envelope has %q, worker has %q: submitter and worker were built from different versions of the task", ErrSchemaMismatch, e.Schema, h.def.Schema), e.Attempt)
		return
	}
	caller, err := w.caller(e)
	if err != nil {
		fail(err, e.Attempt)
		return
	}
	// The caller's user id and expiry go to the logs, never into Redis: what the worker
	// writes there (states, dead-letter reasons and errors) holds no caller data, so a
	// sealed caller stays sealed.
	log = log.With("caller", caller)
	if w.keys.Sealing() && len(e.Caller) > 0 {
		log.Warn("caller arrived unsealed although this worker seals: the submitting client has no WithSealKey, so its callers' tokens rest in Redis in clear")
	}
	if h.def.Caller && caller.IsZero() {
		fail(fmt.Errorf("%w: the envelope carries no caller", ErrNoCaller), e.Attempt)
		return
	}
	if caller.Expired(time.Now(), w.cfg.clockSkew) {
		fail(fmt.Errorf("%w before the task started", ErrCallerExpired), e.Attempt)
		return
	}
	if lost := m.Deliveries - 1; lost > e.MaxRetries {
		dead(ReasonWorkerLost, fmt.Errorf("the workers running this task died or lost its lease %d times; it may crash its worker", lost), e.Attempt+lost)
		return
	}
	attempt := e.Attempt + 1
	if ok, err := w.broker.Start(sctx, m, e.ID, attempt); err != nil {
		log.Warn("cannot record running state", "err", err)
	} else if !ok {
		log.Warn("dropped a delivery of a task that has finished already (a replayed or duplicate entry)")
		return
	}
	timeout := e.Timeout()
	if timeout <= 0 {
		timeout = w.cfg.defaultTimeout
	}
	runCtx, cancelRun := context.WithTimeout(ctx, timeout)
	began := time.Now()
	result, err := call(runCtx, h, caller, e.Args, log)
	cancelRun()
	log = log.With("took", time.Since(began).Round(time.Microsecond))
	if err == nil {
		if unsettled(log, w.broker.Complete(sctx, m, e.ID, attempt, result, w.cfg.resultTTL), "task succeeded but its result could not be stored") {
			return
		}
		log.Info("task succeeded")
		return
	}
	if errors.Is(context.Cause(ctx), errLeaseLost) {
		log.Warn("task run stopped: another worker took it over and settles it", "err", err)
		return
	}
	if ctx.Err() != nil {
		// The worker is shutting down and cancelled the task: hand it back unspent.
		if unsettled(log, w.broker.Release(sctx, m, e.ID), "cannot hand task back at shutdown") {
			return
		}
		log.Warn("task interrupted by shutdown, handed back to the queue", "err", err)
		return
	}
	if errorReason(err) != "" || attempt > e.MaxRetries {
		fail(err, attempt)
		return
	}
	next := *e
	next.Attempt = attempt
	data, serr := w.keys.Sign(&next)
	if serr != nil {
		fail(fmt.Errorf("re-sign for retry: %w (after: %v)", serr, err), attempt)
		return
	}
	delay := w.backoff(attempt)
	if unsettled(log, w.broker.Retry(sctx, m, e.ID, attempt, data, time.Now().Add(delay), err.Error()), "cannot schedule retry") {
		return
	}
	w.wakePromoter(m.Queue)
	log.Warn("task failed, will retry", "err", err, "retry_in", delay.Round(time.Millisecond), "retries_left", e.MaxRetries-attempt+1)
}

// claimedID returns the task id that an envelope the worker could not verify claims, when
// it is an id of queue. That task's state then records the refusal, if the task exists
// and has not finished: a submitter whose envelopes this worker cannot verify (signed with
// a key it lacks, larger than its limit) gets the reason from Result instead of waiting
// forever.
func claimedID(raw []byte, queue string) string {
	id := envelope.PeekID(raw)
	if q, err := ID(id).parse(); err != nil || q != queue {
		return ""
	}
	return id
}

// unsettled logs why a delivery could not be settled and reports whether it was not.
// Either another worker settled it first (it took the task over when this one lost its
// lease), and its outcome stands; or Redis failed, and the entry stays leased to this
// worker, so another one runs it again when the lease runs out: nothing is lost.
func unsettled(log *slog.Logger, err error, what string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, redisq.ErrSettled):
		log.Warn(what+": another worker settled this delivery first; its outcome stands", "err", err)
	default:
		log.Error(what+"; the task stays leased and runs again when the lease runs out", "err", err)
	}
	return true
}

func (w *Worker) caller(e *envelope.Envelope) (Caller, error) {
	wc, err := w.keys.Caller(e)
	if err != nil || wc == nil {
		return Caller{}, err
	}
	return Caller{UserID: wc.UserID, Token: NewSecret(wc.Token), ExpiresAt: wc.ExpiresAt, Scopes: wc.Scopes}, nil
}

// call runs the task function, turning a panic into an error: a panicking task is a
// failed attempt, not a dead worker.
func call(ctx context.Context, h *handler, caller Caller, args []byte, log *slog.Logger) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("task panicked", "panic", r, "stack", string(debug.Stack()))
			err = fmt.Errorf("task panicked: %v", r)
		}
	}()
	return h.run(ctx, caller, args)
}

// backoff returns the delay before retry number attempt: base·2^(attempt-1) capped at
// max, of which the upper half is random so that retries of many tasks spread out.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.backoffBase
	for i := 1; i < attempt && d < w.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.backoffMax)
	half := d / 2
	j, err := rand.Int(rand.Reader, big.NewInt(int64(half)+1))
	if err != nil {
		return d
	}
	return half + time.Duration(j.Int64())
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

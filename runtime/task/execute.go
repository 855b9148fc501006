package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// startTimeout bounds the write that begins a delivery.
const startTimeout = 5 * time.Second

// errShutdown is the cause of a run's cancellation when the worker's shutdown timeout
// ran out: the task is handed back unspent, for another worker to run at once.
var errShutdown = errors.New("worker shutting down: the task is handed back to its queue")

// handle takes one delivery, admitted and begun by beginAll, to its outcome: execute
// finds the remaining facts, decide chooses the outcome, and the settler writes it.
// freeSlot is called as soon as the task function returns (or when it will not run),
// before anything is written.
func (w *Worker) handle(r *run, d delivery, freeSlot func()) {
	d = w.execute(r, d, freeSlot)
	out := decide(d.facts)
	w.observe(r.msg, &d, out)
	w.settle(r, d, out)
}

// delivery is what execute learned of one delivery.
type delivery struct {
	facts
	env    *envelope.Envelope // nil when it did not verify
	result []byte
	took   time.Duration
	// What every log line of the delivery names (see attrs): the queue, whether the
	// attempt is known (the delivery began, or an inline run) and the caller, once read.
	queue      string
	attempted  bool
	caller     Caller
	callerRead bool
	inline     bool // a runtime/tasktest run
	// startErr is why the delivery could not begin: Redis failed, nothing was written.
	startErr error
	// entry is the stream entry's id ("" for an inline run); attemptEnd is the
	// WorkerObserver's end of the attempt, nil when none began.
	entry      string
	attemptEnd func(AttemptEnd)
}

// beginAll admits each delivery of rs, the entries of one fetch, and begins those that
// verified in one round trip: one start script each, pipelined. The deliveries it returns
// are in the order of rs.
func (w *Worker) beginAll(rs []*run) []delivery {
	ds := make([]delivery, len(rs))
	var reqs []redisq.StartRequest
	var which []int // the index in rs of each of reqs
	for i, r := range rs {
		ds[i] = w.admit(r.msg)
		if ds[i].refusal == nil {
			e := ds[i].env
			reqs = append(reqs, redisq.StartRequest{
				Message: r.msg, TaskID: e.ID, Consumer: w.cfg.consumer, Runs: e.MaxRetries + 1, TTL: w.cfg.resultTTL,
			})
			which = append(which, i)
		}
	}
	if len(reqs) == 0 {
		return ds
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	starts, errs := w.store.StartDeliveries(ctx, reqs)
	cancel()
	for j, i := range which {
		w.begun(rs[i], &ds[i], starts[j], errs[j])
	}
	return ds
}

// admit verifies the envelope of m: the part of a delivery that needs neither Redis nor
// the task's record. The delivery it returns has a refusal, or its verified envelope.
func (w *Worker) admit(m redisq.Message) delivery {
	d := delivery{entry: m.EntryID, queue: m.Queue}
	d.now = time.Now()
	untrusted := func(err error) delivery {
		d.refusal, d.untrusted = err, true
		return d
	}
	if m.Oversized {
		return untrusted(fmt.Errorf("%w: stream entry of %d bytes, over this worker's limit of %d (WithMaxEnvelopeSize); it was not read", ErrMalformed, m.Size, w.cfg.maxEnvelope))
	}
	if m.Envelope == nil {
		return untrusted(fmt.Errorf("%w: stream entry has no %q field", ErrMalformed, redisq.EnvelopeField))
	}
	e, err := w.keys.Open(m.Envelope, w.cfg.maxEnvelope)
	if err != nil {
		return untrusted(err)
	}
	if e.Queue != m.Queue {
		return untrusted(fmt.Errorf("%w: envelope signed for queue %q found on queue %q", ErrBadSignature, e.Queue, m.Queue))
	}
	d.env, d.maxRetries = e, e.MaxRetries
	if err := w.checkStale(e); err != nil {
		// Refused by entry: the task's record may have expired long ago, and a copy must
		// not end a task that is still running.
		return untrusted(err)
	}
	return d
}

// begun records in d what the start script of r's delivery answered, and gives r its
// lease when the delivery began.
func (w *Worker) begun(r *run, d *delivery, st redisq.Start, err error) {
	switch {
	case errors.Is(err, redisq.ErrCorrupt):
		d.refusal, d.untrusted = fmt.Errorf("%w: %v", errCorrupt, err), true
		return
	case err != nil:
		// Nothing began: the entry stays leased to this worker until the lease runs out,
		// then it is taken over, by this worker too.
		d.startErr = err
		return
	}
	d.start, d.attempt = st.Outcome, st.Attempts
	switch st.Outcome {
	case redisq.StartNoRecord:
		d.refusal, d.untrusted = errNoRecord, true
	case redisq.StartRun, redisq.StartWorkerLost:
		r.begin(d.env.ID, st.Lease)
		d.attempted = true
	}
}

// execute runs the task function of a delivery beginAll began, with a context of its own,
// once its kind, schema and caller check out.
func (w *Worker) execute(r *run, d delivery, freeSlot func()) delivery {
	defer freeSlot() // a no-op once the run freed it
	if d.refusal != nil || d.startErr != nil || d.start != redisq.StartRun {
		return d
	}
	e := d.env
	if skew := w.verifyAndCall(r.ctx, &d, e, freeSlot); skew {
		return w.versionSkew(d, e)
	}
	if !d.ran {
		return d
	}
	d.cause = context.Cause(r.ctx)
	d.now = time.Now()
	d.backoff = w.backoff(d.attempt)
	return d
}

// checkStale refuses an envelope past its not-after time, with ErrStale.
func (w *Worker) checkStale(e *envelope.Envelope) error {
	if !e.NotAfter.IsZero() && time.Now().After(e.NotAfter.Add(w.cfg.clockSkew)) {
		return fmt.Errorf("%w: not after %s", ErrStale, e.NotAfter.Format(time.RFC3339))
	}
	return nil
}

// verifyAndCall is the part of a delivery that needs no stream entry and no lease, only
// the envelope and this worker (and its store, for a producer's schema): it checks that
// e's kind is registered, its schema accepted, its caller present and not expired, then
// calls the task function under parent with the task's timeout. It fills d's refusal, or its run (ran, result, err, took), and reports a
// refusal that a worker of another version may not make. The worker's deliveries and
// runtime/tasktest's inline runs both go through it, so a test runs what a worker runs.
func (w *Worker) verifyAndCall(parent context.Context, d *delivery, e *envelope.Envelope, freeSlot func()) (versionSkew bool) {
	h, ok := w.handler(e.Kind)
	if !ok {
		d.refusal = fmt.Errorf("%w: %q is not registered on this worker (registered: %v)", ErrUnknownKind, e.Kind, w.Kinds())
		return true
	}
	lenient := false
	if e.Schema != h.def.Schema && (h.def.PreviousSchema == "" || e.Schema != h.def.PreviousSchema) {
		switch err := w.acceptSchema(e, h); {
		case errors.Is(err, ErrSchemaMismatch):
			d.refusal = err
			return true
		case err != nil:
			d.refusal = fmt.Errorf("%w: envelope has %q, worker has %q, and whether they are compatible is not known: %v", ErrSchemaMismatch, e.Schema, h.def.Schema, err)
			return true
		}
		lenient = true
	}
	caller, err := w.caller(e)
	if err != nil {
		d.refusal = err
		return false
	}
	// The caller's user id and expiry go to the logs, never into Redis: what the worker
	// writes there (states, dead-letter reasons and errors) holds no caller data.
	d.caller, d.callerRead = caller, true
	d.callerExpiry, d.skew = caller.ExpiresAt, w.cfg.clockSkew
	if len(e.Caller) > 0 && !w.cfg.plain {
		// The token rested in Redis in clear: a client without sealing, or a block put
		// there by someone who can write Redis but not seal.
		d.refusal = fmt.Errorf("%w: the caller block arrived unsealed, and this worker accepts sealed callers only; the submitting client has WithPlainCallers (give it to the workers too while it does)", ErrBadSignature)
		return false
	}
	if h.def.Caller && caller.IsZero() {
		d.refusal = fmt.Errorf("%w: the envelope carries no caller", ErrNoCaller)
		return false
	}
	if caller.Expired(time.Now(), w.cfg.clockSkew) {
		d.refusal = fmt.Errorf("%w before the task started", ErrCallerExpired)
		return false
	}

	timeout := e.Timeout()
	if timeout <= 0 {
		timeout = w.cfg.defaultTimeout
	}
	runCtx, cancelRun := context.WithTimeout(parent, timeout)
	fnCtx := w.observeAttempt(runCtx, d, e)
	began := time.Now()
	info := Info{ID: ID(e.ID), Kind: e.Kind, Attempt: d.attempt, MaxRetries: e.MaxRetries, SubmittedAt: e.SubmittedAt}
	d.result, d.err = call(fnCtx, h, info, caller, e.Args, lenient, w.log, d)
	cancelRun()
	freeSlot()
	d.ran, d.took = true, time.Since(began)
	return false
}

// versionSkew completes the facts of a delivery refused because this worker is of another
// version than the task's producer: when the grace is on, it reads when the task was
// first handed back. A failed read leaves that unknown, and the task is handed back:
// losing it to a passing Redis error would be worse than a late dead letter.
func (w *Worker) versionSkew(d delivery, e *envelope.Envelope) delivery {
	d.versionSkew, d.skewGrace = true, w.cfg.skewGrace
	if w.cfg.skewGrace == 0 {
		return d
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	since, err := w.store.SkewSince(ctx, e.Queue, e.ID)
	if err != nil {
		w.logDelivery(slog.LevelWarn, "cannot read when the task was first handed back; handing it back", &d, "err", err)
	}
	d.skewSince = since
	return d
}

// settle hands the outcome of a delivery to the settler, or, when it writes nothing,
// releases the delivery's lease.
func (w *Worker) settle(r *run, d delivery, out outcome) {
	if d.startErr != nil {
		w.leases.remove(r)
		w.logDelivery(slog.LevelError, "cannot begin the task; it runs again when its lease runs out", &d, "err", d.startErr)
		return
	}
	if out.action == actNone {
		w.leases.remove(r)
		if d.err != nil {
			w.logDelivery(slog.LevelWarn, "task "+out.why, &d, "err", d.err)
		} else {
			w.logDelivery(slog.LevelWarn, "task "+out.why, &d)
		}
		return
	}
	s := redisq.Settlement{Message: r.msg, Reason: out.reason, Error: out.message, TTL: w.cfg.resultTTL}
	if d.env != nil {
		s.TaskID = d.env.ID
		s.Lease = r.lease().Token
		// A finished task's record outlives its envelope's not-after time, so that any
		// copy of the envelope is recognised as a duplicate while it could still run.
		s.TTL = max(s.TTL, time.Until(d.env.NotAfter)+time.Minute)
	}
	switch out.action {
	case actComplete:
		s.Kind, s.Result = redisq.Complete, d.result
		s.MAC = w.keys.SignOutcome(envelope.Outcome{TaskID: s.TaskID, State: redisq.StateSucceeded, Result: d.result}, d.env.KeyID)
	case actRetry:
		s.Kind, s.Delay = redisq.Retry, out.delay
	case actDead:
		s.Kind = redisq.Dead
		s.Vouch = w.keys.Vouch(r.msg.Envelope, s.TaskID)
		s.MAC = w.keys.SignOutcome(envelope.Outcome{TaskID: s.TaskID, State: redisq.StateDead, Reason: out.reason, Error: out.message}, d.env.KeyID)
	case actRelease:
		s.Kind = redisq.Release
	case actDefer:
		s.Kind, s.Delay = redisq.Defer, out.delay
	case actCancel:
		s.Kind = redisq.Cancel
		s.MAC = w.keys.SignOutcome(envelope.Outcome{TaskID: s.TaskID, State: redisq.StateCanceled, Reason: out.reason, Error: out.message}, d.env.KeyID)
	case actRefuse:
		s.Kind, s.Consumer = redisq.Refuse, w.cfg.consumer
		s.ClaimedID = claimedID(r.msg, r.msg.Queue)
		if s.ClaimedID != "" {
			s.MAC = w.keys.SignOutcome(envelope.Outcome{TaskID: s.ClaimedID, State: redisq.StateDead, Reason: out.reason, Error: out.message}, "")
		}
	}
	w.settler.submit(&settleRequest{s: s, run: r, done: func(err error) { w.logOutcome(out, &d, err) }})
}

// logOutcome logs what became of a delivery once its outcome was written, or why not.
func (w *Worker) logOutcome(out outcome, d *delivery, err error) {
	switch {
	case errors.Is(err, redisq.ErrFenced) || errors.Is(err, redisq.ErrEntryTaken):
		w.logDelivery(slog.LevelWarn, "task "+out.why+", but the task was settled or taken over first (by another worker, or by an earlier try of this write): that outcome stands", d, "err", err)
		return
	case err != nil:
		w.logDelivery(slog.LevelError, "task "+out.why+", but the outcome could not be written", d, "err", err)
		return
	}
	switch out.action {
	case actComplete:
		w.logDelivery(slog.LevelInfo, "task succeeded", d)
	case actRetry:
		w.logDelivery(slog.LevelWarn, "task failed, will retry", d, "err", d.err, "retry_in", out.delay.Round(time.Millisecond), "retries_left", d.maxRetries-d.attempt+1)
		w.pokePromoter(d.env.Queue)
	case actRelease:
		w.logDelivery(slog.LevelWarn, "task interrupted by shutdown, handed back to the queue", d, "err", d.err)
	case actDefer:
		w.pokePromoter(d.env.Queue)
		// Once per kind and reason: in a rolling deploy every task of a new kind meets an
		// old worker, and a line per task would bury everything else.
		level := slog.LevelDebug
		if _, seen := w.skewLogged.LoadOrStore(d.env.Kind+"\x00"+reasonOf(d.refusal, ""), true); !seen {
			level = slog.LevelWarn
		}
		w.logDelivery(level, "task handed back: a worker of another version may run it (logged once per kind)", d,
			"err", d.refusal, "retry_in", out.delay, "skew_grace", d.skewGrace)
	case actDead, actRefuse:
		w.logDelivery(slog.LevelError, "task failed for good: "+out.why, d, "reason", out.reason, "err", out.message)
	case actCancel:
		w.logDelivery(slog.LevelWarn, "task "+out.why, d, "returned", d.err)
	}
}

// logDelivery logs msg at level with the attributes of d (see attrs), then extra. The
// attributes are built only for a line the logger takes: a worker that logs successes
// at Info or above spends nothing on the log of a task that succeeds.
func (w *Worker) logDelivery(level slog.Level, msg string, d *delivery, extra ...any) {
	ctx := context.Background()
	if !w.log.Enabled(ctx, level) {
		return
	}
	w.log.Log(ctx, level, msg, d.attrs(extra...)...)
}

// attrs returns what every log line of d names, then extra: the queue, the stream entry,
// the task's id and kind once its envelope verified, the attempt once it began, the
// caller once read (a Caller logs no token), and how long the function ran.
func (d *delivery) attrs(extra ...any) []any {
	a := make([]any, 0, 16+len(extra))
	if d.inline {
		a = append(a, "tasktest", true)
	}
	if d.queue != "" {
		a = append(a, "queue", d.queue)
	}
	if d.entry != "" {
		a = append(a, "entry", d.entry)
	}
	if d.env != nil {
		a = append(a, "id", d.env.ID, "kind", d.env.Kind)
	}
	if d.attempted {
		a = append(a, "attempt", d.attempt)
	}
	if d.callerRead {
		a = append(a, "caller", d.caller)
	}
	if d.ran {
		a = append(a, "took", d.took.Round(time.Microsecond))
	}
	return append(a, extra...)
}

// claimedID returns the task id that an envelope the worker could not verify claims, when
// it is an id of queue: that task ends with the refusal only if the entry is byte for byte
// its envelope (see redisq.Refuse).
func claimedID(m redisq.Message, queue string) string {
	id := m.Claimed
	if !m.Oversized {
		id = envelope.PeekID(m.Envelope)
	}
	if q, err := ID(id).parse(); err != nil || q != queue {
		return ""
	}
	return id
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
func call(ctx context.Context, h *handler, info Info, caller Caller, args []byte, lenient bool, log *slog.Logger, d *delivery) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("task panicked", d.attrs("panic", r, "stack", string(debug.Stack()))...)
			err = fmt.Errorf("task panicked: %v", r)
		}
	}()
	return h.run(ctx, info, caller, args, lenient)
}

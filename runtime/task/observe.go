package task

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Observation: the seams through which tracing and metrics (package taskotel, or your
// own) watch a client and a worker. The task package imports no telemetry library; it
// calls the funcs given here, each optional, and a nil func costs a comparison.

// ClientObserver watches a client's submits. Give it with WithClientObserver. Both funcs
// are optional.
type ClientObserver struct {
	// Submit is called once per task as Submit is about to encode and enqueue it (after
	// the Def, the options and the caller are checked), with Submit's ctx. The ctx it
	// returns is the one Inject reads and the enqueue runs under (so a span started here
	// becomes the task's parent); end is called once with the ID Submit returns (with
	// Unique, the ID of the task already there) and its error. end must not be nil.
	// SubmitMany calls it once per task. Tasks that share a pipeline (SubmitMany's, or
	// concurrent Submits', see coalesce.go) are sent under one ctx: SubmitMany's, or that
	// of the Submit whose task started the pipeline, without its cancellation.
	Submit func(ctx context.Context, s Submission) (context.Context, func(id ID, err error))
	// Inject, when set, writes the trace context of ctx into carrier (a
	// propagation.TextMapCarrier, say). The entries go into the envelope, signed, and a
	// WorkerObserver reads them back as AttemptStart.Trace. This is the only way anything of
	// the submitting ctx reaches a worker: no other ctx value crosses. Entries with an
	// empty value are dropped; an envelope.CheckTrace limit broken (more than 8 entries,
	// keys other than lower-case header names, values over 8 KiB or not printable
	// ASCII) makes Submit fail with ErrMalformed. Workers older than this field refuse
	// envelopes that carry it: give Inject to clients only once every worker runs a
	// version that has it (see the README's rolling deploys).
	Inject func(ctx context.Context, carrier map[string]string)
}

// Submission describes a task being submitted, for a ClientObserver.
type Submission struct {
	ID    ID
	Kind  string
	Queue string
	// Delay is how long after now the task is due: 0 unless Delay or At was given.
	Delay time.Duration
}

// WithClientObserver has the client call o's funcs as it submits tasks (see
// ClientObserver). Given again, it replaces the earlier one. Without it the client
// observes nothing and puts no trace context into envelopes.
func WithClientObserver(o ClientObserver) ClientOption {
	return clientOption(func(c *clientConfig) { c.observer = o })
}

// WorkerObserver watches a worker's deliveries. Give it with WithWorkerObserver. Both
// funcs are optional; they are called from the worker's goroutines at once, and must be
// safe for that.
type WorkerObserver struct {
	// Attempt is called as the task function of an attempt is about to run, with the
	// attempt's context (the task's deadline and cancellation, nothing of the
	// submitter's). The ctx it returns is the one the task function gets: it must be
	// derived from ctx. end is called once the worker has decided the attempt's outcome,
	// before that outcome is written to Redis. end must not be nil.
	Attempt func(ctx context.Context, a AttemptStart) (context.Context, func(AttemptEnd))
	// Refused is called for a delivery the worker ended without running its function:
	// dead-lettered (bad signature, unknown kind past the skew grace, expired caller...)
	// or handed back for a worker of another version.
	Refused func(r Refusal)
}

// WithWorkerObserver has the worker call o's funcs as it runs tasks (see
// WorkerObserver). Given again, it replaces the earlier one.
func WithWorkerObserver(o WorkerObserver) WorkerOption {
	return workerOption(func(c *workerConfig) { c.observer = o })
}

// AttemptStart describes an attempt that is about to run, for a WorkerObserver.
type AttemptStart struct {
	ID    ID
	Kind  string
	Queue string
	// Attempt counts the attempts of the task that began, this one included, from 1.
	Attempt    int
	MaxRetries int
	// SubmittedAt is when the client submitted the task, by the client's clock.
	SubmittedAt time.Time
	// Ready is when the task became ready to run, by Redis's clock: when its stream
	// entry was written, that is at its submit, or at the end of its Delay or of a retry's
	// backoff. Now minus Ready is how long it waited for a worker; for a task taken over
	// from a worker that lost it, that includes the lost run. Zero when unknown.
	Ready time.Time
	// Trace is the trace carrier the client's Inject wrote, verified with the envelope;
	// nil when there was none. Read it, do not change it.
	Trace map[string]string
}

// Outcome is how an attempt or a refused delivery ended, as a WorkerObserver sees it.
type Outcome string

// The outcomes of an attempt.
const (
	// OutcomeSucceeded: the function returned no error; its result is being written.
	OutcomeSucceeded Outcome = "succeeded"
	// OutcomeRetry: the function failed, and the task runs again after a backoff.
	OutcomeRetry Outcome = "retry"
	// OutcomeDead: the task failed for good and goes to the dead-letter stream, for the
	// reason given (one of the Reason constants).
	OutcomeDead Outcome = "dead"
	// OutcomeCanceled: an operator canceled the task while it ran (Inspector.Cancel); it
	// ends canceled, not retried.
	OutcomeCanceled Outcome = "canceled"
	// OutcomeLeaseLost: the worker lost the task's lease while it ran: another worker
	// took it over and decides its outcome.
	OutcomeLeaseLost Outcome = "lease_lost"
	// OutcomeHandedBack: the task goes back to its queue without spending an attempt:
	// interrupted by shutdown, or (for a Refusal) refused for a version skew.
	OutcomeHandedBack Outcome = "handed_back"
)

// AttemptEnd is how an attempt ended, for a WorkerObserver.
type AttemptEnd struct {
	Outcome Outcome
	// Reason is why a task went dead: one of the Reason constants; "" otherwise.
	Reason string
	// Err is what the function returned; nil when it succeeded.
	Err error
	// Took is how long the function ran.
	Took time.Duration
	// RetryIn is the backoff before the next attempt, for OutcomeRetry.
	RetryIn time.Duration
}

// Refusal describes a delivery that ended without its function running, for a
// WorkerObserver.
type Refusal struct {
	// ID is the task's id, or the id the entry claims when it did not verify (trust it
	// only as a name); "" when it claims none.
	ID ID
	// Kind is the task's kind; "" when the envelope did not verify.
	Kind  string
	Queue string
	// Outcome is OutcomeDead or OutcomeHandedBack.
	Outcome Outcome
	// Reason is one of the Reason constants, for OutcomeDead.
	Reason string
	Err    error
}

// traceCarrier returns what inject writes for ctx, without empty values; nil when that
// leaves nothing, so that the envelope carries no trace field.
func traceCarrier(ctx context.Context, inject func(context.Context, map[string]string)) map[string]string {
	carrier := map[string]string{}
	inject(ctx, carrier)
	for k, v := range carrier {
		if v == "" {
			delete(carrier, k)
		}
	}
	if len(carrier) == 0 {
		return nil
	}
	return carrier
}

// observeAttempt calls the observer's Attempt hook, when there is one, keeps the func
// to call with the attempt's end in d, and returns the context for the task function.
func (w *Worker) observeAttempt(ctx context.Context, d *delivery, e *envelope.Envelope) context.Context {
	hook := w.cfg.observer.Attempt
	if hook == nil {
		return ctx
	}
	ctx, d.attemptEnd = hook(ctx, AttemptStart{
		ID: ID(e.ID), Kind: e.Kind, Queue: e.Queue, Attempt: d.attempt, MaxRetries: e.MaxRetries,
		SubmittedAt: e.SubmittedAt, Ready: entryTime(d.entry), Trace: e.Trace,
	})
	return ctx
}

// observe tells the observer the outcome decided for delivery d of stream entry m (the
// zero Message for an inline run): the end of its attempt when its function ran, or its
// refusal when it did not.
func (w *Worker) observe(m redisq.Message, d *delivery, out outcome) {
	if d.attemptEnd != nil {
		end := AttemptEnd{Err: d.err, Took: d.took, Reason: out.reason}
		switch out.action {
		case actComplete:
			end.Outcome = OutcomeSucceeded
		case actRetry:
			end.Outcome, end.RetryIn = OutcomeRetry, out.delay
		case actDead:
			end.Outcome = OutcomeDead
		case actRelease:
			end.Outcome = OutcomeHandedBack
		case actCancel:
			end.Outcome = OutcomeCanceled
		default:
			end.Outcome = OutcomeLeaseLost
		}
		d.attemptEnd(end)
		return
	}
	hook := w.cfg.observer.Refused
	if hook == nil || d.ran {
		return
	}
	ref := Refusal{Queue: m.Queue, Reason: out.reason, Err: d.refusal}
	switch out.action {
	case actDead, actRefuse:
		ref.Outcome = OutcomeDead
	case actDefer:
		ref.Outcome = OutcomeHandedBack
	default:
		return // nothing was refused: a duplicate, an entry taken over, or Redis failed
	}
	if ref.Err == nil {
		ref.Err = errorOf(out.message)
	}
	if d.env != nil {
		ref.ID, ref.Kind, ref.Queue = ID(d.env.ID), d.env.Kind, d.env.Queue
	} else {
		ref.ID = ID(claimedID(m, m.Queue))
	}
	hook(ref)
}

// errorOf turns a recorded error message back into an error; nil for "".
func errorOf(msg string) error {
	if msg == "" {
		return nil
	}
	return observedError(msg)
}

type observedError string

func (e observedError) Error() string { return string(e) }

// entryTime returns the time in a stream entry id ("<ms>-<seq>"), Redis's clock when it
// wrote the entry; zero when id is not one.
func entryTime(id string) time.Time {
	ms, _, ok := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if !ok || err != nil || n <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Failure reasons recorded with a dead-lettered task.
const (
	ReasonCallerExpired  = "caller_expired"
	ReasonBadSignature   = "bad_signature"
	ReasonSchemaMismatch = "schema_mismatch"
	ReasonUnknownKind    = "unknown_kind"
	ReasonMalformed      = "malformed"
	ReasonNoCaller       = "no_caller"
	ReasonPermanent      = "permanent"
	ReasonRetriesSpent   = "retries_exhausted"
	// ReasonWorkerLost: runs of the task began and never finished (their workers died or
	// lost the lease) until none of its attempts was left; a task that crashes its worker
	// ends here instead of taking down worker after worker.
	ReasonWorkerLost = "worker_lost"
	// ReasonNoRecord: a stream entry whose task has no record in Redis: the task finished
	// and its record expired (the entry is a replay), or it was written past the client.
	// The entry is dead-lettered unrun.
	ReasonNoRecord = "no_record"
	// ReasonCorrupt: a key of the task holds the wrong type (something outside taskgen
	// wrote it); nothing was changed, the entry is dead-lettered unrun.
	ReasonCorrupt = "corrupt"
	// ReasonStale: the envelope was past its not-after time (see MaxTaskLife): a replay of
	// an old task, or a task that waited longer than its longest life. It did not run.
	ReasonStale = "stale"
	// ReasonEntryLost: the task's stream entry was deleted (XTRIM, XDEL) while a worker
	// ran it, and that worker died: its envelope went with the entry, so nothing can run
	// it again. Another worker ends it, so that Result returns.
	ReasonEntryLost = "entry_lost"
	// ReasonCanceled: an operator canceled the task (Inspector.Cancel); it is not
	// retried. Result's *FailedError wraps ErrCanceled.
	ReasonCanceled = redisq.StateCanceled
)

// reasonErrors maps a recorded reason back to the error it stands for, so errors.Is
// works on what Result returns, in another process, after the fact.
var reasonErrors = []struct {
	reason string
	err    error
}{
	{ReasonCallerExpired, ErrCallerExpired},
	{ReasonBadSignature, ErrBadSignature},
	{ReasonSchemaMismatch, ErrSchemaMismatch},
	{ReasonUnknownKind, ErrUnknownKind},
	{ReasonMalformed, ErrMalformed},
	{ReasonNoCaller, ErrNoCaller},
	{ReasonNoRecord, errNoRecord},
	{ReasonCorrupt, errCorrupt},
	{ReasonStale, ErrStale},
	{ReasonCanceled, ErrCanceled},
}

// FailedError is what Result returns for a task that failed for good. errors.Is matches
// it against ErrCallerExpired, ErrBadSignature and the other errors of this package when
// that is why it failed.
type FailedError struct {
	ID       ID
	Kind     string
	Reason   string // one of the Reason constants
	Message  string // the last error's text
	Attempts int
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("task %s (%s) failed after %d attempt(s): %s: %s", e.ID, e.Kind, e.Attempts, e.Reason, e.Message)
}

// Unwrap returns the package error the failure reason stands for, if any.
func (e *FailedError) Unwrap() error {
	for _, r := range reasonErrors {
		if r.reason == e.Reason {
			return r.err
		}
	}
	return nil
}

// resultWait bounds one blocking wait on Redis, so that a deadline-less ctx still gets
// its cancellation noticed; it is a block, not a poll interval.
const resultWait = 5 * time.Second

// Result waits until task id finishes and returns its result, or a *FailedError when it
// failed for good. A task whose function returns only an error is read with
// Result[struct{}]. It blocks on Redis (no polling) until the task finishes or ctx ends,
// and returns when ctx ends even if Redis does not answer.
//
// Result is for dynamic use, where the task is known only at run time: nothing ties R to
// the task's result type. Generated code reads results with the typed ResultF of each
// task, which calls ResultOf.
func Result[R any](ctx context.Context, c *Client, id ID) (R, error) {
	return result[R](ctx, c, "", id)
}

// ResultOf is Result for a task of d: it fails with ErrKindMismatch, without waiting,
// when id is a task of another kind, whose result R would misread. Generated ResultF
// functions call it with their own task's Def and result type.
func ResultOf[R any](ctx context.Context, c *Client, d Def, id ID) (R, error) {
	return result[R](ctx, c, d.Kind, id)
}

// result is Result, and ResultOf when kind is not empty.
func result[R any](ctx context.Context, c *Client, kind string, id ID) (R, error) {
	var zero R
	queue, err := id.parse()
	if err != nil {
		return zero, err
	}
	signaled := false
	for {
		st, err := bounded(ctx, func(ctx context.Context) (redisq.State, error) {
			return c.broker.WatchState(ctx, queue, string(id))
		})
		if errors.Is(err, redisq.ErrNoTask) {
			return zero, fmt.Errorf("result of %s: %w (never submitted, or its result expired)", id, ErrNotFound)
		}
		if err != nil {
			return zero, fmt.Errorf("result of %s: %w", id, err)
		}
		if kind != "" && st.Kind != kind {
			return zero, fmt.Errorf("result of %s: %w: it is a task of kind %q, not %q; read it with the Result function of its own task", id, ErrKindMismatch, st.Kind, kind)
		}
		if st.Finished() {
			o := envelope.Outcome{TaskID: string(id), State: st.State, Result: st.Result, Reason: st.Reason, Error: st.Error}
			if err := c.keys.VerifyOutcome(o, st.MAC); err != nil {
				return zero, fmt.Errorf("result of %s: %w; it was not written by a worker holding this deployment's signing keys", id, err)
			}
		}
		switch st.State {
		case redisq.StateSucceeded:
			var r R
			if err := json.Unmarshal(st.Result, &r); err != nil {
				return zero, fmt.Errorf("result of %s: decode into %T: %w", id, r, err)
			}
			return r, nil
		case redisq.StateDead, redisq.StateCanceled:
			return zero, &FailedError{ID: id, Kind: st.Kind, Reason: st.Reason, Message: st.Error, Attempts: st.Attempts}
		}
		if signaled {
			// The done signal is set but the state is not final: they are written in one
			// script, so something outside taskgen wrote one of them. The signal would
			// answer every wait at once: wait a little instead of spinning on it.
			sleep(ctx, 100*time.Millisecond)
		}
		wait := resultWait
		if dl, ok := ctx.Deadline(); ok {
			wait = min(wait, time.Until(dl))
		}
		if wait <= 0 || ctx.Err() != nil {
			return zero, fmt.Errorf("result of %s: %w", id, ctxErr(ctx))
		}
		// Redis blocks in whole seconds; a ctx deadline sooner than that cuts the wait short.
		wait = wait.Truncate(time.Second) + time.Second
		signaled, err = bounded(ctx, func(ctx context.Context) (bool, error) {
			return c.broker.WaitDone(ctx, queue, string(id), min(wait, resultWait))
		})
		if err != nil {
			if ctx.Err() != nil {
				return zero, fmt.Errorf("result of %s: %w", id, ctxErr(ctx))
			}
			return zero, fmt.Errorf("result of %s: %w", id, err)
		}
	}
}

// ctxErr is ctx's error, or DeadlineExceeded when its deadline has passed but the timer
// that sets the error has not fired yet.
func ctxErr(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

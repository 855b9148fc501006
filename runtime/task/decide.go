package task

import (
	"errors"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// facts is everything the worker learned about one delivery, from verification to the
// end of its run: the input of decide.
type facts struct {
	// refusal is why the delivery was refused before its function ran; nil when it ran
	// or never began.
	refusal error
	// untrusted marks a refusal that must be written by stream entry alone: the envelope
	// did not verify, or its task has no record, so nothing it claims is believed.
	untrusted bool
	// versionSkew marks a refusal that a worker of another version may not make: the
	// kind is not registered here, or the arguments' schema is not one this worker can
	// accept. skewSince is when a worker first handed the task back for it (Redis's
	// clock; zero: never), skewGrace how long that may go on (WithSkewGrace).
	versionSkew bool
	skewSince   time.Time
	skewGrace   time.Duration
	// start is what beginning the delivery found; 0 when it was not reached.
	start redisq.StartOutcome
	// ran reports that the task function was called; err is what it returned and cause
	// the cancellation cause of its context when it returned (errLeaseLost, errShutdown,
	// or nil).
	ran   bool
	err   error
	cause error
	// attempt counts the deliveries of the task that began, this one included: the
	// number the state, the result and the log all give.
	attempt    int
	maxRetries int
	// callerExpiry is when the caller's token expires (zero: never), skew the allowance
	// for clocks (WithClockSkew).
	callerExpiry time.Time
	skew         time.Duration
	// now is the time of the decision, backoff the delay a retry would wait.
	now     time.Time
	backoff time.Duration
}

// action is the kind of write an outcome makes.
type action int

const (
	// actNone writes nothing: the delivery was dropped, or another worker owns the task.
	actNone action = iota
	actComplete
	actRetry
	actDead
	actRelease
	// actRefuse dead-letters the stream entry alone (see redisq.Refuse).
	actRefuse
	// actDefer hands the task back after a delay, spending no attempt: a worker of
	// another version may run it (see redisq.Defer).
	actDefer
	// actCancel ends the task canceled: an operator asked for it while it ran.
	actCancel
)

func (a action) String() string {
	return [...]string{"none", "complete", "retry", "dead", "release", "refuse", "defer", "cancel"}[a]
}

// How long a task refused for a version skew waits before a worker tries it again: the
// time since it was first handed back, within these bounds, so that a fleet of workers
// that all lack its kind does not pass it around in a tight loop.
const (
	skewDelayMin = time.Second
	skewDelayMax = time.Minute
)

// outcome is what decide chose for a delivery.
type outcome struct {
	action  action
	reason  string        // for actDead and actRefuse: one of the Reason constants
	message string        // the error recorded with a retry, dead letter or refusal
	delay   time.Duration // for actRetry and actDefer
	why     string        // for the log: why this outcome
}

// decide chooses the outcome of one delivery. It is a pure function of f: the worker's
// whole policy on failures, retries, leases and shutdown is here, and decide_test.go
// covers every row.
func decide(f facts) outcome {
	switch {
	case f.refusal != nil && f.untrusted:
		return outcome{action: actRefuse, reason: reasonOf(f.refusal, ReasonMalformed), message: f.refusal.Error(),
			why: "refused before it could begin"}
	case f.start == redisq.StartTaken:
		return outcome{why: "another worker took the entry over before it began"}
	case f.start == redisq.StartFinished:
		return outcome{why: "the task has finished already: a duplicate or replayed entry, removed unrun"}
	case f.start == redisq.StartWorkerLost:
		return outcome{action: actDead, reason: ReasonWorkerLost,
			message: fmt.Sprintf("%d runs of this task began and none finished: their workers died or lost the lease while running it; it may crash its worker", f.attempt),
			why:     "not run again: as many runs began and never finished as it may run"}
	case f.refusal != nil && f.versionSkew && f.skewGrace > 0:
		var waited time.Duration
		if !f.skewSince.IsZero() {
			waited = f.now.Sub(f.skewSince)
		}
		if waited <= f.skewGrace+f.skew {
			return outcome{action: actDefer, delay: min(max(waited, skewDelayMin), skewDelayMax), message: f.refusal.Error(),
				why: "handed back for a worker of another version"}
		}
		return outcome{action: actDead, reason: reasonOf(f.refusal, ReasonMalformed),
			message: fmt.Sprintf("%v; no worker could run it within the skew grace of %s (WithSkewGrace)", f.refusal, f.skewGrace),
			why:     "refused before its function ran, by every worker for the whole skew grace"}
	case f.refusal != nil:
		return outcome{action: actDead, reason: reasonOf(f.refusal, ReasonMalformed), message: f.refusal.Error(),
			why: "refused before its function ran"}
	case !f.ran:
		return outcome{why: "did not run"}
	case errors.Is(f.cause, ErrCanceled):
		// Whatever the function returned once its context was canceled: a success it
		// raced to, or the context's error, the operator's cancel stands.
		return outcome{action: actCancel, reason: ReasonCanceled, message: redisq.CancelMessage, why: "canceled by an operator while it ran"}
	case f.err == nil:
		// Written even when the lease was lost: the write is fenced, so it stands only if
		// no other delivery began, and then it spares the task a second run.
		return outcome{action: actComplete, why: "succeeded"}
	case errors.Is(f.cause, errLeaseLost):
		return outcome{why: "stopped: another worker took the task over and decides its outcome"}
	case errors.Is(f.cause, errShutdown):
		return outcome{action: actRelease, why: "interrupted by shutdown: handed back unspent"}
	}
	if reason := errorReason(f.err); reason != "" {
		return outcome{action: actDead, reason: reason, message: f.err.Error(), why: "failed with an error that is not retried"}
	}
	if f.attempt > f.maxRetries {
		return outcome{action: actDead, reason: ReasonRetriesSpent, message: f.err.Error(),
			why: fmt.Sprintf("failed on its last attempt (%d of %d)", f.attempt, f.maxRetries+1)}
	}
	// The caller's expiry stays out of the message: what goes to Redis holds no caller data.
	if next := f.now.Add(f.backoff); !f.callerExpiry.IsZero() && !next.Before(f.callerExpiry.Add(f.skew)) {
		return outcome{action: actDead, reason: ReasonCallerExpired,
			message: f.err.Error() + "; not retried: " + ErrCallerExpired.Error() + " before the next attempt would start",
			why:     "failed, and the caller's token expires before the retry"}
	}
	return outcome{action: actRetry, delay: f.backoff, message: f.err.Error(), why: "failed, will retry"}
}

// reasonOf is the reason err stands for, or fallback.
func reasonOf(err error, fallback string) string {
	if r := errorReason(err); r != "" {
		return r
	}
	return fallback
}

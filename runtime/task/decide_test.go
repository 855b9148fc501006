package task

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// TestDecide covers every row of the worker's policy, without Redis: what a delivery
// comes to, from a refusal before it began to a failure on its last attempt.
func TestDecide(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	boom := errors.New("upstream said 503")
	ran := func(f facts) facts {
		f.start, f.ran, f.now, f.backoff = redisq.StartRun, true, now, time.Minute
		if f.attempt == 0 {
			f.attempt = 1
		}
		if f.maxRetries == 0 {
			f.maxRetries = 3
		}
		return f
	}
	tests := []struct {
		name    string
		facts   facts
		action  action
		reason  string
		message string // a substring of the recorded message
		delay   time.Duration
	}{
		{"unverified envelope", facts{refusal: fmt.Errorf("%w: signature does not match", ErrBadSignature), untrusted: true},
			actRefuse, ReasonBadSignature, "signature does not match", 0},
		{"undecodable entry", facts{refusal: fmt.Errorf("%w: not JSON", ErrMalformed), untrusted: true},
			actRefuse, ReasonMalformed, "not JSON", 0},
		{"task without a record", facts{refusal: errNoRecord, untrusted: true, start: redisq.StartNoRecord},
			actRefuse, ReasonNoRecord, "no record", 0},
		{"key of the wrong type", facts{refusal: fmt.Errorf("%w: x", errCorrupt), untrusted: true},
			actRefuse, ReasonCorrupt, "wrong type", 0},
		{"entry taken over before it began", facts{start: redisq.StartTaken}, actNone, "", "", 0},
		{"duplicate of a finished task", facts{start: redisq.StartFinished}, actNone, "", "", 0},
		{"runs spent by workers lost running it", facts{start: redisq.StartWorkerLost, attempt: 4}, actDead, ReasonWorkerLost, "4 runs of this task began and none finished", 0},
		{"unknown kind", facts{start: redisq.StartRun, attempt: 1, refusal: fmt.Errorf("%w: x", ErrUnknownKind)},
			actDead, ReasonUnknownKind, "unknown task kind", 0},
		{"schema mismatch", facts{start: redisq.StartRun, attempt: 1, refusal: fmt.Errorf("%w: x", ErrSchemaMismatch)},
			actDead, ReasonSchemaMismatch, "schema mismatch", 0},
		// A version skew: a worker of another version may run the task. Handed back,
		// spending no attempt, after the time it has waited (at least 1 s, at most a
		// minute), until the grace, counted from the first hand-back, is over.
		{"unknown kind, first met", facts{start: redisq.StartRun, attempt: 1, now: now, skewGrace: 15 * time.Minute, versionSkew: true,
			refusal: fmt.Errorf("%w: x", ErrUnknownKind)}, actDefer, "", "unknown task kind", time.Second},
		{"unknown kind, handed back 10 s ago", facts{start: redisq.StartRun, attempt: 1, now: now, skewGrace: 15 * time.Minute, versionSkew: true,
			skewSince: now.Add(-10 * time.Second), refusal: fmt.Errorf("%w: x", ErrUnknownKind)}, actDefer, "", "unknown task kind", 10 * time.Second},
		{"incompatible schema, handed back 10 m ago", facts{start: redisq.StartRun, attempt: 1, now: now, skewGrace: 15 * time.Minute, versionSkew: true,
			skewSince: now.Add(-10 * time.Minute), refusal: fmt.Errorf("%w: x", ErrSchemaMismatch)}, actDefer, "", "schema mismatch", time.Minute},
		{"unknown kind, past the skew grace", facts{start: redisq.StartRun, attempt: 1, now: now, skewGrace: 15 * time.Minute, versionSkew: true,
			skewSince: now.Add(-16 * time.Minute), refusal: fmt.Errorf("%w: x", ErrUnknownKind)}, actDead, ReasonUnknownKind, "within the skew grace of 15m0s", 0},
		{"unknown kind, past the grace but within the clock skew", facts{start: redisq.StartRun, attempt: 1, now: now, skewGrace: 15 * time.Minute, skew: 2 * time.Minute, versionSkew: true,
			skewSince: now.Add(-16 * time.Minute), refusal: fmt.Errorf("%w: x", ErrUnknownKind)}, actDefer, "", "unknown task kind", time.Minute},
		{"unknown kind, no skew grace", facts{start: redisq.StartRun, attempt: 1, now: now, versionSkew: true,
			refusal: fmt.Errorf("%w: x", ErrUnknownKind)}, actDead, ReasonUnknownKind, "unknown task kind", 0},
		{"no caller", facts{start: redisq.StartRun, attempt: 1, refusal: fmt.Errorf("%w: x", ErrNoCaller)},
			actDead, ReasonNoCaller, "needs a caller", 0},
		{"caller expired before it started", facts{start: redisq.StartRun, attempt: 1, refusal: fmt.Errorf("%w before the task started", ErrCallerExpired)},
			actDead, ReasonCallerExpired, "before the task started", 0},
		{"sealed caller that does not open", facts{start: redisq.StartRun, attempt: 1, refusal: fmt.Errorf("%w: sealed caller block does not open", ErrBadSignature)},
			actDead, ReasonBadSignature, "does not open", 0},
		{"success", ran(facts{}), actComplete, "", "", 0},
		{"success after shutdown cancelled it", ran(facts{cause: errShutdown}), actComplete, "", "", 0},
		{"success after the lease was lost: fenced write", ran(facts{cause: errLeaseLost}), actComplete, "", "", 0},
		{"failure after the lease was lost", ran(facts{err: boom, cause: errLeaseLost}), actNone, "", "", 0},
		{"failure at shutdown", ran(facts{err: context.Canceled, cause: errShutdown}), actRelease, "", "", 0},
		// An operator's cancel stands whatever the function returned after it.
		{"canceled by an operator", ran(facts{err: context.Canceled, cause: ErrCanceled}), actCancel, ReasonCanceled, "canceled by an operator", 0},
		{"success after an operator's cancel", ran(facts{cause: ErrCanceled}), actCancel, ReasonCanceled, "canceled by an operator", 0},
		{"permanent failure after an operator's cancel", ran(facts{err: Permanent(boom), cause: ErrCanceled, attempt: 4}), actCancel, ReasonCanceled, "canceled by an operator", 0},
		{"failure at shutdown on the last attempt", ran(facts{err: context.Canceled, cause: errShutdown, attempt: 4}), actRelease, "", "", 0},
		{"permanent failure", ran(facts{err: Permanent(boom)}), actDead, ReasonPermanent, "503", 0},
		{"task returned a refusal error", ran(facts{err: fmt.Errorf("%w: token revoked", ErrCallerExpired)}), actDead, ReasonCallerExpired, "revoked", 0},
		{"failure with retries left", ran(facts{err: boom, attempt: 1}), actRetry, "", "503", time.Minute},
		{"failure on the second to last attempt", ran(facts{err: boom, attempt: 3}), actRetry, "", "503", time.Minute},
		{"failure on the last attempt", ran(facts{err: boom, attempt: 4}), actDead, ReasonRetriesSpent, "503", 0},
		{"failure of a task without retries", ran(facts{err: boom, attempt: 1, maxRetries: -1}), actDead, ReasonRetriesSpent, "503", 0},
		{"timeout with retries left", ran(facts{err: context.DeadlineExceeded}), actRetry, "", "deadline exceeded", time.Minute},
		{"failure, caller expires before the retry", ran(facts{err: boom, callerExpiry: now.Add(30 * time.Second)}),
			actDead, ReasonCallerExpired, "upstream said 503; not retried: caller token expired before the next attempt", 0},
		{"failure, caller expires just at the retry", ran(facts{err: boom, callerExpiry: now.Add(time.Minute)}),
			actDead, ReasonCallerExpired, "upstream said 503", 0},
		{"failure, caller expires before the retry but within the skew", ran(facts{err: boom, callerExpiry: now.Add(30 * time.Second), skew: time.Minute}),
			actRetry, "", "503", time.Minute},
		{"failure, caller expires after the retry", ran(facts{err: boom, callerExpiry: now.Add(2 * time.Minute)}), actRetry, "", "503", time.Minute},
		{"failure, caller never expires", ran(facts{err: boom}), actRetry, "", "503", time.Minute},
		{"not run", facts{start: redisq.StartRun, attempt: 1}, actNone, "", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tt.facts
			if f.maxRetries < 0 {
				f.maxRetries = 0
			}
			got := decide(f)
			if got.action != tt.action || got.reason != tt.reason || got.delay != tt.delay {
				t.Fatalf("decide = %s %q delay %s (%s), want %s %q delay %s", got.action, got.reason, got.delay, got.why, tt.action, tt.reason, tt.delay)
			}
			if !strings.Contains(got.message, tt.message) {
				t.Errorf("message = %q, want it to hold %q", got.message, tt.message)
			}
			if got.why == "" {
				t.Error("the outcome gives the log no reason")
			}
		})
	}
}

// The expired-caller message holds no caller data: what goes to Redis never does.
func TestDecideKeepsCallerDataOutOfTheMessage(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	expiry := now.Add(time.Second)
	out := decide(facts{start: redisq.StartRun, ran: true, attempt: 1, maxRetries: 3, err: errors.New("boom"),
		callerExpiry: expiry, now: now, backoff: time.Minute})
	for _, leak := range []string{expiry.Format(time.RFC3339), "12:00", "2026"} {
		if strings.Contains(out.message, leak) {
			t.Errorf("message %q holds the caller's expiry", out.message)
		}
	}
}

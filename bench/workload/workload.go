// Package workload is the task that taskbench runs on taskgen and, as the same JSON
// payload, on asynq: three small arguments (an order reference, a quantity, a gift flag),
// the time it was submitted, and a caller with a user id, a 40-byte token and an expiry.
//
// The task is declared with a //task: directive like any application's, so the harness
// measures the generated SubmitOrder and RegisterTasks, not a hand-written shortcut.
// Its body is trivial on purpose: it reads its arguments and its caller, so that the
// decoding cannot be skipped, and records when it started.
package workload

//go:generate go tool taskgen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/taskgen/taskgen/runtime/task"
)

// TokenSize is the length of the caller's token in bytes, as in issue 14's workload.
const TokenSize = 40

// Queue is the queue of the workload's tasks, on both systems.
const Queue = "bench"

// AsynqType is the asynq task type of the workload.
const AsynqType = "bench:order"

// Recorder counts the tasks whose body ran and keeps their submit-to-start latencies.
// One Recorder serves one measurement: Reset it between them. It is safe for
// concurrent use.
type Recorder struct {
	started   atomic.Int64
	latencies []time.Duration // one slot per expected task, filled in start order
	full      chan struct{}   // closed when started reaches want
	want      int64
}

// Reset prepares r for a measurement of want tasks.
func (r *Recorder) Reset(want int) {
	r.started.Store(0)
	r.latencies = make([]time.Duration, want)
	r.full = make(chan struct{})
	r.want = int64(want)
}

// Started returns how many task bodies ran since Reset.
func (r *Recorder) Started() int { return int(r.started.Load()) }

// Full is closed once as many task bodies ran as Reset was given.
func (r *Recorder) Full() <-chan struct{} { return r.full }

// Latencies returns the submit-to-start latencies recorded since Reset, in start order.
// Call it after Full is closed.
func (r *Recorder) Latencies() []time.Duration {
	return r.latencies[:min(int64(len(r.latencies)), r.started.Load())]
}

// record notes the start of a task submitted at sent (Unix nanoseconds).
func (r *Recorder) record(sent int64) {
	lat := time.Since(time.Unix(0, sent))
	n := r.started.Add(1)
	if n <= int64(len(r.latencies)) {
		r.latencies[n-1] = lat
	}
	if n == r.want {
		close(r.full)
	}
}

// errBadCaller is what a body returns for a caller that is not the workload's: it
// would mean the caller did not survive the trip through Redis.
var errBadCaller = errors.New("workload: caller lost its user id or token on the way")

// Order is the workload's task on taskgen.
//
//task:bench.order queue=bench retries=3 lifespan=rec
func Order(ctx context.Context, caller task.Caller, rec *Recorder, order string, qty int, gift bool, sent int64) error {
	if caller.UserID == "" || len(caller.Token.Reveal()) != TokenSize || order == "" || qty <= 0 {
		return task.Permanent(errBadCaller)
	}
	_ = gift // decoded with the others; the workload's body has no use for it
	rec.record(sent)
	return nil
}

// Payload is the workload's asynq payload: the same fields as Order's arguments and
// caller, the token included, as JSON, so that both systems carry the same data.
type Payload struct {
	Order     string    `json:"order"`
	Qty       int       `json:"qty"`
	Gift      bool      `json:"gift"`
	Sent      int64     `json:"sent"`
	UserID    string    `json:"user_id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// AsynqHandler is the workload's task body on asynq: it decodes the payload and does
// what Order does.
func AsynqHandler(rec *Recorder) asynq.HandlerFunc {
	return func(ctx context.Context, t *asynq.Task) error {
		var p Payload
		if err := json.Unmarshal(t.Payload(), &p); err != nil {
			return fmt.Errorf("workload: decode payload: %w: %w", err, asynq.SkipRetry)
		}
		if p.UserID == "" || len(p.Token) != TokenSize || p.Order == "" || p.Qty <= 0 {
			return fmt.Errorf("%w: %w", errBadCaller, asynq.SkipRetry)
		}
		if !p.ExpiresAt.IsZero() && time.Now().After(p.ExpiresAt) {
			return fmt.Errorf("workload: caller %s expired at %s: %w", p.UserID, p.ExpiresAt.Format(time.RFC3339), asynq.SkipRetry)
		}
		rec.record(p.Sent)
		return nil
	}
}

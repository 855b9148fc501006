package task

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// Concurrent Submits of one Client share round trips, group-commit style. Each enqueue
// is one script call, and what one costs is mostly the round trip to Redis, not the
// script: fifty goroutines submitting at once each paid one of their own. Now a Submit
// puts its task on the client's pending list; if fewer than maxFlushes flushes are in
// flight, a flush starts and sends everything pending (up to coalesceMax tasks) as one
// pipeline (redisq.Broker.EnqueueMany), hands each waiting Submit its own result, and goes
// on with what came in meanwhile until nothing is pending. A Submit that finds maxFlushes
// in flight waits for the next one, which a flush in flight starts as soon as it is
// answered: so under load the batches grow with the load, and a Submit alone is sent at
// once, with no timer and no added latency. Nothing runs while nothing is pending: there
// is no background goroutine. A flush runs in the goroutine of the Submit that starts it when
// that Submit's ctx cannot end, and otherwise in a goroutine that ends with the flush
// (one per flush, where bounded started one per Submit).
//
// A Submit whose ctx ends returns ctx's error at once, as bounded promises elsewhere:
// if its task was not yet taken into a flush, it is removed and never sent; if it was,
// it may still be enqueued, which is what Submit's doc says of a ctx that ends. A flush
// runs under the context of the Submit that started it without its cancellation
// (context.WithoutCancel), bounded by coalesceTimeout, so that one caller giving up does
// not fail the others' tasks. Durable submits (WithDurability) are not coalesced: their
// WAIT must run on the connection of their own write.

// coalesceMax is the most tasks one flush sends in one pipeline: enough to amortise a
// round trip many times over, few enough that one pipeline does not hold Redis for long.
const coalesceMax = 128

// maxFlushes is how many flushes of one client may be in flight at once. Two keep both
// ends busy: while Redis runs one pipeline, the client builds and sends the next, where
// with one the Submits that came in meanwhile waited out the whole round trip
// (BenchmarkSubmit: about 28 against 31 to 41 µs per task on 2 cores).
const maxFlushes = 2

// coalesceTimeout bounds one flush, whose context no single caller's cancellation ends.
const coalesceTimeout = 30 * time.Second

// coalescer is the pending list of one Client's submits.
type coalescer struct {
	mu      sync.Mutex
	pending []*waiter
	flushes int // flushes in flight, at most maxFlushes; each takes the pending tasks when answered
}

// waiter is one Submit's task waiting for a flush.
type waiter struct {
	task  redisq.Task
	taken bool // by a flush, under coalescer.mu: the task is on its way
	res   redisq.EnqueueResult
	done  chan struct{} // closed once res is set
}

// coalesced enqueues t through the client's coalescer and returns its id, or ctx's
// error as soon as ctx ends.
func (c *Client) coalesced(ctx context.Context, t redisq.Task) (string, error) {
	co := &c.coalesce
	w := &waiter{task: t, done: make(chan struct{})}
	co.mu.Lock()
	co.pending = append(co.pending, w)
	start := co.flushes < maxFlushes
	if start {
		co.flushes++
	}
	co.mu.Unlock()
	if start {
		if ctx.Done() == nil {
			// Nothing can end this Submit early: it runs the flush itself, sparing a
			// goroutine, and stays the flusher only as long as its own task waits.
			c.flush(context.WithoutCancel(ctx), w)
		} else {
			go c.flush(context.WithoutCancel(ctx), nil)
		}
	}
	select {
	case <-w.done:
		return w.res.ID, w.res.Err
	case <-ctx.Done():
		co.mu.Lock()
		if !w.taken {
			co.pending = slices.DeleteFunc(co.pending, func(p *waiter) bool { return p == w })
		}
		co.mu.Unlock()
		return "", context.Cause(ctx)
	}
}

// flush sends the pending tasks, coalesceMax at a time, each pipeline under ctx and
// coalesceTimeout, until none is pending; then it leaves the flights. With own set (a
// flusher whose Submit cannot end early), it stops once own is answered and hands what
// is still pending to a flush in a goroutine of its own, so that this Submit returns as
// soon as its task is in.
func (c *Client) flush(ctx context.Context, own *waiter) {
	co := &c.coalesce
	for {
		co.mu.Lock()
		if len(co.pending) == 0 {
			co.flushes--
			co.mu.Unlock()
			return
		}
		if own != nil && own.answered() {
			co.mu.Unlock()
			go c.flush(ctx, nil)
			return
		}
		n := min(len(co.pending), coalesceMax)
		batch := slices.Clone(co.pending[:n])
		co.pending = slices.Delete(co.pending, 0, n)
		for _, w := range batch {
			w.taken = true
		}
		co.mu.Unlock()

		ts := make([]redisq.Task, len(batch))
		for i, w := range batch {
			ts[i] = w.task
		}
		bctx, cancel := context.WithTimeout(ctx, coalesceTimeout)
		for i, r := range c.broker.EnqueueMany(bctx, ts) {
			batch[i].res = r
			close(batch[i].done)
		}
		cancel()
	}
}

// answered reports whether w's result is in.
func (w *waiter) answered() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

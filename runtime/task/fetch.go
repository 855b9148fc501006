package task

import (
	"context"
	"errors"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Fetching: how a worker reads its queues.
const (
	// fetchBatch is the most entries one read takes, and so the most deliveries begun in
	// one round trip (Worker.beginAll).
	fetchBatch = 32
	// fetchBlock is how long a read waits for new entries, at most an eighth of the
	// lease (see fetcher.block).
	fetchBlock = time.Second
	// fetchSlack is how long past fetchBlock a read may take before it is given up.
	fetchSlack = 5 * time.Second
)

// fetcher feeds the worker from one queue: it joins the queue's consumer group, takes
// over the entries whose lease ran out (a worker died or stalled holding them) every half
// lease, and reads new entries, never more than there are free slots.
type fetcher struct {
	w     *Worker
	queue string
	// dispatch begins the deliveries of one fetch; each owns the slot taken for it.
	dispatch func([]redisq.Message)
	slots    chan struct{}
}

func (f *fetcher) run(ctx context.Context) {
	w := f.w
	var fails int
	var lastReclaim time.Time
	reclaims := 0
	cursor := redisq.ReclaimStart
	ready := false
	after := "" // where the next read blocks from first (redisq.Broker.FetchAfter)
	for ctx.Err() == nil {
		if !ready {
			if err := w.store.EnsureGroup(ctx, f.queue); err != nil {
				w.pause(ctx, &fails, "cannot create consumer group", err)
				continue
			}
			ready = true
		}
		w.waitForSettler(ctx)
		n := acquire(ctx, f.slots, fetchBatch)
		if n == 0 {
			return
		}
		// The read is not cancelled with ctx: entries Redis hands over while shutdown
		// begins must be run, not left leased to a worker that no longer runs them.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), f.block()+fetchSlack)
		var msgs []redisq.Message
		var err error
		if time.Since(lastReclaim) >= w.cfg.lease/4 {
			lastReclaim = time.Now()
			if reclaims++; reclaims%20 == 1 {
				f.prune(rctx)
			}
			var lost []redisq.Lost
			msgs, lost, cursor, err = w.store.Reclaim(rctx, f.queue, w.cfg.consumer, w.cfg.lease, n, cursor, w.leases.entries(f.queue))
			for _, m := range msgs {
				w.log.Warn("took over a task whose worker stopped renewing its lease", "queue", f.queue, "entry", m.EntryID)
			}
			for _, l := range lost {
				f.endLost(rctx, l)
			}
		}
		if err == nil && len(msgs) == 0 {
			msgs, after, err = w.store.FetchAfter(rctx, f.queue, w.cfg.consumer, n, f.block(), w.cfg.maxEnvelope, after)
		}
		cancel()
		release(f.slots, n-len(msgs))
		// Entries handed over are this worker's even when the call then failed: run them.
		if len(msgs) > 0 {
			f.dispatch(msgs)
		}
		if err != nil {
			ready = !errors.Is(err, redisq.ErrNoGroup)
			w.pause(ctx, &fails, "fetch failed", err)
			continue
		}
		fails = 0
	}
}

// entryLostMessage is the error text a task lost with its entry ends with (ReasonEntryLost).
const entryLostMessage = "the task's stream entry was deleted (XTRIM or XDEL) while it ran, and the worker running it died: " +
	"its envelope went with the entry, so it cannot run again; submit it anew"

// endLost ends the task of a delivery lost with its entry (see redisq.Lost). A failure
// loses nothing: the entry stays pending, and the next reclaim finds it again.
func (f *fetcher) endLost(ctx context.Context, l redisq.Lost) {
	w := f.w
	// The envelope is gone, and with it the id of the key that signed it: the outcome is
	// MACed with the first signing key, as a refusal's is.
	mac := w.keys.SignOutcome(envelope.Outcome{TaskID: l.TaskID, State: redisq.StateDead, Reason: ReasonEntryLost, Error: entryLostMessage}, "")
	ended, err := w.store.EndLost(ctx, redisq.EndLost{Lost: l, Consumer: w.cfg.consumer, Lease: w.cfg.lease,
		Reason: ReasonEntryLost, Error: entryLostMessage, TTL: w.cfg.resultTTL, MAC: mac})
	args := []any{"queue", l.Queue, "entry", l.EntryID, "id", l.TaskID, "held_by", l.Consumer}
	switch {
	case err != nil:
		w.log.Warn("cannot end a task whose stream entry was deleted while its worker, now gone, ran it; trying again at the next reclaim", append(args, "err", err)...)
	case ended:
		w.log.Error("task failed for good: its stream entry was deleted while it ran, and its worker died", append(args, "reason", ReasonEntryLost)...)
	}
}

// block is how long a read waits for new entries. The reclaims between reads tell Redis
// that workers of the queue are alive: they must come more often than every half lease,
// or Redis takes the silence for a stall of its own and holds takeovers back (see
// redisq.Broker.Reclaim). A reclaim every quarter lease, after a read of at most an
// eighth, leaves an eighth of a lease to spare.
func (f *fetcher) block() time.Duration { return min(fetchBlock, f.w.cfg.lease/8) }

// prune removes the consumers of departed workers from the queue's group.
func (f *fetcher) prune(ctx context.Context) {
	w := f.w
	n, err := w.store.PruneConsumers(ctx, f.queue, w.cfg.consumer, pruneAfter(w.cfg.lease))
	switch {
	case err != nil:
		w.log.Warn("cannot prune departed consumers", "queue", f.queue, "err", err)
	case n > 0:
		w.log.Info("pruned departed consumers", "queue", f.queue, "count", n)
	}
}

// pruneAfter is how long a consumer holding nothing must have been silent before it is
// taken for a departed worker; a running worker reads every second.
func pruneAfter(lease time.Duration) time.Duration { return max(10*lease, time.Minute) }

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

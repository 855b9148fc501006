package task

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// errLeaseLost is the cause of a run's cancellation when another worker took its task
// over: that worker runs it now, so this run must stop, and what it would write is fenced
// off anyway.
var errLeaseLost = errors.New("lease lost: another worker took the task over")

// heartbeater renews the leases of every delivery the worker holds, every third of the
// lease, and stops a run whose task another worker took over, or that an operator
// canceled (Inspector.Cancel): such a run learns of it within a third of a lease. A heartbeat that cannot
// reach Redis loses nothing: the leases stand until they run out by Redis's clock, and a
// takeover needs that.
type heartbeater struct {
	store    store
	consumer string
	lease    time.Duration
	leases   *leases
	log      *slog.Logger
}

func (h *heartbeater) run(ctx context.Context) {
	t := time.NewTicker(h.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.beat()
		}
	}
}

// beat renews every lease once. The queues are renewed side by side, each call bounded
// by its own context: a queue whose Redis node hangs must not hold back the renewals of
// the others (go-redis keeps a context's deadline on the socket only for a client built
// with ContextTimeoutEnabled; without bounded, a call to a hung node waits for the
// client's read timeout, seconds, while the leases of every queue run out).
func (h *heartbeater) beat() {
	var wg sync.WaitGroup
	for queue, runs := range h.leases.snapshot() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h.beatQueue(queue, runs)
		}()
	}
	wg.Wait()
}

// beatQueue renews the leases of runs, all of queue.
func (h *heartbeater) beatQueue(queue string, runs []*run) {
	refs := make([]redisq.Lease, len(runs))
	for i, r := range runs {
		refs[i] = r.lease()
	}
	// Each call gets its own context: a heartbeat must never wait longer than a third of
	// the lease, or the next one would be late too.
	ctx, cancel := context.WithTimeout(context.Background(), h.lease/3)
	statuses, err := bounded(ctx, func(ctx context.Context) ([]redisq.LeaseStatus, error) {
		return h.store.Heartbeat(ctx, queue, h.consumer, h.lease, refs)
	})
	cancel()
	if err != nil {
		h.log.Warn("cannot renew leases; runs go on, and no other worker can take them over before they run out",
			"queue", queue, "leases", len(refs), "err", err)
		return
	}
	for i, st := range statuses {
		r := runs[i]
		if st == redisq.LeaseCancel && h.leases.holds(r) && r.lease() == refs[i] {
			h.log.Warn("an operator canceled a running task: stopping this run", "queue", queue, "entry", r.msg.EntryID, "id", refs[i].TaskID)
			r.cancel(ErrCanceled)
			continue
		}
		// A run whose outcome was written since the snapshot is gone, not lost.
		if st != redisq.LeaseTaken || !h.leases.holds(r) || r.lease() != refs[i] {
			continue
		}
		h.log.Warn("lost the lease of a running task to another worker: stopping this run",
			"queue", queue, "entry", r.msg.EntryID, "id", refs[i].TaskID)
		r.cancel(errLeaseLost)
	}
}

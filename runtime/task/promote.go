package task

import (
	"context"
	"time"
)

// Promoting: how delayed tasks reach their stream.
const (
	// promoteBatch is the most delayed tasks one promotion moves.
	promoteBatch = 100
	// promoteIdle is the longest a promoter sleeps when nothing is due soon.
	promoteIdle = time.Second
)

// promoter moves the delayed tasks of one queue (Delay, At, retry backoff) to its stream
// when they are due by Redis's clock, so a worker whose clock is off promotes nothing
// early or late. It sleeps until the next task is due, at most promoteIdle, and wakes
// early when this worker schedules a retry.
type promoter struct {
	w     *Worker
	queue string
	wake  chan struct{}
}

func (p *promoter) run(ctx context.Context) {
	var fails int
	for ctx.Err() == nil {
		n, next, err := p.w.store.Promote(ctx, p.queue, promoteBatch)
		if err != nil {
			p.w.pause(ctx, &fails, "promote failed", err)
			continue
		}
		fails = 0
		if n == promoteBatch {
			continue
		}
		wait := promoteIdle
		if next >= 0 {
			wait = min(max(next, 5*time.Millisecond), wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-p.wake:
		case <-ctx.Done():
		}
		t.Stop()
	}
}

// poke wakes the promoter early.
func (p *promoter) poke() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

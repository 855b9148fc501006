package task

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// submitManyChunk is how many tasks SubmitMany sends in one pipeline: enough that the
// round trip is a small part of the time, few enough that one pipeline does not hold
// Redis, or the client's memory, for long.
const submitManyChunk = 512

// SubmitMany enqueues one task of Def d per element of args, all on behalf of caller,
// and returns their IDs in the order of args. Each task is a task of its own, as if
// given to Submit: its own ID, envelope and signature, and the same checks (ErrNoCaller,
// ErrCallerExpired, a due time after the caller's expiry or beyond MaxTaskLife, the
// envelope size). The tasks go to Redis in pipelines of up to 512, one round trip each,
// the next built while one is in flight.
//
// opts apply to every task. Unique is refused with more than one task, as it would make
// all of them one task; UniqueKeys gives each task its own key.
//
// A failure of the whole submit (a nil client, a bad Def or option, the caller's checks)
// returns nil and the error, and nothing is enqueued. A task that fails on its own (its
// arguments do not encode, its envelope is too large, Redis refused it) leaves the
// others enqueued: SubmitMany then returns every ID, with "" for each task that was not
// enqueued, and an error that says how many failed and wraps the first failure. As with
// Submit, a task whose enqueue failed because ctx ended may still have reached Redis:
// UniqueKeys makes a repeated SubmitMany safe. An empty args returns nil, nil.
//
// With WithDurability each chunk of tasks is enqueued in one pipeline on a connection to
// the queue's master, then confirmed by one WAIT (and WAITAOF) on it, which covers every
// write before it: a task enqueued but not confirmed has its ID and counts as failed,
// with an error wrapping ErrNotDurable.
func SubmitMany[A any](ctx context.Context, c *Client, d Def, caller Caller, args []A, opts ...SubmitOption) ([]ID, error) {
	raws := make([]json.RawMessage, len(args))
	errs := make([]error, len(args))
	for i, a := range args {
		raw, err := json.Marshal(a)
		if err != nil {
			errs[i] = fmt.Errorf("submit %s: encode arguments: %w", d.Kind, err)
			continue
		}
		raws[i] = raw
	}
	return c.submitMany(ctx, d, caller, raws, errs, opts)
}

// submitMany is SubmitMany after the arguments were encoded: raws[i] is the i-th task's,
// unless errs[i] says why it has none.
func (c *Client) submitMany(ctx context.Context, d Def, caller Caller, raws []json.RawMessage, errs []error, opts []SubmitOption) ([]ID, error) {
	if c == nil {
		return nil, fmt.Errorf("submit %s: nil *task.Client", d.Kind)
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("submit %w", err)
	}
	sc, err := submitOptions(d, len(raws), opts)
	if err != nil {
		return nil, err
	}
	if len(raws) == 0 {
		return nil, nil
	}
	now := time.Now()
	wireCaller, err := d.admit(caller, &sc, now)
	if err != nil {
		return nil, err
	}
	ids := make([]ID, len(raws))
	outs := make([]*outgoing, len(raws))
	pipelined := c.recorder == nil
	if pipelined {
		c.register(ctx, d.queue())
	}
	// Chunk by chunk: while one chunk's pipeline is in flight (at most one), the next
	// is built and signed, so that the client's work overlaps Redis's. Each chunk
	// writes only its own indexes of ids and errs.
	var inFlight sync.WaitGroup
	for start := 0; start < len(raws); start += submitManyChunk {
		end := min(start+submitManyChunk, len(raws))
		for i := start; i < end; i++ {
			if errs[i] == nil {
				outs[i], errs[i] = c.build(ctx, d, wireCaller, raws[i], &sc, sc.uniqueFor(i), now)
			}
		}
		if !pipelined {
			// A tasktest client records each.
			for i := start; i < end; i++ {
				if outs[i] != nil {
					ids[i], errs[i] = c.send(outs[i])
				}
			}
			continue
		}
		inFlight.Wait()
		inFlight.Go(func() { c.enqueueChunk(ctx, outs[start:end], ids[start:end], errs[start:end]) })
	}
	inFlight.Wait()
	failed, first := 0, -1
	for i, o := range outs {
		if o != nil {
			o.finish(ids[i], errs[i])
		}
		if errs[i] != nil {
			failed++
			if first < 0 {
				first = i
			}
		}
	}
	if failed > 0 {
		return ids, fmt.Errorf("submit many %s: %d of %d tasks failed (the others are enqueued, their IDs in order); the first is task %d: %w", d.Kind, failed, len(raws), first, errs[first])
	}
	return ids, nil
}

// enqueueChunk enqueues the built tasks of outs (nil where a task failed to build) in one
// pipeline, and writes each one's ID or error to ids and errs at the same index. A task
// that a Cluster refused while its slot moved is sent again, like whileResharding does
// for Submit. It returns when ctx ends, leaving ctx's error for every task not answered.
func (c *Client) enqueueChunk(ctx context.Context, outs []*outgoing, ids []ID, errs []error) {
	var which []int
	for i, o := range outs {
		if o != nil {
			which = append(which, i)
		}
	}
	if len(which) == 0 {
		return
	}
	// The results live in the closure until it returns: bounded may return while it
	// goes on, and then it must write nothing of the caller's.
	res, err := bounded(ctx, func(ctx context.Context) ([]redisq.EnqueueResult, error) {
		res := make([]redisq.EnqueueResult, len(which))
		pending := make([]int, len(which))
		for j := range which {
			pending[j] = j
		}
		_, err := whileResharding(ctx, func(ctx context.Context) (struct{}, error) {
			ts := make([]redisq.Task, len(pending))
			for k, j := range pending {
				ts[k] = outs[which[j]].task
			}
			var again []int
			var moved error
			for k, r := range c.enqueueMany(ctx, ts) {
				res[pending[k]] = r
				if redisq.Resharding(r.Err) {
					again, moved = append(again, pending[k]), r.Err
				}
			}
			pending = again
			return struct{}{}, moved
		})
		if err != nil && !redisq.Resharding(err) {
			// ctx ended while the cluster was resharding.
			for _, j := range pending {
				res[j].Err = err
			}
		}
		return res, nil
	})
	for k, i := range which {
		if err != nil {
			errs[i] = fmt.Errorf("submit %s: %w", outs[i].task.Kind, err)
			continue
		}
		ids[i] = ID(res[k].ID) // with an error too, for a task enqueued but not confirmed
		if res[k].Err != nil {
			errs[i] = fmt.Errorf("submit %s: %w", outs[i].task.Kind, res[k].Err)
		}
	}
}

// enqueueMany enqueues ts, all of one queue, in one round trip; for a durable client on
// a connection pinned to the queue's master, followed by one WAIT there. A task enqueued
// but not confirmed keeps its ID, with an error wrapping ErrNotDurable.
func (c *Client) enqueueMany(ctx context.Context, ts []redisq.Task) []redisq.EnqueueResult {
	if !c.cfg.durability.on() {
		return c.broker.EnqueueMany(ctx, ts)
	}
	p, err := c.broker.Pin(ctx, ts[0].Queue)
	if err != nil {
		res := make([]redisq.EnqueueResult, len(ts))
		for i := range res {
			res[i].Err = err
		}
		return res
	}
	defer p.Close()
	res := p.EnqueueMany(ctx, ts)
	if !slices.ContainsFunc(res, func(r redisq.EnqueueResult) bool { return r.Err == nil }) {
		return res
	}
	w := c.cfg.durability.wait()
	acks, waitErr := p.Wait(ctx, w)
	for i, r := range res {
		if r.Err == nil {
			res[i].Err = notDurable(r.ID, w, acks, waitErr)
		}
	}
	return res
}

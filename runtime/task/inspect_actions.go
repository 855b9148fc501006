package task

import (
	"context"
	"errors"
	"fmt"

	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/taskspec"
)

// Requeue runs dead letter deadEntry of queue again under its task id, with a fresh retry
// budget, as Client.Requeue does (the same code path): its envelope must verify with the
// inspector's keys, and is re-signed with the first of them.
func (in *Inspector) Requeue(ctx context.Context, queue, deadEntry string) error {
	if err := taskspec.CheckQueue(queue); err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	if in.keys == nil {
		return fmt.Errorf("requeue %s: %w", deadEntry, errNoKeys)
	}
	return requeue(ctx, in.broker, in.keys, in.cfg.maxEnvelope, queue, deadEntry, false)
}

// BulkResult counts what a bulk action did: Done entries acted on, Skipped ones it could
// not act on.
type BulkResult struct{ Done, Skipped int }

// requeuePage is how many dead letters RequeueMatching reads at a time.
const requeuePage = 1000

// RequeueMatching requeues every dead letter of queue matching kind and reason ("" =
// any), calling progress(done, total) as it goes, after each page, done counting the
// entries visited and total the dead count at the start (progress may be nil). It returns
// how many were requeued and skipped, and the first error: it continues past an entry that
// cannot be requeued (forged, key gone), counting it as skipped, and stops on an error of
// Redis or ctx. Entries dead-lettered after it began (a requeued task failing again) are
// not visited.
func (in *Inspector) RequeueMatching(ctx context.Context, queue, kind, reason string, progress func(done, total int)) (BulkResult, error) {
	var r BulkResult
	if err := taskspec.CheckQueue(queue); err != nil {
		return r, fmt.Errorf("requeue matching: %w", err)
	}
	if in.keys == nil {
		return r, fmt.Errorf("requeue matching on %s: %w", queue, errNoKeys)
	}
	q, err := in.Queue(ctx, queue)
	if err != nil {
		return r, fmt.Errorf("requeue matching on %s: %w", queue, err)
	}
	total := int(q.Dead)
	last, err := bounded(ctx, func(ctx context.Context) (string, error) { return in.broker.LastDead(ctx, queue) })
	if err != nil || last == "" {
		return r, err
	}
	var first error
	after, visited := "", 0
	for {
		es, err := bounded(ctx, func(ctx context.Context) ([]redisq.DeadEntry, error) {
			return in.broker.DeadLetters(ctx, queue, after, requeuePage)
		})
		if err != nil {
			return r, fmt.Errorf("requeue matching on %s: %w", queue, err)
		}
		end := len(es) < requeuePage
		for _, e := range es {
			if redisq.CompareIDs(e.EntryID, last) > 0 {
				end = true
				break
			}
			after = e.EntryID
			visited++
			f := e.Failure
			if (kind != "" && f.Kind != kind) || (reason != "" && f.Reason != reason) {
				continue
			}
			err := requeue(ctx, in.broker, in.keys, in.cfg.maxEnvelope, queue, e.EntryID, false)
			switch {
			case err == nil:
				r.Done++
			case ctx.Err() != nil:
				return r, fmt.Errorf("requeue matching on %s: %w", queue, err)
			case errors.Is(err, ErrBadSignature) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrNoDeadLetter):
				r.Skipped++
				if first == nil {
					first = err
				}
			default:
				return r, fmt.Errorf("requeue matching on %s: %w", queue, err)
			}
		}
		if progress != nil {
			progress(visited, total)
		}
		if end {
			return r, first
		}
	}
}

// Delete removes task id for good: a pending, scheduled, retrying or finished task, with
// its state, its place in the queue (its dead letter, for a dead task) and its unique key
// while that names it. A running task is refused: Cancel it first.
func (in *Inspector) Delete(ctx context.Context, id ID) error {
	queue, err := id.parse()
	if err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	_, err = bounded(ctx, func(ctx context.Context) (struct{}, error) {
		for try := 0; ; try++ {
			h, err := in.broker.StateHash(ctx, queue, string(id))
			if errors.Is(err, redisq.ErrNoTask) {
				return struct{}{}, fmt.Errorf("delete %s: %w", id, ErrNotFound)
			}
			if err != nil {
				return struct{}{}, fmt.Errorf("delete %s: %w", id, err)
			}
			p := redisq.Place{State: h[redisq.FieldState]}
			switch p.State {
			case redisq.StateRunning:
				return struct{}{}, fmt.Errorf("delete %s: it is running: cancel it first (Inspector.Cancel), then delete it", id)
			case redisq.StatePending, redisq.StateScheduled, redisq.StateRetrying:
				p, _, err = in.locate(ctx, queue, string(id), h)
				if err != nil {
					return struct{}{}, fmt.Errorf("delete %s: %w", id, err)
				}
				if p.Set == "" && p.Entry == "" {
					return struct{}{}, fmt.Errorf("delete %s: its entry is not where a bounded scan looks (far back in a long stream); cancel it instead, and it is removed unrun when a worker reaches it", id)
				}
			case redisq.StateDead:
				p.Entry = h[redisq.FieldDeadEntry]
			}
			err = in.broker.DeleteTask(ctx, queue, string(id), p, h[redisq.FieldUnique])
			if errors.Is(err, redisq.ErrMoved) && try < 3 {
				continue
			}
			if errors.Is(err, redisq.ErrRunning) {
				return struct{}{}, fmt.Errorf("delete %s: a worker has just begun it: cancel it first (Inspector.Cancel), then delete it", id)
			}
			return struct{}{}, err
		}
	})
	return err
}

// DeleteDead removes dead letter deadEntry of queue for good.
func (in *Inspector) DeleteDead(ctx context.Context, queue, deadEntry string) error {
	if err := taskspec.CheckQueue(queue); err != nil {
		return fmt.Errorf("delete dead letter: %w", err)
	}
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, in.broker.DeleteDead(ctx, queue, deadEntry)
	})
	return err
}

// cancelTTL is how long the state of a task canceled before it ran stays readable:
// DefaultResultTTL (the inspector does not know the workers' WithResultTTL).
const cancelTTL = DefaultResultTTL

// Cancel cancels task id. A pending, scheduled or retrying task ends canceled at once:
// Result returns a *FailedError wrapping ErrCanceled, and no worker runs it. A running
// task is asked to stop: its worker's heartbeat learns of it within a third of the
// worker's lease (WithLease), cancels the run's context with cause ErrCanceled, and ends
// it canceled, never retried, whatever the function returns then. Cancel returns once the
// request is recorded; a task that finishes before its worker learns of it keeps its
// outcome. A finished task is refused.
func (in *Inspector) Cancel(ctx context.Context, id ID) error {
	queue, err := id.parse()
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	if in.keys == nil {
		return fmt.Errorf("cancel %s: %w", id, errNoKeys)
	}
	_, err = bounded(ctx, func(ctx context.Context) (struct{}, error) {
		for try := 0; ; try++ {
			h, err := in.broker.StateHash(ctx, queue, string(id))
			if errors.Is(err, redisq.ErrNoTask) {
				return struct{}{}, fmt.Errorf("cancel %s: %w", id, ErrNotFound)
			}
			if err != nil {
				return struct{}{}, fmt.Errorf("cancel %s: %w", id, err)
			}
			p := redisq.Place{State: h[redisq.FieldState]}
			switch p.State {
			case redisq.StateRunning:
			case redisq.StatePending, redisq.StateScheduled, redisq.StateRetrying:
				if p, _, err = in.locate(ctx, queue, string(id), h); err != nil {
					return struct{}{}, fmt.Errorf("cancel %s: %w", id, err)
				}
			default:
				return struct{}{}, fmt.Errorf("cancel %s: it has finished (%s): only a task that has not finished can be canceled", id, p.State)
			}
			err = in.broker.CancelTask(ctx, queue, string(id), p, in.cancelMAC(string(id)), cancelTTL)
			if errors.Is(err, redisq.ErrMoved) && try < 3 {
				continue
			}
			return struct{}{}, err
		}
	})
	return err
}

// Pause pauses queue: its workers fetch no new tasks from it until Resume. Running tasks
// finish; due delayed tasks still move to the stream, where they wait; the tasks of
// workers that died are still taken over and run, as they had begun.
func (in *Inspector) Pause(ctx context.Context, queue string) error {
	if err := taskspec.CheckQueue(queue); err != nil {
		return fmt.Errorf("pause: %w", err)
	}
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, in.broker.Pause(ctx, queue) })
	return err
}

// Resume ends a pause of queue; workers waiting on it fetch at once.
func (in *Inspector) Resume(ctx context.Context, queue string) error {
	if err := taskspec.CheckQueue(queue); err != nil {
		return fmt.Errorf("resume: %w", err)
	}
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, in.broker.Resume(ctx, queue) })
	return err
}

// PurgeDead deletes every dead letter of queue and returns how many it deleted. The
// states of the dead tasks stay until they expire, so Result still reports their failure.
func (in *Inspector) PurgeDead(ctx context.Context, queue string) (int64, error) {
	if err := taskspec.CheckQueue(queue); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return bounded(ctx, func(ctx context.Context) (int64, error) { return in.broker.PurgeDead(ctx, queue) })
}

package task

import (
	"context"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/taskspec"
)

// DeadLetter is a task that failed for good, as kept in its queue's dead-letter stream.
type DeadLetter struct {
	// EntryID is the position in the dead-letter stream; pass it to Requeue or DeleteDeadLetter.
	EntryID string
	Queue   string
	// ID is the task's id, empty when its envelope could not be verified (a forged or
	// malformed entry): such an entry can be inspected and deleted, not requeued.
	ID       ID
	Kind     string
	Reason   string // one of the Reason constants
	Error    string // the last error
	Attempts int
	FailedAt time.Time
	// Verified reports that the worker that dead-lettered the task vouched, with a key
	// this client holds, that it had verified its envelope (see RequeueResigned).
	Verified bool
}

// DeadLetters lists up to limit dead letters of queue after the entry id after (""
// for the first), oldest first. Page by passing the last EntryID back as after.
func (c *Client) DeadLetters(ctx context.Context, queue, after string, limit int) ([]DeadLetter, error) {
	if err := taskspec.CheckQueue(queue); err != nil {
		return nil, fmt.Errorf("dead letters: %w", err)
	}
	if limit <= 0 {
		limit = 100
	}
	entries, err := bounded(ctx, func(ctx context.Context) ([]redisq.DeadEntry, error) {
		return c.broker.DeadLetters(ctx, queue, after, limit)
	})
	if err != nil {
		return nil, fmt.Errorf("dead letters of %s: %w", queue, err)
	}
	out := make([]DeadLetter, 0, len(entries))
	for _, e := range entries {
		f := e.Failure
		out = append(out, DeadLetter{
			EntryID: e.EntryID, Queue: queue, ID: ID(f.ID), Kind: f.Kind, Reason: f.Reason,
			Error: f.Error, Attempts: f.Attempts, FailedAt: e.FailedAt,
			Verified: f.ID != "" && c.keys.CheckVouch(e.Envelope, f.ID, f.Vouch) == nil,
		})
	}
	return out, nil
}

// Requeue runs dead letter d again under its task id, with a fresh retry budget and
// not-after time. Its envelope must still verify with the client's keys: a forged or
// malformed entry is refused with ErrBadSignature or ErrMalformed, and so is one signed
// with a key that is gone (see RequeueResigned). A caller whose token has expired is
// still expired: such a task fails again with ErrCallerExpired.
func (c *Client) Requeue(ctx context.Context, d DeadLetter) error { return c.requeue(ctx, d, false) }

// RequeueResigned is Requeue for a dead letter whose envelope no longer verifies because
// the key that signed it is gone (rotated out, or retired): it re-signs the envelope with
// the client's first key. It does so only when the worker that dead-lettered the task
// vouched, with a key this client holds, that it had verified exactly this envelope
// (DeadLetter.Verified), and when the caller block still opens with the client's keys.
// A forged dead letter carries no such vouch. Use it on purpose, for dead letters you
// have looked at.
func (c *Client) RequeueResigned(ctx context.Context, d DeadLetter) error {
	return c.requeue(ctx, d, true)
}

func (c *Client) requeue(ctx context.Context, d DeadLetter, resign bool) error {
	return requeue(ctx, c.broker, c.keys, c.cfg.maxEnvelope, d.Queue, d.EntryID, resign)
}

// requeue is Requeue and RequeueResigned of the client and the inspector: one code path
// for dead letter entryID of queue.
func requeue(ctx context.Context, b *redisq.Broker, keys *envelope.Keyring, maxEnvelope int, queue, entryID string, resign bool) error {
	d := DeadLetter{Queue: queue, EntryID: entryID}
	entry, err := bounded(ctx, func(ctx context.Context) (redisq.DeadEntry, error) {
		return b.DeadLetter(ctx, d.Queue, d.EntryID)
	})
	if err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	now := time.Now()
	fresh := func(e *envelope.Envelope) {
		e.Attempt = 0
		e.NotAfter = notAfter(now, now, Def{MaxRetries: e.MaxRetries, Timeout: e.Timeout()})
	}
	var data []byte
	var e *envelope.Envelope
	if resign {
		if err := keys.CheckVouch(entry.Envelope, entry.Failure.ID, entry.Failure.Vouch); err != nil {
			return fmt.Errorf("requeue %s re-signed: %w", d.EntryID, err)
		}
		data, e, err = keys.Resign(entry.Envelope, fresh)
	} else {
		e, err = keys.Open(entry.Envelope, maxEnvelope)
		if err == nil {
			fresh(e)
			data, err = keys.Sign(e)
		}
	}
	if err != nil {
		return fmt.Errorf("requeue %s: %w", d.EntryID, err)
	}
	if e.Queue != d.Queue || e.ID != entry.Failure.ID {
		return fmt.Errorf("requeue %s: %w: envelope of %s on queue %q, dead letter of %s on %q", d.EntryID, ErrBadSignature, e.ID, e.Queue, entry.Failure.ID, d.Queue)
	}
	_, err = bounded(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, b.Requeue(ctx, d.Queue, d.EntryID, e.ID, e.Kind, data)
	})
	if err != nil {
		return fmt.Errorf("requeue %s: %w", d.EntryID, err)
	}
	return nil
}

// DeleteDeadLetter removes dead letter d for good.
func (c *Client) DeleteDeadLetter(ctx context.Context, d DeadLetter) error {
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, c.broker.DeleteDead(ctx, d.Queue, d.EntryID)
	})
	return err
}

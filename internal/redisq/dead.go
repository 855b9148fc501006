package redisq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Failure is why a task was dead-lettered, as its dead letter records it.
type Failure struct {
	// ID is the task's id; empty when the entry's envelope could not be verified and is
	// not byte for byte the one submitted for the id it claims.
	ID       string
	Kind     string
	Reason   string // a short code, e.g. "caller_expired"
	Error    string
	Attempts int
	Entry    string // the stream entry that was dead-lettered
	Size     int    // for an entry too large to read, its size
	Vouch    string // the worker's word that it verified the envelope, if it did
}

// DeadEntry is one entry of a dead-letter stream.
type DeadEntry struct {
	EntryID  string
	Failure  Failure
	FailedAt time.Time
	Envelope []byte
}

// DeadLetters returns up to count entries of queue's dead-letter stream after the entry
// id after ("" for the first), oldest first.
func (b *Broker) DeadLetters(ctx context.Context, queue, after string, count int) ([]DeadEntry, error) {
	start := "-"
	if after != "" {
		start = "(" + after
	}
	return b.deadRange(ctx, queue, start, "+", count)
}

// DeadLetter returns dead-letter entryID of queue.
func (b *Broker) DeadLetter(ctx context.Context, queue, entryID string) (DeadEntry, error) {
	es, err := b.deadRange(ctx, queue, entryID, entryID, 1)
	if err != nil {
		return DeadEntry{}, err
	}
	if len(es) == 0 {
		return DeadEntry{}, fmt.Errorf("%s of %s: %w", entryID, b.Keys(queue).Dead(), ErrNoDeadLetter)
	}
	return es[0], nil
}

func (b *Broker) deadRange(ctx context.Context, queue, start, end string, count int) ([]DeadEntry, error) {
	k := b.Keys(queue)
	xs, err := b.rdb.XRangeN(ctx, k.Dead(), start, end, int64(count)).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.Dead(), err)
	}
	out := make([]DeadEntry, 0, len(xs))
	for _, x := range xs {
		str := func(f string) string { s, _ := x.Values[f].(string); return s }
		attempts, _ := strconv.Atoi(str(FieldAttempts))
		ms, _ := strconv.ParseInt(str(DeadFieldFailed), 10, 64)
		size, _ := strconv.Atoi(str(DeadFieldSize))
		out = append(out, DeadEntry{
			EntryID: x.ID,
			Failure: Failure{ID: str(DeadFieldID), Kind: str(FieldKind), Reason: str(FieldReason), Error: str(FieldError),
				Attempts: attempts, Entry: str(DeadFieldEntry), Size: size, Vouch: str(DeadFieldVouch)},
			FailedAt: time.UnixMilli(ms),
			Envelope: []byte(str(EnvelopeField)),
		})
	}
	return out, nil
}

// ErrNoDeadLetter reports a dead-letter entry that does not exist (any more).
var ErrNoDeadLetter = errors.New("no such dead letter")

// Requeue moves dead-letter entryID of queue, task id of kind, back to the stream with
// envelope env, and resets the task's state to pending with no attempt spent.
func (b *Broker) Requeue(ctx context.Context, queue, entryID, id, kind string, env []byte) error {
	k := b.Keys(queue)
	n, err := requeueScript.Run(ctx, b.rdb, []string{k.Dead(), k.Stream(), k.State(id), k.Done(id), k.Notify()}, entryID, env, kind).Int()
	if err != nil {
		return fmt.Errorf("requeue %s: %w", entryID, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("requeue %s of %s: %w", entryID, k.Dead(), ErrNoDeadLetter)
	}
	return nil
}

// DeleteDead removes dead-letter entryID of queue.
func (b *Broker) DeleteDead(ctx context.Context, queue, entryID string) error {
	k := b.Keys(queue)
	n, err := b.rdb.XDel(ctx, k.Dead(), entryID).Result()
	if err != nil {
		return fmt.Errorf("delete %s from %s: %w", entryID, k.Dead(), err)
	}
	if n == 0 {
		return fmt.Errorf("delete %s from %s: %w", entryID, k.Dead(), ErrNoDeadLetter)
	}
	return nil
}

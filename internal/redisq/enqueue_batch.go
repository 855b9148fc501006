package redisq

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
)

// EnqueueResult is the outcome of one task of EnqueueMany: the id Enqueue would have
// returned (the task's own, or the id of the task already holding its UniqueKey), or
// the error that kept it from being enqueued.
type EnqueueResult struct {
	ID  string
	Err error
}

// EnqueueMany adds ts like Enqueue, each with its own enqueue script, in one round trip
// (runPipelined). It returns one result per task, in order; a task that fails (a key of
// the wrong type, say) fails alone.
func (b *Broker) EnqueueMany(ctx context.Context, ts []Task) []EnqueueResult {
	return b.enqueueMany(ctx, b.rdb, ts, false)
}

// enqueueMany is EnqueueMany on on; durable says a WAIT or WAITAOF follows on it.
func (b *Broker) enqueueMany(ctx context.Context, on pipeliner, ts []Task, durable bool) []EnqueueResult {
	out := make([]EnqueueResult, len(ts))
	if len(ts) == 0 {
		return out
	}
	calls := make([]scriptCall, len(ts))
	for i, t := range ts {
		keys, args := enqueueCall(b.Keys(t.Queue), t, durable)
		calls[i] = scriptCall{enqueueScript, keys, args}
	}
	for i, cmd := range runPipelined(ctx, on, calls) {
		res, err := cmd.Slice()
		out[i].ID, out[i].Err = enqueueReply(b.Keys(ts[i].Queue), res, err)
	}
	return out
}

// enqueueCall returns the KEYS and ARGV of enqueueScript for t on queue keys k; durable
// says a WAIT or WAITAOF follows on the connection.
func enqueueCall(k Keys, t Task, durable bool) ([]string, []any) {
	keys := []string{k.Stream(), k.Delayed(), k.State(t.ID), k.Notify(), k.Schemas()}
	ttl := int64(0)
	if t.UniqueKey != "" {
		keys = append(keys, k.Unique(t.Kind, t.UniqueKey))
		ttl = max(t.UniqueTTL.Milliseconds(), 1)
	}
	delay := int64(0)
	if t.Delay > 0 {
		delay = max(t.Delay.Milliseconds(), 1)
	}
	mark := "0"
	if durable {
		mark = "1"
	}
	wire := t.Wire
	if t.Schema == "" {
		wire = ""
	}
	digest := sha1.Sum(t.Envelope)
	return keys, []any{t.Envelope, t.ID, t.Kind, delay, ttl, mark, t.Schema, wire, hex.EncodeToString(digest[:])}
}

// enqueueReply reads enqueueScript's reply res (or its error) for a task on queue keys k.
func enqueueReply(k Keys, res []any, err error) (string, error) {
	if err != nil {
		return "", fmt.Errorf("enqueue on %s: %w", k.Stream(), classify(err))
	}
	if len(res) != 2 {
		return "", fmt.Errorf("enqueue on %s: unexpected reply %v", k.Stream(), res)
	}
	id, _ := res[1].(string)
	return id, nil
}

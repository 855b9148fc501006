package redisq

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// EnqueueResult is the outcome of one task of EnqueueMany: the id Enqueue would have
// returned (the task's own, or the id of the task already holding its UniqueKey), or
// the error that kept it from being enqueued.
type EnqueueResult struct {
	ID  string
	Err error
}

// EnqueueMany adds ts like Enqueue, each with its own enqueue script, in one pipeline:
// one round trip per node for the lot (a Cluster client splits the pipeline by node; all
// keys of one task share its queue's hash tag, so each script runs whole on one node). It
// returns one result per task, in order; a task that fails (a key of the wrong type, say)
// fails alone.
//
// The pipeline sends each script by its digest. A server that does not know it (it
// restarted, or its scripts were flushed) answers NOSCRIPT: EnqueueMany then loads the
// script (on every master of a cluster) and sends those tasks again, in one more
// pipeline. go-redis's Script.Run falls back to EVAL for single commands only.
func (b *Broker) EnqueueMany(ctx context.Context, ts []Task) []EnqueueResult {
	out := make([]EnqueueResult, len(ts))
	if len(ts) == 0 {
		return out
	}
	all := make([]int, len(ts))
	for i := range ts {
		all[i] = i
	}
	missing := b.enqueuePipelined(ctx, ts, all, out)
	if len(missing) == 0 {
		return out
	}
	if err := enqueueScript.Load(ctx, b.rdb).Err(); err != nil {
		for _, i := range missing {
			out[i].Err = fmt.Errorf("enqueue on %s: load the enqueue script after NOSCRIPT: %w", b.Keys(ts[i].Queue).Stream(), err)
		}
		return out
	}
	// A second NOSCRIPT (the scripts flushed again in between) stays an error.
	for _, i := range b.enqueuePipelined(ctx, ts, missing, out) {
		out[i].Err = fmt.Errorf("enqueue on %s: the server forgot the enqueue script again right after it was loaded: %w",
			b.Keys(ts[i].Queue).Stream(), out[i].Err)
	}
	return out
}

// enqueuePipelined sends the tasks of ts at indexes which in one pipeline, writes their
// outcomes into out, and returns the indexes that met NOSCRIPT.
func (b *Broker) enqueuePipelined(ctx context.Context, ts []Task, which []int, out []EnqueueResult) (noscript []int) {
	cmds := make([]*redis.Cmd, len(which))
	// Exec's own error is the first command's error: each command carries its own.
	_, _ = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for j, i := range which {
			keys, args := enqueueCall(b.Keys(ts[i].Queue), ts[i], false)
			cmds[j] = enqueueScript.EvalSha(ctx, p, keys, args...)
		}
		return nil
	})
	for j, i := range which {
		res, err := cmds[j].Slice()
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			noscript = append(noscript, i)
			out[i] = EnqueueResult{Err: err}
			continue
		}
		out[i].ID, out[i].Err = enqueueReply(b.Keys(ts[i].Queue), res, err)
	}
	return noscript
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
	return keys, []any{t.Envelope, t.ID, t.Kind, delay, ttl, mark, t.Schema, wire}
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

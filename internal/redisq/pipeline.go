package redisq

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// scriptCall is one run of a script in a pipeline.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
}

// runPipelined runs calls in one round trip (one per node of a Cluster, which go-redis
// splits the pipeline by; every key of one call shares its queue's hash tag) and returns
// each call's reply, in order: each script atomic on its own, and one that fails failing
// alone. Scripts go by their digest. A server that does not know one (it restarted, or its
// scripts were flushed) answers NOSCRIPT: the script is loaded (on every master of a
// Cluster) and the calls it refused are sent again in one more pipeline. A single call is
// sent alone, by Script.Run. Enqueues, starts and settles in batches all go through it.
func (b *Broker) runPipelined(ctx context.Context, calls []scriptCall) []*redis.Cmd {
	return runPipelined(ctx, b.rdb, calls)
}

// pipeliner is what runPipelined sends on: a client, or one connection (Pinned).
type pipeliner interface {
	redis.Scripter
	Pipelined(ctx context.Context, fn func(redis.Pipeliner) error) ([]redis.Cmder, error)
}

// runPipelined is Broker.runPipelined on on.
func runPipelined(ctx context.Context, on pipeliner, calls []scriptCall) []*redis.Cmd {
	if len(calls) == 1 {
		c := calls[0]
		return []*redis.Cmd{c.script.Run(ctx, on, c.keys, c.args...)}
	}
	cmds := pipeline(ctx, on, calls)
	var again []int
	for i, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			again = append(again, i)
		}
	}
	if len(again) == 0 {
		return cmds
	}
	loaded := map[*redis.Script]bool{}
	retry := make([]scriptCall, 0, len(again))
	for _, i := range again {
		s := calls[i].script
		if !loaded[s] {
			loaded[s] = true
			if err := s.Load(ctx, on).Err(); err != nil {
				// The calls keep their NOSCRIPT replies; the next batch tries again.
				return cmds
			}
		}
		retry = append(retry, calls[i])
	}
	// A second NOSCRIPT (the scripts flushed again in between) stays the call's reply.
	for j, cmd := range pipeline(ctx, on, retry) {
		cmds[again[j]] = cmd
	}
	return cmds
}

// pipeline sends calls by digest in one pipeline. Exec's own error is the first
// command's: each command carries its own.
func pipeline(ctx context.Context, on pipeliner, calls []scriptCall) []*redis.Cmd {
	cmds := make([]*redis.Cmd, len(calls))
	_, _ = on.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, c := range calls {
			cmds[i] = c.script.EvalSha(ctx, p, c.keys, c.args...)
		}
		return nil
	})
	return cmds
}

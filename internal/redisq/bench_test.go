package redisq_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
)

// BenchmarkEnqueueSchema measures what recording the arguments' schema costs a Submit:
// "without" enqueues tasks with no description, "with" with a description of a task of
// six arguments (the HSETNX in the enqueue script, and the description's bytes on every
// call). Both run one after the other on the shared redis-server, as one Submit at a
// time, so the ratio of the two is what to read:
//
//	go test -run '^$' -bench BenchmarkEnqueueSchema -count 5 ./internal/redisq
func BenchmarkEnqueueSchema(b *testing.B) {
	rdb := redistest.Client(b)
	wire := `{"at":time,"items":[]{"price":int,"sku":string},"note":string,"order":string,"qty":int,"to":*{"city":string,"street":string}}`
	envelope := []byte(strings.Repeat("e", 600)) // about a signed, sealed envelope
	for _, bench := range []struct{ name, wire string }{{"without", ""}, {"with", wire}} {
		b.Run(bench.name, func(b *testing.B) {
			br := redisq.New(rdb, redistest.Prefix(b))
			ctx := context.Background()
			i := 0
			for b.Loop() {
				i++
				t := redisq.Task{ID: fmt.Sprint("q/", i), Kind: "k", Queue: "q", Envelope: envelope, Schema: "v2:0123456789abcdef", Wire: bench.wire}
				if _, err := br.Enqueue(ctx, t); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

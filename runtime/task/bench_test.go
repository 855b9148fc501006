package task_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// benchOrder is the workload of issue 14: three small arguments, a caller.
type benchOrder struct {
	Order string `json:"order"`
	Qty   int    `json:"qty"`
	Gift  bool   `json:"gift"`
}

var benchOrderDef = task.Def{Kind: "bench.order", Queue: "bench", MaxRetries: 3, Caller: true}

// benchCaller is the caller of issue 14's workload: a user id, a 40-byte token, an expiry.
func benchCaller() task.Caller {
	return task.Caller{UserID: "user-8f14e45f", Token: task.NewSecret("tok-0123456789abcdef0123456789abcdef0123"), ExpiresAt: time.Now().Add(time.Hour)}
}

// benchVariants are the two ways a caller travels: "signed" in clear
// (WithPlainCallers), "sealed" sealed, the default.
var benchVariants = []struct {
	name string
	opts []task.Option
}{{"signed", []task.Option{task.WithPlainCallers()}}, {"sealed", nil}}

// BenchmarkWorkerPerTask measures what a worker spends on a task beyond the task's own
// work: fetching it, verifying and opening the envelope, checking the caller, decoding
// the arguments, calling a body that only reads them, writing the outcome. b.N tasks are
// submitted first, untimed; the timer runs from the worker's start (concurrency 50, as in
// issue 14) until the last body ran, so ns/op is the worker's wall time per task on the
// package's shared redis-server, with Redis's share in it. It also reports the worker's
// Redis round trips per task (a pipeline is one), which issue 14 wants at most 0.2:
//
//	go test -run '^$' -bench BenchmarkWorkerPerTask -benchmem ./runtime/task
//
// "signed" sends callers in clear (WithPlainCallers); "sealed" seals them, the default.
// The harness in bench/ measures the same against asynq, with its own server.
func BenchmarkWorkerPerTask(b *testing.B) {
	caller := benchCaller()
	for _, c := range benchVariants {
		b.Run(c.name, func(b *testing.B) {
			b.StopTimer()
			b.ReportAllocs()
			srv := redistest.Shared(b)
			shared := append([]task.Option{task.WithPrefix(redistest.Prefix(b)), task.WithSigningKey("k1", signingKey), task.WithLogger(nil)}, c.opts...)
			clientRDB := srv.NewClient()
			defer clientRDB.Close()
			client, err := task.NewClient(clientRDB, clientOptions(shared)...)
			if err != nil {
				b.Fatal(err)
			}
			if err := submitOrders(client, caller, b.N); err != nil {
				b.Fatal(err)
			}

			workerRDB := srv.NewClient()
			defer workerRDB.Close()
			trips := &tripCounter{}
			workerRDB.AddHook(trips)
			w, err := task.NewWorker(workerRDB, workerOptions(shared, task.WithConcurrency(50), task.WithResultTTL(time.Minute))...)
			if err != nil {
				b.Fatal(err)
			}
			var ran atomic.Int64
			all := make(chan struct{})
			err = task.Register(w, benchOrderDef, func(ctx context.Context, caller task.Caller, a benchOrder) (struct{}, error) {
				if caller.UserID == "" || a.Order == "" || a.Qty <= 0 {
					return struct{}{}, task.Permanent(errors.New("bench: caller or arguments lost on the way"))
				}
				if ran.Add(1) == int64(b.N) {
					close(all)
				}
				return struct{}{}, nil
			})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.StartTimer()
			go func() { done <- w.Run(ctx) }()
			select {
			case <-all:
			case <-time.After(5 * time.Minute):
				b.Errorf("%d of %d tasks ran in 5 minutes", ran.Load(), b.N)
			}
			b.StopTimer()
			tripsRun := trips.n.Load()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(tripsRun)/float64(b.N), "roundtrips/task")
		})
	}
}

// BenchmarkSubmit measures one Submit per task from 50 goroutines (issue 14's enqueue
// workload): building, signing (and for "sealed", sealing) the envelope and the enqueue
// script, with concurrent Submits coalesced into pipelines. ns/op is wall time per task
// on the package's shared redis-server, Redis's share in it:
//
//	go test -run '^$' -bench BenchmarkSubmit -benchmem ./runtime/task
func BenchmarkSubmit(b *testing.B) {
	caller := benchCaller()
	for _, c := range benchVariants {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			srv := redistest.Shared(b)
			rdb := srv.NewClient()
			defer rdb.Close()
			trips := &tripCounter{}
			rdb.AddHook(trips)
			opts := append([]task.Option{task.WithPrefix(redistest.Prefix(b)), task.WithSigningKey("k1", signingKey), task.WithLogger(nil)}, c.opts...)
			client, err := task.NewClient(rdb, clientOptions(opts)...)
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(max(50/runtime.GOMAXPROCS(0), 1))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					if _, err := task.Submit(context.Background(), client, benchOrderDef, caller, benchOrder{Order: "o-1", Qty: int(i%5) + 1, Gift: i%2 == 0}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(trips.n.Load())/float64(b.N), "roundtrips/task")
		})
	}
}

// submitOrders submits n orders from 16 goroutines.
func submitOrders(c *task.Client, caller task.Caller, n int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				if _, err := task.Submit(context.Background(), c, benchOrderDef, caller, benchOrder{Order: "o-1", Qty: int(i%5) + 1, Gift: i%2 == 0}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// tripCounter is a go-redis hook that counts round trips: a command sent alone, or a
// pipeline, is one. A connection's handshake (HELLO, CLIENT SETINFO ...), which go-redis
// sends through the hooks too, is not counted: a pool opens its connections once.
type tripCounter struct{ n atomic.Int64 }

func (t *tripCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (t *tripCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if name := cmd.Name(); name != "hello" && name != "client" {
			t.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (t *tripCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if len(cmds) > 0 && cmds[0].Name() != "client" {
			t.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

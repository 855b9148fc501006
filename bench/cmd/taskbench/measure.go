package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/bench/workload"
)

// measurement is what one round measured of one system. Per-task figures divide by the
// tasks of their phase.
type measurement struct {
	System string `json:"system"`
	Round  int    `json:"round"`

	// Enqueue phase: the tasks submitted by concurrency goroutines, one Submit (taskgen)
	// or Enqueue (asynq) per task, no worker running.
	EnqueuePerSec          float64          `json:"enqueue_per_sec"`
	EnqueueCommandsPerTask float64          `json:"enqueue_redis_commands_per_task"`
	EnqueueTripsPerTask    float64          `json:"enqueue_round_trips_per_task"`
	EnqueueCalls           map[string]int64 `json:"enqueue_redis_calls"`

	// Process phase: a worker of concurrency goroutines started on the tasks enqueued
	// above, timed from its start until the last task's body ran; the Redis figures run
	// until the worker stopped, its outcomes written.
	ProcessPerSec          float64          `json:"process_per_sec"`
	ProcessCommandsPerTask float64          `json:"process_redis_commands_per_task"`
	ProcessTripsPerTask    float64          `json:"process_round_trips_per_task"`
	ProcessCalls           map[string]int64 `json:"process_redis_calls"`
	// MemoryPerTask is the growth of Redis's used_memory, less its client buffers and
	// script cache (see snapshot.overhead), from the empty server to the worker stopped with every task
	// finished, per task: what a finished task leaves behind. KeysPerTask is the growth
	// of the number of keys.
	MemoryPerTask float64 `json:"redis_memory_per_finished_task_bytes"`
	KeysPerTask   float64 `json:"redis_keys_per_finished_task"`
	// Kept is what the server holds then, by key pattern.
	Kept map[string]keptPattern `json:"kept_keys"`

	// SubmitMany phase (taskgen only): the same number of tasks enqueued with the
	// generated SubmitOrderMany in slices of -many-batch from one goroutine, no worker
	// running; compared with redis-benchmark's XADD -P 16. Zero for asynq.
	SubmitManyPerSec       float64 `json:"submit_many_per_sec"`
	SubmitManyTripsPerTask float64 `json:"submit_many_round_trips_per_task"`

	// Rate phase: a paced submitter at the target rate with a running worker; latency
	// is from just before the Submit or Enqueue to the start of the task's body, CPU
	// from after the worker started until the last task ran.
	RateTasks           int     `json:"rate_tasks"`
	RateAchieved        float64 `json:"rate_achieved_per_sec"`
	P50Ms               float64 `json:"p50_submit_to_start_ms"`
	P99Ms               float64 `json:"p99_submit_to_start_ms"`
	ProcessCPUPerTask   float64 `json:"client_worker_cpu_per_task_us"`
	RedisCPUPerTask     float64 `json:"redis_cpu_per_task_us"`
	RateCommandsPerTask float64 `json:"rate_redis_commands_per_task"`
}

// bench holds what every measurement shares: the server and the workload's size.
type bench struct {
	admin       *redis.Client // the harness's own client: FLUSHALL and INFO only
	tasks       int
	concurrency int
	rate        int
	rateFor     time.Duration
	manyBatch   int // tasks per SubmitMany call
	timeout     time.Duration
	rec         *workload.Recorder
}

// warmUp runs n tasks of s through the enqueue and process phases, measuring nothing:
// the first tasks of a run pay for what later ones find done (the pools' connections,
// the scripts loaded, the server's first allocations, which FLUSHALL keeps), and would
// otherwise be charged to whichever system comes first.
func (b *bench) warmUp(ctx context.Context, s system, n int) error {
	w := *b
	w.tasks = n
	w.rateFor = 0
	_, err := w.round(ctx, s, 0)
	return err
}

// round measures system s once: enqueue, process and memory, then the paced run (not
// when rateFor is 0).
func (b *bench) round(ctx context.Context, s system, round int) (measurement, error) {
	m := measurement{System: s.name(), Round: round}
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		return m, fmt.Errorf("flush redis-server: %w", err)
	}
	empty, err := takeSnapshot(ctx, b.admin)
	if err != nil {
		return m, err
	}

	c0, _ := s.trips()
	start := time.Now()
	if err := fanOut(ctx, b.tasks, b.concurrency, func(seq int) error { return s.submit(ctx, seq, time.Now().UnixNano()) }); err != nil {
		return m, fmt.Errorf("%s: enqueue: %w", s.name(), err)
	}
	elapsed := time.Since(start)
	enqueued, err := takeSnapshot(ctx, b.admin)
	if err != nil {
		return m, err
	}
	c1, _ := s.trips()
	d := delta(empty, enqueued)
	n := float64(b.tasks)
	m.EnqueuePerSec = n / elapsed.Seconds()
	m.EnqueueCommandsPerTask = float64(d.commands()) / n
	m.EnqueueTripsPerTask = float64(c1-c0) / n
	m.EnqueueCalls = d.calls

	b.rec.Reset(b.tasks)
	_, w0 := s.trips()
	start = time.Now()
	stop, err := s.startWorker(b.rec, b.concurrency)
	if err != nil {
		return m, fmt.Errorf("%s: start worker: %w", s.name(), err)
	}
	waitErr := b.waitAll(ctx, s.name(), b.tasks)
	elapsed = time.Since(start)
	if err := errors.Join(waitErr, stop()); err != nil {
		return m, err
	}
	finished, err := takeSnapshot(ctx, b.admin)
	if err != nil {
		return m, err
	}
	_, w1 := s.trips()
	d = delta(enqueued, finished)
	m.ProcessPerSec = n / elapsed.Seconds()
	m.ProcessCommandsPerTask = float64(d.commands()) / n
	m.ProcessTripsPerTask = float64(w1-w0) / n
	m.ProcessCalls = d.calls
	m.MemoryPerTask = float64((finished.memory-finished.overhead)-(empty.memory-empty.overhead)) / n
	m.KeysPerTask = float64(finished.keys-empty.keys) / n
	if m.Kept, err = keptKeys(ctx, b.admin); err != nil {
		return m, err
	}

	if err := b.bulk(ctx, s, &m); err != nil {
		return m, err
	}
	if b.rateFor == 0 {
		return m, nil
	}
	if err := b.paced(ctx, s, &m); err != nil {
		return m, err
	}
	return m, nil
}

// bulk runs the SubmitMany phase of s into m, when s has a bulk submit: b.tasks tasks in
// calls of b.manyBatch from one goroutine, on a flushed server with no worker running.
func (b *bench) bulk(ctx context.Context, s system, m *measurement) error {
	bs, ok := s.(bulkSubmitter)
	if !ok {
		return nil
	}
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("flush redis-server: %w", err)
	}
	c0, _ := s.trips()
	start := time.Now()
	for first := 0; first < b.tasks; first += b.manyBatch {
		if err := bs.submitMany(ctx, first, min(b.manyBatch, b.tasks-first), time.Now().UnixNano()); err != nil {
			return fmt.Errorf("%s: submit many: %w", s.name(), err)
		}
	}
	elapsed := time.Since(start)
	c1, _ := s.trips()
	m.SubmitManyPerSec = float64(b.tasks) / elapsed.Seconds()
	m.SubmitManyTripsPerTask = float64(c1-c0) / float64(b.tasks)
	return nil
}

// paced runs the rate phase of s into m.
func (b *bench) paced(ctx context.Context, s system, m *measurement) error {
	if err := b.admin.FlushAll(ctx).Err(); err != nil {
		return fmt.Errorf("flush redis-server: %w", err)
	}
	total := int(float64(b.rate) * b.rateFor.Seconds())
	b.rec.Reset(total)
	stop, err := s.startWorker(b.rec, b.concurrency)
	if err != nil {
		return fmt.Errorf("%s: start worker: %w", s.name(), err)
	}
	// The worker's start (consumer group, registration) is not what this phase measures.
	time.Sleep(500 * time.Millisecond)
	before, err := takeSnapshot(ctx, b.admin)
	if err != nil {
		return errors.Join(err, stop())
	}

	// One goroutine paces, on an absolute schedule so that a late tick is caught up, not
	// lost; concurrency goroutines submit, so that one slow Submit does not hold the
	// next back.
	ticks := make(chan int, b.concurrency)
	interval := time.Second / time.Duration(b.rate)
	start := time.Now()
	go func() {
		defer close(ticks)
		for i := range total {
			if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
				time.Sleep(wait)
			}
			select {
			case ticks <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range b.concurrency {
		wg.Go(func() {
			for seq := range ticks {
				if err := s.submit(ctx, seq, time.Now().UnixNano()); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	submitted := time.Since(start)
	if p := firstErr.Load(); p != nil {
		return errors.Join(fmt.Errorf("%s: paced submit: %w", s.name(), *p), stop())
	}
	waitErr := b.waitAll(ctx, s.name(), total)
	after, err := takeSnapshot(ctx, b.admin)
	if err := errors.Join(waitErr, err, stop()); err != nil {
		return err
	}
	d := delta(before, after)
	lat := slices.Clone(b.rec.Latencies())
	slices.Sort(lat)
	m.RateTasks = total
	m.RateAchieved = float64(total) / submitted.Seconds()
	m.P50Ms = ms(percentile(lat, 0.50))
	m.P99Ms = ms(percentile(lat, 0.99))
	m.ProcessCPUPerTask = us(d.processCPU) / float64(total)
	m.RedisCPUPerTask = us(d.redisCPU) / float64(total)
	m.RateCommandsPerTask = float64(d.commands()) / float64(total)
	return nil
}

// waitAll waits until want task bodies ran, or fails after the harness's timeout.
func (b *bench) waitAll(ctx context.Context, system string, want int) error {
	t := time.NewTimer(b.timeout)
	defer t.Stop()
	select {
	case <-b.rec.Full():
		return nil
	case <-t.C:
		return fmt.Errorf("%s: %d of %d tasks ran within %s; raise -timeout if the machine is this slow, or look at the warnings above", system, b.rec.Started(), want, b.timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fanOut calls fn(0) ... fn(n-1) from goroutines goroutines and returns the first error.
func fanOut(ctx context.Context, n, goroutines int, fn func(seq int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Pointer[error]
	for range goroutines {
		wg.Go(func() {
			for ctx.Err() == nil && firstErr.Load() == nil {
				seq := int(next.Add(1) - 1)
				if seq >= n {
					return
				}
				if err := fn(seq); err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}
	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return ctx.Err()
}

// percentile returns the q-quantile of sorted (nearest rank), or 0 for none.
func percentile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

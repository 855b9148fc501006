package task

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Worker runs registered tasks from its queues. Register tasks (RegisterTasks of each
// generated package), then call Run.
//
// A worker is a few small services, each in a file of its own: a fetcher per queue
// (fetch.go) reads and takes over entries, a promoter per queue (promote.go) moves
// delayed tasks to their stream, every delivery is executed (execute.go) and its outcome
// chosen by a pure function (decide.go), the settler (settle.go) writes every outcome,
// and the heartbeater (heartbeat.go) renews the leases of every delivery held (leases.go)
// until its outcome is written. All Redis access goes through store (store.go).
type Worker struct {
	cfg   workerConfig
	keys  *envelope.Keyring
	store store
	log   *slog.Logger

	mu       sync.Mutex
	handlers map[string]*handler
	started  atomic.Bool
	// skewLogged holds the kinds (and reasons) whose version-skew hand-backs were logged
	// as a warning.
	skewLogged sync.Map
	schemas    schemaDecisions

	leases    *leases
	settler   *settler
	promoters map[string]*promoter
}

// NewWorker returns a worker over rdb (one server, Sentinel or Cluster). A signing key is
// required (WithSigningKey): the worker verifies every envelope and re-signs retries.
func NewWorker(rdb redis.UniversalClient, opts ...WorkerOption) (*Worker, error) {
	cfg, keys, err := newWorkerConfig(rdb, opts)
	if err != nil {
		return nil, fmt.Errorf("task.NewWorker: %w", err)
	}
	b := redisq.New(rdb, cfg.prefix)
	b.SetRetention(redisq.Retention{MaxCount: cfg.deadMaxCount, MaxAge: cfg.deadMaxAge})
	return newWorker(cfg, keys, b), nil
}

// newWorker assembles a worker on st: the broker, or a test's fake.
func newWorker(cfg workerConfig, keys *envelope.Keyring, st store) *Worker {
	w := &Worker{
		cfg: cfg, keys: keys, store: st,
		log:       cfg.logger.With("consumer", cfg.consumer),
		handlers:  map[string]*handler{},
		leases:    newLeases(),
		promoters: map[string]*promoter{},
	}
	w.settler = newSettler(st, w.leases, w.log, cfg.concurrency)
	return w
}

// Kinds returns the registered task kinds, sorted.
func (w *Worker) Kinds() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	kinds := make([]string, 0, len(w.handlers))
	for k := range w.handlers {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	return kinds
}

// Run fetches and runs tasks until ctx ends. Then it stops fetching, waits up to the
// shutdown timeout (WithShutdownTimeout) for running tasks, cancels the contexts of those
// still running (context.Cause tells them why) and waits for them to return. A task that
// ends because of that cancellation is handed back to its queue unspent, for another
// worker to run at once. Outcomes not written yet are then written, for up to one lease
// (WithLease) more. Run may be called once.
func (w *Worker) Run(ctx context.Context) error {
	if len(w.Kinds()) == 0 {
		// Such a worker would dead-letter every task of its queues as an unknown kind.
		return errors.New("task.Worker.Run: no task registered; call the RegisterTasks of your task packages first")
	}
	if _, ok := w.store.(*localStore); ok {
		return errors.New("task.Worker.Run: this is a runtime/tasktest worker, which has no Redis; run its tasks with tasktest.Run or Env.RunAll")
	}
	if !w.started.CompareAndSwap(false, true) {
		return errors.New("task.Worker.Run called twice")
	}
	queues, err := w.queues()
	if err != nil {
		return fmt.Errorf("task.Worker.Run: %w", err)
	}
	sched, err := w.newScheduler()
	if err != nil {
		return fmt.Errorf("task.Worker.Run: %w", err)
	}
	// Built before any goroutine starts and never changed after: read without a lock.
	for _, q := range queues {
		w.promoters[q] = &promoter{w: w, queue: q, wake: make(chan struct{}, 1)}
	}
	w.log.Info("worker started", "queues", queues, "kinds", w.Kinds(), "concurrency", w.cfg.concurrency)

	// The leases and outcome writes outlive the fetchers and the runs: they stop last.
	hbCtx, stopHeartbeat := context.WithCancel(context.Background())
	hbDone := make(chan struct{})
	hb := &heartbeater{store: w.store, consumer: w.cfg.consumer, lease: w.cfg.lease, leases: w.leases, log: w.log}
	go func() { defer close(hbDone); hb.run(hbCtx) }()
	stopSettler, abandonSettler := make(chan struct{}), make(chan struct{})
	settlerDone := make(chan struct{})
	go func() { defer close(settlerDone); w.settler.run(stopSettler, abandonSettler) }()

	// Tasks run under a context of their own, derived from nothing the caller of Run or
	// the submitter holds; it is cancelled only when the shutdown timeout runs out.
	base, cancelRuns := context.WithCancelCause(context.Background())
	defer cancelRuns(nil)
	slots := make(chan struct{}, w.cfg.concurrency)
	var loops, runs sync.WaitGroup
	// dispatch begins the deliveries of one fetch together (beginAll), off the fetcher's
	// goroutine, then runs each in its own; each owns the slot taken for it.
	dispatch := func(msgs []redisq.Message) {
		rs := make([]*run, len(msgs))
		for i, m := range msgs {
			rs[i] = w.leases.add(base, m)
		}
		runs.Add(1)
		go func() {
			defer runs.Done()
			ds := w.beginAll(rs)
			for i, r := range rs {
				var once sync.Once
				freeSlot := func() { once.Do(func() { <-slots }) }
				runs.Add(1) // while this goroutine's own count holds runs above zero
				go func() {
					defer runs.Done()
					w.handle(r, ds[i], freeSlot)
				}()
			}
		}()
	}
	for _, q := range queues {
		f := &fetcher{w: w, queue: q, dispatch: dispatch, slots: slots}
		p := w.promoters[q]
		loops.Add(2)
		go func() { defer loops.Done(); f.run(ctx) }()
		go func() { defer loops.Done(); p.run(ctx) }()
	}
	if sched != nil { // schedule.go
		loops.Add(1)
		go func() { defer loops.Done(); sched.run(ctx) }()
	}

	<-ctx.Done()
	loops.Wait()
	w.log.Info("worker stopping: draining running tasks", "timeout", w.cfg.shutdownTimeout)
	drained := make(chan struct{})
	go func() { runs.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(w.cfg.shutdownTimeout):
		w.log.Warn("shutdown timeout: cancelling running tasks")
		cancelRuns(errShutdown)
		select {
		case <-drained:
		case <-time.After(w.cfg.lease):
			err = errors.New("task.Worker.Run: tasks ignored their cancelled context; their leases will expire and other workers will run them again")
		}
	}
	close(stopSettler)
	select {
	case <-settlerDone:
	case <-time.After(w.cfg.lease):
		w.log.Error("outcomes not written at shutdown; their leases run out and other workers run those tasks again", "outcomes", w.settler.backlog())
		close(abandonSettler)
		<-settlerDone
	}
	stopHeartbeat()
	<-hbDone
	w.log.Info("worker stopped")
	return err
}

// waitForSettler holds the fetch back while more outcomes wait to be written than the
// worker runs tasks at once: a Redis that accepts reads but fails writes must not make
// the worker take ever more tasks it cannot settle.
func (w *Worker) waitForSettler(ctx context.Context) {
	for w.settler.backlog() > w.cfg.concurrency+fetchBatch && ctx.Err() == nil {
		sleep(ctx, 10*time.Millisecond)
	}
}

// pokePromoter wakes a queue's promoter when this worker schedules a retry, so a short
// backoff is not stretched to the promoter's idle interval.
func (w *Worker) pokePromoter(queue string) {
	if p := w.promoters[queue]; p != nil {
		p.poke()
	}
}

// queues returns the queues Run consumes: those of WithQueues, or by default the queues
// of the registered tasks, so that the list cannot drift from the directives. A
// registered task on a queue the worker would not consume is an error: its submitters'
// Results would wait for a worker that never comes.
func (w *Worker) queues() ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var queues []string
	seen := map[string]bool{}
	for _, q := range w.cfg.queues {
		if !seen[q] {
			seen[q] = true
			queues = append(queues, q)
		}
	}
	var missing []string
	for _, kind := range slices.Sorted(maps.Keys(w.handlers)) {
		q := w.handlers[kind].def.queue()
		switch {
		case seen[q]:
		case w.cfg.queuesSet:
			missing = append(missing, fmt.Sprintf("%s (queue %q)", kind, q))
		default:
			seen[q] = true
			queues = append(queues, q)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("registered tasks on queues this worker does not consume (WithQueues%q): %s; add their queues to WithQueues, or leave WithQueues out to consume the queue of every registered task",
			w.cfg.queues, strings.Join(missing, ", "))
	}
	return queues, nil
}

// pause logs a Redis failure and sleeps with exponential backoff, so that a worker
// whose Redis is away neither spins nor gives up.
func (w *Worker) pause(ctx context.Context, fails *int, msg string, err error) {
	*fails++
	d := min(50*time.Millisecond<<min(*fails, 7), 5*time.Second)
	level := slog.LevelDebug
	if *fails == 1 || *fails%20 == 0 {
		level = slog.LevelError
	}
	w.log.Log(ctx, level, msg, "err", err, "failures", *fails, "retry_in", d)
	sleep(ctx, d)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// backoff returns the delay before retry number attempt: base·2^(attempt-1) capped at
// max, of which the upper half is random so that retries of many tasks spread out.
func (w *Worker) backoff(attempt int) time.Duration {
	d := w.cfg.backoffBase
	for i := 1; i < attempt && d < w.cfg.backoffMax; i++ {
		d *= 2
	}
	d = min(d, w.cfg.backoffMax)
	half := d / 2
	j, err := rand.Int(rand.Reader, big.NewInt(int64(half)+1))
	if err != nil {
		return d
	}
	return half + time.Duration(j.Int64())
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

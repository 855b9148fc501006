package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/bench/workload"
	"github.com/taskgen/taskgen/runtime/task"
)

// system is one task queue under measurement. Its submitting side and its worker have a
// Redis client each, so that the round trips of either can be told apart.
type system interface {
	// name is the system's column in the table.
	name() string
	// submit enqueues task seq of the workload, submitted at sent (Unix nanoseconds):
	// one Submit, or one Enqueue, one task.
	submit(ctx context.Context, seq int, sent int64) error
	// startWorker starts a worker of concurrency goroutines that runs the workload's
	// task with rec; stop stops it and returns once it has finished what it started.
	startWorker(rec *workload.Recorder, concurrency int) (stop func() error, err error)
	// trips returns the round trips the submitting side and the worker made so far.
	trips() (client, worker int64)
	// close closes the system's clients.
	close()
}

// bulkSubmitter is a system with a bulk submit of its own: taskgen's SubmitMany. asynq
// has none (its Client enqueues one task per call).
type bulkSubmitter interface {
	// submitMany enqueues tasks first to first+n-1 of the workload in one call.
	submitMany(ctx context.Context, first, n int, sent int64) error
}

// benchCaller is the caller of every task: a user id, a 40-byte token, an expiry an hour
// on, which no run of the harness outlasts.
func benchCaller() task.Caller {
	return task.Caller{
		UserID:    "user-8f14e45f",
		Token:     task.NewSecret("tok-0123456789abcdef0123456789abcdef0123"),
		ExpiresAt: time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond),
	}
}

// args returns the three small arguments of task seq.
func args(seq int) (order string, qty int, gift bool) {
	return "o-" + strconv.Itoa(seq), 1 + seq%5, seq%2 == 0
}

// signingKey is the harness's HMAC key; it signs nothing outside the harness's own
// redis-server, which lives as long as one run.
var signingKey = []byte("taskbench-signing-key-0123456789abcdef")

// taskgenSystem is taskgen, with callers signed in clear (WithPlainCallers) or signed and
// sealed (the default), its clients writing envelope version 1 (the default) or 2
// (WithEnvelopeVersion).
type taskgenSystem struct {
	sealed       bool
	envelope     int
	client       *task.Client
	clientRDB    *redis.Client
	workerRDB    *redis.Client
	clientTrips  *roundTrips
	workerTrips  *roundTrips
	caller       task.Caller
	shared       []task.Option
	workerLogger *slog.Logger
}

func newTaskgen(addr string, concurrency int, sealed bool, envelope int, log *slog.Logger) (*taskgenSystem, error) {
	s := &taskgenSystem{sealed: sealed, envelope: envelope, caller: benchCaller(), workerLogger: log}
	s.shared = []task.Option{task.WithSigningKey("k1", signingKey), task.WithLogger(log), task.WithEnvelopeVersion(envelope)}
	if !sealed {
		s.shared = append(s.shared, task.WithPlainCallers())
	}
	s.clientRDB, s.clientTrips = countingClient(addr, concurrency)
	s.workerRDB, s.workerTrips = countingClient(addr, concurrency)
	opts := make([]task.ClientOption, 0, len(s.shared))
	for _, o := range s.shared {
		opts = append(opts, o)
	}
	c, err := task.NewClient(s.clientRDB, opts...)
	if err != nil {
		s.close()
		return nil, err
	}
	s.client = c
	return s, nil
}

func (s *taskgenSystem) name() string {
	name := "taskgen signed"
	if s.sealed {
		name = "taskgen sealed"
	}
	if s.envelope != 1 {
		name += fmt.Sprintf(" v%d", s.envelope)
	}
	return name
}

func (s *taskgenSystem) submit(ctx context.Context, seq int, sent int64) error {
	order, qty, gift := args(seq)
	_, err := workload.SubmitOrder(ctx, s.client, s.caller, order, qty, gift, sent)
	return err
}

// submitMany enqueues tasks first to first+n-1 of the workload, submitted at sent, with
// one SubmitOrderMany: the generated bulk submit, which sends them in pipelines.
func (s *taskgenSystem) submitMany(ctx context.Context, first, n int, sent int64) error {
	batch := make([]workload.OrderArgs, n)
	for i := range batch {
		order, qty, gift := args(first + i)
		batch[i] = workload.OrderArgs{Order: order, Qty: qty, Gift: gift, Sent: sent}
	}
	_, err := workload.SubmitOrderMany(ctx, s.client, s.caller, batch)
	return err
}

func (s *taskgenSystem) startWorker(rec *workload.Recorder, concurrency int) (func() error, error) {
	opts := make([]task.WorkerOption, 0, len(s.shared)+3)
	for _, o := range s.shared {
		opts = append(opts, o)
	}
	opts = append(opts, task.WithConcurrency(concurrency), task.WithQueues(workload.Queue), task.WithShutdownTimeout(10*time.Second))
	w, err := task.NewWorker(s.workerRDB, opts...)
	if err != nil {
		return nil, err
	}
	if err := workload.RegisterTasks(w, rec); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	return func() error {
		cancel()
		return <-done
	}, nil
}

func (s *taskgenSystem) trips() (int64, int64) { return s.clientTrips.n.Load(), s.workerTrips.n.Load() }

func (s *taskgenSystem) close() {
	s.clientRDB.Close()
	s.workerRDB.Close()
}

// asynqSystem is hibiken/asynq with its defaults, but for the concurrency, the queue and
// the log level, on clients of the same kind as taskgen's.
type asynqSystem struct {
	client      *asynq.Client
	clientRDB   *redis.Client
	workerRDB   *redis.Client
	clientTrips *roundTrips
	workerTrips *roundTrips
	caller      task.Caller
}

func newAsynq(addr string, concurrency int) *asynqSystem {
	s := &asynqSystem{caller: benchCaller()}
	s.clientRDB, s.clientTrips = countingClient(addr, concurrency)
	s.workerRDB, s.workerTrips = countingClient(addr, concurrency)
	s.client = asynq.NewClientFromRedisClient(s.clientRDB)
	return s
}

func (s *asynqSystem) name() string { return "asynq" }

func (s *asynqSystem) submit(ctx context.Context, seq int, sent int64) error {
	order, qty, gift := args(seq)
	payload, err := json.Marshal(workload.Payload{
		Order: order, Qty: qty, Gift: gift, Sent: sent,
		UserID: s.caller.UserID, Token: s.caller.Token.Reveal(), ExpiresAt: s.caller.ExpiresAt,
	})
	if err != nil {
		return fmt.Errorf("encode asynq payload: %w", err)
	}
	_, err = s.client.EnqueueContext(ctx, asynq.NewTask(workload.AsynqType, payload), asynq.Queue(workload.Queue), asynq.MaxRetry(3))
	return err
}

func (s *asynqSystem) startWorker(rec *workload.Recorder, concurrency int) (func() error, error) {
	srv := asynq.NewServerFromRedisClient(s.workerRDB, asynq.Config{
		Concurrency:     concurrency,
		Queues:          map[string]int{workload.Queue: 1},
		LogLevel:        asynq.WarnLevel,
		ShutdownTimeout: 10 * time.Second,
	})
	mux := asynq.NewServeMux()
	mux.Handle(workload.AsynqType, workload.AsynqHandler(rec))
	if err := srv.Start(mux); err != nil {
		return nil, fmt.Errorf("start asynq server: %w", err)
	}
	return func() error {
		srv.Shutdown()
		return nil
	}, nil
}

func (s *asynqSystem) trips() (int64, int64) { return s.clientTrips.n.Load(), s.workerTrips.n.Load() }

// close closes the two Redis clients; asynq's Client over a client it was given holds
// nothing else (its Close refuses to close a shared connection).
func (s *asynqSystem) close() {
	s.clientRDB.Close()
	s.workerRDB.Close()
}

// logger is the logger of the systems under measurement: warnings and errors only, to
// stderr, so that a failing system is seen and a working one costs no logging.
func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

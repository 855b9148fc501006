package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/local"
	"github.com/taskgen/taskgen/internal/redisq"
)

// This file is the task side of runtime/tasktest: a worker and a client that run and
// record tasks in the process, with no Redis, reached only through the internal bridge
// package local (its documentation says why a bridge). What they share with the real
// ones is everything but Redis: the client's Submit makes every check up to the enqueue
// and signs the envelope; the worker opens and verifies envelopes and calls the task
// function through verifyAndCall, and decide chooses the outcome, as for a delivery.

func init() { local.New = newLocal }

// errNoRedis is what every Redis command of a tasktest client or worker fails with.
var errNoRedis = errors.New("this is a runtime/tasktest client or worker, which has no Redis: its submits are recorded (Env.Submitted), and its tasks run with tasktest.Run and Env.RunAll")

// localEnv is a tasktest worker and client, which share their keys and recorder.
type localEnv struct {
	w   *Worker
	c   *Client
	rec *recorder
}

// newLocal builds a localEnv with opts, task.WorkerOptions. The worker's skew grace is
// 0: no worker of another version will ever see a task handed back, so a refusal for
// a version skew (an unknown kind, an unaccepted schema) is final at once.
func newLocal(opts []any) (local.Env, error) {
	wopts := make([]WorkerOption, len(opts))
	for i, o := range opts {
		wo, ok := o.(WorkerOption)
		if !ok {
			return nil, fmt.Errorf("option %d is a %T, not a task.WorkerOption", i+1, o)
		}
		wopts[i] = wo
	}
	cfg, keys, err := workerConfigOf(wopts)
	if err != nil {
		return nil, err
	}
	cfg.skewGrace = 0
	// The broker is real, over a Redis client that fails every command: a method of the
	// client or worker that is not recorded or run here (Result, DeadLetters, ...) then
	// fails with errNoRedis instead of reaching a server or panicking.
	broker := redisq.New(noRedis(), cfg.prefix)
	rec := &recorder{wires: map[[2]string]string{}, unique: map[string]uniqueEntry{}}
	return &localEnv{
		w:   newWorker(cfg, keys, &localStore{Broker: broker, rec: rec}),
		c:   &Client{cfg: clientConfig{commonConfig: cfg.commonConfig}, keys: keys, broker: broker, recorder: rec},
		rec: rec,
	}, nil
}

func (l *localEnv) Worker() any                  { return l.w }
func (l *localEnv) Client() any                  { return l.c }
func (l *localEnv) Recorded() []local.Submission { return l.rec.recorded() }

func (l *localEnv) Sign(def, caller any, args json.RawMessage, id string, submittedAt time.Time) ([]byte, error) {
	d, ok := def.(Def)
	if !ok {
		return nil, fmt.Errorf("run: %T is not a task.Def", def)
	}
	c, ok := caller.(Caller)
	if !ok {
		return nil, fmt.Errorf("run %s: %T is not a task.Caller", d.Kind, caller)
	}
	if err := d.check(); err != nil {
		return nil, fmt.Errorf("run %w", err)
	}
	if submittedAt.IsZero() {
		submittedAt = time.Now()
	}
	tid := ID(id)
	if id == "" {
		tid = newID(d.queue(), submittedAt)
	} else if q, err := tid.parse(); err != nil {
		return nil, fmt.Errorf("run %s: %w", d.Kind, err)
	} else if q != d.queue() {
		return nil, fmt.Errorf("run %s: task id %s is of queue %q, and the task's queue is %q", d.Kind, id, q, d.queue())
	}
	e := d.envelope(tid, submittedAt, submittedAt, args)
	var wc *envelope.Caller
	if d.Caller && !c.IsZero() {
		wc = c.wire()
	}
	if err := l.c.keys.SetCaller(e, wc); err != nil {
		return nil, fmt.Errorf("run %s: %w", d.Kind, err)
	}
	data, err := l.c.keys.Sign(e)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", d.Kind, err)
	}
	// As a Submit records it in the queue's schema hash, for the worker to compare.
	l.rec.noteWire(d.queue(), d.Schema, d.Wire)
	return data, nil
}

func (l *localEnv) Execute(data []byte, attempt int) local.Outcome {
	w := l.w
	d := delivery{inline: true}
	d.now = time.Now()
	e, err := w.keys.Open(data, w.cfg.maxEnvelope)
	if err == nil {
		err = w.checkStale(e)
	}
	if err != nil {
		d.refusal, d.untrusted = err, true
	} else {
		d.env, d.maxRetries, d.attempt, d.start = e, e.MaxRetries, attempt, redisq.StartRun
		d.queue, d.attempted = e.Queue, true
		d.versionSkew = w.verifyAndCall(context.Background(), &d, e, func() {})
		if d.ran {
			d.now = time.Now()
			d.backoff = w.backoff(attempt)
		}
	}
	out := decide(d.facts)
	w.observe(redisq.Message{}, &d, out)
	w.logDelivery(slog.LevelDebug, "task "+out.why, &d)
	o := local.Outcome{Attempt: attempt, Reason: out.reason, Message: out.message, Result: d.result, Err: d.err}
	if d.refusal != nil {
		o.Err = d.refusal
	}
	if e != nil {
		o.ID, o.Kind, o.Queue = e.ID, e.Kind, e.Queue
	}
	switch out.action {
	case actComplete:
		o.Decision = local.Succeeded
	case actRetry:
		o.Decision, o.Delay = local.Retry, out.delay
	default:
		// actDead and actRefuse. The others cannot be chosen here: they need a delivery
		// Redis did not begin (actNone), a shutdown (actRelease) or a skew grace (actDefer).
		o.Decision = local.Dead
	}
	return o
}

// localStore is the store of a tasktest worker: the broker over noRedis, but for the
// schemas its client recorded, which the worker reads to accept a compatible schema.
type localStore struct {
	*redisq.Broker
	rec *recorder
}

func (s *localStore) Schema(_ context.Context, queue, fingerprint string) (string, bool, error) {
	wire, ok := s.rec.wire(queue, fingerprint)
	return wire, ok, nil
}

// recorder holds what a tasktest client submitted: the submissions in order, the wire
// shapes of their schemas per queue, and the Unique keys in force.
type recorder struct {
	mu     sync.Mutex
	subs   []local.Submission
	wires  map[[2]string]string
	unique map[string]uniqueEntry
}

type uniqueEntry struct {
	id    ID
	until time.Time
}

// record records the task t of envelope e, submitted on behalf of c (nil: no caller),
// as Redis would enqueue it: a submit with the Unique key of a task recorded less than
// its ttl ago returns that task's ID and records nothing.
func (r *recorder) record(ctx context.Context, t redisq.Task, e *envelope.Envelope, c *envelope.Caller) (ID, error) {
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("submit %s: %w", t.Kind, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if t.UniqueKey != "" {
		key := t.Kind + "\x00" + t.UniqueKey
		now := time.Now()
		if u, ok := r.unique[key]; ok && now.Before(u.until) {
			return u.id, nil
		}
		r.unique[key] = uniqueEntry{id: ID(t.ID), until: now.Add(t.UniqueTTL)}
	}
	r.noteWireLocked(t.Queue, t.Schema, t.Wire)
	s := local.Submission{
		ID: t.ID, Kind: t.Kind, Queue: t.Queue, Envelope: t.Envelope, Args: e.Args,
		SubmittedAt: e.SubmittedAt, Delay: t.Delay, UniqueKey: t.UniqueKey, UniqueTTL: t.UniqueTTL,
	}
	if c != nil {
		s.UserID, s.Scopes, s.ExpiresAt = c.UserID, slices.Clone(c.Scopes), c.ExpiresAt
	}
	r.subs = append(r.subs, s)
	return ID(t.ID), nil
}

func (r *recorder) recorded() []local.Submission {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.subs)
}

func (r *recorder) noteWire(queue, schema, wire string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.noteWireLocked(queue, schema, wire)
}

func (r *recorder) noteWireLocked(queue, schema, wire string) {
	if wire != "" {
		r.wires[[2]string{queue, schema}] = wire
	}
}

func (r *recorder) wire(queue, schema string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	w, ok := r.wires[[2]string{queue, schema}]
	return w, ok
}

// noRedis returns a Redis client that never connects: every command, pipeline and dial
// fails with errNoRedis.
func noRedis() redis.UniversalClient {
	rdb := redis.NewClient(&redis.Options{Addr: "tasktest.invalid:6379", MaxRetries: -1})
	rdb.AddHook(noRedisHook{})
	return rdb
}

type noRedisHook struct{}

func (noRedisHook) DialHook(redis.DialHook) redis.DialHook {
	return func(context.Context, string, string) (net.Conn, error) { return nil, errNoRedis }
}

func (noRedisHook) ProcessHook(redis.ProcessHook) redis.ProcessHook {
	return func(_ context.Context, cmd redis.Cmder) error {
		cmd.SetErr(errNoRedis)
		return errNoRedis
	}
}

func (noRedisHook) ProcessPipelineHook(redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(_ context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			c.SetErr(errNoRedis)
		}
		return errNoRedis
	}
}

package task

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Client submits tasks and reads their results. It is safe for concurrent use.
type Client struct {
	cfg    clientConfig
	keys   *envelope.Keyring
	broker *redisq.Broker
	// recorder, set only on runtime/tasktest's clients (local.go), records each submit
	// instead of enqueuing it.
	recorder *recorder
	// coalesce holds the submits waiting to share a pipeline (coalesce.go).
	coalesce coalescer
	// registered holds the queues this client has recorded in the registry of queues
	// (for the Inspector): once per queue and process.
	registered sync.Map
}

// NewClient returns a client over rdb (one server, Sentinel or Cluster). A signing key
// is required (WithSigningKey).
func NewClient(rdb redis.UniversalClient, opts ...ClientOption) (*Client, error) {
	cfg, keys, err := newClientConfig(rdb, opts)
	if err != nil {
		return nil, fmt.Errorf("task.NewClient: %w", err)
	}
	return &Client{cfg: cfg, keys: keys, broker: redisq.New(rdb, cfg.prefix)}, nil
}

// Submit enqueues a task of Def d with args on behalf of caller and returns its ID. ctx
// bounds only the enqueue; the task runs later with a context of the worker's. When d
// takes a caller, an empty caller is refused with ErrNoCaller and an expired one with
// ErrCallerExpired; when it does not, caller is not sent.
//
// Submit returns when ctx ends even if Redis does not answer. An error then does not
// prove that nothing was enqueued: the command may still reach Redis. Submit with
// Unique to make a repeated submit safe.
//
// Concurrent Submits of one client share round trips: those that come while another's
// enqueue is in flight go to Redis together in the next pipeline (coalesce.go). A Submit
// alone is sent at once. SubmitMany sends many tasks of one Def in one call.
//
// With WithDurability, Submit returns once the write is also confirmed on the replicas
// or append-only files asked for. When it is enqueued but not confirmed, Submit returns
// its ID, not "", with an error wrapping ErrNotDurable; a submit with Unique can then be
// repeated safely: it returns the same ID and waits for the confirmations again.
func Submit[A any](ctx context.Context, c *Client, d Def, caller Caller, args A, opts ...SubmitOption) (ID, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return "", fmt.Errorf("submit %s: encode arguments: %w", d.Kind, err)
	}
	return c.submit(ctx, d, caller, raw, opts)
}

func (c *Client) submit(ctx context.Context, d Def, caller Caller, args json.RawMessage, opts []SubmitOption) (ID, error) {
	if c == nil {
		return "", fmt.Errorf("submit %s: nil *task.Client", d.Kind)
	}
	if err := d.check(); err != nil {
		return "", fmt.Errorf("submit %w", err)
	}
	sc, err := submitOptions(d, 1, opts)
	if err != nil {
		return "", err
	}
	now := time.Now()
	wireCaller, err := d.admit(caller, &sc, now)
	if err != nil {
		return "", err
	}
	o, err := c.build(ctx, d, wireCaller, args, &sc, sc.uniqueFor(0), now)
	if err != nil {
		return "", err
	}
	id, err := c.send(o)
	o.finish(id, err)
	return id, err
}

// send enqueues the built task o, or records it on a tasktest client.
func (c *Client) send(o *outgoing) (ID, error) {
	if c.recorder != nil {
		return c.recorder.record(o.ctx, o.task, o.env, o.caller)
	}
	c.register(o.ctx, o.task.Queue)
	if c.cfg.durability.on() {
		return c.submitDurable(o.ctx, o.task)
	}
	got, err := whileResharding(o.ctx, func(ctx context.Context) (string, error) { return c.coalesced(ctx, o.task) })
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", o.task.Kind, err)
	}
	return ID(got), nil
}

// admit checks caller for a submit of d with options sc at now: an empty caller or an
// expired one for a task that takes one, a task due after its caller's token expires or
// further ahead than MaxTaskLife. It returns the caller's wire form, nil when d takes no
// caller. Submit and SubmitMany share it: a rule of submitting is written once.
func (d Def) admit(caller Caller, sc *submitConfig, now time.Time) (*envelope.Caller, error) {
	var wireCaller *envelope.Caller
	due := sc.readyAt(now)
	if d.Caller {
		if caller.IsZero() {
			return nil, fmt.Errorf("submit %s: %w", d.Kind, ErrNoCaller)
		}
		if caller.Expired(now, 0) {
			return nil, fmt.Errorf("submit %s: caller %s: token expired at %s: %w", d.Kind, caller.UserID, caller.ExpiresAt.Format(time.RFC3339), ErrCallerExpired)
		}
		// A task due after its caller's token expires is certain to fail in a worker,
		// hours from now; refuse it here, where the request can still be answered.
		if caller.Expired(due, 0) {
			return nil, fmt.Errorf("submit %s: caller %s: token expires at %s, before the task is due at %s: %w",
				d.Kind, caller.UserID, caller.ExpiresAt.Format(time.RFC3339), due.Format(time.RFC3339), ErrCallerExpired)
		}
		wireCaller = caller.wire()
	}
	if due.Sub(now) > MaxTaskLife {
		return nil, fmt.Errorf("submit %s: due at %s, more than MaxTaskLife (%s) from now: a task's envelope is valid for at most that long", d.Kind, due.Format(time.RFC3339), MaxTaskLife)
	}
	return wireCaller, nil
}

// outgoing is one task built for a submit: signed, checked, ready to enqueue.
type outgoing struct {
	// ctx is the submit's ctx as the observer's Submit hook returned it: the one its
	// enqueue runs under.
	ctx    context.Context
	task   redisq.Task
	env    *envelope.Envelope
	caller *envelope.Caller
	end    func(ID, error) // the observer's, or nil
}

// finish tells the observer, if any, how the task's submit ended.
func (o *outgoing) finish(id ID, err error) {
	if o.end != nil {
		o.end(id, err)
	}
}

// build gives a task of d with args, admitted with wireCaller and options sc at now, its
// id, its observer's Submit hook and trace, its envelope, caller block and signature, and
// checks its size. unique is its unique key ("" for none). A failure after the hook
// began is handed to the hook's end here; on success the caller calls finish. Submit
// and SubmitMany build each task with it.
func (c *Client) build(ctx context.Context, d Def, wireCaller *envelope.Caller, args json.RawMessage, sc *submitConfig, unique string, now time.Time) (*outgoing, error) {
	queue := d.queue()
	due := sc.readyAt(now)
	id := newID(queue, now)
	o := &outgoing{ctx: ctx, caller: wireCaller}
	if hook := c.cfg.observer.Submit; hook != nil {
		o.ctx, o.end = hook(ctx, Submission{ID: id, Kind: d.Kind, Queue: queue, Delay: due.Sub(now)})
	}
	fail := func(err error) (*outgoing, error) {
		o.finish("", err)
		return nil, err
	}
	o.env = d.envelope(id, now, due, args)
	if inject := c.cfg.observer.Inject; inject != nil {
		o.env.Trace = traceCarrier(o.ctx, inject)
	}
	if err := c.keys.SetCaller(o.env, wireCaller); err != nil {
		return fail(fmt.Errorf("submit %s: %w", d.Kind, err))
	}
	data, err := c.keys.Sign(o.env)
	if err != nil {
		return fail(fmt.Errorf("submit %s: %w", d.Kind, err))
	}
	if len(data) > c.cfg.maxEnvelope {
		return fail(fmt.Errorf("submit %s: envelope is %d bytes, over the %d byte limit (WithMaxEnvelopeSize); pass large data by reference: %w",
			d.Kind, len(data), c.cfg.maxEnvelope, ErrMalformed))
	}
	o.task = redisq.Task{
		ID: string(id), Kind: d.Kind, Queue: queue, Envelope: data, Delay: due.Sub(now),
		UniqueKey: unique, UniqueTTL: sc.uniqueTTL, Schema: d.Schema, Wire: d.Wire,
	}
	return o, nil
}

// envelope returns the unsigned envelope of a task of d with id, submitted at now with
// args and due at due.
func (d Def) envelope(id ID, now, due time.Time, args json.RawMessage) *envelope.Envelope {
	return &envelope.Envelope{
		ID: string(id), Kind: d.Kind, Queue: d.queue(), Schema: d.Schema,
		MaxRetries: d.MaxRetries, TimeoutMS: d.Timeout.Milliseconds(), SubmittedAt: now.UTC(),
		NotAfter: notAfter(now, due, d), Args: args,
	}
}

// register records queue in the registry of queues, the first time this client submits
// to it. A failure is logged, not returned: the registry serves the Inspector's listing
// of queues only, and the next submit tries again.
func (c *Client) register(ctx context.Context, queue string) {
	if _, done := c.registered.Load(queue); done {
		return
	}
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, c.broker.Register(ctx, queue) })
	if err != nil {
		c.cfg.logger.Warn("cannot record the queue in the registry of queues; the inspector lists it once a worker of it starts", "queue", queue, "err", err)
		return
	}
	c.registered.Store(queue, true)
}

// reshardPatience is how long Submit tries again while Cluster slots move, when its
// context has no end.
const reshardPatience = 30 * time.Second

// whileResharding calls enqueue until it succeeds or fails otherwise than by a Cluster
// refusing it while slots move (redisq.Resharding): such a refusal can outlast go-redis's
// own redirects and retries, and the enqueue then did nothing, so trying again is safe. It
// tries until ctx ends, or for about reshardPatience when ctx never does. Every enqueue of
// a Submit goes through it, durable or not.
func whileResharding[T any](ctx context.Context, enqueue func(context.Context) (T, error)) (T, error) {
	var waited time.Duration
	for pause := 20 * time.Millisecond; ; pause = min(2*pause, time.Second) {
		v, err := enqueue(ctx)
		if !redisq.Resharding(err) || ctx.Done() == nil && waited >= reshardPatience {
			return v, err
		}
		sleep(ctx, pause)
		waited += pause
		if ctx.Err() != nil {
			var zero T
			return zero, fmt.Errorf("%w (the cluster was resharding: %v)", ctx.Err(), err)
		}
	}
}

// MaxTaskLife caps how long after its submit a task's envelope stays valid: its
// not-after time, past which a worker refuses it (ErrStale). A task may be due at most
// that far ahead.
const MaxTaskLife = 30 * 24 * time.Hour

// notAfter is the end of the longest life a task of d due at due can have: every attempt
// taking its whole timeout (DefaultTimeout when d has none), every retry waiting the
// longest default backoff (DefaultBackoffMax), and an hour more for queues and leases;
// at most MaxTaskLife after now. A worker whose timeouts or backoff are longer than the
// defaults shortens what its tasks may take before their envelopes go stale.
func notAfter(now, due time.Time, d Def) time.Time {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	life := MaxTaskLife
	if d.MaxRetries < 10_000 { // beyond that the product overflows, and the cap holds anyway
		runs := time.Duration(d.MaxRetries + 1)
		life = min(life, due.Sub(now)+runs*timeout+time.Duration(d.MaxRetries)*DefaultBackoffMax+time.Hour)
	}
	return now.Add(life).UTC()
}

// submitDurable enqueues t and waits, on the same connection, for the confirmations of
// WithDurability. Once the write succeeded, every failure returns the task's ID with
// ErrNotDurable; so does a ctx that ends while Submit waits.
func (c *Client) submitDurable(ctx context.Context, t redisq.Task) (ID, error) {
	w := c.cfg.durability.wait()
	var enqueued atomic.Pointer[string] // the task's id, once its write succeeded
	acks, err := bounded(ctx, func(ctx context.Context) (redisq.Acks, error) {
		// Each try pins anew: after a slot moved, the queue's keys are on another master.
		var p *redisq.Pinned
		id, err := whileResharding(ctx, func(ctx context.Context) (string, error) {
			pin, err := c.broker.Pin(ctx, t.Queue)
			if err != nil {
				return "", err
			}
			id, err := pin.Enqueue(ctx, t)
			if err != nil {
				pin.Close()
				return "", err
			}
			p = pin
			return id, nil
		})
		if err != nil {
			return redisq.Acks{}, err
		}
		defer p.Close()
		enqueued.Store(&id)
		return p.Wait(ctx, w)
	})
	id := enqueued.Load()
	if id == nil {
		return "", fmt.Errorf("submit %s: %w", t.Kind, err)
	}
	if err := notDurable(*id, w, acks, err); err != nil {
		return ID(*id), fmt.Errorf("submit %s: %w", t.Kind, err)
	}
	return ID(*id), nil
}

// notDurable returns the error of task id, enqueued, whose WAIT for w answered acks or
// failed with waitErr: nil when it was confirmed, else one that wraps ErrNotDurable.
func notDurable(id string, w redisq.Wait, acks redisq.Acks, waitErr error) error {
	const advice = "it is on the primary and will run, but a failover or a crash of the primary now can lose it; " +
		"keep its ID to track it, or submit again with the same Unique key, which returns this ID and waits again"
	if waitErr != nil {
		return fmt.Errorf("task %s is enqueued, but waiting for its confirmation failed (%w); %s: %w", id, waitErr, advice, ErrNotDurable)
	}
	if short := acks.Short(w); short != "" {
		return fmt.Errorf("task %s is enqueued, but %s within %s; %s: %w", id, short, w.Timeout, advice, ErrNotDurable)
	}
	return nil
}

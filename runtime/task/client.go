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
	queue := d.queue()
	var sc submitConfig
	for _, o := range opts {
		o(&sc)
	}
	if sc.uniqueKey != "" && sc.uniqueTTL <= 0 {
		return "", fmt.Errorf("submit %s: Unique(%q) needs a positive ttl", d.Kind, sc.uniqueKey)
	}
	now := time.Now()
	var wireCaller *envelope.Caller
	if d.Caller {
		if caller.IsZero() {
			return "", fmt.Errorf("submit %s: %w", d.Kind, ErrNoCaller)
		}
		if caller.Expired(now, 0) {
			return "", fmt.Errorf("submit %s: caller %s: token expired at %s: %w", d.Kind, caller.UserID, caller.ExpiresAt.Format(time.RFC3339), ErrCallerExpired)
		}
		// A task due after its caller's token expires is certain to fail in a worker,
		// hours from now; refuse it here, where the request can still be answered.
		if ready := sc.readyAt(now); caller.Expired(ready, 0) {
			return "", fmt.Errorf("submit %s: caller %s: token expires at %s, before the task is due at %s: %w",
				d.Kind, caller.UserID, caller.ExpiresAt.Format(time.RFC3339), ready.Format(time.RFC3339), ErrCallerExpired)
		}
		wireCaller = &envelope.Caller{UserID: caller.UserID, Token: caller.Token.Reveal(), ExpiresAt: caller.ExpiresAt, Scopes: caller.Scopes}
	}
	due := sc.readyAt(now)
	if due.Sub(now) > MaxTaskLife {
		return "", fmt.Errorf("submit %s: due at %s, more than MaxTaskLife (%s) from now: a task's envelope is valid for at most that long", d.Kind, due.Format(time.RFC3339), MaxTaskLife)
	}
	id := newID(queue, now)
	e := &envelope.Envelope{
		ID: string(id), Kind: d.Kind, Queue: queue, Schema: d.Schema,
		MaxRetries: d.MaxRetries, TimeoutMS: d.Timeout.Milliseconds(), SubmittedAt: now.UTC(),
		NotAfter: notAfter(now, due, d), Args: args,
	}
	if err := c.keys.SetCaller(e, wireCaller); err != nil {
		return "", fmt.Errorf("submit %s: %w", d.Kind, err)
	}
	data, err := c.keys.Sign(e)
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", d.Kind, err)
	}
	if len(data) > c.cfg.maxEnvelope {
		return "", fmt.Errorf("submit %s: envelope is %d bytes, over the %d byte limit (WithMaxEnvelopeSize); pass large data by reference: %w",
			d.Kind, len(data), c.cfg.maxEnvelope, ErrMalformed)
	}
	c.register(ctx, queue)
	t := redisq.Task{
		ID: string(id), Kind: d.Kind, Queue: queue, Envelope: data, Delay: due.Sub(now),
		UniqueKey: sc.uniqueKey, UniqueTTL: sc.uniqueTTL, Schema: d.Schema, Wire: d.Wire,
	}
	if c.cfg.durability.on() {
		return c.submitDurable(ctx, t)
	}
	got, err := bounded(ctx, func(ctx context.Context) (string, error) {
		return whileResharding(ctx, func(ctx context.Context) (string, error) { return c.broker.Enqueue(ctx, t) })
	})
	if err != nil {
		return "", fmt.Errorf("submit %s: %w", d.Kind, err)
	}
	return ID(got), nil
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
	const advice = "it is on the primary and will run, but a failover or a crash of the primary now can lose it; " +
		"keep its ID to track it, or submit again with the same Unique key, which returns this ID and waits again"
	if err != nil {
		return ID(*id), fmt.Errorf("submit %s: task %s is enqueued, but waiting for its confirmation failed (%w); %s: %w",
			t.Kind, *id, err, advice, ErrNotDurable)
	}
	if short := acks.Short(w); short != "" {
		return ID(*id), fmt.Errorf("submit %s: task %s is enqueued, but %s within %s; %s: %w",
			t.Kind, *id, short, w.Timeout, advice, ErrNotDurable)
	}
	return ID(*id), nil
}

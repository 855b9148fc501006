package task

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/taskspec"
)

// The defaults of the options, each named in its option's documentation.
const (
	// DefaultQueue is the queue of a Def whose Queue is empty.
	DefaultQueue = taskspec.DefaultQueue
	// DefaultPrefix prefixes every Redis key without WithPrefix.
	DefaultPrefix = "taskgen"
	// DefaultMaxEnvelopeSize is the largest envelope, in bytes, without WithMaxEnvelopeSize:
	// 1 MiB.
	DefaultMaxEnvelopeSize = envelope.DefaultMaxSize
	// DefaultConcurrency is how many tasks a worker runs at once without WithConcurrency.
	DefaultConcurrency = 10
	// DefaultBackoffBase and DefaultBackoffMax bound the retry delays without WithBackoff.
	DefaultBackoffBase = time.Second
	DefaultBackoffMax  = 10 * time.Minute
	// DefaultTimeout bounds an attempt of a task whose Def has no Timeout, without
	// WithDefaultTimeout.
	DefaultTimeout = 5 * time.Minute
	// DefaultResultTTL is how long a finished task's state and result stay readable
	// without WithResultTTL.
	DefaultResultTTL = 24 * time.Hour
	// DefaultLease is how long a worker holds a task without a heartbeat, without
	// WithLease.
	DefaultLease = 30 * time.Second
	// DefaultShutdownTimeout is how long Run waits for running tasks once its context
	// ends, without WithShutdownTimeout.
	DefaultShutdownTimeout = 30 * time.Second
	// DefaultSkewGrace is how long, without WithSkewGrace, the workers of a fleet hand a
	// task back to its queue when they do not know its kind or cannot accept its
	// arguments' schema, before it is dead-lettered: long enough for a rolling deploy of
	// a fleet to reach a worker that can run it (producers are often deployed before
	// workers), short enough that a task no worker will ever run is dead-lettered, and
	// seen, within the hour. See WithSkewGrace.
	DefaultSkewGrace = 15 * time.Minute
	// DefaultClockSkew is how far past its expiry a worker accepts a caller token without
	// WithClockSkew: not at all.
	DefaultClockSkew time.Duration = 0
	// DefaultDurabilityTimeout is how long a durable submit waits for each confirmation
	// (WAIT, WAITAOF) when its Durability has no Timeout: 1 second.
	DefaultDurabilityTimeout = time.Second
	// DefaultDeadLetterMaxCount and DefaultDeadLetterMaxAge cap each queue's dead-letter
	// stream without WithDeadLetterRetention: 100,000 entries, and 30 days (MaxTaskLife:
	// a dead letter older than that cannot be requeued as it was anyway).
	DefaultDeadLetterMaxCount int64 = 100_000
	DefaultDeadLetterMaxAge         = 30 * 24 * time.Hour
)

// durabilityCheckTimeout bounds NewClient's check of the Redis version (INFO) when a
// Durability asks for the append-only file.
const durabilityCheckTimeout = 5 * time.Second

// minLease is the shortest lease a worker accepts (WithLease): its heartbeat runs every
// third of it.
const minLease = 100 * time.Millisecond

// ClientOption configures a Client: an Option, or a client-only option.
type ClientOption interface{ applyClient(*clientConfig) }

// WorkerOption configures a Worker: an Option, or a worker-only option such as
// WithConcurrency.
type WorkerOption interface{ applyWorker(*workerConfig) }

// Option configures what a Client and a Worker share, such as the key prefix and the
// signing keys: it is both a ClientOption and a WorkerOption, so the clients and workers
// of one deployment can be given the same ones. The zero Option changes nothing.
type Option struct{ set func(*commonConfig) }

func (o Option) applyClient(c *clientConfig) { o.apply(&c.commonConfig) }
func (o Option) applyWorker(c *workerConfig) { o.apply(&c.commonConfig) }

func (o Option) apply(c *commonConfig) {
	if o.set != nil {
		o.set(c)
	}
}

// clientOption is a ClientOption that only a client takes.
type clientOption func(*clientConfig)

func (o clientOption) applyClient(c *clientConfig) { o(c) }

// workerOption is a WorkerOption that only a worker takes.
type workerOption func(*workerConfig)

func (o workerOption) applyWorker(c *workerConfig) { o(c) }

// commonConfig is what clients and workers share; both must agree on all of it.
type commonConfig struct {
	prefix      string
	signing     []envelope.Key
	sealKey     []byte
	plain       bool // WithPlainCallers
	logger      *slog.Logger
	maxEnvelope int
	envelope    int // WithEnvelopeVersion; 0: the envelope package's default
}

type clientConfig struct {
	commonConfig
	durability Durability
	observer   ClientObserver // WithClientObserver
}

type workerConfig struct {
	commonConfig
	queues          []string
	queuesSet       bool // WithQueues was given: queues is the whole list
	concurrency     int
	backoffBase     time.Duration
	backoffMax      time.Duration
	defaultTimeout  time.Duration
	resultTTL       time.Duration
	lease           time.Duration
	shutdownTimeout time.Duration
	clockSkew       time.Duration
	skewGrace       time.Duration
	consumer        string
	observer        WorkerObserver // WithWorkerObserver
	noSchedules     bool           // WithoutSchedules
	scheduleLease   time.Duration  // WithScheduleLease; 0: lease
	scheduleCatchUp time.Duration  // WithScheduleCatchUp
	deadMaxCount    int64
	deadMaxAge      time.Duration
}

func defaults() commonConfig {
	return commonConfig{
		prefix:      DefaultPrefix,
		logger:      slog.Default(),
		maxEnvelope: DefaultMaxEnvelopeSize,
	}
}

func workerDefaults() workerConfig {
	return workerConfig{
		commonConfig:    defaults(),
		concurrency:     DefaultConcurrency,
		backoffBase:     DefaultBackoffBase,
		backoffMax:      DefaultBackoffMax,
		defaultTimeout:  DefaultTimeout,
		resultTTL:       DefaultResultTTL,
		lease:           DefaultLease,
		shutdownTimeout: DefaultShutdownTimeout,
		clockSkew:       DefaultClockSkew,
		skewGrace:       DefaultSkewGrace,
		scheduleCatchUp: DefaultScheduleCatchUp,
		deadMaxCount:    DefaultDeadLetterMaxCount,
		deadMaxAge:      DefaultDeadLetterMaxAge,
	}
}

// newClientConfig applies opts over the defaults and checks the result.
func newClientConfig(rdb redis.UniversalClient, opts []ClientOption) (clientConfig, *envelope.Keyring, error) {
	cfg := clientConfig{commonConfig: defaults()}
	for _, o := range opts {
		o.applyClient(&cfg)
	}
	if rdb == nil {
		return cfg, nil, errors.New("nil Redis client")
	}
	keys, err := cfg.check()
	if err != nil {
		return cfg, nil, err
	}
	if err := cfg.checkDurability(rdb); err != nil {
		return cfg, nil, fmt.Errorf("WithDurability: %w", err)
	}
	return cfg, keys, nil
}

// checkDurability checks the Durability and that rdb can give it, asking Redis for its
// version when it asks for the append-only file.
func (c *clientConfig) checkDurability(rdb redis.UniversalClient) error {
	d := &c.durability
	switch {
	case d.Replicas < 0 || d.ReplicasAOF < 0:
		return fmt.Errorf("replicas %d and replicas with AOF %d: want 0 or more", d.Replicas, d.ReplicasAOF)
	case d.Timeout < 0:
		return fmt.Errorf("timeout %s: want 0 (DefaultDurabilityTimeout) or more", d.Timeout)
	case !d.on():
		return nil
	}
	if d.Timeout == 0 {
		d.Timeout = DefaultDurabilityTimeout
	}
	if err := redisq.CanPin(rdb); err != nil {
		return fmt.Errorf("%w: WAIT must run on the connection of the write; use one of those, or submit without WithDurability", err)
	}
	if !d.LocalAOF && d.ReplicasAOF == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), durabilityCheckTimeout)
	defer cancel()
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) {
		return struct{}{}, redisq.New(rdb, c.prefix).CheckWaitAOF(ctx, d.LocalAOF)
	})
	if err != nil {
		return fmt.Errorf("append-only file confirmation (LocalAOF, ReplicasAOF): %w", err)
	}
	return nil
}

// newWorkerConfig applies opts over the defaults, checks the result and names the
// consumer when no WithConsumerName did.
func newWorkerConfig(rdb redis.UniversalClient, opts []WorkerOption) (workerConfig, *envelope.Keyring, error) {
	if rdb == nil {
		return workerConfig{}, nil, errors.New("nil Redis client")
	}
	return workerConfigOf(opts)
}

// workerConfigOf is newWorkerConfig without a Redis client, which runtime/tasktest's
// worker does not have (see local.go).
func workerConfigOf(opts []WorkerOption) (workerConfig, *envelope.Keyring, error) {
	cfg := workerDefaults()
	for _, o := range opts {
		o.applyWorker(&cfg)
	}
	keys, err := cfg.check()
	if err != nil {
		return cfg, nil, err
	}
	switch {
	case cfg.queuesSet && len(cfg.queues) == 0:
		return cfg, nil, errors.New("WithQueues without a queue: name the queues, or leave WithQueues out to consume the queue of every registered task")
	case cfg.concurrency < 1:
		return cfg, nil, fmt.Errorf("concurrency %d, want at least 1", cfg.concurrency)
	case cfg.backoffBase <= 0 || cfg.backoffMax < cfg.backoffBase:
		return cfg, nil, fmt.Errorf("backoff base %s and max %s: want 0 < base <= max", cfg.backoffBase, cfg.backoffMax)
	case cfg.lease < minLease:
		return cfg, nil, fmt.Errorf("lease %s is too short: want at least %s (WithLease)", cfg.lease, minLease)
	case cfg.defaultTimeout <= 0 || cfg.resultTTL <= 0 || cfg.shutdownTimeout < 0:
		return cfg, nil, errors.New("timeouts and result TTL must be positive")
	case cfg.clockSkew < 0:
		return cfg, nil, fmt.Errorf("clock skew %s: want 0 or more (WithClockSkew)", cfg.clockSkew)
	case cfg.skewGrace < 0:
		return cfg, nil, fmt.Errorf("skew grace %s: want 0 or more (WithSkewGrace)", cfg.skewGrace)
	case cfg.scheduleLease != 0 && cfg.scheduleLease < minLease:
		return cfg, nil, fmt.Errorf("schedule lease %s is too short: want at least %s (WithScheduleLease)", cfg.scheduleLease, minLease)
	case cfg.scheduleCatchUp < 0:
		return cfg, nil, fmt.Errorf("schedule catch-up %s: want 0 or more (WithScheduleCatchUp)", cfg.scheduleCatchUp)
	case cfg.deadMaxCount < 0 || cfg.deadMaxAge < 0:
		return cfg, nil, fmt.Errorf("dead-letter retention of %d entries and %s: want 0 (no cap) or more (WithDeadLetterRetention)", cfg.deadMaxCount, cfg.deadMaxAge)
	}
	for _, q := range cfg.queues {
		if err := taskspec.CheckQueue(q); err != nil {
			return cfg, nil, fmt.Errorf("%w (WithQueues)", err)
		}
	}
	if cfg.consumer == "" {
		host, _ := os.Hostname()
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		cfg.consumer = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
	}
	return cfg, keys, nil
}

// check checks what clients and workers share and returns the keyring of its keys.
func (c *commonConfig) check() (*envelope.Keyring, error) {
	if err := c.checkKeyless(); err != nil {
		return nil, err
	}
	// The first key that is not retired signs, wherever the retired ones were given.
	keys := make([]envelope.Key, 0, len(c.signing))
	for _, retired := range []bool{false, true} {
		for _, k := range c.signing {
			if !k.Retired.IsZero() == retired {
				keys = append(keys, k)
			}
		}
	}
	c.signing = keys
	switch {
	case c.plain && c.sealKey != nil:
		return nil, errors.New("WithSealKey and WithPlainCallers exclude each other: give one")
	case c.plain || c.sealKey != nil:
		return c.writing(envelope.NewKeyring(c.prefix, c.signing, c.sealKey))
	}
	return c.writing(envelope.NewDerivedKeyring(c.prefix, c.signing))
}

// checkKeyless checks what does not concern the keys, and defaults the logger: all of
// the config an inspector without signing keys needs.
func (c *commonConfig) checkKeyless() error {
	if c.prefix == "" {
		return errors.New("empty key prefix")
	}
	if c.logger == nil {
		c.logger = slogDiscard()
	}
	if c.maxEnvelope <= 0 {
		return fmt.Errorf("envelope size limit %d: want a positive number of bytes (WithMaxEnvelopeSize)", c.maxEnvelope)
	}
	return nil
}

// WithPrefix sets the prefix of every Redis key; default DefaultPrefix. Clients and
// workers that work together must use the same prefix.
func WithPrefix(prefix string) Option {
	return Option{func(c *commonConfig) { c.prefix = prefix }}
}

// WithSigningKey adds an HMAC-SHA256 key (at least 32 bytes) under a key id. At least one
// is required; there is no default. Give it several times to rotate keys: the first
// signs, all verify.
func WithSigningKey(id string, key []byte) Option {
	return Option{func(c *commonConfig) {
		c.signing = append(c.signing, envelope.Key{ID: id, Secret: append([]byte(nil), key...)})
	}}
}

// WithSealKey seals the caller block of every envelope with AES-GCM under key (16, 24 or
// 32 bytes) instead of the default, a key derived from the first signing key (HKDF), for
// a deployment that keeps its seal key apart from its signing keys. Clients and workers
// need the same key. Either way tokens never rest in Redis in clear.
func WithSealKey(key []byte) Option {
	return Option{func(c *commonConfig) { c.sealKey = append([]byte(nil), key...) }}
}

// WithRetiredKey adds an HMAC-SHA256 key that verifies envelopes signed with it until
// retired and never signs: the last step of a key rotation, with a date after which the
// old key is refused (ErrBadSignature) even if its configuration stays. To run a dead
// letter signed with a key that has gone since, see RequeueResigned.
func WithRetiredKey(id string, key []byte, retired time.Time) Option {
	return Option{func(c *commonConfig) {
		c.signing = append(c.signing, envelope.Key{ID: id, Secret: append([]byte(nil), key...), Retired: retired})
	}}
}

// WithPlainCallers opts out of sealing: a client sends caller blocks signed but in
// clear, so the token rests in Redis readable by anyone who can read the stream, and a
// worker accepts such blocks (without it, a worker refuses them with ErrBadSignature). By
// default a client seals and a worker refuses plain callers. A worker given it still
// opens sealed callers, so a deployment moves to sealing by giving it to the workers,
// taking it from the clients, then from the workers.
func WithPlainCallers() Option {
	return Option{func(c *commonConfig) { c.plain = true }}
}

// WithLogger sets the logger; default slog.Default(), and nil discards the logs. Tokens
// are never logged.
func WithLogger(l *slog.Logger) Option {
	return Option{func(c *commonConfig) { c.logger = l }}
}

// WithMaxEnvelopeSize sets the largest envelope, in bytes, a client submits and a worker
// decodes; default DefaultMaxEnvelopeSize (1 MiB). Larger ones are refused at submit and
// dead-lettered at the worker.
func WithMaxEnvelopeSize(n int) Option {
	return Option{func(c *commonConfig) { c.maxEnvelope = n }}
}

// Durability is what a durable Submit waits for after Redis acknowledged its write
// (WithDurability). The zero Durability waits for nothing: Submit returns once the
// primary has the task in memory, which a failover before replication or a power loss
// before the next fsync loses (README.md, "Durability").
type Durability struct {
	// Replicas is how many replicas must have received the write (WAIT); default 0.
	// Works on every Redis version.
	Replicas int
	// LocalAOF makes Submit wait until the primary has fsynced the write to its
	// append-only file (WAITAOF); default false. Needs Redis 7.2 or later with
	// appendonly yes, which NewClient checks.
	LocalAOF bool
	// ReplicasAOF is how many replicas must have fsynced the write to their append-only
	// file (WAITAOF); default 0. Needs Redis 7.2 or later, which NewClient checks on the
	// masters.
	ReplicasAOF int
	// Timeout bounds each wait, WAIT and WAITAOF: a Durability that asks for both may
	// wait twice as long. Default DefaultDurabilityTimeout.
	Timeout time.Duration
}

func (d Durability) on() bool { return d.Replicas > 0 || d.LocalAOF || d.ReplicasAOF > 0 }

func (d Durability) wait() redisq.Wait {
	return redisq.Wait{Replicas: d.Replicas, LocalAOF: d.LocalAOF, ReplicasAOF: d.ReplicasAOF, Timeout: d.Timeout}
}

// WithDurability makes Submit return only once its write is confirmed as d asks: on
// d.Replicas replicas (WAIT) and, on Redis 7.2 or later, in the append-only file of the
// primary (d.LocalAOF) and of d.ReplicasAOF replicas (WAITAOF). Default: no
// confirmation, Durability{}. Each confirmation runs on the connection of the write, as
// WAIT and WAITAOF require, so it needs a *redis.Client (one server, or Sentinel through
// redis.NewFailoverClient) or a *redis.ClusterClient, whose master of the queue's slot
// confirms it; NewClient refuses any other client, and refuses the append-only file on a
// Redis older than 7.2, having asked every master (INFO, for up to 5s).
//
// A write that is not confirmed in time makes Submit return the task's ID with an error
// wrapping ErrNotDurable: the task is enqueued on the primary, but may be lost if the
// primary fails before it is replicated or fsynced.
//
// Confirmation is not consensus: a failover may still promote a replica that had not
// received the write, unless it is configured to promote only a confirming one.
func WithDurability(d Durability) ClientOption {
	return clientOption(func(c *clientConfig) { c.durability = d })
}

// WithQueues sets the queues a worker consumes. Without it, a worker consumes the queue of
// every task registered on it, which is what the directives say and cannot drift from
// them. With it, Run fails if a registered task's queue is not listed; a queue may be
// listed that no registered task uses (its tasks of unknown kinds are handed back, see
// WithSkewGrace).
func WithQueues(queues ...string) WorkerOption {
	return workerOption(func(c *workerConfig) { c.queues, c.queuesSet = append([]string(nil), queues...), true })
}

// WithConcurrency sets how many tasks a worker runs at once; default DefaultConcurrency.
func WithConcurrency(n int) WorkerOption {
	return workerOption(func(c *workerConfig) { c.concurrency = n })
}

// WithBackoff sets a worker's retry delays: exponential from base, capped at max, with
// jitter; defaults DefaultBackoffBase and DefaultBackoffMax.
func WithBackoff(base, max time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.backoffBase, c.backoffMax = base, max })
}

// WithDefaultTimeout bounds an attempt of a task whose Def has no Timeout; default
// DefaultTimeout.
func WithDefaultTimeout(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.defaultTimeout = d })
}

// WithResultTTL sets how long the state and result of a task a worker finished stay
// readable; default DefaultResultTTL.
func WithResultTTL(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.resultTTL = d })
}

// WithLease sets how long a worker may hold a task without a heartbeat before another
// worker takes it over; default DefaultLease, at least 100ms. Running tasks renew their
// lease every third of it.
func WithLease(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.lease = d })
}

// WithShutdownTimeout sets how long Run waits for running tasks after its context ends
// before it cancels their contexts; default DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.shutdownTimeout = d })
}

// WithSkewGrace sets how long a task that this worker cannot run because of a version
// skew — its kind is not registered here, or its arguments' schema is one this worker
// cannot accept (see the README's rolling deploys) — is handed back to its queue, with a
// growing delay (1 s up to a minute), for a worker of another version to run, before it
// is dead-lettered with ErrUnknownKind or ErrSchemaMismatch; default DefaultSkewGrace.
// The grace is counted from the first time a worker handed the task back, by Redis's
// clock; handing back spends none of the task's retries. Each kind is logged once per
// worker as a warning, not once per task. 0 dead-letters such a task at once.
//
// A grace longer than about an hour can outlast the task's envelope (its not-after time,
// see MaxTaskLife): the task is then dead-lettered as stale.
func WithSkewGrace(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.skewGrace = d })
}

// WithClockSkew lets a worker accept a caller token up to d past its expiry, for clocks
// that disagree between the token issuer and the worker; default DefaultClockSkew (0).
func WithClockSkew(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.clockSkew = d })
}

// WithDeadLetterRetention caps each queue's dead-letter stream at maxCount entries and
// maxAge of age; zero for either turns that cap off. Defaults DefaultDeadLetterMaxCount
// and DefaultDeadLetterMaxAge. The worker trims as it dead-letters a task, approximately
// (XTRIM with ~, whole stream nodes only, so the stream may keep up to a hundred or so
// entries past a cap), and records the cap in Redis, where Inspector.Queue shows it. The
// workers of one queue should agree on it: each applies its own.
func WithDeadLetterRetention(maxCount int64, maxAge time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.deadMaxCount, c.deadMaxAge = maxCount, maxAge })
}

// WithConsumerName sets the worker's consumer name in the Redis consumer groups; default
// host name, process id and a random suffix. Names must be unique among running workers.
func WithConsumerName(name string) WorkerOption {
	return workerOption(func(c *workerConfig) { c.consumer = name })
}

// SubmitOption configures one Submit.
type SubmitOption func(*submitConfig)

type submitConfig struct {
	delay     time.Duration
	at        time.Time
	uniqueKey string
	uniqueTTL time.Duration
	// uniqueKeys are UniqueKeys' keys, one per task, in place of uniqueKey; nil when it
	// was not given.
	uniqueKeys []string
}

// Delay makes the task ready d after Redis receives it (by Redis's clock). A delay that
// ends after the caller's token expires is refused with ErrCallerExpired.
func Delay(d time.Duration) SubmitOption {
	return func(s *submitConfig) { s.delay, s.at = d, time.Time{} }
}

// At makes the task ready at t. t is read on the submitting machine's clock and sent as
// the delay until then. A t after the caller's token expires is refused with
// ErrCallerExpired.
func At(t time.Time) SubmitOption { return func(s *submitConfig) { s.at, s.delay = t, 0 } }

// readyAt is when the task is due, by now's clock; now itself when it is ready at once.
func (s *submitConfig) readyAt(now time.Time) time.Time {
	if !s.at.IsZero() {
		return s.at
	}
	return now.Add(max(s.delay, 0))
}

// Unique makes the submit a no-op while another task of the same kind was submitted with
// the same key less than ttl ago: Submit then returns that task's ID. With a ttl longer
// than the result TTL (WithResultTTL), that ID may name a task whose result has expired.
//
// Given to SubmitMany with more than one task, Unique is refused: it would make every
// task of the batch but the first a no-op. Give each task its key with UniqueKeys.
func Unique(key string, ttl time.Duration) SubmitOption {
	return func(s *submitConfig) { s.uniqueKey, s.uniqueTTL, s.uniqueKeys = key, ttl, nil }
}

// UniqueKeys is Unique for SubmitMany: keys[i] is the unique key of the i-th task, and
// len(keys) must be the number of tasks (1 for Submit). A task whose key is "" is not
// unique. Two tasks of one batch with the same key are one task: the second gets the
// first's ID.
func UniqueKeys(keys []string, ttl time.Duration) SubmitOption {
	keys = slices.Clone(keys)
	if keys == nil {
		keys = []string{}
	}
	return func(s *submitConfig) { s.uniqueKeys, s.uniqueTTL, s.uniqueKey = keys, ttl, "" }
}

// submitOptions applies opts for a submit of n tasks of d and checks them. A Unique key and
// its ttl are the caller's business only to name, so the mistakes a ttl or a key count
// can hold are refused here, before anything is signed.
func submitOptions(d Def, n int, opts []SubmitOption) (submitConfig, error) {
	var sc submitConfig
	for _, o := range opts {
		o(&sc)
	}
	switch {
	case sc.uniqueKeys != nil && len(sc.uniqueKeys) != n:
		return sc, fmt.Errorf("submit %s: UniqueKeys has %d keys for %d tasks: give exactly one key per task, in the order of the tasks", d.Kind, len(sc.uniqueKeys), n)
	case sc.uniqueKey != "" && n > 1:
		return sc, fmt.Errorf("submit %s: Unique(%q) given to SubmitMany with %d tasks would enqueue only the first and return its ID for every other: give each task its own key with UniqueKeys", d.Kind, sc.uniqueKey, n)
	case sc.uniqueKey != "" && sc.uniqueTTL <= 0:
		return sc, fmt.Errorf("submit %s: Unique(%q) needs a positive ttl", d.Kind, sc.uniqueKey)
	case slices.ContainsFunc(sc.uniqueKeys, func(k string) bool { return k != "" }) && sc.uniqueTTL <= 0:
		return sc, fmt.Errorf("submit %s: UniqueKeys needs a positive ttl", d.Kind)
	}
	return sc, nil
}

// uniqueFor returns the unique key of the i-th task of the submit: UniqueKeys' i-th, or
// Unique's.
func (s *submitConfig) uniqueFor(i int) string {
	if s.uniqueKeys != nil {
		return s.uniqueKeys[i]
	}
	return s.uniqueKey
}

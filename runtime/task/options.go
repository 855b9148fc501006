package task

import (
	"log/slog"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
)

// Option configures a Client or a Worker. Options that concern only one of them are
// accepted and ignored by the other, so one option list can build both.
type Option func(*config)

type config struct {
	prefix          string
	signing         []envelope.Key
	sealKey         []byte
	logger          *slog.Logger
	queues          []string
	concurrency     int
	backoffBase     time.Duration
	backoffMax      time.Duration
	defaultTimeout  time.Duration
	resultTTL       time.Duration
	lease           time.Duration
	shutdownTimeout time.Duration
	maxEnvelope     int
	clockSkew       time.Duration
	consumer        string
}

func defaults() config {
	return config{
		prefix:          "taskgen",
		logger:          slog.Default(),
		queues:          []string{DefaultQueue},
		concurrency:     10,
		backoffBase:     time.Second,
		backoffMax:      10 * time.Minute,
		defaultTimeout:  5 * time.Minute,
		resultTTL:       24 * time.Hour,
		lease:           30 * time.Second,
		shutdownTimeout: 30 * time.Second,
		maxEnvelope:     envelope.DefaultMaxSize,
	}
}

// WithPrefix sets the prefix of every Redis key; default "taskgen". Clients and workers
// that work together must use the same prefix.
func WithPrefix(prefix string) Option { return func(c *config) { c.prefix = prefix } }

// WithSigningKey adds an HMAC-SHA256 key (at least 32 bytes) under a key id. At least one
// is required. Give it several times to rotate keys: the first signs, all verify.
func WithSigningKey(id string, key []byte) Option {
	return func(c *config) {
		c.signing = append(c.signing, envelope.Key{ID: id, Secret: append([]byte(nil), key...)})
	}
}

// WithSealKey seals the caller block of every envelope with AES-GCM under key (16, 24 or
// 32 bytes), so tokens never rest in Redis in clear. Clients and workers need the same key.
func WithSealKey(key []byte) Option {
	return func(c *config) { c.sealKey = append([]byte(nil), key...) }
}

// WithLogger sets the logger; default slog.Default(). Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithQueues sets the queues a worker consumes; default "default".
func WithQueues(queues ...string) Option {
	return func(c *config) { c.queues = append([]string(nil), queues...) }
}

// WithConcurrency sets how many tasks a worker runs at once; default 10.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithBackoff sets the retry delays: exponential from base, capped at max, with jitter.
// Defaults 1s and 10m.
func WithBackoff(base, max time.Duration) Option {
	return func(c *config) { c.backoffBase, c.backoffMax = base, max }
}

// WithDefaultTimeout bounds an attempt of a task whose Def has no Timeout; default 5m.
func WithDefaultTimeout(d time.Duration) Option { return func(c *config) { c.defaultTimeout = d } }

// WithResultTTL sets how long a finished task's state and result stay readable; default 24h.
func WithResultTTL(d time.Duration) Option { return func(c *config) { c.resultTTL = d } }

// WithLease sets how long a worker may hold a task without a heartbeat before another
// worker takes it over; default 30s. Running tasks renew their lease every third of it.
func WithLease(d time.Duration) Option { return func(c *config) { c.lease = d } }

// WithShutdownTimeout sets how long Run waits for running tasks after its context ends
// before it cancels their contexts; default 30s.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) { c.shutdownTimeout = d }
}

// WithMaxEnvelopeSize sets the largest envelope, in bytes, a client submits and a worker
// decodes; default 1 MiB. Larger ones are refused at submit and dead-lettered at the worker.
func WithMaxEnvelopeSize(n int) Option { return func(c *config) { c.maxEnvelope = n } }

// WithClockSkew lets a worker accept a caller token up to d past its expiry, for clocks
// that disagree between the token issuer and the worker; default 0.
func WithClockSkew(d time.Duration) Option { return func(c *config) { c.clockSkew = d } }

// WithConsumerName sets the worker's consumer name in the Redis consumer groups; default
// host name, process id and a random suffix. Names must be unique among running workers.
func WithConsumerName(name string) Option { return func(c *config) { c.consumer = name } }

// SubmitOption configures one Submit.
type SubmitOption func(*submitConfig)

type submitConfig struct {
	delay     time.Duration
	at        time.Time
	uniqueKey string
	uniqueTTL time.Duration
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
func Unique(key string, ttl time.Duration) SubmitOption {
	return func(s *submitConfig) { s.uniqueKey, s.uniqueTTL = key, ttl }
}

// Package redisq is taskgen's broker: all Redis access of the runtime, on Redis Streams
// with one consumer group per queue, a delayed sorted set, a dead-letter stream, and a
// state hash per task. It works on one server, Sentinel or Cluster (every multi-key
// operation stays in the queue's hash slot) and for an ACL user limited to the prefix.
package redisq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Group is the consumer group every worker of a queue joins.
const Group = "taskgen"

// EnvelopeField is the stream entry field that holds the envelope.
const EnvelopeField = "env"

// Broker runs the queue operations for one key prefix.
type Broker struct {
	rdb    redis.UniversalClient
	prefix string
}

// New returns a broker over rdb for keys under prefix.
func New(rdb redis.UniversalClient, prefix string) *Broker {
	return &Broker{rdb: rdb, prefix: prefix}
}

// Keys returns the keys of queue.
func (b *Broker) Keys(queue string) Keys { return QueueKeys(b.prefix, queue) }

// Task is what Enqueue stores.
type Task struct {
	ID       string
	Kind     string
	Queue    string
	Envelope []byte
	Due      time.Time // zero or past: ready now
	// UniqueKey, when set, makes the enqueue a no-op returning the first task's id while
	// another task of the same kind with the same key was enqueued less than UniqueTTL ago.
	UniqueKey string
	UniqueTTL time.Duration
}

// Enqueue adds t and returns its id, or the id of the task already holding t.UniqueKey.
func (b *Broker) Enqueue(ctx context.Context, t Task) (id string, err error) {
	k := b.Keys(t.Queue)
	keys := []string{k.Stream(), k.Delayed(), k.State(t.ID)}
	ttl := int64(0)
	if t.UniqueKey != "" {
		keys = append(keys, k.Unique(t.Kind, t.UniqueKey))
		ttl = max(t.UniqueTTL.Milliseconds(), 1)
	}
	due := int64(0)
	if !t.Due.IsZero() {
		due = t.Due.UnixMilli()
	}
	res, err := enqueueScript.Run(ctx, b.rdb, keys, t.Envelope, t.ID, t.Kind, due, time.Now().UnixMilli(), ttl).Slice()
	if err != nil {
		return "", fmt.Errorf("enqueue on %s: %w", k.Stream(), err)
	}
	if len(res) != 2 {
		return "", fmt.Errorf("enqueue on %s: unexpected reply %v", k.Stream(), res)
	}
	id, _ = res[1].(string)
	return id, nil
}

// EnsureGroup creates the queue's stream and consumer group if they do not exist.
func (b *Broker) EnsureGroup(ctx context.Context, queue string) error {
	err := b.rdb.XGroupCreateMkStream(ctx, b.Keys(queue).Stream(), Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group on %s: %w", b.Keys(queue).Stream(), err)
	}
	return nil
}

// Message is one delivery of a stream entry to this consumer.
type Message struct {
	Queue    string
	EntryID  string
	Envelope []byte // nil when the entry has no envelope field
	// Deliveries is how many times the entry was handed to a worker, this time included:
	// 1 for a new entry, more for one taken over from workers that stopped renewing it,
	// 0 when Reclaim could not read the count.
	Deliveries int
}

// ErrNoGroup reports that the stream or its consumer group is gone (for example after a
// Redis restart without persistence); EnsureGroup recreates them.
var ErrNoGroup = errors.New("consumer group missing")

// Fetch reads up to count new entries of queue for consumer, blocking up to block.
func (b *Broker) Fetch(ctx context.Context, queue, consumer string, count int, block time.Duration) ([]Message, error) {
	k := b.Keys(queue)
	streams, err := b.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: Group, Consumer: consumer, Streams: []string{k.Stream(), ">"},
		Count: int64(count), Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, fmt.Errorf("read %s: %w", k.Stream(), ErrNoGroup)
		}
		return nil, fmt.Errorf("read %s: %w", k.Stream(), err)
	}
	var out []Message
	for _, s := range streams {
		out = append(out, messages(queue, s.Messages)...)
	}
	return out, nil
}

// Reclaim takes over up to count entries of queue that another consumer has held
// without a heartbeat for longer than lease, for example because its process died. It
// scans the pending entries from cursor ("" or "0-0" for the start) and returns the
// cursor to continue from, "0-0" once the scan went round: entries held by live workers
// do not hide orphans behind them.
func (b *Broker) Reclaim(ctx context.Context, queue, consumer string, lease time.Duration, count int, cursor string) ([]Message, string, error) {
	k := b.Keys(queue)
	if cursor == "" {
		cursor = "0-0"
	}
	msgs, next, err := b.rdb.XAutoClaim(ctx, &redis.XAutoClaimArgs{
		Stream: k.Stream(), Group: Group, Consumer: consumer,
		MinIdle: lease, Start: cursor, Count: int64(count),
	}).Result()
	if err != nil {
		if strings.HasPrefix(err.Error(), "NOGROUP") {
			return nil, "0-0", fmt.Errorf("reclaim on %s: %w", k.Stream(), ErrNoGroup)
		}
		return nil, cursor, fmt.Errorf("reclaim on %s: %w", k.Stream(), err)
	}
	out := messages(queue, msgs)
	if len(out) == 0 {
		return out, next, nil
	}
	// How often each entry was handed out tells a task whose workers keep dying while
	// running it (a poison task) from one whose worker died once. The entries are this
	// consumer's now whatever happens: without the counts they are returned with
	// Deliveries 0 (unknown), never dropped.
	pending, err := b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: k.Stream(), Group: Group, Start: out[0].EntryID, End: out[len(out)-1].EntryID,
		Count: int64(count), Consumer: consumer,
	}).Result()
	deliveries := make(map[string]int, len(pending))
	for _, p := range pending {
		deliveries[p.ID] = int(p.RetryCount)
	}
	for i := range out {
		out[i].Deliveries = deliveries[out[i].EntryID]
	}
	if err != nil {
		return out, next, fmt.Errorf("reclaim on %s: read delivery counts: %w", k.Stream(), err)
	}
	return out, next, nil
}

// PruneConsumers removes from queue's group the consumers other than self that hold no
// entries and have not touched Redis for longer than idle: workers that are gone. Each
// restart of a worker joins under a new name, so without this the group grows forever.
// A consumer holding entries is kept, checked atomically with the removal: deleting it
// would drop its entries from the group.
func (b *Broker) PruneConsumers(ctx context.Context, queue, self string, idle time.Duration) (int, error) {
	k := b.Keys(queue)
	consumers, err := b.rdb.XInfoConsumers(ctx, k.Stream(), Group).Result()
	if err != nil {
		return 0, fmt.Errorf("list consumers of %s: %w", k.Stream(), err)
	}
	n := 0
	for _, c := range consumers {
		if c.Name == self || c.Pending > 0 || c.Idle < idle {
			continue
		}
		removed, err := pruneScript.Run(ctx, b.rdb, []string{k.Stream()}, Group, c.Name).Int()
		if err != nil {
			return n, fmt.Errorf("remove consumer %s of %s: %w", c.Name, k.Stream(), err)
		}
		n += removed
	}
	return n, nil
}

// Heartbeat renews the lease of entries this consumer is working on, so that Reclaim on
// other workers does not take them while they run. It returns the entries the consumer
// no longer holds: another worker took them over after this one missed its lease.
func (b *Broker) Heartbeat(ctx context.Context, queue, consumer string, entryIDs ...string) (lost []string, err error) {
	if len(entryIDs) == 0 {
		return nil, nil
	}
	k := b.Keys(queue)
	args := make([]any, 0, 2+len(entryIDs))
	args = append(args, Group, consumer)
	for _, id := range entryIDs {
		args = append(args, id)
	}
	lost, err = heartbeatScript.Run(ctx, b.rdb, []string{k.Stream()}, args...).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("heartbeat on %s: %w", k.Stream(), err)
	}
	return lost, nil
}

func messages(queue string, xs []redis.XMessage) []Message {
	out := make([]Message, 0, len(xs))
	for _, x := range xs {
		m := Message{Queue: queue, EntryID: x.ID, Deliveries: 1}
		if v, ok := x.Values[EnvelopeField].(string); ok {
			m.Envelope = []byte(v)
		}
		out = append(out, m)
	}
	return out
}

// Promote moves up to limit tasks of queue whose time has come from the delayed set to
// the stream, and returns how many it moved.
func (b *Broker) Promote(ctx context.Context, queue string, now time.Time, limit int) (int, error) {
	k := b.Keys(queue)
	n, err := promoteScript.Run(ctx, b.rdb, []string{k.Delayed(), k.Stream()}, now.UnixMilli(), limit).Int()
	if err != nil {
		return 0, fmt.Errorf("promote %s: %w", k.Delayed(), err)
	}
	return n, nil
}

// NextDue returns the due time of the earliest delayed task of queue, or false if none.
func (b *Broker) NextDue(ctx context.Context, queue string) (time.Time, bool, error) {
	zs, err := b.rdb.ZRangeWithScores(ctx, b.Keys(queue).Delayed(), 0, 0).Result()
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read %s: %w", b.Keys(queue).Delayed(), err)
	}
	if len(zs) == 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(int64(zs[0].Score)), true, nil
}

// Start records that attempt (1-based) of task id begins, on delivery m. It reports false,
// having removed the entry, when the task has finished already: m is a duplicate that
// must not run.
func (b *Broker) Start(ctx context.Context, m Message, id string, attempt int) (bool, error) {
	k := b.Keys(m.Queue)
	n, err := startScript.Run(ctx, b.rdb, []string{k.Stream(), k.State(id)}, Group, m.EntryID, attempt).Int()
	if err != nil {
		return true, fmt.Errorf("start %s: %w", id, err)
	}
	return n == 1, nil
}

// ErrSettled reports that a delivery was already settled (acknowledged) by another
// worker, which took it over when this one lost its lease; its outcome stands.
var ErrSettled = errors.New("delivery already settled by another worker")

// settled turns a settling script's reply into an error.
func settled(n int, err error, what string) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", what, ErrSettled)
	}
	return nil
}

// Complete acknowledges m and stores result as the task's outcome for ttl.
func (b *Broker) Complete(ctx context.Context, m Message, id string, attempts int, result []byte, ttl time.Duration) error {
	k := b.Keys(m.Queue)
	n, err := completeScript.Run(ctx, b.rdb, []string{k.Stream(), k.State(id), k.Done(id)},
		Group, m.EntryID, result, ttlMS(ttl), attempts, time.Now().UnixMilli()).Int()
	return settled(n, err, "complete "+id)
}

// Retry acknowledges m and schedules next, the re-signed envelope of the next attempt, at due.
func (b *Broker) Retry(ctx context.Context, m Message, id string, attempts int, next []byte, due time.Time, errText string) error {
	k := b.Keys(m.Queue)
	n, err := retryScript.Run(ctx, b.rdb, []string{k.Stream(), k.Delayed(), k.State(id)},
		Group, m.EntryID, next, due.UnixMilli(), attempts, errText).Int()
	return settled(n, err, "retry "+id)
}

// Release returns m, not finished, to the stream for another worker to run at once.
func (b *Broker) Release(ctx context.Context, m Message, id string) error {
	k := b.Keys(m.Queue)
	n, err := releaseScript.Run(ctx, b.rdb, []string{k.Stream(), k.State(id)}, Group, m.EntryID, m.Envelope).Int()
	return settled(n, err, "release "+id)
}

// Failure describes why a message is dead-lettered.
type Failure struct {
	// ID is the task's id. For an envelope that could not be verified (Untrusted), it is
	// the id the envelope claims, or empty: the dead letter then names no task, and the
	// claimed task's state records the refusal only if it exists and has not finished.
	ID        string
	Untrusted bool
	Kind      string
	Reason    string // a short code, e.g. "caller_expired"
	Error     string
	Attempts  int
}

// Dead acknowledges m and moves it to the queue's dead-letter stream, with the envelope as
// received. When f.ID is set, the task's state records the failure and Result waiters wake.
func (b *Broker) Dead(ctx context.Context, m Message, f Failure, ttl time.Duration) error {
	k := b.Keys(m.Queue)
	keys := []string{k.Stream(), k.Dead()}
	if f.ID != "" {
		keys = append(keys, k.State(f.ID), k.Done(f.ID))
	}
	untrusted := ""
	if f.Untrusted {
		untrusted = "1"
	}
	n, err := deadScript.Run(ctx, b.rdb, keys, Group, m.EntryID, m.Envelope, f.Reason, f.Error,
		f.Attempts, ttlMS(ttl), time.Now().UnixMilli(), f.ID, f.Kind, untrusted).Int()
	return settled(n, err, fmt.Sprintf("dead-letter %s on %s", m.EntryID, k.Dead()))
}

// Task states, as stored in the state hash.
const (
	StatePending   = "pending"
	StateScheduled = "scheduled"
	StateRunning   = "running"
	StateRetrying  = "retrying"
	StateSucceeded = "succeeded"
	StateDead      = "dead"
)

// State is what the state hash of a task holds.
type State struct {
	State    string
	Kind     string
	Attempts int
	Reason   string
	Error    string
	Result   []byte
}

// Finished reports whether the task reached a final state.
func (s State) Finished() bool { return s.State == StateSucceeded || s.State == StateDead }

// ErrNoTask reports a task that does not exist or whose state expired.
var ErrNoTask = errors.New("no such task")

// GetState reads the state of task id of queue.
func (b *Broker) GetState(ctx context.Context, queue, id string) (State, error) {
	k := b.Keys(queue)
	h, err := b.rdb.HGetAll(ctx, k.State(id)).Result()
	if err != nil {
		return State{}, fmt.Errorf("read %s: %w", k.State(id), err)
	}
	if len(h) == 0 {
		return State{}, fmt.Errorf("%s: %w", id, ErrNoTask)
	}
	attempts, _ := strconv.Atoi(h["attempts"])
	s := State{State: h["state"], Kind: h["kind"], Attempts: attempts, Reason: h["reason"], Error: h["error"]}
	if r, ok := h["result"]; ok {
		s.Result = []byte(r)
	}
	return s, nil
}

// WaitDone blocks until task id of queue signals completion or timeout passes; it reports
// whether the signal came. The signal stays in place (BLMOVE rotates the list onto
// itself), so every waiter sees it. It does not poll.
func (b *Broker) WaitDone(ctx context.Context, queue, id string, timeout time.Duration) (bool, error) {
	k := b.Keys(queue)
	err := b.rdb.BLMove(ctx, k.Done(id), k.Done(id), "LEFT", "RIGHT", timeout).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("wait for %s: %w", id, err)
	}
	return true, nil
}

func ttlMS(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Package redisq is taskgen's broker: all Redis access of the runtime, on Redis Streams
// with one consumer group per queue, a delayed sorted set, a dead-letter stream, and a
// state hash per task. It works on one server, Sentinel or Cluster (every multi-key
// operation stays in the queue's hash slot) and for an ACL user limited to the prefix.
package redisq

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Broker runs the queue operations for one key prefix.
type Broker struct {
	rdb    redis.UniversalClient
	prefix string
	// calls names each start call this broker makes (see startScript): calls, random,
	// tells this broker from others, and started counts its calls.
	calls   string
	started atomic.Uint64
	// retention caps the dead-letter streams this broker's workers write to (see
	// SetRetention); zero values: no cap.
	retention Retention
}

// Retention is the cap on a dead-letter stream: MaxCount entries and MaxAge of age, each
// applied approximately (XTRIM with ~: whole macro nodes only), zero for none.
type Retention struct {
	MaxCount int64
	MaxAge   time.Duration
}

// SetRetention sets the cap the broker's dead-letter writes apply, and that EnsureGroup
// records in each queue's meta hash for the inspector. Call it before use.
func (b *Broker) SetRetention(r Retention) { b.retention = r }

// New returns a broker over rdb for keys under prefix.
func New(rdb redis.UniversalClient, prefix string) *Broker {
	return &Broker{rdb: rdb, prefix: prefix, calls: rand.Text()[:13]}
}

// Keys returns the keys of queue.
func (b *Broker) Keys(queue string) Keys { return QueueKeys(b.prefix, queue) }

// Task is what Enqueue stores.
type Task struct {
	ID       string
	Kind     string
	Queue    string
	Envelope []byte
	Delay    time.Duration // zero or less: ready now; else ready that long after Redis receives it
	// UniqueKey, when set, makes the enqueue a no-op returning the first task's id while
	// another task of the same kind with the same key was enqueued less than UniqueTTL ago.
	UniqueKey string
	UniqueTTL time.Duration
	// Schema and Wire are the fingerprint and canonical description of the arguments'
	// schema (Def.Schema, Def.Wire), recorded for the queue when new (see Keys.Schemas);
	// an empty Wire records nothing.
	Schema, Wire string
}

// Enqueue adds t and returns its id, or the id of the task already holding t.UniqueKey.
func (b *Broker) Enqueue(ctx context.Context, t Task) (id string, err error) {
	return b.enqueue(ctx, b.rdb, t, false)
}

// enqueue runs the enqueue script on s; durable says a WAIT or WAITAOF follows on its
// connection (see enqueueScript).
func (b *Broker) enqueue(ctx context.Context, s redis.Scripter, t Task, durable bool) (id string, err error) {
	k := b.Keys(t.Queue)
	keys, args := enqueueCall(k, t, durable)
	res, err := enqueueScript.Run(ctx, s, keys, args...).Slice()
	return enqueueReply(k, res, err)
}

// EnsureGroup creates the queue's stream and consumer group if they do not exist.
// It also records the queue in the registry (Registry) and the broker's dead-letter
// retention in the queue's meta hash, for the inspector.
func (b *Broker) EnsureGroup(ctx context.Context, queue string) error {
	err := b.rdb.XGroupCreateMkStream(ctx, b.Keys(queue).Stream(), Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group on %s: %w", b.Keys(queue).Stream(), err)
	}
	if err := b.Register(ctx, queue); err != nil {
		return err
	}
	meta := b.Keys(queue).Meta()
	err = b.rdb.HSet(ctx, meta, MetaDeadMaxCount, b.retention.MaxCount, MetaDeadMaxAge, b.retention.MaxAge.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("record the retention of %s in %s: %w", queue, meta, err)
	}
	return nil
}

// Register adds queue to the registry of queues (Registry), for the inspector to list.
func (b *Broker) Register(ctx context.Context, queue string) error {
	if err := b.rdb.SAdd(ctx, Registry(b.prefix), queue).Err(); err != nil {
		return fmt.Errorf("register queue %s in %s: %w", queue, Registry(b.prefix), err)
	}
	return nil
}

// Message is one delivery of a stream entry to this consumer.
type Message struct {
	Queue    string
	EntryID  string
	Envelope []byte // nil when the entry has no envelope field, or was not read
	// Oversized marks an entry larger than the fetch's limit: it was not read. Size is
	// its size and Claimed the task id its envelope claims, if any.
	Oversized bool
	Size      int
	Claimed   string
}

// ErrNoGroup reports that the stream or its consumer group is gone (for example after a
// Redis restart without persistence); EnsureGroup recreates them.
var ErrNoGroup = errors.New("consumer group missing")

// ErrCorrupt reports a key of the wrong type: something outside taskgen wrote it. The
// script that met it changed nothing.
var ErrCorrupt = errors.New("a key holds the wrong type")

// Resharding reports whether err is Redis Cluster refusing a command while slots move
// (TRYAGAIN, MOVED, ASK, CLUSTERDOWN) beyond what the client's own redirects and retries
// absorbed. A script refused that way did not run: trying it again is safe.
func Resharding(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	for _, p := range []string{"TRYAGAIN", "MOVED ", "ASK ", "CLUSTERDOWN"} {
		if strings.HasPrefix(msg, p) || strings.Contains(msg, ": "+p) {
			return true
		}
	}
	return false
}

// CorruptError is ErrCorrupt naming the key that holds the wrong type.
type CorruptError struct {
	Key string
	msg string // what the script said
}

func (e *CorruptError) Error() string { return ErrCorrupt.Error() + ": " + e.msg }

// Unwrap returns ErrCorrupt.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// corruptMark starts the error a script raises on a key of the wrong type (prelude's
// check and try), which names the key: "WRONGTYPE taskgen: key <key> holds a <type>...".
const corruptMark = "WRONGTYPE taskgen: key "

// classify turns the error a script raises on a key of the wrong type into a
// *CorruptError.
func classify(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	i := strings.Index(msg, corruptMark)
	if i < 0 {
		return err
	}
	key := msg[i+len(corruptMark):]
	if j := strings.LastIndex(key, " holds a "); j >= 0 {
		key = key[:j]
	}
	return &CorruptError{Key: key, msg: msg}
}

// Fetch reads up to count new entries of queue for consumer. An entry whose fields
// exceed maxSize bytes is not read: it comes back Oversized, for the caller to
// dead-letter with a Refuse settlement, and no more of it than its id crosses the
// network. A paused queue (Keys.Paused) hands over nothing. When there is nothing to
// read, Fetch blocks up to block for a new entry, on the queue's notify stream, and
// returns nothing: call it again.
func (b *Broker) Fetch(ctx context.Context, queue, consumer string, count int, block time.Duration, maxSize int) ([]Message, error) {
	msgs, _, err := b.FetchAfter(ctx, queue, consumer, count, block, maxSize, "")
	return msgs, err
}

// FetchAfter is Fetch for a reader that goes on reading, and it returns where to go on
// from. After a read of fewer than count entries the stream held nothing more for the
// group: every entry added since comes with an entry of the notify stream past the mark
// that read saw (the enqueue, promote and requeue scripts write both). So FetchAfter
// returns that mark, and given it as after, it first blocks on the notify stream from
// there, up to block, and reads only once something came. The read that would have found
// nothing is spared, which at a few thousand tasks a second is one script call per task.
// It returns "" when the next call should read at once: after a read of count entries
// (more may wait), or after a block that ran out (a queue resumed, or entries handed
// back another way, show without a notify entry).
func (b *Broker) FetchAfter(ctx context.Context, queue, consumer string, count int, block time.Duration, maxSize int, after string) ([]Message, string, error) {
	k := b.Keys(queue)
	if after != "" && block > 0 {
		if came, err := b.waitNotify(ctx, k, after, block); err != nil || !came {
			return nil, "", err
		}
	}
	res, err := fetchScript.Run(ctx, b.rdb, []string{k.Stream(), k.Notify(), k.Paused()}, Group, consumer, count, maxSize+len(EnvelopeField)).Slice()
	if err != nil {
		if strings.Contains(err.Error(), "NOGROUP") {
			return nil, "", fmt.Errorf("read %s: %w", k.Stream(), ErrNoGroup)
		}
		return nil, "", fmt.Errorf("read %s: %w", k.Stream(), classify(err))
	}
	if len(res) != 3 {
		return nil, "", fmt.Errorf("read %s: unexpected reply %v", k.Stream(), res)
	}
	mark, _ := res[0].(string)
	out := entries(queue, res[1])
	big, _ := res[2].([]any)
	for _, x := range big {
		e, _ := x.([]any)
		if len(e) != 3 {
			continue
		}
		id, _ := e[0].(string)
		size, _ := e[1].(int64)
		claimed, _ := e[2].(string)
		out = append(out, Message{Queue: queue, EntryID: id, Oversized: true, Size: int(size), Claimed: claimed})
	}
	next := mark
	if len(out) >= count {
		next = ""
	}
	if len(out) > 0 || block <= 0 || after != "" {
		return out, next, nil
	}
	_, err = b.waitNotify(ctx, k, mark, block)
	return nil, "", err
}

// waitNotify blocks up to block for an entry of k's notify stream past mark, and reports
// whether one came.
func (b *Broker) waitNotify(ctx context.Context, k Keys, mark string, block time.Duration) (bool, error) {
	err := b.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{k.Notify(), mark}, Count: 1, Block: block}).Err()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("wait on %s: %w", k.Notify(), err)
	}
	return true, nil
}

// entries turns entries as XREADGROUP or XCLAIM return them from a script into messages.
func entries(queue string, reply any) []Message {
	xs, _ := reply.([]any)
	out := make([]Message, 0, len(xs))
	for _, e := range xs {
		x, ok := e.([]any)
		if !ok || len(x) != 2 {
			continue
		}
		id, _ := x[0].(string)
		m := Message{Queue: queue, EntryID: id}
		fields, _ := x[1].([]any)
		for i := 0; i+1 < len(fields); i += 2 {
			if f, _ := fields[i].(string); f == EnvelopeField {
				v, _ := fields[i+1].(string)
				m.Envelope = []byte(v)
			}
		}
		out = append(out, m)
	}
	return out
}

// ReclaimStart is the cursor of a reclaim scan's first call.
const ReclaimStart = "-"

// Lost is a delivery lost with its entry: the entry was deleted from the stream (XTRIM,
// XDEL) while pending with a consumer that has died since (it renewed no lease for
// longer than a lease), after the delivery of task TaskID began on it. Nothing can run
// the task again; EndLost ends it.
type Lost struct {
	Queue    string
	EntryID  string
	TaskID   string
	Consumer string // the consumer that held the entry
}

// Reclaim takes over up to count entries of queue that other consumers have held without
// a heartbeat for longer than lease, by Redis's idle clock: their workers died or stalled.
// After Redis heard from no worker of the queue (through Reclaim or Heartbeat) for longer
// than half a lease, it stalled: then it takes nothing for one lease, so that live workers
// renew first. Call it more often than every half lease. It never takes the entries
// consumer is running, listed in running. It scans the
// pending entries from cursor (ReclaimStart for the start) and returns the cursor to go
// on from, ReclaimStart once the scan went round, so entries held by live workers do not
// hide orphans behind them.
//
// A pending entry deleted from the stream cannot be taken over. When its consumer is dead
// (see Lost) and a delivery began on it, it comes back in lost, for EndLost; when no
// delivery began, it is dropped from the pending list. The deleted entries of a live
// consumer are left alone: it finishes them.
func (b *Broker) Reclaim(ctx context.Context, queue, consumer string, lease time.Duration, count int, cursor string, running []string) (msgs []Message, lost []Lost, next string, err error) {
	k := b.Keys(queue)
	if cursor == "" {
		cursor = ReclaimStart
	}
	args := make([]any, 0, 5+len(running))
	args = append(args, Group, consumer, ttlMS(lease), count, cursor)
	for _, id := range running {
		args = append(args, id)
	}
	res, err := reclaimScript.Run(ctx, b.rdb, []string{k.Stream(), k.Tick(), k.Entries()}, args...).Slice()
	if err != nil {
		if strings.Contains(err.Error(), "NOGROUP") {
			return nil, nil, ReclaimStart, fmt.Errorf("reclaim on %s: %w", k.Stream(), ErrNoGroup)
		}
		return nil, nil, cursor, fmt.Errorf("reclaim on %s: %w", k.Stream(), classify(err))
	}
	if len(res) != 3 {
		return nil, nil, cursor, fmt.Errorf("reclaim on %s: unexpected reply %v", k.Stream(), res)
	}
	next, _ = res[0].(string)
	xs, _ := res[2].([]any)
	for _, x := range xs {
		l, _ := x.([]any)
		if len(l) != 3 {
			continue
		}
		entry, _ := l[0].(string)
		id, _ := l[1].(string)
		owner, _ := l[2].(string)
		lost = append(lost, Lost{Queue: queue, EntryID: entry, TaskID: id, Consumer: owner})
	}
	return entries(queue, res[1]), lost, next, nil
}

// EndLost is how a lost delivery ends.
type EndLost struct {
	Lost     Lost
	Consumer string        // the consumer calling, which found it
	Lease    time.Duration // the caller's lease, by which the holder's silence is judged
	Reason   string
	Error    string
	TTL      time.Duration // how long the task's final state stays readable
	MAC      string        // authenticates the final outcome (see Settlement.MAC)
}

// EndLost ends the task of a lost delivery dead, with e's reason and error, dead-letters
// it without an envelope and lets the entry go, after checking again, atomically, that it
// is lost (see endLostScript). It reports whether the task ended: false when the entry
// is not lost any more (it was settled, or its consumer came back) or the task had moved
// on (another delivery began, or it finished), which is left as it is.
func (b *Broker) EndLost(ctx context.Context, e EndLost) (bool, error) {
	l := e.Lost
	k := b.Keys(l.Queue)
	keys := []string{k.Stream(), k.Tick(), k.Entries(), k.Dead(), k.State(l.TaskID), k.Done(l.TaskID)}
	n, err := endLostScript.Run(ctx, b.rdb, keys, Group, l.EntryID, l.Consumer, e.Consumer, ttlMS(e.Lease),
		l.TaskID, e.Reason, e.Error, ttlMS(e.TTL), e.MAC).Int()
	if err != nil {
		return false, fmt.Errorf("end %s, lost with entry %s: %w", l.TaskID, l.EntryID, classify(err))
	}
	return n == 1, nil
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
		if redis.HasErrorPrefix(err, "WRONGTYPE") { // a read: it changed nothing
			err = &CorruptError{Key: k.Stream(), msg: err.Error()}
		}
		return 0, fmt.Errorf("list consumers of %s: %w", k.Stream(), err)
	}
	n := 0
	for _, c := range consumers {
		if c.Name == self || c.Pending > 0 || c.Idle < idle {
			continue
		}
		removed, err := pruneScript.Run(ctx, b.rdb, []string{k.Stream(), k.Tick()}, Group, c.Name).Int()
		if err != nil {
			return n, fmt.Errorf("remove consumer %s of %s: %w", c.Name, k.Stream(), classify(err))
		}
		n += removed
	}
	return n, nil
}

// Lease names one delivery a consumer holds: its entry, its task and the lease token its
// start returned (0 while it has not begun).
type Lease struct {
	EntryID string
	TaskID  string
	Token   int64
}

// LeaseStatus is what a heartbeat found of one lease.
type LeaseStatus int

const (
	// LeaseHeld: the consumer still holds the delivery; its lease is renewed.
	LeaseHeld LeaseStatus = 1
	// LeaseGone: the entry is no longer pending: the delivery was settled.
	LeaseGone LeaseStatus = 0
	// LeaseTaken: another consumer holds the entry, or another delivery of the task
	// began since: this run must stop and write nothing.
	LeaseTaken LeaseStatus = -1
	// LeaseCancel: the consumer holds the delivery and its lease is renewed, but an
	// operator asked for the task to be canceled: stop the run and settle it Cancel.
	LeaseCancel LeaseStatus = 2
)

// Heartbeat renews the leases consumer holds on queue, so that Reclaim on other workers
// does not take them while they run, and returns the status of each, in order. lease is
// the consumer's lease: a heartbeat that finds Redis silent for longer than it holds
// every takeover back for one more lease.
//
// A lease whose task's state holds the wrong type is LeaseTaken: its run stops, and the
// worker that takes the entry over dead-letters it (corrupt). The script refuses the
// whole call on such a key, changing nothing; Heartbeat then renews the other leases
// without it, so that one corrupt key costs no other task its lease.
func (b *Broker) Heartbeat(ctx context.Context, queue, consumer string, lease time.Duration, leases []Lease) ([]LeaseStatus, error) {
	k := b.Keys(queue)
	out := make([]LeaseStatus, len(leases))
	left := make([]int, len(leases)) // the leases still to renew, by index
	for i := range left {
		left[i] = i
	}
	for len(left) > 0 {
		keys := make([]string, 2, 2+len(left))
		keys[0], keys[1] = k.Stream(), k.Tick()
		args := make([]any, 0, 3+2*len(left))
		args = append(args, Group, consumer, ttlMS(lease))
		for _, i := range left {
			keys = append(keys, k.State(leases[i].TaskID))
			args = append(args, leases[i].EntryID, leases[i].Token)
		}
		codes, err := heartbeatScript.Run(ctx, b.rdb, keys, args...).Int64Slice()
		var corrupt *CorruptError
		if errors.As(classify(err), &corrupt) {
			if j := slices.Index(keys[2:], corrupt.Key); j >= 0 {
				out[left[j]] = LeaseTaken
				left = slices.Delete(left, j, j+1)
				continue
			}
		}
		if err != nil {
			return nil, fmt.Errorf("heartbeat on %s: %w", k.Stream(), classify(err))
		}
		if len(codes) != len(left) {
			return nil, fmt.Errorf("heartbeat on %s: %d answers for %d leases", k.Stream(), len(codes), len(left))
		}
		for j, c := range codes {
			out[left[j]] = LeaseStatus(c)
		}
		break
	}
	return out, nil
}

// Promote moves up to limit tasks of queue whose time has come, by Redis's clock, from
// the delayed set to the stream. It returns how many it moved and how long until the next
// delayed task is due, negative when none waits.
//
// It drains both the delayed set and the retry set (Keys.Retry), up to limit each, and
// reports the larger of the two counts it moved.
func (b *Broker) Promote(ctx context.Context, queue string, limit int) (moved int, next time.Duration, err error) {
	k := b.Keys(queue)
	next = -1
	for _, set := range []string{k.Delayed(), k.Retry()} {
		res, err := promoteScript.Run(ctx, b.rdb, []string{set, k.Stream(), k.Notify()}, limit).Int64Slice()
		if err != nil {
			return moved, 0, fmt.Errorf("promote %s: %w", set, classify(err))
		}
		if len(res) != 2 {
			return moved, 0, fmt.Errorf("promote %s: unexpected reply %v", set, res)
		}
		moved = max(moved, int(res[0]))
		if d := time.Duration(res[1]) * time.Millisecond; res[1] >= 0 && (next < 0 || d < next) {
			next = d
		}
	}
	return moved, next, nil
}

// StartRequest is one delivery about to begin.
type StartRequest struct {
	Message  Message
	TaskID   string
	Consumer string
	// Runs is how many deliveries of the task may begin: its first attempt and retries.
	Runs int
	// TTL is how long the final state of a task that ends canceled at its start (a cancel
	// request was pending) stays readable.
	TTL time.Duration
}

// StartOutcome says whether a delivery may begin.
type StartOutcome int

const (
	// StartRun: the delivery begins; Start.Attempts and Start.Lease are set.
	StartRun StartOutcome = iota + 1
	// StartTaken: another consumer holds the entry now; nothing was written.
	StartTaken
	// StartNoRecord: the task has no state: it finished and its record expired, or the
	// entry was written past the client. Dead-letter the entry with a Refuse settlement.
	StartNoRecord
	// StartFinished: the task has finished already (or was canceled, now or before); the
	// entry was removed unrun.
	StartFinished
	// StartWorkerLost: earlier deliveries began and never settled as often as the task
	// may run. The delivery began (Start.Lease is set) without counting an attempt:
	// dead-letter it.
	StartWorkerLost
)

// Start is what StartDelivery found.
type Start struct {
	Outcome  StartOutcome
	Attempts int   // deliveries of the task that began, this one included
	Lease    int64 // the fencing token of this delivery
}

// StartDelivery begins a delivery: it raises the task's lease token and counts the attempt.
func (b *Broker) StartDelivery(ctx context.Context, r StartRequest) (Start, error) {
	starts, errs := b.StartDeliveries(ctx, []StartRequest{r})
	return starts[0], errs[0]
}

// StartDeliveries begins the deliveries of rs, as StartDelivery does each, in one round
// trip (runPipelined): a worker begins the entries of one fetch together. One that fails
// fails only its own delivery.
func (b *Broker) StartDeliveries(ctx context.Context, rs []StartRequest) ([]Start, []error) {
	starts, errs := make([]Start, len(rs)), make([]error, len(rs))
	calls := make([]scriptCall, len(rs))
	for i, r := range rs {
		keys, args := b.startCall(r)
		calls[i] = scriptCall{startScript, keys, args}
	}
	for i, cmd := range b.runPipelined(ctx, calls) {
		res, err := cmd.Int64Slice()
		starts[i], errs[i] = parseStart(rs[i], res, err)
	}
	return starts, errs
}

// startCall returns the keys and arguments of startScript for r.
func (b *Broker) startCall(r StartRequest) ([]string, []any) {
	k := b.Keys(r.Message.Queue)
	call := b.calls + "." + strconv.FormatUint(b.started.Add(1), 10)
	return []string{k.Stream(), k.State(r.TaskID), k.Entries(), k.Done(r.TaskID)},
		[]any{Group, r.Message.EntryID, r.Consumer, r.Runs, r.TaskID, ttlMS(max(r.TTL, time.Minute)), call}
}

// parseStart reads startScript's reply for r.
func parseStart(r StartRequest, res []int64, err error) (Start, error) {
	if err != nil {
		return Start{}, fmt.Errorf("start %s: %w", r.TaskID, classify(err))
	}
	switch {
	case len(res) == 3 && res[0] == 1:
		return Start{Outcome: StartRun, Attempts: int(res[1]), Lease: res[2]}, nil
	case len(res) == 1 && res[0] == 0:
		return Start{Outcome: StartTaken}, nil
	case len(res) == 1 && res[0] == -1:
		return Start{Outcome: StartNoRecord}, nil
	case len(res) == 1 && res[0] == -2:
		return Start{Outcome: StartFinished}, nil
	case len(res) == 3 && res[0] == -3:
		return Start{Outcome: StartWorkerLost, Attempts: int(res[1]), Lease: res[2]}, nil
	}
	return Start{}, fmt.Errorf("start %s: unexpected reply %v", r.TaskID, res)
}

// Errors of a settlement.
var (
	// ErrFenced: another delivery of the task began after this one (this worker lost its
	// lease), or the task is no longer running; the write was refused and changed nothing.
	ErrFenced = errors.New("fenced off: another delivery of the task began since this one")
	// ErrNoRecord: the task's state is gone; the write was refused and changed nothing.
	ErrNoRecord = errors.New("the task has no record")
	// ErrEntryTaken: another consumer holds the entry; the write changed nothing.
	ErrEntryTaken = errors.New("another consumer holds the entry")
)

// SettleKind is the kind of write a Settlement makes.
type SettleKind int

const (
	// Complete records the result of a task that succeeded.
	Complete SettleKind = iota + 1
	// Retry schedules the next attempt after Delay, recording Error.
	Retry
	// Dead moves the task to the dead-letter stream with Reason and Error.
	Dead
	// Release hands the task back to the stream unspent.
	Release
	// Refuse dead-letters a stream entry that could not begin (Reason, Error), by its
	// entry; ClaimedID is the task id its envelope claims, if any (see deadEntryScript).
	Refuse
	// Defer hands the task back after Delay without spending an attempt, recording
	// Error and, the first time, when (see SkewSince): a worker of another version may
	// run it.
	Defer
	// Cancel ends a running task canceled, with Error and MAC (see cancelScript).
	Cancel
)

func (k SettleKind) String() string {
	switch k {
	case Complete:
		return "complete"
	case Retry:
		return "retry"
	case Dead:
		return "dead-letter"
	case Release:
		return "release"
	case Refuse:
		return "refuse"
	case Defer:
		return "defer"
	case Cancel:
		return "cancel"
	}
	return fmt.Sprintf("SettleKind(%d)", int(k))
}

// Settlement is one outcome write.
type Settlement struct {
	Kind    SettleKind
	Message Message
	TaskID  string
	Lease   int64 // the token StartDelivery returned; not used by Refuse
	Result  []byte
	Delay   time.Duration
	Reason  string
	Error   string
	TTL     time.Duration // how long a finished task's state stays readable
	// Consumer and ClaimedID are for Refuse.
	Consumer  string
	ClaimedID string
	// MAC authenticates the final outcome Complete, Dead and Refuse write (see
	// envelope.Outcome); Result refuses an outcome whose MAC does not verify.
	MAC string
	// Vouch, for Dead, is the worker's word that it verified the envelope
	// (envelope.Keyring.Vouch), kept with the dead letter.
	Vouch string
}

// run returns the script and its keys and arguments.
func (b *Broker) call(s Settlement) (*redis.Script, []string, []any) {
	k := b.Keys(s.Message.Queue)
	m := s.Message
	switch s.Kind {
	case Complete:
		return completeScript, []string{k.Stream(), k.State(s.TaskID), k.Done(s.TaskID), k.Entries()},
			[]any{Group, m.EntryID, s.Lease, s.Result, ttlMS(s.TTL), s.MAC}
	case Retry:
		return retryScript, []string{k.Stream(), k.Retry(), k.State(s.TaskID), k.Entries()},
			[]any{Group, m.EntryID, s.Lease, m.Envelope, max(s.Delay.Milliseconds(), 0), s.Error}
	case Dead:
		return deadScript, []string{k.Stream(), k.Dead(), k.State(s.TaskID), k.Done(s.TaskID), k.Entries()},
			[]any{Group, m.EntryID, s.Lease, m.Envelope, s.Reason, s.Error, ttlMS(s.TTL), s.TaskID, s.MAC, s.Vouch,
				b.retention.MaxCount, b.retention.MaxAge.Milliseconds()}
	case Cancel:
		return cancelScript, []string{k.Stream(), k.State(s.TaskID), k.Done(s.TaskID), k.Entries()},
			[]any{Group, m.EntryID, s.Lease, s.Error, ttlMS(s.TTL), s.MAC}
	case Release:
		return releaseScript, []string{k.Stream(), k.State(s.TaskID), k.Notify(), k.Entries()}, []any{Group, m.EntryID, s.Lease, m.Envelope}
	case Defer:
		return deferScript, []string{k.Stream(), k.Delayed(), k.State(s.TaskID), k.Entries()},
			[]any{Group, m.EntryID, s.Lease, m.Envelope, max(s.Delay.Milliseconds(), 0), s.Error}
	case Refuse:
		keys := []string{k.Stream(), k.Dead(), k.Entries()}
		if s.ClaimedID != "" {
			keys = append(keys, k.State(s.ClaimedID), k.Done(s.ClaimedID))
		}
		unread := ""
		if m.Oversized {
			unread = "1"
		}
		return deadEntryScript, keys, []any{Group, m.EntryID, s.Consumer, m.Envelope, s.Reason, s.Error, ttlMS(s.TTL), s.ClaimedID, s.MAC, unread, MaxDigestSize,
			b.retention.MaxCount, b.retention.MaxAge.Milliseconds()}
	}
	panic(fmt.Sprintf("redisq: settlement of unknown kind %d", s.Kind))
}

// settleErr turns a settling script's reply into an error.
func settleErr(s Settlement, n int64, err error) error {
	what := fmt.Sprintf("%s %s (entry %s)", s.Kind, s.TaskID, s.Message.EntryID)
	if s.Kind == Refuse {
		what = fmt.Sprintf("%s %s of %s", s.Kind, s.Message.EntryID, s.Message.Queue)
	}
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", what, classify(err))
	case n == 1:
		return nil
	case n == 0 && s.Kind == Refuse:
		return fmt.Errorf("%s: %w", what, ErrEntryTaken)
	case n == 0:
		return fmt.Errorf("%s: %w", what, ErrFenced)
	case n == -1:
		return fmt.Errorf("%s: %w", what, ErrNoRecord)
	}
	return fmt.Errorf("%s: unexpected reply %d", what, n)
}

// Settle makes the writes ss in one round trip (runPipelined) and returns one error per
// settlement, in order (nil where it was made). A write is refused, changing nothing, with ErrFenced,
// ErrNoRecord or ErrEntryTaken, or fails with ErrCorrupt or a Redis error.
func (b *Broker) Settle(ctx context.Context, ss []Settlement) []error {
	errs := make([]error, len(ss))
	calls := make([]scriptCall, len(ss))
	for i, s := range ss {
		sc, keys, args := b.call(s)
		calls[i] = scriptCall{sc, keys, args}
	}
	for i, cmd := range b.runPipelined(ctx, calls) {
		n, err := cmd.Int64()
		errs[i] = settleErr(ss[i], n, err)
	}
	return errs
}

// State is what the state hash of a task holds.
type State struct {
	State    string
	Kind     string
	Attempts int
	Reason   string
	Error    string
	Result   []byte
	MAC      string // the worker's MAC of a final outcome
}

// Finished reports whether the task reached a final state.
func (s State) Finished() bool {
	return s.State == StateSucceeded || s.State == StateDead || s.State == StateCanceled
}

// ErrNoTask reports a task that does not exist or whose state expired.
var ErrNoTask = errors.New("no such task")

// GetState reads the state of task id of queue.
func (b *Broker) GetState(ctx context.Context, queue, id string) (State, error) {
	k := b.Keys(queue)
	h, err := b.rdb.HGetAll(ctx, k.State(id)).Result()
	if err != nil {
		return State{}, fmt.Errorf("read %s: %w", k.State(id), err)
	}
	return stateOf(id, h)
}

// WatchState is GetState for a caller about to wait for the task with WaitDone: unless
// the task has finished, it marks it as waited on, so that its finish signals the wait.
// A task nobody watches finishes without a done list.
func (b *Broker) WatchState(ctx context.Context, queue, id string) (State, error) {
	k := b.Keys(queue)
	flat, err := watchScript.Run(ctx, b.rdb, []string{k.State(id)}).StringSlice()
	if err != nil {
		return State{}, fmt.Errorf("read %s: %w", k.State(id), classify(err))
	}
	h := make(map[string]string, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		h[flat[i]] = flat[i+1]
	}
	return stateOf(id, h)
}

// stateOf reads the state hash h of task id.
func stateOf(id string, h map[string]string) (State, error) {
	if len(h) == 0 {
		return State{}, fmt.Errorf("%s: %w", id, ErrNoTask)
	}
	attempts, _ := strconv.Atoi(h[FieldAttempts])
	s := State{State: h[FieldState], Kind: h[FieldKind], Attempts: attempts, Reason: h[FieldReason], Error: h[FieldError], MAC: h[FieldMAC]}
	if r, ok := h[FieldResult]; ok {
		s.Result = []byte(r)
	}
	return s, nil
}

// Schema returns the description recorded for schema fingerprint on queue (see
// Keys.Schemas), and false when none is. The caller checks that the description is the
// fingerprint's: anyone who can write Redis can write this hash.
func (b *Broker) Schema(ctx context.Context, queue, fingerprint string) (string, bool, error) {
	k := b.Keys(queue)
	v, err := b.rdb.HGet(ctx, k.Schemas(), fingerprint).Result()
	if errors.Is(err, redis.Nil) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", k.Schemas(), err)
	}
	return v, true, nil
}

// SkewSince returns when a worker first handed task id of queue back for a version skew
// (Defer), by Redis's clock; zero if none did.
func (b *Broker) SkewSince(ctx context.Context, queue, id string) (time.Time, error) {
	k := b.Keys(queue)
	v, err := b.rdb.HGet(ctx, k.State(id), FieldSkewSince).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", k.State(id), err)
	}
	ms, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %s is %q, not a time in ms: %w", k.State(id), FieldSkewSince, v, ErrCorrupt)
	}
	return time.UnixMilli(ms), nil
}

// WaitDone blocks until task id of queue signals completion or timeout passes; it reports
// whether the signal came. The signal stays in place (BLMOVE rotates the list onto
// itself), so every waiter sees it. It does not poll. Only a task marked by WatchState
// before it finished signals: call WatchState, then WaitDone while it is not finished.
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

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

// The inspector's reads and actions. Every read is bounded (a count on each range, a page
// of the registry at a time) and uses only commands an ACL user limited to the prefix
// has: no KEYS, SCAN or MEMORY. Counts are O(1) or O(log n) per queue: XINFO GROUPS (the
// group's lag), XLEN, the XPENDING summary and ZCARD.

// QueueStats is what QueueStats reads of one queue.
type QueueStats struct {
	Paused   bool
	Pending  int64 // entries of the stream not yet delivered to a worker
	Running  int64 // entries delivered and not settled (the group's pending entries)
	Delayed  int64
	Retrying int64
	Dead     int64
	// Oldest is the Redis time of the oldest entry not yet delivered (zero: none) and
	// Now Redis's time when it was read.
	Oldest, Now time.Time
	// LastDelivered is the id of the last entry the group handed to a worker.
	LastDelivered string
	Retention     Retention // what the queue's workers recorded; zero when none did
}

// Queues returns the registered queues (see Registry), reading the set a page at a time.
func (b *Broker) Queues(ctx context.Context) ([]string, error) {
	var out []string
	var cursor uint64
	for {
		names, next, err := b.rdb.SScan(ctx, Registry(b.prefix), cursor, "", 1000).Result()
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", Registry(b.prefix), err)
		}
		out = append(out, names...)
		if cursor = next; cursor == 0 {
			return out, nil
		}
	}
}

// noStream reports an error of a command on a stream or group that does not exist yet.
func noStream(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "no such key") || strings.Contains(err.Error(), "NOGROUP"))
}

// QueueStats counts the tasks of queue by state.
func (b *Broker) QueueStats(ctx context.Context, queue string) (QueueStats, error) {
	k := b.Keys(queue)
	var st QueueStats
	var groups *redis.XInfoGroupsCmd
	var xlen, delayed, retry, dead, paused *redis.IntCmd
	var pend *redis.XPendingCmd
	var meta *redis.SliceCmd
	var now *redis.TimeCmd
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		groups = p.XInfoGroups(ctx, k.Stream())
		xlen = p.XLen(ctx, k.Stream())
		pend = p.XPending(ctx, k.Stream(), Group)
		delayed = p.ZCard(ctx, k.Delayed())
		retry = p.ZCard(ctx, k.Retry())
		dead = p.XLen(ctx, k.Dead())
		paused = p.Exists(ctx, k.Paused())
		meta = p.HMGet(ctx, k.Meta(), MetaDeadMaxCount, MetaDeadMaxAge)
		now = p.Time(ctx)
		return nil
	})
	if err != nil && !noStream(err) {
		return st, fmt.Errorf("count the tasks of %s: %w", queue, err)
	}
	for _, c := range []*redis.IntCmd{xlen, delayed, retry, dead, paused} {
		if err := c.Err(); err != nil {
			return st, fmt.Errorf("count the tasks of %s: %w", queue, err)
		}
	}
	if err := now.Err(); err != nil {
		return st, fmt.Errorf("read the time of Redis: %w", err)
	}
	st.Now = now.Val()
	st.Delayed, st.Retrying, st.Dead, st.Paused = delayed.Val(), retry.Val(), dead.Val(), paused.Val() == 1
	if v := meta.Val(); len(v) == 2 {
		n, _ := v[0].(string)
		age, _ := v[1].(string)
		st.Retention.MaxCount, _ = strconv.ParseInt(n, 10, 64)
		ms, _ := strconv.ParseInt(age, 10, 64)
		st.Retention.MaxAge = time.Duration(ms) * time.Millisecond
	}
	if err := pend.Err(); err == nil {
		st.Running = pend.Val().Count
	} else if !noStream(err) {
		return st, fmt.Errorf("count the running tasks of %s: %w", queue, err)
	}
	lag := int64(-1)
	if err := groups.Err(); err == nil {
		for _, g := range groups.Val() {
			if g.Name == Group {
				st.LastDelivered, lag = g.LastDeliveredID, g.Lag
			}
		}
	} else if !noStream(err) {
		return st, fmt.Errorf("read the group of %s: %w", queue, err)
	}
	if lag >= 0 {
		st.Pending = lag
	} else {
		// The lag is unknown after entries ahead of the group were deleted (a canceled or
		// deleted pending task). Every delivered entry leaves the stream when settled, so
		// what the stream holds besides the group's pending entries is undelivered.
		st.Pending = max(xlen.Val()-st.Running, 0)
	}
	if st.Pending > 0 {
		first, err := b.PendingEntries(ctx, queue, st.LastDelivered, 1)
		if err != nil {
			return st, err
		}
		if len(first) == 1 {
			st.Oldest = EntryTime(first[0].ID)
		}
	}
	return st, nil
}

// EntryTime is the Redis time a stream entry id records.
func EntryTime(id string) time.Time {
	ms, _, _ := strings.Cut(id, "-")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

// laterID returns the later of two stream entry ids ("" is before every id).
func laterID(a, b string) string {
	if compareIDs(a, b) >= 0 {
		return a
	}
	return b
}

// LastDead returns the id of the newest entry of queue's dead-letter stream, "" when it
// is empty.
func (b *Broker) LastDead(ctx context.Context, queue string) (string, error) {
	k := b.Keys(queue)
	xs, err := b.rdb.XRevRangeN(ctx, k.Dead(), "+", "-", 1).Result()
	if err != nil && !noStream(err) {
		return "", fmt.Errorf("read %s: %w", k.Dead(), err)
	}
	if len(xs) == 0 {
		return "", nil
	}
	return xs[0].ID, nil
}

// CompareIDs compares two stream entry ids in stream order: -1, 0 or 1; "" is before
// every id.
func CompareIDs(a, b string) int { return compareIDs(a, b) }

func compareIDs(a, b string) int {
	split := func(id string) (uint64, uint64) {
		ms, seq, _ := strings.Cut(id, "-")
		m, _ := strconv.ParseUint(ms, 10, 64)
		s, _ := strconv.ParseUint(seq, 10, 64)
		return m, s
	}
	am, as := split(a)
	bm, bs := split(b)
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return -1
	case b == "":
		return 1
	case am != bm:
		if am < bm {
			return -1
		}
		return 1
	case as != bs:
		if as < bs {
			return -1
		}
		return 1
	}
	return 0
}

// StreamEntry is one entry of a queue's stream.
type StreamEntry struct {
	ID       string
	Envelope []byte
}

// PendingEntries returns up to count entries of queue's stream not yet delivered, after
// entry id after ("": from the first undelivered). It never returns an entry the group
// delivered already, wherever after is.
func (b *Broker) PendingEntries(ctx context.Context, queue, after string, count int) ([]StreamEntry, error) {
	k := b.Keys(queue)
	last := ""
	gs, err := b.rdb.XInfoGroups(ctx, k.Stream()).Result()
	if err != nil && !noStream(err) {
		return nil, fmt.Errorf("read the group of %s: %w", queue, err)
	}
	for _, g := range gs {
		if g.Name == Group {
			last = g.LastDeliveredID
		}
	}
	start := "-"
	if from := laterID(after, last); from != "" {
		start = "(" + from
	}
	xs, err := b.rdb.XRangeN(ctx, k.Stream(), start, "+", int64(count)).Result()
	if err != nil && !noStream(err) {
		return nil, fmt.Errorf("read %s: %w", k.Stream(), err)
	}
	return streamEntries(xs), nil
}

func streamEntries(xs []redis.XMessage) []StreamEntry {
	out := make([]StreamEntry, 0, len(xs))
	for _, x := range xs {
		env, _ := x.Values[EnvelopeField].(string)
		out = append(out, StreamEntry{ID: x.ID, Envelope: []byte(env)})
	}
	return out
}

// Entry returns the envelope of stream entry id of queue, and false when the stream no
// longer holds it.
func (b *Broker) Entry(ctx context.Context, queue, id string) ([]byte, bool, error) {
	k := b.Keys(queue)
	xs, err := b.rdb.XRangeN(ctx, k.Stream(), id, id, 1).Result()
	if err != nil && !noStream(err) {
		return nil, false, fmt.Errorf("read %s of %s: %w", id, k.Stream(), err)
	}
	if len(xs) == 0 {
		return nil, false, nil
	}
	return streamEntries(xs)[0].Envelope, true, nil
}

// findPendingScan bounds FindPending: how many entries it reads, in pages of how many.
const (
	findPendingMax  = 2000
	findPendingPage = 200
)

// FindPending looks for the stream entry of task id, reading from Redis time from on (the
// earliest the entry can have been written: its submit, due or last start time, less a
// second). It reads at most findPendingMax entries, and returns "" when they do not hold
// it.
func (b *Broker) FindPending(ctx context.Context, queue, id string, from time.Time) (string, []byte, error) {
	k := b.Keys(queue)
	start := strconv.FormatInt(max(from.UnixMilli()-1000, 0), 10)
	prefix := claimPrefix(id)
	for read := 0; read < findPendingMax; read += findPendingPage {
		xs, err := b.rdb.XRangeN(ctx, k.Stream(), start, "+", findPendingPage).Result()
		if err != nil && !noStream(err) {
			return "", nil, fmt.Errorf("read %s: %w", k.Stream(), err)
		}
		for _, e := range streamEntries(xs) {
			if strings.HasPrefix(string(e.Envelope), prefix) {
				return e.ID, e.Envelope, nil
			}
		}
		if len(xs) < findPendingPage {
			break
		}
		start = "(" + xs[len(xs)-1].ID
	}
	return "", nil, nil
}

// claimPrefix is how the envelope of task id begins (see claimPattern).
func claimPrefix(id string) string { return `{"v":1,"id":"` + id + `"` }

// RunningEntry is one entry of the group's pending list: delivered to Consumer, not
// settled.
type RunningEntry struct {
	ID        string
	Consumer  string
	Idle      time.Duration
	Delivered int64
	TaskID    string // from the entries hash, once the delivery began
	Envelope  []byte // nil when the entry was deleted from the stream
}

// RunningEntries returns up to count of queue's delivered, unsettled entries after
// entry id after ("" for the first).
func (b *Broker) RunningEntries(ctx context.Context, queue, after string, count int) ([]RunningEntry, error) {
	k := b.Keys(queue)
	start := "-"
	if after != "" {
		start = "(" + after
	}
	ps, err := b.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: k.Stream(), Group: Group, Start: start, End: "+", Count: int64(count)}).Result()
	if err != nil {
		if noStream(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read the pending entries of %s: %w", k.Stream(), err)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	var tasks *redis.SliceCmd
	ranges := make([]*redis.XMessageSliceCmd, len(ps))
	_, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		tasks = p.HMGet(ctx, k.Entries(), ids...)
		for i, id := range ids {
			ranges[i] = p.XRangeN(ctx, k.Stream(), id, id, 1)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the running entries of %s: %w", k.Stream(), err)
	}
	out := make([]RunningEntry, len(ps))
	for i, p := range ps {
		out[i] = RunningEntry{ID: p.ID, Consumer: p.Consumer, Idle: p.Idle, Delivered: p.RetryCount}
		if v := tasks.Val(); i < len(v) {
			out[i].TaskID, _ = v[i].(string)
		}
		if es := streamEntries(ranges[i].Val()); len(es) == 1 {
			out[i].Envelope = es[0].Envelope
		}
	}
	return out, nil
}

// Waiting is one task of the delayed or retry set.
type Waiting struct {
	Envelope []byte
	Due      time.Time
	Score    int64
}

// WaitingEntries returns up to count tasks of queue's retry set (retry) or delayed set,
// due at or after min (ms), skipping the first skip of them: the page that follows a page
// that ended on score min after skip members of that score.
func (b *Broker) WaitingEntries(ctx context.Context, queue string, retry bool, min int64, skip, count int) ([]Waiting, error) {
	k := b.Keys(queue)
	set := k.Delayed()
	if retry {
		set = k.Retry()
	}
	zs, err := b.rdb.ZRangeArgsWithScores(ctx, redis.ZRangeArgs{Key: set, Start: strconv.FormatInt(min, 10), Stop: "+inf",
		ByScore: true, Offset: int64(skip), Count: int64(count)}).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", set, err)
	}
	out := make([]Waiting, len(zs))
	for i, z := range zs {
		m, _ := z.Member.(string)
		out[i] = Waiting{Envelope: []byte(m), Score: int64(z.Score), Due: time.UnixMilli(int64(z.Score))}
	}
	return out, nil
}

// FindWaiting returns the member of task id in queue's retry set (retry) or delayed set
// at score due, nil when it is not there.
func (b *Broker) FindWaiting(ctx context.Context, queue, id string, retry bool, due int64) ([]byte, error) {
	k := b.Keys(queue)
	set := k.Delayed()
	if retry {
		set = k.Retry()
	}
	score := strconv.FormatInt(due, 10)
	ms, err := b.rdb.ZRangeByScore(ctx, set, &redis.ZRangeBy{Min: score, Max: score, Count: 1000}).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", set, err)
	}
	prefix := claimPrefix(id)
	for _, m := range ms {
		if strings.HasPrefix(m, prefix) {
			return []byte(m), nil
		}
	}
	return nil, nil
}

// StateHash returns the whole state hash of task id of queue; ErrNoTask when it has none.
func (b *Broker) StateHash(ctx context.Context, queue, id string) (map[string]string, error) {
	k := b.Keys(queue)
	h, err := b.rdb.HGetAll(ctx, k.State(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", k.State(id), err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%s: %w", id, ErrNoTask)
	}
	return h, nil
}

// StateFields returns fields of the state hashes of the tasks ids of queue, in one round
// trip; nil values where a task has no such field or no state.
func (b *Broker) StateFields(ctx context.Context, queue string, ids []string, fields ...string) ([][]any, error) {
	k := b.Keys(queue)
	cmds := make([]*redis.SliceCmd, len(ids))
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HMGet(ctx, k.State(id), fields...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the states of %d tasks of %s: %w", len(ids), queue, err)
	}
	out := make([][]any, len(ids))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// Errors of the inspector's actions.
var (
	// ErrMoved: the task's state changed while the action was prepared (it started,
	// finished or moved on); nothing was written. Look again.
	ErrMoved = errors.New("the task moved on while the action was prepared")
	// ErrRunning: the action does not apply to a running task.
	ErrRunning = errors.New("the task is running")
)

// Place names where a task waits, for CancelTask and DeleteTask.
type Place struct {
	State  string // the state the task must still be in
	Set    string // "delayed" or "retry": its member Member in that set
	Member []byte
	Entry  string // its entry in the stream (pending) or the dead-letter stream (dead)
}

func (b *Broker) placeKey(k Keys, p Place) string {
	switch {
	case p.Set == "retry":
		return k.Retry()
	case p.Set == "delayed":
		return k.Delayed()
	case p.State == StateDead:
		return k.Dead()
	}
	return k.Stream()
}

// CancelTask ends a task that is not running canceled, with the outcome MAC mac: it
// removes it from where it waits (an entry already delivered to a worker but not begun
// stays, and its start removes it unrun), or, for a running task (p.State running),
// records the request (FieldCancel) that the heartbeat of its worker passes on.
func (b *Broker) CancelTask(ctx context.Context, queue, id string, p Place, mac string, ttl time.Duration) error {
	k := b.Keys(queue)
	keys := []string{k.State(id), k.Done(id), b.placeKey(k, p), k.Stream()}
	n, err := cancelTaskScript.Run(ctx, b.rdb, keys, p.State, string(p.Member)+p.Entry, p.Set, mac, ttlMS(ttl), Group).Int()
	if err != nil {
		return fmt.Errorf("cancel %s: %w", id, classify(err))
	}
	if n == 0 {
		return fmt.Errorf("cancel %s: %w", id, ErrMoved)
	}
	return nil
}

// DeleteTask removes every trace of a task that is not running: its state, done list,
// the member or entry p names, and the unique key unique ("" for none) if it still holds
// this task.
func (b *Broker) DeleteTask(ctx context.Context, queue, id string, p Place, unique string) error {
	k := b.Keys(queue)
	keys := []string{k.State(id), k.Done(id), b.placeKey(k, p), k.Stream()}
	if unique != "" {
		if !strings.HasPrefix(unique, k.base+"unique:") {
			return fmt.Errorf("delete %s: its state names unique key %q, not one of its queue: %w", id, unique, ErrCorrupt)
		}
		keys = append(keys, unique)
	}
	n, err := deleteTaskScript.Run(ctx, b.rdb, keys, p.State, string(p.Member)+p.Entry, p.Set, Group, id).Int()
	if err != nil {
		return fmt.Errorf("delete %s: %w", id, classify(err))
	}
	switch n {
	case 0:
		return fmt.Errorf("delete %s: %w", id, ErrMoved)
	case -1:
		return fmt.Errorf("delete %s: %w", id, ErrRunning)
	}
	return nil
}

// PurgeDead deletes every entry of queue's dead-letter stream and returns how many.
func (b *Broker) PurgeDead(ctx context.Context, queue string) (int64, error) {
	k := b.Keys(queue)
	n, err := b.rdb.XTrimMaxLen(ctx, k.Dead(), 0).Result()
	if err != nil && !noStream(err) {
		return 0, fmt.Errorf("purge %s: %w", k.Dead(), err)
	}
	return n, nil
}

// Pause pauses queue: its workers fetch no new entries until Resume.
func (b *Broker) Pause(ctx context.Context, queue string) error {
	k := b.Keys(queue)
	if err := b.rdb.Set(ctx, k.Paused(), "1", 0).Err(); err != nil {
		return fmt.Errorf("pause %s: %w", queue, err)
	}
	return nil
}

// Resume ends a pause of queue, and wakes its workers waiting on the notify stream.
func (b *Broker) Resume(ctx context.Context, queue string) error {
	k := b.Keys(queue)
	if err := resumeScript.Run(ctx, b.rdb, []string{k.Paused(), k.Notify()}).Err(); err != nil {
		return fmt.Errorf("resume %s: %w", queue, classify(err))
	}
	return nil
}

package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/taskspec"
)

// Inspector is the operator's view of the queues: counts by state, listings paged with
// a cursor, one task in detail, and the actions on them (requeue, delete, cancel, pause,
// purge). cmd/taskctl and its web console are built on it alone.
//
// It shows the caller of a task as metadata only (CallerInfo): user id, scopes, expiry,
// whether the block was sealed. No value it returns holds the token, sealed or not, and
// no method reveals it.
//
// Every read is bounded and paged, and every command is one an ACL user limited to the
// key prefix has, on one server or a Cluster: no KEYS, SCAN or MEMORY USAGE. The queues
// it lists are those in the registry that workers (at start) and clients (at their first
// submit to a queue) write; Queue works for any valid name. It is safe for concurrent use.
type Inspector struct {
	cfg    commonConfig
	keys   *envelope.Keyring // nil without signing keys: nothing verifies
	broker *redisq.Broker
}

// NewInspector returns an inspector over rdb. The common options apply: WithPrefix,
// WithSigningKey / WithRetiredKey (to verify signatures and to re-sign on requeue),
// WithSealKey (to read user id/scopes/expiry of a sealed caller block), WithLogger,
// WithMaxEnvelopeSize. Without signing keys it lists and shows, but every signature
// reads as unverified, a sealed caller as unreadable, and the actions that write an
// outcome or an envelope (Requeue, RequeueMatching, Cancel) fail with a clear error.
func NewInspector(rdb redis.UniversalClient, opts ...Option) (*Inspector, error) {
	cfg := defaults()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if rdb == nil {
		return nil, errors.New("task.NewInspector: nil Redis client")
	}
	in := &Inspector{}
	if len(cfg.signing) == 0 {
		if err := cfg.checkKeyless(); err != nil {
			return nil, fmt.Errorf("task.NewInspector: %w", err)
		}
	} else {
		keys, err := cfg.check()
		if err != nil {
			return nil, fmt.Errorf("task.NewInspector: %w", err)
		}
		in.keys = keys
	}
	in.cfg = cfg
	in.broker = redisq.New(rdb, cfg.prefix)
	return in, nil
}

// errNoKeys is why an action that writes an outcome or an envelope fails on an inspector
// without signing keys.
var errNoKeys = errors.New("the inspector has no signing keys: give it the deployment's keys with task.WithSigningKey")

// QueueInfo is one queue's counts by state, as Redis shows them at one moment.
type QueueInfo struct {
	Name     string
	Paused   bool
	Pending  int64 // in the stream, not yet begun by a worker
	Running  int64 // begun by a worker and not settled
	Delayed  int64 // waiting for a Delay/At time
	Retrying int64 // waiting for a retry backoff
	Dead     int64 // in the dead-letter stream
	// OldestPending is the age of the oldest pending task (by Redis time); 0 when none.
	OldestPending time.Duration
	// Retention is the dead-letter cap the queue's workers apply; zero when no worker
	// has said.
	Retention DeadRetention
}

// DeadRetention is the cap on a queue's dead-letter stream (worker option
// WithDeadLetterRetention; defaults DefaultDeadLetterMaxCount, DefaultDeadLetterMaxAge).
// A zero field is no cap.
type DeadRetention struct {
	MaxCount int64
	MaxAge   time.Duration
}

// Queues returns every known queue (see Inspector), sorted by name, with its counts.
func (in *Inspector) Queues(ctx context.Context) ([]QueueInfo, error) {
	names, err := bounded(ctx, in.broker.Queues)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	sort.Strings(names)
	out := make([]QueueInfo, 0, len(names))
	for _, name := range names {
		if taskspec.CheckQueue(name) != nil {
			continue // written past taskgen: not a queue a task can be on
		}
		q, err := in.Queue(ctx, name)
		if err != nil {
			return nil, err
		}
		out = append(out, q)
	}
	return out, nil
}

// Queue returns the counts of queue, known or not: a queue nothing was ever submitted
// to has all counts zero.
func (in *Inspector) Queue(ctx context.Context, name string) (QueueInfo, error) {
	if err := taskspec.CheckQueue(name); err != nil {
		return QueueInfo{}, fmt.Errorf("inspect queue: %w", err)
	}
	st, err := bounded(ctx, func(ctx context.Context) (redisq.QueueStats, error) { return in.broker.QueueStats(ctx, name) })
	if err != nil {
		return QueueInfo{}, fmt.Errorf("inspect queue %s: %w", name, err)
	}
	q := QueueInfo{
		Name: name, Paused: st.Paused, Pending: st.Pending, Running: st.Running, Delayed: st.Delayed,
		Retrying: st.Retrying, Dead: st.Dead,
		Retention: DeadRetention{MaxCount: st.Retention.MaxCount, MaxAge: st.Retention.MaxAge},
	}
	if !st.Oldest.IsZero() {
		q.OldestPending = max(st.Now.Sub(st.Oldest), 0)
	}
	return q, nil
}

// TaskState is the state of a task, as Status and the listings report it.
type TaskState string

// The states of a task.
const (
	StatePending   TaskState = "pending"   // in its queue's stream, not yet begun
	StateScheduled TaskState = "scheduled" // waiting for its Delay or At time
	StateRunning   TaskState = "running"   // begun by a worker, not settled
	StateRetrying  TaskState = "retrying"  // waiting for a retry backoff
	StateSucceeded TaskState = "succeeded"
	StateDead      TaskState = "dead"     // failed for good: in the dead-letter stream
	StateCanceled  TaskState = "canceled" // canceled by an operator (Inspector.Cancel)
)

// ListOptions selects and pages a listing. State must be one of pending, scheduled,
// running, retrying, dead. Cursor is "" for the first page and Page.Next for the next;
// Limit defaults to 50, at most 1000.
type ListOptions struct {
	State  TaskState
	Cursor string
	Limit  int
	Kind   string // optional filter
	Reason string // optional filter, dead only
}

// Page is one page of a listing.
type Page struct {
	Tasks []TaskSummary
	Next  string // "" at the end
}

// TaskSummary is one task of a listing.
type TaskSummary struct {
	ID         ID // empty for a dead entry whose envelope did not verify
	Queue      string
	Kind       string
	State      TaskState
	Attempts   int
	Error      string    // last error
	Reason     string    // dead only
	UserID     string    // "" when no caller, or sealed and the inspector cannot open it
	DueAt      time.Time // scheduled/retrying
	EnqueuedAt time.Time // when it entered the stream (pending, running) or was submitted
	DeadEntry  string    // dead only: the dead-letter stream entry id (what dead actions take)
	FailedAt   time.Time // dead only
}

// Listing bounds.
const (
	defaultListLimit = 50
	maxListLimit     = 1000
	// listScanFactor bounds how many entries a filtered listing reads for one page: that
	// many times the page's limit. A page may come back short, with a cursor to go on.
	listScanFactor = 10
)

// List returns one page of queue's tasks in state o.State, oldest first (by stream entry
// or due time). Pages follow the cursor: a listing visits each task that stays where it
// is once, also while others come and go.
func (in *Inspector) List(ctx context.Context, queue string, o ListOptions) (Page, error) {
	if err := taskspec.CheckQueue(queue); err != nil {
		return Page{}, fmt.Errorf("list: %w", err)
	}
	switch {
	case o.Limit == 0:
		o.Limit = defaultListLimit
	case o.Limit < 0 || o.Limit > maxListLimit:
		return Page{}, fmt.Errorf("list %s: limit %d: want 1 to %d (0: %d)", queue, o.Limit, maxListLimit, defaultListLimit)
	}
	if o.Reason != "" && o.State != StateDead {
		return Page{}, fmt.Errorf("list %s: a reason filter applies to dead tasks only, not to %q", queue, o.State)
	}
	pos, err := parseCursor(o.State, o.Cursor)
	if err != nil {
		return Page{}, fmt.Errorf("list %s: %w", queue, err)
	}
	return bounded(ctx, func(ctx context.Context) (Page, error) {
		var p Page
		var err error
		switch o.State {
		case StatePending:
			p, err = in.listPending(ctx, queue, o, pos)
		case StateRunning:
			p, err = in.listRunning(ctx, queue, o, pos)
		case StateScheduled, StateRetrying:
			p, err = in.listWaiting(ctx, queue, o, pos)
		case StateDead:
			p, err = in.listDead(ctx, queue, o, pos)
		default:
			return Page{}, fmt.Errorf("list %s: state %q: want one of pending, scheduled, running, retrying, dead", queue, o.State)
		}
		if err != nil {
			return Page{}, fmt.Errorf("list %s tasks of %s: %w", o.State, queue, err)
		}
		return p, nil
	})
}

// parseCursor checks that cursor comes from a listing of state and returns the position
// it holds: a stream entry id, or "score:skip" for a sorted set.
func parseCursor(state TaskState, cursor string) (string, error) {
	if cursor == "" {
		return "", nil
	}
	s, pos, ok := strings.Cut(cursor, "/")
	if !ok || TaskState(s) != state || pos == "" {
		return "", fmt.Errorf("cursor %q is not one a listing of %s tasks returned: pass Page.Next of the same listing, or \"\" for the first page", cursor, state)
	}
	return pos, nil
}

func makeCursor(state TaskState, pos string) string { return string(state) + "/" + pos }

// opened is what the inspector made of one envelope.
type opened struct {
	env      *envelope.Envelope // nil when it does not even decode
	sig      SignatureInfo
	verified bool
}

// open verifies data with the inspector's keys, or, failing that, decodes it without
// trusting it, to show what it claims.
func (in *Inspector) open(data []byte) opened {
	if len(data) == 0 {
		return opened{sig: SignatureInfo{Problem: "no envelope: the entry holds none, or it is gone"}}
	}
	if in.keys != nil {
		e, err := in.keys.Open(data, in.cfg.maxEnvelope)
		if err == nil {
			return opened{env: e, sig: SignatureInfo{KeyID: e.KeyID, Verified: true}, verified: true}
		}
		o := opened{sig: SignatureInfo{Problem: err.Error()}}
		if e, perr := envelope.Peek(data, in.cfg.maxEnvelope); perr == nil {
			o.env, o.sig.KeyID = e, e.KeyID
		}
		return o
	}
	o := opened{sig: SignatureInfo{Problem: errNoKeys.Error()}}
	e, err := envelope.Peek(data, in.cfg.maxEnvelope)
	if err != nil {
		o.sig.Problem = err.Error()
		return o
	}
	o.env, o.sig.KeyID = e, e.KeyID
	return o
}

// plainCaller is the plain caller block as the inspector reads it: without the token,
// which it never decodes.
type plainCaller struct {
	UserID    string    `json:"user_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Scopes    []string  `json:"scopes"`
}

// caller returns the caller of e as metadata, nil when it carries none. The caller of an
// envelope that does not verify is not read: it is whatever its writer claimed.
func (in *Inspector) caller(e *envelope.Envelope, verified bool) *CallerInfo {
	if e == nil || !e.HasCaller() {
		return nil
	}
	if !verified {
		return &CallerInfo{Sealed: e.Sealed != nil}
	}
	if e.Sealed == nil {
		var p plainCaller
		if err := json.Unmarshal(e.Caller, &p); err != nil {
			return &CallerInfo{}
		}
		return &CallerInfo{UserID: p.UserID, Scopes: p.Scopes, ExpiresAt: p.ExpiresAt, Readable: true}
	}
	c := &CallerInfo{Sealed: true}
	wc, err := in.keys.Caller(e)
	if err != nil || wc == nil {
		return c
	}
	// Only the metadata is copied: the token goes nowhere.
	c.UserID, c.Scopes, c.ExpiresAt, c.Readable = wc.UserID, wc.Scopes, wc.ExpiresAt, true
	return c
}

// summary fills the parts of a summary an envelope gives.
func (in *Inspector) summary(queue string, state TaskState, data []byte) TaskSummary {
	o := in.open(data)
	s := TaskSummary{Queue: queue, State: state}
	if o.env != nil {
		s.Kind = o.env.Kind
		if o.verified {
			s.ID = ID(o.env.ID)
		}
		if c := in.caller(o.env, o.verified); c != nil {
			s.UserID = c.UserID
		}
	}
	return s
}

// withStates fills in attempts and last error from the tasks' states.
func (in *Inspector) withStates(ctx context.Context, queue string, tasks []TaskSummary) error {
	ids := make([]string, 0, len(tasks))
	idx := make([]int, 0, len(tasks))
	for i, t := range tasks {
		if t.ID != "" {
			ids = append(ids, string(t.ID))
			idx = append(idx, i)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	vs, err := in.broker.StateFields(ctx, queue, ids, redisq.FieldAttempts, redisq.FieldError, redisq.FieldKind)
	if err != nil {
		return err
	}
	for j, v := range vs {
		t := &tasks[idx[j]]
		t.Attempts, _ = strconv.Atoi(str(v, 0))
		t.Error = str(v, 1)
		if k := str(v, 2); t.Kind == "" {
			t.Kind = k
		}
	}
	return nil
}

func str(v []any, i int) string {
	if i >= len(v) {
		return ""
	}
	s, _ := v[i].(string)
	return s
}

// scan reads a listing in chunks until the page is full, the source is exhausted or the
// scan bound is reached: read returns the next chunk after pos and the position after it.
func scan(o ListOptions, pos string, read func(pos string, n int) ([]TaskSummary, []string, error), keep func(TaskSummary) bool) (Page, error) {
	var p Page
	budget := o.Limit * listScanFactor
	for budget > 0 {
		n := min(o.Limit-len(p.Tasks), budget)
		if o.Kind != "" || o.Reason != "" {
			n = min(maxListLimit, budget) // filtered: read ahead
		}
		chunk, positions, err := read(pos, n)
		if err != nil {
			return Page{}, err
		}
		budget -= len(chunk)
		for i, t := range chunk {
			if keep(t) {
				p.Tasks = append(p.Tasks, t)
			}
			pos = positions[i]
			if len(p.Tasks) == o.Limit {
				if i < len(chunk)-1 || len(chunk) == n {
					p.Next = makeCursor(o.State, pos)
				}
				return p, nil
			}
		}
		if len(chunk) < n {
			return p, nil // the end
		}
	}
	p.Next = makeCursor(o.State, pos)
	return p, nil
}

func (o ListOptions) keep(t TaskSummary) bool {
	return (o.Kind == "" || t.Kind == o.Kind) && (o.Reason == "" || t.Reason == o.Reason)
}

func (in *Inspector) listPending(ctx context.Context, queue string, o ListOptions, pos string) (Page, error) {
	return scan(o, pos, func(pos string, n int) ([]TaskSummary, []string, error) {
		es, err := in.broker.PendingEntries(ctx, queue, pos, n)
		if err != nil {
			return nil, nil, err
		}
		tasks := make([]TaskSummary, len(es))
		positions := make([]string, len(es))
		for i, e := range es {
			tasks[i] = in.summary(queue, StatePending, e.Envelope)
			tasks[i].EnqueuedAt = redisq.EntryTime(e.ID)
			positions[i] = e.ID
		}
		return tasks, positions, in.withStates(ctx, queue, tasks)
	}, o.keep)
}

func (in *Inspector) listRunning(ctx context.Context, queue string, o ListOptions, pos string) (Page, error) {
	return scan(o, pos, func(pos string, n int) ([]TaskSummary, []string, error) {
		es, err := in.broker.RunningEntries(ctx, queue, pos, n)
		if err != nil {
			return nil, nil, err
		}
		tasks := make([]TaskSummary, len(es))
		positions := make([]string, len(es))
		for i, e := range es {
			tasks[i] = in.summary(queue, StateRunning, e.Envelope)
			if tasks[i].ID == "" && e.TaskID != "" {
				// The entry was deleted from the stream, or does not verify: the entries
				// hash, which only scripts write, names the task that began on it.
				tasks[i].ID = ID(e.TaskID)
			}
			tasks[i].EnqueuedAt = redisq.EntryTime(e.ID)
			positions[i] = e.ID
		}
		return tasks, positions, in.withStates(ctx, queue, tasks)
	}, o.keep)
}

func (in *Inspector) listWaiting(ctx context.Context, queue string, o ListOptions, pos string) (Page, error) {
	retry := o.State == StateRetrying
	return scan(o, pos, func(pos string, n int) ([]TaskSummary, []string, error) {
		score, skip := int64(0), 0
		if pos != "" {
			s, k, _ := strings.Cut(pos, ":")
			var err1, err2 error
			score, err1 = strconv.ParseInt(s, 10, 64)
			skip, err2 = strconv.Atoi(k)
			if err1 != nil || err2 != nil || skip < 0 {
				return nil, nil, fmt.Errorf("cursor position %q is not one a listing returned", pos)
			}
		}
		ws, err := in.broker.WaitingEntries(ctx, queue, retry, score, skip, n)
		if err != nil {
			return nil, nil, err
		}
		tasks := make([]TaskSummary, len(ws))
		positions := make([]string, len(ws))
		for i, w := range ws {
			tasks[i] = in.summary(queue, o.State, w.Envelope)
			tasks[i].DueAt = w.Due
			if w.Score == score {
				skip++
			} else {
				score, skip = w.Score, 1
			}
			positions[i] = strconv.FormatInt(score, 10) + ":" + strconv.Itoa(skip)
		}
		return tasks, positions, in.withStates(ctx, queue, tasks)
	}, o.keep)
}

func (in *Inspector) listDead(ctx context.Context, queue string, o ListOptions, pos string) (Page, error) {
	return scan(o, pos, func(pos string, n int) ([]TaskSummary, []string, error) {
		es, err := in.broker.DeadLetters(ctx, queue, pos, n)
		if err != nil {
			return nil, nil, err
		}
		tasks := make([]TaskSummary, len(es))
		positions := make([]string, len(es))
		for i, e := range es {
			tasks[i] = in.deadSummary(queue, e)
			positions[i] = e.EntryID
		}
		return tasks, positions, nil
	}, o.keep)
}

func (in *Inspector) deadSummary(queue string, e redisq.DeadEntry) TaskSummary {
	f := e.Failure
	s := in.summary(queue, StateDead, e.Envelope)
	s.ID = ID(f.ID) // the script's word: empty unless the entry is the task's own envelope
	if f.Kind != "" {
		s.Kind = f.Kind
	}
	s.Attempts, s.Error, s.Reason = f.Attempts, f.Error, f.Reason
	s.DeadEntry, s.FailedAt = e.EntryID, e.FailedAt
	s.EnqueuedAt = redisq.EntryTime(f.Entry)
	return s
}

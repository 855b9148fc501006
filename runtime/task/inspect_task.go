package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// TaskDetail is one task, for a person. It never holds the token.
type TaskDetail struct {
	TaskSummary
	MaxRetries int
	// SubmittedAt is zero for a task that succeeded: its record keeps only what Result
	// needs, and when it started and finished.
	SubmittedAt time.Time
	StartedAt   time.Time // newest delivery
	FinishedAt  time.Time
	// Attempts holds each attempt's error, oldest first: the last 20 (a bounded
	// history), each error cut to 512 bytes. TaskSummary.Attempts is the count.
	Attempts []Attempt
	Args     json.RawMessage // the arguments as JSON, as signed
	Result   json.RawMessage // succeeded only
	Caller   *CallerInfo     // nil when the task carries no caller
	// Signature is what the inspector made of the envelope's signature; zero (KeyID
	// "") for a finished task, whose envelope is gone.
	Signature SignatureInfo
	// Schedule names the schedule that submitted the task; "" unless a schedule did.
	Schedule string
	// CancelRequested reports that Cancel asked the running task to stop, and its
	// worker has not settled it yet.
	CancelRequested bool
}

// Attempt is one failed attempt of a task.
type Attempt struct {
	N     int
	Error string
	At    time.Time
}

// CallerInfo is the caller as metadata only. There is no field, method or String form
// that returns the token, sealed or not: the inspector never keeps it.
type CallerInfo struct {
	UserID    string // "" when sealed and unreadable
	Scopes    []string
	ExpiresAt time.Time
	Sealed    bool // the caller block was sealed in Redis
	// Readable is false when the inspector cannot vouch for the metadata: the block is
	// sealed and no seal key of the inspector opens it, or the envelope does not verify
	// with its keys (then nothing of the caller is shown).
	Readable bool
}

// ExpiresIn returns "expires in 4m", "expired 3h ago" or "no expiry" ("unknown expiry"
// when not Readable), relative to now, rounded down to seconds, minutes, hours (under
// two days) or days.
func (c CallerInfo) ExpiresIn(now time.Time) string {
	if c.ExpiresAt.IsZero() {
		if !c.Readable {
			return "unknown expiry"
		}
		return "no expiry"
	}
	d := c.ExpiresAt.Sub(now)
	if d > 0 {
		return "expires in " + roughly(d)
	}
	return "expired " + roughly(-d) + " ago"
}

// roughly is d for a person, rounded down: seconds under a minute, minutes under an
// hour, hours under two days, else days.
func roughly(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + "h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + "d"
}

// SignatureInfo is what the inspector made of an envelope's signature.
type SignatureInfo struct {
	KeyID    string
	Verified bool   // verifies with the inspector's keys
	Problem  string // why not, when not
}

// Task returns task id in detail; an error wrapping ErrNotFound when it is unknown or its
// record expired.
func (in *Inspector) Task(ctx context.Context, id ID) (TaskDetail, error) {
	queue, err := id.parse()
	if err != nil {
		return TaskDetail{}, fmt.Errorf("inspect task: %w", err)
	}
	return bounded(ctx, func(ctx context.Context) (TaskDetail, error) {
		h, err := in.broker.StateHash(ctx, queue, string(id))
		if errors.Is(err, redisq.ErrNoTask) {
			return TaskDetail{}, fmt.Errorf("inspect %s: %w (never submitted, or its record expired)", id, ErrNotFound)
		}
		if err != nil {
			return TaskDetail{}, fmt.Errorf("inspect %s: %w", id, err)
		}
		var data []byte
		var dead *redisq.DeadEntry
		switch h[redisq.FieldState] {
		case redisq.StateRunning:
			data, _, err = in.broker.Entry(ctx, queue, h[redisq.FieldEntry])
		case redisq.StateDead:
			if e := h[redisq.FieldDeadEntry]; e != "" {
				d, derr := in.broker.DeadLetter(ctx, queue, e)
				if derr == nil {
					dead, data = &d, d.Envelope
				} else if !errors.Is(derr, redisq.ErrNoDeadLetter) {
					err = derr
				}
			}
		case redisq.StatePending, redisq.StateScheduled, redisq.StateRetrying:
			_, data, err = in.locate(ctx, queue, string(id), h)
		}
		if err != nil {
			return TaskDetail{}, fmt.Errorf("inspect %s: %w", id, err)
		}
		d := in.detail(queue, TaskState(h[redisq.FieldState]), data, h)
		d.ID = id
		if dead != nil {
			d.DeadEntry, d.FailedAt = dead.EntryID, dead.FailedAt
		}
		return d, nil
	})
}

// locate finds where a task that is not running waits: its member in the delayed or
// retry set, or its entry in the stream (a due task is promoted to the stream before its
// state changes, at its start). Both are empty when neither is found: an entry beyond the
// bounded scan of FindPending, or gone.
func (in *Inspector) locate(ctx context.Context, queue, id string, h map[string]string) (redisq.Place, []byte, error) {
	p := redisq.Place{State: h[redisq.FieldState]}
	due, _ := strconv.ParseInt(h[redisq.FieldDue], 10, 64)
	if p.State != redisq.StatePending && due > 0 {
		// Retries of workers older than the retry set wait in the delayed set.
		for _, retry := range []bool{p.State == redisq.StateRetrying, p.State != redisq.StateRetrying} {
			m, err := in.broker.FindWaiting(ctx, queue, id, retry, due)
			if err != nil {
				return p, nil, err
			}
			if m != nil {
				p.Set, p.Member = "delayed", m
				if retry {
					p.Set = "retry"
				}
				return p, m, nil
			}
		}
	}
	from := msTime(h[redisq.FieldSubmitted])
	for _, f := range []string{redisq.FieldDue, redisq.FieldStarted} {
		if t := msTime(h[f]); t.After(from) {
			from = t
		}
	}
	entry, data, err := in.broker.FindPending(ctx, queue, id, from)
	p.Entry = entry
	return p, data, err
}

func msTime(s string) time.Time {
	ms, err := strconv.ParseInt(s, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// detail builds a task's detail from its envelope (nil when gone) and state hash (nil
// for a dead letter without one).
func (in *Inspector) detail(queue string, state TaskState, data []byte, h map[string]string) TaskDetail {
	d := TaskDetail{TaskSummary: TaskSummary{Queue: queue, State: state}}
	if data != nil {
		o := in.open(data)
		d.Signature = o.sig
		if e := o.env; e != nil {
			d.Kind, d.MaxRetries, d.Args = e.Kind, e.MaxRetries, e.Args
			d.Caller = in.caller(e, o.verified)
			if d.Caller != nil {
				d.UserID = d.Caller.UserID
			}
			if o.verified {
				d.ID = ID(e.ID)
			}
		}
	}
	if h == nil {
		return d
	}
	if k := h[redisq.FieldKind]; k != "" {
		d.Kind = k
	}
	d.TaskSummary.Attempts, _ = strconv.Atoi(h[redisq.FieldAttempts])
	d.Error, d.Reason = h[redisq.FieldError], h[redisq.FieldReason]
	d.SubmittedAt, d.StartedAt, d.FinishedAt = msTime(h[redisq.FieldSubmitted]), msTime(h[redisq.FieldStarted]), msTime(h[redisq.FieldFinished])
	d.EnqueuedAt = d.SubmittedAt
	if state == StateScheduled || state == StateRetrying {
		d.DueAt = msTime(h[redisq.FieldDue])
	}
	if state == StateSucceeded {
		if r, ok := h[redisq.FieldResult]; ok {
			d.Result = json.RawMessage(r)
		}
	}
	_, d.CancelRequested = h[redisq.FieldCancel]
	d.Attempts = history(h[redisq.FieldHistory])
	return d
}

// history decodes the attempt history the scripts record (redisq.FieldHistory).
func history(s string) []Attempt {
	if s == "" {
		return nil
	}
	var raw []struct {
		N  int    `json:"n"`
		E  string `json:"e"`
		At int64  `json:"at"`
	}
	if json.Unmarshal([]byte(s), &raw) != nil {
		return nil
	}
	out := make([]Attempt, len(raw))
	for i, a := range raw {
		out[i] = Attempt{N: a.N, Error: a.E, At: time.UnixMilli(a.At)}
	}
	return out
}

// DeadTask returns the dead letter entry of queue in detail: for a dead entry whose
// envelope did not verify, which has no task id (TaskSummary.DeadEntry of a listing).
func (in *Inspector) DeadTask(ctx context.Context, queue, entry string) (TaskDetail, error) {
	return bounded(ctx, func(ctx context.Context) (TaskDetail, error) {
		e, err := in.broker.DeadLetter(ctx, queue, entry)
		if err != nil {
			return TaskDetail{}, fmt.Errorf("inspect dead letter: %w", err)
		}
		var h map[string]string
		if id := e.Failure.ID; id != "" {
			h, err = in.broker.StateHash(ctx, queue, id)
			if err != nil && !errors.Is(err, redisq.ErrNoTask) {
				return TaskDetail{}, fmt.Errorf("inspect dead letter %s: %w", entry, err)
			}
			if h[redisq.FieldDeadEntry] != entry {
				h = nil // the task moved on since (requeued): this letter's facts are its own
			}
		}
		d := in.detail(queue, StateDead, e.Envelope, h)
		s := in.deadSummary(queue, e)
		d.ID, d.Kind, d.Reason, d.Error, d.DeadEntry, d.FailedAt = s.ID, s.Kind, s.Reason, s.Error, s.DeadEntry, s.FailedAt
		d.TaskSummary.Attempts = s.Attempts
		if h == nil {
			d.EnqueuedAt = s.EnqueuedAt
		}
		return d, nil
	})
}

// Status is the state of a task at one moment.
type Status struct {
	ID       ID
	Kind     string
	State    TaskState
	Attempts int
	Reason   string
	Error    string
}

// Status reads task id's state without waiting; an error wrapping ErrNotFound when it is
// unknown or its record expired.
func (in *Inspector) Status(ctx context.Context, id ID) (Status, error) {
	return status(ctx, in.broker, id)
}

// Status reads task id's state without waiting (Result waits for the end); an error
// wrapping ErrNotFound when it is unknown or its record expired.
func (c *Client) Status(ctx context.Context, id ID) (Status, error) {
	return status(ctx, c.broker, id)
}

func status(ctx context.Context, b *redisq.Broker, id ID) (Status, error) {
	queue, err := id.parse()
	if err != nil {
		return Status{}, fmt.Errorf("status: %w", err)
	}
	st, err := bounded(ctx, func(ctx context.Context) (redisq.State, error) { return b.GetState(ctx, queue, string(id)) })
	if errors.Is(err, redisq.ErrNoTask) {
		return Status{}, fmt.Errorf("status of %s: %w (never submitted, or its record expired)", id, ErrNotFound)
	}
	if err != nil {
		return Status{}, fmt.Errorf("status of %s: %w", id, err)
	}
	return Status{ID: id, Kind: st.Kind, State: TaskState(st.State), Attempts: st.Attempts, Reason: st.Reason, Error: st.Error}, nil
}

// cancelMAC is the MAC of a canceled outcome of task id, as Result checks it.
func (in *Inspector) cancelMAC(id string) string {
	return in.keys.SignOutcome(envelope.Outcome{TaskID: id, State: redisq.StateCanceled, Reason: ReasonCanceled, Error: redisq.CancelMessage}, "")
}

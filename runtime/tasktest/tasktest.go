package tasktest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/taskgen/taskgen/internal/local"
	// Importing task runs its init, which sets local.New.
	"github.com/taskgen/taskgen/runtime/task"
)

// signingKey is the key an Env signs with unless it is given others: tests need not
// keep a secret, and a fixed key makes no test depend on a random one.
var signingKey = []byte("tasktest signing key, for tests only")

// MaxRunAll bounds how many tasks one RunAll runs, the tasks they submit included: a
// task that submits itself would otherwise run forever.
const MaxRunAll = 1000

// Env is a worker and a client of package task that run and record tasks in the test's
// process, with no Redis. Make one with New. It is safe for concurrent use.
type Env struct {
	env local.Env
	w   *task.Worker
	c   *task.Client

	mu   sync.Mutex
	done int // how many of the recorded submissions RunAll has run
}

// New returns an Env whose worker is built with opts, as task.NewWorker builds one; the
// client shares its keys, prefix and envelope size limit. Both sign with a fixed test
// key, and seal callers with a key derived from it, as a deployment does by default. Options about Redis and fetching mean nothing here, and
// the skew grace (WithSkewGrace) is 0: no worker of another version will ever run a task
// this worker refuses. Useful ones are WithClockSkew, WithDefaultTimeout, WithBackoff,
// WithMaxEnvelopeSize and WithLogger (default slog.Default()).
func New(opts ...task.WorkerOption) (*Env, error) {
	all := make([]any, 0, len(opts)+1)
	all = append(all, task.WithSigningKey("tasktest", signingKey))
	for _, o := range opts {
		all = append(all, o)
	}
	env, err := local.New(all)
	if err != nil {
		return nil, fmt.Errorf("tasktest.New: %w", err)
	}
	return &Env{env: env, w: env.Worker().(*task.Worker), c: env.Client().(*task.Client)}, nil
}

// Worker returns the worker to register tasks on, with the generated RegisterTasks or
// task.Register. Its Run refuses to start: run its tasks with Run, Execute or RunAll.
func (e *Env) Worker() *task.Worker { return e.w }

// Client returns the client whose submits are recorded (see Submitted) after every
// check a real Submit makes. Its methods that read Redis, such as Result, fail.
func (e *Env) Client() *task.Client { return e.c }

// Decision is what the worker would do with a task after one run.
type Decision string

// The decisions of an Outcome.
const (
	// Succeeded: the result is stored.
	Succeeded Decision = local.Succeeded
	// Retry: the task runs again after Outcome.RetryIn.
	Retry Decision = local.Retry
	// Dead: the task goes to the dead-letter stream with Outcome.Reason.
	Dead Decision = local.Dead
)

// Outcome is one run of a task and what the worker decided.
type Outcome struct {
	ID      task.ID
	Kind    string
	Queue   string
	Attempt int
	// Decision is Succeeded, Retry or Dead.
	Decision Decision
	// Reason is why the task is dead, a task.Reason* constant: task.ReasonPermanent for a
	// task.Permanent error, task.ReasonCallerExpired, task.ReasonRetriesSpent, ...
	Reason string
	// RetryIn is the backoff the worker would wait before the retry.
	RetryIn time.Duration
	// Result is the task's result as JSON, when it succeeded.
	Result json.RawMessage
	// Err is why the task was refused before its function ran (match it with errors.Is
	// against task.ErrNoCaller, task.ErrCallerExpired, task.ErrSchemaMismatch, ...), or
	// the error its function returned; nil when it succeeded.
	Err error
}

// Decode decodes the result into v, a pointer to the task's result type.
func (o Outcome) Decode(v any) error {
	if o.Err != nil {
		return fmt.Errorf("task %s (%s) has no result: %w", o.ID, o.Kind, o.Err)
	}
	if err := json.Unmarshal(o.Result, v); err != nil {
		return fmt.Errorf("decode the result of %s into %T: %w", o.Kind, v, err)
	}
	return nil
}

func outcomeOf(o local.Outcome) Outcome {
	return Outcome{
		ID: task.ID(o.ID), Kind: o.Kind, Queue: o.Queue, Attempt: o.Attempt,
		Decision: Decision(o.Decision), Reason: o.Reason, RetryIn: o.Delay, Result: o.Result, Err: o.Err,
	}
}

// RunOption configures one Run or Execute.
type RunOption func(*runConfig)

type runConfig struct{ info task.Info }

// WithInfo runs the task as the delivery info describes: its ID (empty: a new one, of
// the task's queue), Attempt (0: the first, 1) and SubmittedAt (zero: now; an envelope
// submitted longer ago than its longest life is refused as task.ErrStale). Kind and
// MaxRetries are the Def's: when set, they must agree with it. A run with Attempt above
// the Def's MaxRetries is the last one, and fails for good.
func WithInfo(info task.Info) RunOption { return func(c *runConfig) { c.info = info } }

// Execute runs a task of d with args on behalf of caller on e's worker, as a worker runs
// a delivery of it, and returns the outcome. The error is about the test's setup: d is
// not valid, the options contradict d, args do not encode; what happened to the task is
// in the Outcome.
func Execute[A any](e *Env, d task.Def, caller task.Caller, args A, opts ...RunOption) (Outcome, error) {
	var rc runConfig
	for _, o := range opts {
		o(&rc)
	}
	info := rc.info
	switch {
	case info.Kind != "" && info.Kind != d.Kind:
		return Outcome{}, fmt.Errorf("run %s: WithInfo has Kind %q: leave it empty, the Def names the kind", d.Kind, info.Kind)
	case info.MaxRetries != 0 && info.MaxRetries != d.MaxRetries:
		return Outcome{}, fmt.Errorf("run %s: WithInfo has MaxRetries %d and the Def %d: leave it 0, or change the Def", d.Kind, info.MaxRetries, d.MaxRetries)
	case info.Attempt < 0:
		return Outcome{}, fmt.Errorf("run %s: WithInfo has Attempt %d: attempts count from 1", d.Kind, info.Attempt)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return Outcome{}, fmt.Errorf("run %s: encode arguments: %w", d.Kind, err)
	}
	data, err := e.env.Sign(d, caller, raw, string(info.ID), info.SubmittedAt)
	if err != nil {
		return Outcome{}, err
	}
	return outcomeOf(e.env.Execute(data, max(info.Attempt, 1))), nil
}

// Run runs a task of d with args on behalf of caller on e's worker, as Execute does, and
// returns its result, or the error that refused it or that it returned (match refusals
// with errors.Is against task.ErrNoCaller, task.ErrCallerExpired, ...). Name the result
// type, the arguments' is inferred: tasktest.Run[welcome.Receipt](env, ...). For a task
// that returns only an error, R is struct{}.
func Run[R, A any](e *Env, d task.Def, caller task.Caller, args A, opts ...RunOption) (R, error) {
	var r R
	o, err := Execute(e, d, caller, args, opts...)
	if err != nil {
		return r, err
	}
	if o.Err != nil {
		return r, o.Err
	}
	return r, o.Decode(&r)
}

// Submission is a task submitted through e's client and recorded. It holds the caller's
// user id, scopes and expiry, never the token.
type Submission struct {
	ID    task.ID
	Kind  string
	Queue string
	// Args are the arguments as JSON, as sent: the generated FArgs struct encoded.
	Args json.RawMessage
	// UserID, Scopes and ExpiresAt are the caller's. UserID is empty for a task that
	// takes no caller: Submit does not send one.
	UserID    string
	Scopes    []string
	ExpiresAt time.Time
	// SubmittedAt is when Submit signed the envelope; the task is due Delay later (Delay
	// or At; 0 when at once), at DueAt.
	SubmittedAt time.Time
	Delay       time.Duration
	DueAt       time.Time
	// UniqueKey and UniqueTTL are those of Unique; empty and 0 without it.
	UniqueKey string
	UniqueTTL time.Duration
}

// Decode decodes the arguments into v, a pointer to the generated FArgs struct of the
// task, strictly as a worker does: a field that v lacks is an error.
func (s Submission) Decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(s.Args))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode the arguments of %s (%s) into %T: %w", s.ID, s.Kind, v, err)
	}
	return nil
}

func submissionOf(s local.Submission) Submission {
	return Submission{
		ID: task.ID(s.ID), Kind: s.Kind, Queue: s.Queue, Args: s.Args,
		UserID: s.UserID, Scopes: slices.Clone(s.Scopes), ExpiresAt: s.ExpiresAt,
		SubmittedAt: s.SubmittedAt, Delay: s.Delay, DueAt: s.SubmittedAt.Add(s.Delay),
		UniqueKey: s.UniqueKey, UniqueTTL: s.UniqueTTL,
	}
}

// Submitted returns every task submitted through e's client so far, in order, run or not.
func (e *Env) Submitted() []Submission {
	recs := e.env.Recorded()
	subs := make([]Submission, len(recs))
	for i, s := range recs {
		subs[i] = submissionOf(s)
	}
	return subs
}

// RunAll runs, in the order they were submitted, every recorded task that no RunAll ran
// yet, and then the tasks those submitted, until none is left, and returns their
// outcomes in the order they ran. Each runs once, as its first attempt, whatever its
// delay: a task whose outcome is Retry is not run again. It stops with an error after
// MaxRunAll tasks, returning the outcomes so far: tasks that keep submitting tasks.
func (e *Env) RunAll() ([]Outcome, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var outs []Outcome
	for {
		recs := e.env.Recorded()
		if e.done == len(recs) {
			return outs, nil
		}
		if len(outs) == MaxRunAll {
			return outs, fmt.Errorf("tasktest: RunAll ran %d tasks and %d more are waiting: do tasks keep submitting tasks (the last was %s)?", MaxRunAll, len(recs)-e.done, recs[len(recs)-1].Kind)
		}
		s := recs[e.done]
		e.done++
		outs = append(outs, outcomeOf(e.env.Execute(s.Envelope, 1)))
	}
}

// Package local is the bridge between package task (runtime/task) and package tasktest
// (runtime/tasktest): through it tasktest builds a worker and a client that run and
// record tasks inside the test's process, with no Redis.
//
// Why a bridge and not an exported constructor in package task: tasktest needs parts of
// task that are unexported (the worker's verification and call of a task, the client's
// checks before it enqueues), and an exported "client without Redis" would be one
// option away from production code that silently sends nothing. Package task sets New in
// its init; this package is internal, so only packages of this module can call it. The
// values that are task's own types (a *task.Worker, a task.Def) cross as any: this
// package cannot import task, which imports it, and tasktest turns them back into types.
package local

import (
	"encoding/json"
	"time"
)

// New is set by package task's init. It returns an Env built with opts, each a
// task.WorkerOption.
var New func(opts []any) (Env, error)

// The decisions an Outcome reports, named as tasktest's Decision constants.
const (
	Succeeded = "succeeded"
	Retry     = "retry"
	Dead      = "dead"
)

// Env is a worker and a client of package task that share their keys and have no Redis.
type Env interface {
	// Worker returns the *task.Worker. Its Run refuses to start.
	Worker() any
	// Client returns the *task.Client. Its Submit records the task (see Recorded)
	// after every check of a real Submit; its other methods fail, having no Redis.
	Client() any
	// Sign returns a signed envelope of a task of def (a task.Def) on behalf of caller
	// (a task.Caller), as the client would write it, but without the client's checks of
	// the caller: the worker's are what an inline run tests. id and submittedAt may be
	// zero: a new id, and now.
	Sign(def, caller any, args json.RawMessage, id string, submittedAt time.Time) ([]byte, error)
	// Execute runs an envelope on the worker as its delivery number attempt, through the
	// worker's own verification, and returns what the worker would decide.
	Execute(envelope []byte, attempt int) Outcome
	// Recorded returns every submission the client recorded, in order.
	Recorded() []Submission
}

// Submission is one recorded Submit. It holds no token but inside Envelope, where the
// caller block is sealed.
type Submission struct {
	ID, Kind, Queue string
	Envelope        []byte
	Args            json.RawMessage
	SubmittedAt     time.Time
	Delay           time.Duration
	UniqueKey       string
	UniqueTTL       time.Duration
	// UserID, Scopes and ExpiresAt are the caller's; UserID is empty when the task takes
	// no caller, which is then not sent.
	UserID    string
	Scopes    []string
	ExpiresAt time.Time
}

// Outcome is what a worker would decide for one run of a task.
type Outcome struct {
	ID, Kind, Queue string
	Attempt         int
	// Decision is Succeeded, Retry or Dead.
	Decision string
	// Reason is a task.Reason* constant, for Dead.
	Reason string
	// Message is the error text a worker records with a retry or a dead letter.
	Message string
	// Delay is how long a worker would wait before the retry, for Retry.
	Delay  time.Duration
	Result json.RawMessage
	// Err is why the task was refused before it ran, or what its function returned.
	Err error
}

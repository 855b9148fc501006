package task

import (
	"errors"
	"fmt"
	"reflect"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// Errors a task can end with. Match them with errors.Is. A task that fails with any of
// them is not retried: it goes to its queue's dead-letter stream with the reason.
var (
	// ErrNoCaller: a task that takes a task.Caller was submitted with an empty Caller.
	ErrNoCaller = errors.New("task needs a caller: pass the request's task.Caller, or task.System(name) for work no user started")
	// ErrCallerExpired: the caller's token had expired when the task was submitted or started.
	ErrCallerExpired = errors.New("caller token expired")
	// ErrBadSignature: the envelope's signature did not verify, or its key id is unknown.
	ErrBadSignature = envelope.ErrBadSignature
	// ErrSchemaMismatch: the envelope's argument schema differs from the registered task's.
	ErrSchemaMismatch = errors.New("argument schema mismatch")
	// ErrUnknownKind: no task of the envelope's kind is registered on the worker.
	ErrUnknownKind = errors.New("unknown task kind")
	// ErrMalformed: the envelope or its arguments could not be decoded.
	ErrMalformed = envelope.ErrMalformed
	// ErrStale: the task's envelope was past its not-after time when a worker got it: a
	// replay, or a task that waited longer than its longest life (MaxTaskLife).
	ErrStale = errors.New("task envelope past its not-after time")
	// ErrNilLifespan: RegisterTasks was given a nil lifespan value.
	ErrNilLifespan = errors.New("nil lifespan value")
	// ErrDuplicateKind: a kind was registered twice on one worker.
	ErrDuplicateKind = errors.New("task kind already registered")
	// ErrNotFound: Result was asked for a task that does not exist or whose result expired.
	ErrNotFound = errors.New("task not found")
	// ErrKindMismatch: ResultOf (a generated ResultF) was given the id of a task of
	// another kind.
	ErrKindMismatch = errors.New("task is of another kind")
	// ErrNoDeadLetter: a dead letter to requeue or delete is not (any more) in its stream.
	ErrNoDeadLetter = redisq.ErrNoDeadLetter
	// ErrCanceled: an operator canceled the task (Inspector.Cancel). It is the
	// context.Cause of a running task's context once the cancel reaches its worker, and
	// what the *FailedError Result returns for a canceled task wraps. A canceled task is
	// not retried.
	ErrCanceled = errors.New("task canceled")
)

// ErrNotDurable: a Submit of a client with WithDurability enqueued the task on the
// primary, but the confirmations asked for (replicas, append-only file) did not all come
// within the timeout, or waiting for them failed. Submit returns the task's ID with it:
// the task exists and will run unless the primary fails before replicating or fsyncing
// it. Keep the ID to track it, or submit again with the same Unique key, which returns
// the same ID and waits again. It is not an outcome of a task.
var ErrNotDurable = errors.New("task enqueued but not confirmed durable")

// Refusals of the worker that are not the submitter's doing; their reasons are
// ReasonNoRecord and ReasonCorrupt.
var (
	errNoRecord = errors.New("the task has no record in Redis: it finished and its record expired (this entry is a replay), or the entry was written past the client")
	errCorrupt  = redisq.ErrCorrupt
)

// permanentError marks an error that must not be retried.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent wraps err so that the task is not retried: it goes to the dead-letter stream
// at once. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was made by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// CheckLifespan returns an error wrapping ErrNilLifespan when v is nil: a nil interface,
// or a nil pointer, map, slice, channel or func. Generated RegisterTasks functions call it
// for every lifespan value, so a missing dependency fails at startup, not inside a task.
func CheckLifespan(name string, v any) error {
	if v == nil {
		return fmt.Errorf("lifespan value %s: %w", name, ErrNilLifespan)
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface, reflect.UnsafePointer:
		if rv.IsNil() {
			return fmt.Errorf("lifespan value %s: %w", name, ErrNilLifespan)
		}
	}
	return nil
}

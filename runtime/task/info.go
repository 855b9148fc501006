package task

import "time"

// Info is what a running task knows of itself. A task function takes it as a parameter
// of type task.Info (at most one, anywhere after the context); it is classified like
// task.Caller: never serialized, filled in by the worker for each attempt. It is a
// parameter and not a context value so that what a task depends on is in its signature.
//
// Delivery is at least once: a task may run again after a worker dies or loses its lease,
// and after a failure it is retried. ID is the same for every run of one submitted task,
// so it is the key that makes a task's side effects idempotent (an idempotency key for a
// payment API, a unique constraint on a table of sent mails); Attempt tells the runs
// apart.
type Info struct {
	ID   ID
	Kind string
	// Attempt counts the deliveries of the task that began, this one included, from 1.
	// A delivery handed back unrun at shutdown counts too.
	Attempt int
	// MaxRetries is the number of retries after the first attempt: the task is not tried
	// again once Attempt > MaxRetries.
	MaxRetries int
	// SubmittedAt is when Submit signed the envelope, by the submitter's clock.
	SubmittedAt time.Time
}

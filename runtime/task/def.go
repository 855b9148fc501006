package task

import (
	"fmt"
	"time"

	"github.com/taskgen/taskgen/internal/taskspec"
)

// Def describes one task kind. taskgen generates one Def per task function (FTask); it is
// the static half of the contract between the code that submits and the worker that runs.
type Def struct {
	// Kind is the stable wire name of the task, [a-z0-9][a-z0-9._-]*. Renaming the Go
	// function does not change it, so queued tasks are not orphaned.
	Kind string
	// Queue is the queue the task is submitted to; empty means DefaultQueue.
	Queue string
	// MaxRetries is the number of retries after the first attempt.
	MaxRetries int
	// Timeout bounds one attempt; zero means the worker's default (WithDefaultTimeout).
	Timeout time.Duration
	// Schema fingerprints the wire shape of the arguments: a hash of Wire. A worker runs
	// an envelope whose schema differs from the registered Def's only when the two wire
	// shapes are compatible (see the README's rolling deploys), and otherwise refuses it
	// with ErrSchemaMismatch.
	Schema string
	// Wire describes the wire shape of the arguments, the JSON object FArgs encodes to:
	// field names and types, recursively, in a canonical order. It is what a worker
	// compares with the wire shape an envelope's producer wrote.
	Wire string
	// PreviousSchema is the fingerprint a taskgen older than Wire gave these arguments
	// ("v1:..."): a worker runs envelopes of it as its own, so that tasks queued by
	// producers of that taskgen survive its upgrade, workers deployed first. A migration
	// aid, to be removed in a later release.
	PreviousSchema string
	// Caller is true when the task function takes a task.Caller: Submit then refuses an
	// empty caller with ErrNoCaller.
	Caller bool
	// Schedule, when not empty, makes the task periodic: the workers that register it
	// submit it once per tick of this schedule, with empty arguments, as
	// System(SchedulePrefix + Kind) (see WithoutSchedules and the README's periodic
	// tasks). The syntax is the directive's schedule= option's: a 5-field cron spec in
	// UTC unless prefixed CRON_TZ=<zone>, a descriptor such as @daily, or @every DURATION.
	Schedule string
}

// check returns what is wrong with d, by the rules the generator applies too (package
// taskspec): "<kind>: <problem>", for Register and Submit to prefix.
func (d Def) check() error {
	if err := taskspec.CheckKind(d.Kind); err != nil {
		return fmt.Errorf("%q: %w", d.Kind, err)
	}
	if err := taskspec.CheckQueue(d.queue()); err != nil {
		return fmt.Errorf("%s: %w", d.Kind, err)
	}
	if d.MaxRetries < 0 {
		return fmt.Errorf("%s: negative MaxRetries", d.Kind)
	}
	if d.Schedule != "" {
		if err := taskspec.CheckSchedule(d.Schedule); err != nil {
			return fmt.Errorf("%s: %w", d.Kind, err)
		}
	}
	return nil
}

func (d Def) queue() string {
	if d.Queue == "" {
		return DefaultQueue
	}
	return d.Queue
}

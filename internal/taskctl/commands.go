package taskctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/taskgen/taskgen/runtime/task"
)

func queuesCommand() *command {
	return &command{
		name: "queues", args: "", summary: "list every known queue with its counts",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("queues takes no arguments")
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			qs, err := in.Queues(ctx)
			if err != nil {
				return err
			}
			return e.printQueues(qs)
		},
	}
}

func schedulesCommand() *command {
	return &command{
		name: "schedules", args: "", summary: "list the periodic tasks the workers lead, with their next runs",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 0 {
				return usagef("schedules takes no arguments")
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			ss, err := in.Schedules(ctx)
			if err != nil {
				return err
			}
			return e.printSchedules(ss)
		},
	}
}

// listableStates are the states List takes, in the order the console shows them.
var listableStates = []task.TaskState{task.StatePending, task.StateScheduled, task.StateRunning, task.StateRetrying, task.StateDead}

func parseState(s string) (task.TaskState, error) {
	for _, st := range listableStates {
		if string(st) == s {
			return st, nil
		}
	}
	names := make([]string, len(listableStates))
	for i, st := range listableStates {
		names[i] = string(st)
	}
	return "", usagef("--state %q: the states listed are %s", s, strings.Join(names, ", "))
}

func tasksCommand() *command {
	var state, kind, reason, cursor string
	var limit int
	return &command{
		name: "tasks", args: "QUEUE [--state S] [--kind K] [--reason R]", summary: "list one page of a queue's tasks",
		flags: func(fs *flag.FlagSet) {
			fs.StringVar(&state, "state", string(task.StatePending), "pending, scheduled, running, retrying or dead")
			fs.StringVar(&kind, "kind", "", "only tasks of this kind")
			fs.StringVar(&reason, "reason", "", "only dead letters of this reason")
			fs.StringVar(&cursor, "cursor", "", "the page after the one that printed this cursor")
			fs.IntVar(&limit, "limit", 50, "tasks per page, at most 1000")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("tasks takes one queue: taskctl tasks QUEUE [--state S]")
			}
			st, err := parseState(state)
			if err != nil {
				return err
			}
			if limit < 1 || limit > 1000 {
				return usagef("--limit %d: give 1 to 1000", limit)
			}
			if reason != "" && st != task.StateDead {
				return usagef("--reason filters dead letters only: add --state dead")
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			page, err := in.List(ctx, args[0], task.ListOptions{State: st, Cursor: cursor, Limit: limit, Kind: kind, Reason: reason})
			if err != nil {
				return err
			}
			return e.printPage(page)
		},
	}
}

func showCommand() *command {
	return &command{
		name: "show", args: "ID | QUEUE ENTRY", summary: "show one task, or a dead letter by its entry id",
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) < 1 || len(args) > 2 {
				return usagef("show takes a task id, or a queue and a dead-letter entry id")
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			var d task.TaskDetail
			if len(args) == 2 {
				d, err = in.DeadTask(ctx, args[0], args[1])
			} else {
				d, err = in.Task(ctx, task.ID(args[0]))
			}
			if err != nil {
				return err
			}
			return e.printDetail(d)
		},
	}
}

// target is what an action acts on: a task by id, or a dead letter by queue and entry.
type target struct {
	id           task.ID
	queue, entry string
}

func (t target) String() string {
	if t.entry != "" {
		return t.queue + " " + t.entry
	}
	return string(t.id)
}

// targets reads the arguments of requeue and delete: task ids, or with --entry one queue
// and the entry ids of its dead letters.
func targets(args []string, entries bool, name string) ([]target, error) {
	var ts []target
	if entries {
		if len(args) < 2 {
			return nil, usagef("%s --entry takes a queue and one or more dead-letter entry ids", name)
		}
		for _, en := range args[1:] {
			ts = append(ts, target{queue: args[0], entry: en})
		}
		return ts, nil
	}
	if len(args) == 0 {
		return nil, usagef("%s takes one or more task ids", name)
	}
	for _, a := range args {
		if !strings.Contains(a, "/") {
			return nil, usagef("%s: %q is not a task id (<queue>/<26 characters>); for a dead-letter entry id use --entry QUEUE ENTRY...", name, a)
		}
		ts = append(ts, target{id: task.ID(a)})
	}
	return ts, nil
}

// deadEntry finds the dead letter of a task given by id.
func deadEntry(ctx context.Context, in *task.Inspector, t target) (queue, entry string, err error) {
	if t.entry != "" {
		return t.queue, t.entry, nil
	}
	d, err := in.Task(ctx, t.id)
	if err != nil {
		return "", "", err
	}
	if d.State != task.StateDead || d.DeadEntry == "" {
		return "", "", fmt.Errorf("%s is %s, not dead: only dead letters are requeued", t.id, d.State)
	}
	return d.Queue, d.DeadEntry, nil
}

func requeueCommand() *command {
	var all, entries bool
	var kind, reason string
	return &command{
		name: "requeue", args: "ID... | --entry QUEUE ENTRY... | QUEUE --all", summary: "run dead letters again with a fresh retry budget",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&all, "all", false, "every dead letter of the queue (with --kind, --reason: those matching)")
			fs.BoolVar(&entries, "entry", false, "the arguments are a queue and dead-letter entry ids")
			fs.StringVar(&kind, "kind", "", "with --all: only this kind")
			fs.StringVar(&reason, "reason", "", "with --all: only this reason")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if all {
				if len(args) != 1 || entries {
					return usagef("requeue --all takes one queue: taskctl requeue QUEUE --all [--kind K] [--reason R]")
				}
				return e.requeueAll(ctx, args[0], kind, reason)
			}
			if kind != "" || reason != "" {
				return usagef("--kind and --reason select with --all only")
			}
			ts, err := targets(args, entries, "requeue")
			if err != nil {
				return err
			}
			return e.each(ctx, "requeue", ts, func(in *task.Inspector, t target) error {
				q, en, err := deadEntry(ctx, in, t)
				if err != nil {
					return err
				}
				return in.Requeue(ctx, q, en)
			})
		},
	}
}

func (e *env) requeueAll(ctx context.Context, queue, kind, reason string) error {
	in, err := e.connect(ctx)
	if err != nil {
		return err
	}
	bar := newProgress(e.stderr, "requeue "+queue, isTerminal(e.stderr) && !e.json)
	res, err := in.RequeueMatching(ctx, queue, kind, reason, bar.update)
	bar.finish()
	if perr := e.printBulk("requeue", queue, res); perr != nil {
		return perr
	}
	if err != nil {
		return fmt.Errorf("requeue %s: %d requeued, %d skipped: %w", queue, res.Done, res.Skipped, err)
	}
	if res.Skipped > 0 {
		return fmt.Errorf("requeue %s: %d dead letters could not be requeued (see taskctl tasks %s --state dead)", queue, res.Skipped, queue)
	}
	return nil
}

func deleteCommand() *command {
	var entries bool
	return &command{
		name: "delete", args: "ID... | --entry QUEUE ENTRY...", summary: "delete tasks or dead letters",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&entries, "entry", false, "the arguments are a queue and dead-letter entry ids")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			ts, err := targets(args, entries, "delete")
			if err != nil {
				return err
			}
			return e.each(ctx, "delete", ts, func(in *task.Inspector, t target) error {
				if t.entry != "" {
					return in.DeleteDead(ctx, t.queue, t.entry)
				}
				// A dead task lives in the dead-letter stream, under its entry.
				d, err := in.Task(ctx, t.id)
				if err != nil {
					return err
				}
				if d.State == task.StateDead && d.DeadEntry != "" {
					return in.DeleteDead(ctx, d.Queue, d.DeadEntry)
				}
				return in.Delete(ctx, t.id)
			})
		},
	}
}

func cancelCommand() *command {
	return &command{
		name: "cancel", args: "ID...", summary: "cancel queued, delayed or running tasks",
		run: func(ctx context.Context, e *env, args []string) error {
			ts, err := targets(args, false, "cancel")
			if err != nil {
				return err
			}
			return e.each(ctx, "cancel", ts, func(in *task.Inspector, t target) error { return in.Cancel(ctx, t.id) })
		},
	}
}

func queueAction(name, summary string, act func(in *task.Inspector, ctx context.Context, queue string) error) *command {
	return &command{
		name: name, args: "QUEUE", summary: summary,
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("%s takes one queue", name)
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			if err := act(in, ctx, args[0]); err != nil {
				return fmt.Errorf("%s %s: %w", name, args[0], err)
			}
			return e.printDone(name, []string{args[0]}, nil)
		},
	}
}

func pauseCommand() *command {
	return queueAction("pause", "stop workers from starting a queue's tasks", (*task.Inspector).Pause)
}

func resumeCommand() *command {
	return queueAction("resume", "let workers start a paused queue's tasks again", (*task.Inspector).Resume)
}

func purgeCommand() *command {
	var yes bool
	return &command{
		name: "purge", args: "QUEUE --yes", summary: "delete every dead letter of a queue",
		flags: func(fs *flag.FlagSet) {
			fs.BoolVar(&yes, "yes", false, "confirm: the dead letters are gone for good")
		},
		run: func(ctx context.Context, e *env, args []string) error {
			if len(args) != 1 {
				return usagef("purge takes one queue")
			}
			if !yes {
				return usagef("purge deletes every dead letter of %s for good: add --yes to confirm", args[0])
			}
			in, err := e.connect(ctx)
			if err != nil {
				return err
			}
			n, err := in.PurgeDead(ctx, args[0])
			if err != nil {
				return fmt.Errorf("purge %s: %w", args[0], err)
			}
			return e.printBulk("purge", args[0], task.BulkResult{Done: int(n)})
		},
	}
}

// each runs act on every target, going on past a failure, prints what was done and
// returns the first failure; a target that does not exist makes the error ErrNotFound.
func (e *env) each(ctx context.Context, name string, ts []target, act func(*task.Inspector, target) error) error {
	in, err := e.connect(ctx)
	if err != nil {
		return err
	}
	var done []string
	var failures []error
	for _, t := range ts {
		if err := act(in, t); err != nil {
			failures = append(failures, fmt.Errorf("%s %s: %w", name, t, err))
			continue
		}
		done = append(done, t.String())
	}
	if err := e.printDone(name, done, failures); err != nil {
		return err
	}
	return errors.Join(failures...)
}

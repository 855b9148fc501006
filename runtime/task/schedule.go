package task

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/internal/taskspec"
)

// Periodic tasks: a Def with a Schedule is submitted by the workers themselves, once per
// tick of its schedule, as System(SchedulePrefix + kind).
//
// Every worker that registered scheduled Defs (and was not given WithoutSchedules) runs a
// scheduler. For each scheduled kind one worker at a time leads: the one holding the
// kind's lock in Redis, taken with a lease (WithScheduleLease) and renewed every third of
// it. Each lock comes with a fencing token, raised whenever a worker takes the lock.
// What the leader does for each tick due, oldest first:
//
//  1. checks in Redis that it still holds the lock with its token (the fence);
//  2. submits the task with Unique(<tick's Unix time>, ...), through the ordinary enqueue
//     of the task's queue;
//  3. records, fenced by its token again, that ticks up to this one are done.
//
// No tick is doubled: the unique key is per kind and tick, and it outlives the time in
// which any leader may submit that tick (see uniqueTTL), so a second submit of a tick, by
// a leader that crashed between 2 and 3 and its successor, or by a stalled leader whose
// submit was in flight when it lost the lock, returns the first task's ID and enqueues
// nothing. The fence is what stops a leader that stalled past its lease from going on:
// its next check fails and it stops leading; the unique key covers the one submit it may
// have had in flight. On Cluster the schedule keys and the queue's keys are in different
// slots, so no script could do 1 and 2 at once; the unique key is what makes that safe.
//
// No tick is missed: a tick is recorded done only after its submit succeeded, so a leader
// that crashed (or whose Redis failed) before 3 leaves it to the next leader, which takes
// the lock within a lease and a third and submits every tick after the recorded one. The
// bound on catching up: the ticks of the last WithScheduleCatchUp (default
// DefaultScheduleCatchUp) are all submitted; older missed ticks are skipped and logged,
// except that when none is that recent the newest of them is still submitted, so that a
// daily task runs once after an outage longer than the window.
//
// Ticks are computed by Redis's clock, read in the lock script: workers whose clocks
// disagree still agree on which ticks are due.

// SchedulePrefix starts the name of the System caller of a scheduled task:
// System(SchedulePrefix + kind), "schedule:reports.daily".
const SchedulePrefix = "schedule:"

// DefaultScheduleCatchUp is how far back, without WithScheduleCatchUp, a new schedule
// leader submits the ticks that no leader submitted (the workers were down, or the
// leader crashed): one hour.
const DefaultScheduleCatchUp = time.Hour

// maxTicksPerPass bounds the ticks one kind submits between two renewals of the locks,
// so that a long catch-up does not let the leader's lease run out.
const maxTicksPerPass = 100

// minScheduleUniqueTTL is the shortest life of a tick's unique key.
const minScheduleUniqueTTL = time.Minute

// WithoutSchedules makes the worker take no part in running schedules: it never leads a
// scheduled kind, though it runs the tasks other workers submit for them. By default every
// worker with scheduled Defs registered takes part.
func WithoutSchedules() WorkerOption {
	return workerOption(func(c *workerConfig) { c.noSchedules = true })
}

// WithScheduleLease sets how long the worker holds a schedule's lock without renewing it
// (it renews every third of it): how long a crashed leader's schedules wait for a new
// leader. Default: the worker's lease (WithLease).
func WithScheduleLease(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.scheduleLease = d })
}

// WithScheduleCatchUp sets how far back a schedule leader submits missed ticks; default
// DefaultScheduleCatchUp. Older missed ticks are skipped, except the newest of them when
// no tick is that recent. Zero catches up only that newest tick.
func WithScheduleCatchUp(d time.Duration) WorkerOption {
	return workerOption(func(c *workerConfig) { c.scheduleCatchUp = d })
}

// ScheduleInfo is what the workers recorded of one scheduled kind, for an inspector.
type ScheduleInfo struct {
	Kind  string
	Queue string
	// Spec is the schedule its leader runs (Def.Schedule).
	Spec string
	// Next is the next tick to be submitted: the first after Last (or after the time its
	// first leader recorded it). It may be in the past while no worker leads the kind; the
	// next leader submits it, within the catch-up rules (WithScheduleCatchUp). Zero when
	// Spec does not parse (a worker of another taskgen version wrote it).
	Next time.Time
	// Last is the newest tick submitted, and LastID its task; zero and "" before the first.
	Last   time.Time
	LastID ID
	// Leader is the consumer name (WithConsumerName) of the worker that leads the kind,
	// "" when none does: its lease ran out, or no worker with the kind runs.
	Leader string
}

// Schedules lists every scheduled kind the workers under the inspector's prefix
// recorded, sorted by kind, with its spec, queue, last tick, next tick and leader. It
// needs no Defs: the workers record each kind's spec and queue when they lead it.
func (in *Inspector) Schedules(ctx context.Context) ([]ScheduleInfo, error) {
	infos, err := bounded(ctx, func(ctx context.Context) ([]ScheduleInfo, error) { return schedulesOf(ctx, in.broker) })
	if err != nil {
		return nil, fmt.Errorf("list schedules: %w", err)
	}
	return infos, nil
}

// schedulesOf reads what the workers recorded of every scheduled kind under broker's
// prefix, sorted by kind. It needs no Defs: the workers record each kind's spec and
// queue.
func schedulesOf(ctx context.Context, broker *redisq.Broker) ([]ScheduleInfo, error) {
	recs, err := broker.Schedules(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]ScheduleInfo, len(recs))
	for i, r := range recs {
		out[i] = ScheduleInfo{Kind: r.Kind, Queue: r.Queue, Spec: r.Spec, Last: r.Last, LastID: ID(r.LastID), Leader: r.Leader}
		if s, err := taskspec.ParseSchedule(r.Spec); err == nil {
			out[i].Next = s.Next(r.Covered)
		}
	}
	return out, nil
}

// scheduled is one kind a scheduler may lead.
type scheduled struct {
	def   Def
	sched taskspec.Schedule
	// token is the fencing token of the kind's lock while this worker holds it, 0
	// otherwise; covered is the time up to which the kind's ticks are done.
	token   int64
	covered time.Time
}

// scheduler leads the schedules of one worker's scheduled Defs (see the top of this file).
type scheduler struct {
	broker  *redisq.Broker
	client  *Client // submits with the worker's keys
	owner   string  // the worker's consumer name
	lease   time.Duration
	catchUp time.Duration
	kinds   []*scheduled // sorted by kind
	log     *slog.Logger
	// Tests' hooks: stall, when not nil, runs before the fence of each tick (to stall a
	// leader there); submitted after each tick's successful submit.
	stall     func(kind string, tick time.Time)
	submitted func(kind string, tick time.Time, id ID)
}

// newScheduler returns the scheduler of w's scheduled Defs, or nil when there is none, or
// w takes no part (WithoutSchedules), or w runs on a test's fake store.
func (w *Worker) newScheduler() (*scheduler, error) {
	broker, ok := w.store.(*redisq.Broker)
	if w.cfg.noSchedules || !ok {
		return nil, nil
	}
	s := &scheduler{
		broker: broker, owner: w.cfg.consumer, lease: w.cfg.scheduleLease, catchUp: w.cfg.scheduleCatchUp,
		client: &Client{cfg: clientConfig{commonConfig: w.cfg.commonConfig}, keys: w.keys, broker: broker},
		log:    w.log.With("service", "schedule"),
	}
	if s.lease == 0 {
		s.lease = w.cfg.lease
	}
	for _, kind := range w.Kinds() {
		h, _ := w.handler(kind)
		if h.def.Schedule == "" {
			continue
		}
		sched, err := taskspec.ParseSchedule(h.def.Schedule)
		if err != nil { // Register checked it: only a Def changed since can fail here
			return nil, fmt.Errorf("%s: %w", kind, err)
		}
		s.kinds = append(s.kinds, &scheduled{def: h.def, sched: sched})
	}
	if len(s.kinds) == 0 {
		return nil, nil
	}
	return s, nil
}

// run leads what it can until ctx ends, then releases the locks it holds, so that another
// worker takes over at once.
func (s *scheduler) run(ctx context.Context) {
	s.log.Info("schedules started", "kinds", len(s.kinds), "lease", s.lease)
	fails := 0
	for ctx.Err() == nil {
		wait, err := s.pass(ctx)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			fails++
			s.log.Log(ctx, failLevel(fails), "schedule: cannot reach Redis; the locks this worker holds run out unless it comes back", "err", err, "failures", fails)
			wait = min(s.lease/3, 50*time.Millisecond<<min(fails, 6))
		} else {
			fails = 0
		}
		sleep(ctx, wait)
	}
	s.release()
}

// failLevel logs the first failure of a run of them, and every twentieth, as an error.
func failLevel(fails int) slog.Level {
	if fails == 1 || fails%20 == 0 {
		return slog.LevelError
	}
	return slog.LevelDebug
}

// release gives up the locks this worker holds.
func (s *scheduler) release() {
	var held []string
	for _, k := range s.kinds {
		if k.token > 0 {
			held = append(held, k.def.Kind)
		}
	}
	if len(held) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.lease/3)
	defer cancel()
	if _, err := bounded(ctx, func(ctx context.Context) (int, error) { return s.broker.ReleaseSchedules(ctx, s.owner, held) }); err != nil {
		s.log.Warn("schedule: locks not released; other workers lead these kinds when their lease runs out", "kinds", held, "err", err)
		return
	}
	s.log.Info("schedule: released the lead", "kinds", held)
}

// pass takes or renews the locks, submits the due ticks of every kind this worker leads,
// and returns how long to wait before the next pass: until the next tick it leads, and at
// most a third of the lease, so that it renews in time.
func (s *scheduler) pass(ctx context.Context) (time.Duration, error) {
	kinds := make([]redisq.ScheduledKind, len(s.kinds))
	for i, k := range s.kinds {
		kinds[i] = redisq.ScheduledKind{Kind: k.def.Kind, Spec: k.def.Schedule, Queue: k.def.queue(), Token: k.token}
	}
	started := time.Now()
	lctx, cancel := context.WithTimeout(ctx, s.lease/3)
	reply, err := bounded(lctx, func(ctx context.Context) (heldReply, error) {
		now, held, err := s.broker.LeadSchedules(ctx, s.owner, s.lease, kinds)
		return heldReply{now, held}, err
	})
	cancel()
	if err != nil {
		return 0, err
	}
	now, held := reply.now, reply.held
	// The locks were renewed no earlier than started, so they stand until a lease after
	// it at least: past half of that, renew before submitting more.
	renewBy := started.Add(s.lease / 2)
	wait := s.lease / 3
	for i, k := range s.kinds {
		was := k.token
		k.token = held[i].Token
		switch {
		case k.token > 0 && was == 0:
			s.log.Info("schedule: leading", "kind", k.def.Kind, "schedule", k.def.Schedule, "token", k.token)
		case k.token == 0 && was > 0:
			s.log.Warn("schedule: lost the lead: another worker took the lock after this one's lease ran out", "kind", k.def.Kind)
		}
		if k.token == 0 {
			continue
		}
		k.covered = held[i].Covered
		if !s.submitDue(ctx, k, now, renewBy) {
			wait = min(wait, time.Second)
			continue
		}
		if k.token > 0 {
			elapsed := time.Since(started)
			wait = min(wait, k.sched.Next(k.covered).Sub(now)-elapsed)
		}
	}
	return max(wait, 5*time.Millisecond), nil
}

// heldReply is LeadSchedules's answer, for bounded.
type heldReply struct {
	now  time.Time
	held []redisq.Held
}

// submitDue submits k's ticks due at now (Redis's time), oldest first, as long as the
// worker holds k's lock and until renewBy. It returns false when Redis failed it: the
// ticks left are tried again after a pause, not at once.
func (s *scheduler) submitDue(ctx context.Context, k *scheduled, now, renewBy time.Time) bool {
	due, skipped, last := s.dueTicks(k, now)
	if skipped > 0 {
		err := s.advance(ctx, k, redisq.Advance{Kind: k.def.Kind, Token: k.token, Covered: last})
		if err != nil {
			s.log.Error("schedule: cannot record skipped ticks", "kind", k.def.Kind, "err", err)
			return k.token == 0
		}
		s.log.Warn("schedule: missed ticks older than the catch-up window skipped (WithScheduleCatchUp)",
			"kind", k.def.Kind, "skipped", skipped, "through", last, "catch_up", s.catchUp)
		k.covered = last
	}
	for _, tick := range due {
		if ctx.Err() != nil || time.Now().After(renewBy) || k.token == 0 {
			return true
		}
		if s.stall != nil {
			s.stall(k.def.Kind, tick)
		}
		if err := s.fence(ctx, k); err != nil {
			s.log.Error("schedule: cannot check the lock before a submit", "kind", k.def.Kind, "tick", tick, "err", err)
			return false
		}
		if k.token == 0 {
			return true
		}
		id, err := s.submit(ctx, k, tick)
		if err != nil {
			s.log.Error("schedule: submit failed; it is tried again", "kind", k.def.Kind, "tick", tick, "err", err)
			return false
		}
		if s.submitted != nil {
			s.submitted(k.def.Kind, tick, id)
		}
		if err := s.advance(ctx, k, redisq.Advance{Kind: k.def.Kind, Token: k.token, Covered: tick, Tick: tick, ID: string(id)}); err != nil {
			// Submitted, not recorded: the next pass, or the next leader, submits the tick
			// again, and its unique key returns this task.
			s.log.Error("schedule: tick submitted but not recorded", "kind", k.def.Kind, "tick", tick, "id", id, "err", err)
			return k.token == 0
		}
		s.log.Debug("schedule: submitted", "kind", k.def.Kind, "tick", tick, "id", id)
		k.covered = tick
	}
	return true
}

// dueTicks returns the ticks of k after k.covered and at or before now that are to be
// submitted, at most maxTicksPerPass of them, and how many older ones are skipped, the
// newest of those being last (see the catch-up rules at the top of this file).
func (s *scheduler) dueTicks(k *scheduled, now time.Time) (due []time.Time, skipped int, last time.Time) {
	window := now.Add(-s.catchUp)
	from := k.covered
	// A schedule that had no leader for years is not walked tick by tick from then.
	if limit := window.Add(-400 * 24 * time.Hour); from.Before(limit) {
		from, skipped = limit, 1
		last = limit
	}
	var old time.Time
	for t := k.sched.Next(from); !t.After(now) && len(due) < maxTicksPerPass; t = k.sched.Next(t) {
		if !t.After(window) {
			if !old.IsZero() {
				skipped++
				last = old
			}
			old = t
			continue
		}
		due = append(due, t)
	}
	if !old.IsZero() {
		if len(due) == 0 {
			due = []time.Time{old} // the newest missed tick, when none is in the window
		} else {
			skipped++
			last = old
		}
	}
	return due, skipped, last
}

// fence checks that the worker still holds k's lock with its token; when it does not,
// it stops leading k (k.token becomes 0).
func (s *scheduler) fence(ctx context.Context, k *scheduled) error {
	err := s.call(ctx, func(ctx context.Context) error { return s.broker.ScheduleFence(ctx, s.owner, k.def.Kind, k.token) })
	if errors.Is(err, redisq.ErrNotLeader) {
		s.log.Warn("schedule: lost the lead: another worker took the lock after this one's lease ran out", "kind", k.def.Kind)
		k.token = 0
		return nil
	}
	return err
}

// advance records a, fenced by k's token; when the worker no longer holds the lock, it
// stops leading k.
func (s *scheduler) advance(ctx context.Context, k *scheduled, a redisq.Advance) error {
	err := s.call(ctx, func(ctx context.Context) error { return s.broker.AdvanceSchedule(ctx, s.owner, a) })
	if errors.Is(err, redisq.ErrNotLeader) {
		k.token = 0
	}
	return err
}

// call runs one schedule script, bounded by a third of the lease.
func (s *scheduler) call(ctx context.Context, fn func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, s.lease/3)
	defer cancel()
	_, err := bounded(ctx, func(ctx context.Context) (struct{}, error) { return struct{}{}, fn(ctx) })
	return err
}

// submit enqueues k's task for tick, as System(SchedulePrefix + kind), unique per tick.
func (s *scheduler) submit(ctx context.Context, k *scheduled, tick time.Time) (ID, error) {
	key := strconv.FormatInt(tick.Unix(), 10)
	return s.client.submit(ctx, k.def, System(SchedulePrefix+k.def.Kind), []byte("{}"), []SubmitOption{Unique(key, s.uniqueTTL(k, tick))})
}

// uniqueTTL is how long the unique key of k's tick lives: longer than any leader may
// submit the tick. A tick is submitted again only until it is recorded done, which a
// leader does before it goes on, or while it is still to catch up: within the catch-up
// window, or while it is the newest missed tick (less than a period). Twice the period,
// the window and a lease more cover that with room for clocks.
func (s *scheduler) uniqueTTL(k *scheduled, tick time.Time) time.Duration {
	period := k.sched.Next(tick).Sub(tick)
	return max(2*period+s.catchUp+s.lease, minScheduleUniqueTTL)
}

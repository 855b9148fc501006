package redisq

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Periodic tasks (task.Def.Schedule) have one leader per kind at a time: the worker that
// holds the kind's lock, a hash with the owner's consumer name and a fencing token, that
// expires when its owner stops renewing it. The token is raised (HINCRBY in the schedule
// state hash, which never expires) by every worker that takes a free lock, so a leader
// that stalled past its lease and came back holds a token that is no longer the lock's:
// ScheduleFence and AdvanceSchedule refuse it.
//
// The schedule keys are not a queue's: they carry the hash tag {schedule}, so that every
// script here touches keys of one Cluster slot. The tasks a leader submits go through
// Enqueue, on their own queue's keys.

// ScheduleKeys are the keys of the schedules under one prefix.
type ScheduleKeys struct {
	base string // "<prefix>:{schedule}:"
}

// SchedulesKeys returns the schedule keys under prefix.
func SchedulesKeys(prefix string) ScheduleKeys { return ScheduleKeys{base: prefix + ":{schedule}:"} }

// ScheduleKeys returns the broker's schedule keys.
func (b *Broker) ScheduleKeys() ScheduleKeys { return SchedulesKeys(b.prefix) }

// State is the hash of every scheduled kind's record: its fencing token, the time up to
// which its ticks are done, its last submitted tick and task, and the spec and queue its
// leader runs (fields ScheduleField*, each followed by the kind).
func (k ScheduleKeys) State() string { return k.base + "state" }

// Lock is the hash that names the leader of kind's schedule (LockOwner, LockToken); it
// expires one lease after its owner last renewed it.
func (k ScheduleKeys) Lock(kind string) string { return k.base + "lock:" + kind }

// ScheduledKind is a kind a worker can lead: its schedule spec, its queue, and the token
// of the lock the worker holds for it, 0 when it holds none.
type ScheduledKind struct {
	Kind, Spec, Queue string
	Token             int64
}

// Held is the answer of LeadSchedules for one kind.
type Held struct {
	// Token is the fencing token of the kind's lock when the worker holds it; 0 when
	// another worker does.
	Token int64
	// Covered is the time up to which every tick of the kind was submitted (or, before
	// any leader ran it, when a leader first recorded it). Zero when Token is 0.
	Covered time.Time
}

// LeadSchedules takes or renews, for owner, the lock of every kind that is free or
// already owner's, for lease. It returns Redis's time and, for each kind in order,
// whether owner holds it now. For each kind it holds it records the spec and queue (for
// an inspector), and the first time the kind's ticks start from.
func (b *Broker) LeadSchedules(ctx context.Context, owner string, lease time.Duration, kinds []ScheduledKind) (time.Time, []Held, error) {
	k := b.ScheduleKeys()
	keys := []string{k.State()}
	args := []any{owner, max(lease.Milliseconds(), 1)}
	for _, sk := range kinds {
		keys = append(keys, k.Lock(sk.Kind))
		args = append(args, sk.Kind, sk.Spec, sk.Queue, sk.Token)
	}
	res, err := leadScheduleScript.Run(ctx, b.rdb, keys, args...).Int64Slice()
	if err != nil {
		return time.Time{}, nil, fmt.Errorf("lead schedules on %s: %w", k.State(), classify(err))
	}
	if len(res) != 1+2*len(kinds) {
		return time.Time{}, nil, fmt.Errorf("lead schedules on %s: unexpected reply %v", k.State(), res)
	}
	held := make([]Held, len(kinds))
	for i := range kinds {
		held[i].Token = res[1+2*i]
		if held[i].Token > 0 {
			held[i].Covered = time.UnixMilli(res[2+2*i])
		}
	}
	return time.UnixMilli(res[0]), held, nil
}

// ErrNotLeader reports that a worker no longer holds a schedule's lock with the token it
// was given: its lease ran out and another worker may lead the kind.
var ErrNotLeader = errors.New("not the schedule's leader")

// ScheduleFence returns nil when owner holds kind's lock with token, and ErrNotLeader
// otherwise. A leader calls it right before each submit.
func (b *Broker) ScheduleFence(ctx context.Context, owner, kind string, token int64) error {
	lock := b.ScheduleKeys().Lock(kind)
	held, err := fenceScheduleScript.Run(ctx, b.rdb, []string{lock}, owner, token).Int()
	if err != nil {
		return fmt.Errorf("check schedule lock %s: %w", lock, classify(err))
	}
	if held != 1 {
		return fmt.Errorf("%s: %w", kind, ErrNotLeader)
	}
	return nil
}

// Advance records a leader's progress on one kind's schedule.
type Advance struct {
	Kind  string
	Token int64
	// Covered is the time up to which every tick is done: submitted, or skipped as too
	// old to catch up.
	Covered time.Time
	// Tick and ID are the tick just submitted and its task; a zero Tick records only
	// Covered.
	Tick time.Time
	ID   string
}

// AdvanceSchedule records a, when owner still holds a.Kind's lock with a.Token, and
// returns ErrNotLeader otherwise. Covered never moves back.
func (b *Broker) AdvanceSchedule(ctx context.Context, owner string, a Advance) error {
	k := b.ScheduleKeys()
	tick := int64(0)
	if !a.Tick.IsZero() {
		tick = a.Tick.UnixMilli()
	}
	done, err := advanceScheduleScript.Run(ctx, b.rdb, []string{k.Lock(a.Kind), k.State()},
		owner, a.Token, a.Kind, a.Covered.UnixMilli(), tick, a.ID).Int()
	if err != nil {
		return fmt.Errorf("advance schedule %s: %w", a.Kind, classify(err))
	}
	if done != 1 {
		return fmt.Errorf("%s: %w", a.Kind, ErrNotLeader)
	}
	return nil
}

// ReleaseSchedules deletes the locks of kinds that owner holds, so that another worker
// leads them at once rather than one lease later. It returns how many it released.
func (b *Broker) ReleaseSchedules(ctx context.Context, owner string, kinds []string) (int, error) {
	k := b.ScheduleKeys()
	keys := make([]string, len(kinds))
	for i, kind := range kinds {
		keys[i] = k.Lock(kind)
	}
	n, err := releaseScheduleScript.Run(ctx, b.rdb, keys, owner).Int()
	if err != nil {
		return 0, fmt.Errorf("release schedule locks: %w", classify(err))
	}
	return n, nil
}

// ScheduleRecord is what the workers recorded of one scheduled kind.
type ScheduleRecord struct {
	Kind, Spec, Queue string
	// Covered is the time up to which every tick was submitted or skipped.
	Covered time.Time
	// Last is the newest submitted tick and LastID its task; zero and "" before the
	// first.
	Last   time.Time
	LastID string
	// Leader is the consumer name of the worker holding the kind's lock; "" when none
	// does.
	Leader string
}

// Schedules returns the record of every kind a leader ever ran, sorted by kind.
func (b *Broker) Schedules(ctx context.Context) ([]ScheduleRecord, error) {
	k := b.ScheduleKeys()
	fields, err := b.rdb.HGetAll(ctx, k.State()).Result()
	if err != nil {
		return nil, fmt.Errorf("read schedules %s: %w", k.State(), err)
	}
	byKind := map[string]*ScheduleRecord{}
	record := func(kind string) *ScheduleRecord {
		r := byKind[kind]
		if r == nil {
			r = &ScheduleRecord{Kind: kind}
			byKind[kind] = r
		}
		return r
	}
	ms := func(v string) time.Time {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return time.Time{}
		}
		return time.UnixMilli(n)
	}
	for f, v := range fields {
		switch {
		case strings.HasPrefix(f, ScheduleFieldSpec):
			record(f[len(ScheduleFieldSpec):]).Spec = v
		case strings.HasPrefix(f, ScheduleFieldQueue):
			record(f[len(ScheduleFieldQueue):]).Queue = v
		case strings.HasPrefix(f, ScheduleFieldCovered):
			record(f[len(ScheduleFieldCovered):]).Covered = ms(v)
		case strings.HasPrefix(f, ScheduleFieldLastID):
			record(f[len(ScheduleFieldLastID):]).LastID = v
		case strings.HasPrefix(f, ScheduleFieldLast):
			record(f[len(ScheduleFieldLast):]).Last = ms(v)
		}
	}
	out := make([]ScheduleRecord, 0, len(byKind))
	for _, r := range byKind {
		if r.Spec != "" { // a kind whose record holds only its token never had a leader
			out = append(out, *r)
		}
	}
	slices.SortFunc(out, func(a, b ScheduleRecord) int { return strings.Compare(a.Kind, b.Kind) })
	owners := make([]*redis.StringCmd, len(out))
	_, err = b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range out {
			owners[i] = p.HGet(ctx, k.Lock(r.Kind), LockOwner)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read schedule locks: %w", err)
	}
	for i := range out {
		out[i].Leader = owners[i].Val()
	}
	return out, nil
}

// leadScheduleScript takes or renews the locks of kinds for a worker.
//
//	KEYS[1] schedule state   KEYS[2..n+1] the lock of each kind
//	ARGV[1] owner (consumer name)   ARGV[2] lease ms
//	ARGV[4i-1..4i+2], for kind i from 1: kind, spec, queue, the token the worker thinks it
//	holds ('0': none)
//
// Returns {now ms, token 1, covered ms 1, token 2, covered ms 2, ...}: token 0 when
// another worker holds the kind. A lock whose owner is the caller is the caller's,
// whatever token it thinks it holds (the reply that gave it the lock may have been lost):
// it is renewed and its token returned.
var leadScheduleScript = script(`
local spec = {{KEYS[1], 'hash', 'none'}}
for i = 2, #KEYS do spec[#spec + 1] = {KEYS[i], 'hash', 'none'} end
local bad = check(spec)
if bad then return bad end
local owner, lease = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local out = {now}
for i = 2, #KEYS do
  local lock, a = KEYS[i], 4 * (i - 2) + 3
  local kind = ARGV[a]
  local v = redis.call('HMGET', lock, $l_owner, $l_token)
  local token = 0
  if v[1] == owner then
    token = tonumber(v[2])
    redis.call('PEXPIRE', lock, lease)
  elseif not v[1] then
    token = redis.call('HINCRBY', KEYS[1], $sc_token .. kind, 1)
    redis.call('HSET', lock, $l_owner, owner, $l_token, token)
    redis.call('PEXPIRE', lock, lease)
  end
  local covered = 0
  if token > 0 then
    redis.call('HSETNX', KEYS[1], $sc_covered .. kind, now)
    redis.call('HSET', KEYS[1], $sc_spec .. kind, ARGV[a + 1], $sc_queue .. kind, ARGV[a + 2])
    covered = tonumber(redis.call('HGET', KEYS[1], $sc_covered .. kind))
  end
  out[#out + 1] = token
  out[#out + 1] = covered
end
return out
`)

// fenceScheduleScript tells whether a worker holds a kind's lock with its token.
//
//	KEYS[1] the kind's lock
//	ARGV[1] owner   ARGV[2] token
//
// Returns 1 when it does, 0 when it does not.
var fenceScheduleScript = script(`
local v = redis.call('HMGET', KEYS[1], $l_owner, $l_token)
if v[1] == ARGV[1] and v[2] == ARGV[2] then return 1 end
return 0
`)

// advanceScheduleScript records a leader's progress on a kind, fenced by its token.
//
//	KEYS[1] the kind's lock   KEYS[2] schedule state
//	ARGV[1] owner   ARGV[2] token   ARGV[3] kind   ARGV[4] covered ms
//	ARGV[5] the tick submitted, ms ('0': none, only covered moves)   ARGV[6] its task id
//
// Returns 1 when recorded, 0 when the caller no longer holds the lock with its token.
var advanceScheduleScript = script(`
local bad = check({{KEYS[1], 'hash', 'none'}, {KEYS[2], 'hash', 'none'}})
if bad then return bad end
local v = redis.call('HMGET', KEYS[1], $l_owner, $l_token)
if v[1] ~= ARGV[1] or v[2] ~= ARGV[2] then return 0 end
local kind = ARGV[3]
local covered = tonumber(ARGV[4])
if covered > (tonumber(redis.call('HGET', KEYS[2], $sc_covered .. kind)) or 0) then
  redis.call('HSET', KEYS[2], $sc_covered .. kind, covered)
end
if ARGV[5] ~= '0' then
  redis.call('HSET', KEYS[2], $sc_last .. kind, ARGV[5], $sc_last_id .. kind, ARGV[6])
end
return 1
`)

// releaseScheduleScript deletes the locks a worker holds, at its shutdown.
//
//	KEYS[1..n] locks   ARGV[1] owner
//
// Returns how many it deleted.
var releaseScheduleScript = script(`
local spec = {}
for i = 1, #KEYS do spec[i] = {KEYS[i], 'hash', 'none'} end
local bad = check(spec)
if bad then return bad end
local n = 0
for i = 1, #KEYS do
  if redis.call('HGET', KEYS[i], $l_owner) == ARGV[1] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
`)

package redisq_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

func TestScheduleKeysShareOneHashTagUnderThePrefix(t *testing.T) {
	k := redisq.SchedulesKeys("app")
	for _, key := range []string{k.State(), k.Lock("reports.daily"), k.Lock("b")} {
		if !strings.HasPrefix(key, "app:{schedule}:") {
			t.Errorf("key %q is not under app:{schedule}:", key)
		}
	}
}

// One worker at a time leads a kind. A leader whose lease ran out while it stalled comes
// back with a token that is no longer the lock's: it can neither pass the fence before a
// submit nor record progress, while the new leader can.
func TestAStalledScheduleLeaderIsFencedOut(t *testing.T) { each(t, testScheduleFencing) }

func testScheduleFencing(t *testing.T, e env) {
	b := e.b
	ctx := context.Background()
	const lease = 200 * time.Millisecond
	kinds := func(token int64) []redisq.ScheduledKind {
		return []redisq.ScheduledKind{{Kind: "reports.daily", Spec: "@daily", Queue: "q", Token: token}}
	}
	lead := func(owner string, token int64) redisq.Held {
		t.Helper()
		_, held, err := b.LeadSchedules(ctx, owner, lease, kinds(token))
		if err != nil {
			t.Fatal(err)
		}
		return held[0]
	}
	a := lead("a", 0)
	if a.Token == 0 || a.Covered.IsZero() {
		t.Fatalf("the first worker did not get the free lock: %+v", a)
	}
	if got := lead("b", 0); got.Token != 0 {
		t.Fatalf("a second worker got the lock while the first held it: %+v", got)
	}
	// Renewed within the lease, the lock stays a's with the same token, past the lease.
	time.Sleep(lease / 2)
	if got := lead("a", a.Token); got.Token != a.Token {
		t.Fatalf("renewal gave token %d, want %d", got.Token, a.Token)
	}
	time.Sleep(lease / 2)
	if got := lead("b", 0); got.Token != 0 {
		t.Fatalf("b took the lock that a renewed: %+v", got)
	}
	if err := b.ScheduleFence(ctx, "a", "reports.daily", a.Token); err != nil {
		t.Fatalf("the leader is fenced out: %v", err)
	}
	tick := a.Covered.Add(time.Second)
	if err := b.AdvanceSchedule(ctx, "a", redisq.Advance{Kind: "reports.daily", Token: a.Token, Covered: tick, Tick: tick, ID: "q/1"}); err != nil {
		t.Fatal(err)
	}

	// a stalls past its lease; b takes over with a new token and sees a's progress.
	time.Sleep(lease + 100*time.Millisecond)
	bh := lead("b", 0)
	if bh.Token <= a.Token {
		t.Fatalf("the new leader's token is %d, want more than %d", bh.Token, a.Token)
	}
	if !bh.Covered.Equal(tick) {
		t.Errorf("the new leader starts from %s, want the old one's last tick %s", bh.Covered, tick)
	}
	if err := b.ScheduleFence(ctx, "a", "reports.daily", a.Token); !errors.Is(err, redisq.ErrNotLeader) {
		t.Errorf("the stalled leader's fence = %v, want ErrNotLeader", err)
	}
	later := tick.Add(time.Hour)
	if err := b.AdvanceSchedule(ctx, "a", redisq.Advance{Kind: "reports.daily", Token: a.Token, Covered: later, Tick: later, ID: "q/stale"}); !errors.Is(err, redisq.ErrNotLeader) {
		t.Errorf("the stalled leader's advance = %v, want ErrNotLeader", err)
	}
	// Coming back, a neither takes nor renews b's lock.
	if got := lead("a", a.Token); got.Token != 0 {
		t.Errorf("the stalled leader got token %d back", got.Token)
	}
	if err := b.ScheduleFence(ctx, "b", "reports.daily", bh.Token); err != nil {
		t.Errorf("the new leader is fenced out: %v", err)
	}
	// Covered never moves back.
	if err := b.AdvanceSchedule(ctx, "b", redisq.Advance{Kind: "reports.daily", Token: bh.Token, Covered: tick.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}

	recs, err := b.Schedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := redisq.ScheduleRecord{Kind: "reports.daily", Spec: "@daily", Queue: "q", Covered: tick, Last: tick, LastID: "q/1", Leader: "b"}
	if len(recs) != 1 || recs[0].Kind != want.Kind || recs[0].Spec != want.Spec || recs[0].Queue != want.Queue ||
		!recs[0].Covered.Equal(want.Covered) || !recs[0].Last.Equal(want.Last) || recs[0].LastID != want.LastID || recs[0].Leader != want.Leader {
		t.Errorf("Schedules() = %+v, want [%+v]", recs, want)
	}

	// Released at b's shutdown, the lock is free at once, with a newer token.
	if n, err := b.ReleaseSchedules(ctx, "a", []string{"reports.daily"}); err != nil || n != 0 {
		t.Errorf("a released %d locks (%v), want 0: it holds none", n, err)
	}
	if n, err := b.ReleaseSchedules(ctx, "b", []string{"reports.daily"}); err != nil || n != 1 {
		t.Fatalf("b released %d locks (%v), want 1", n, err)
	}
	if got := lead("a", 0); got.Token <= bh.Token {
		t.Errorf("after the release a got token %d, want more than %d", got.Token, bh.Token)
	}
	recs, err = b.Schedules(ctx)
	if err != nil || len(recs) != 1 || recs[0].Leader != "a" {
		t.Errorf("Schedules() = %+v, %v; want leader a", recs, err)
	}
}

// A schedule key of the wrong type stops the script before it writes anything.
func TestScheduleScriptsRefuseAKeyOfTheWrongType(t *testing.T) { each(t, testScheduleWrongType) }

func testScheduleWrongType(t *testing.T, e env) {
	ctx := context.Background()
	k := redisq.SchedulesKeys(e.prefix)
	if err := e.rdb.Set(ctx, k.Lock("b"), "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, _, err := e.b.LeadSchedules(ctx, "w", time.Second, []redisq.ScheduledKind{{Kind: "a", Spec: "@daily", Queue: "q"}, {Kind: "b", Spec: "@daily", Queue: "q"}})
	var ce *redisq.CorruptError
	if !errors.As(err, &ce) || ce.Key != k.Lock("b") {
		t.Fatalf("LeadSchedules over a string lock = %v, want a CorruptError naming %s", err, k.Lock("b"))
	}
	if n := e.rdb.Exists(ctx, k.Lock("a"), k.State()).Val(); n != 0 {
		t.Errorf("the refused script wrote %d keys", n)
	}
}

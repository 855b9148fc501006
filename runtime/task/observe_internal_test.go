package task

import (
	"context"
	"testing"

	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
)

// A worker without observers pays nothing for the seams: no allocation per delivery.
func TestUnsetObserversAllocateNothing(t *testing.T) {
	w := &Worker{}
	m := redisq.Message{Queue: "q", EntryID: "1700000000000-0"}
	e := &envelope.Envelope{ID: "q/x", Kind: "k", Queue: "q"}
	ctx := context.Background()
	allocs := testing.AllocsPerRun(100, func() {
		d := delivery{entry: m.EntryID}
		if w.observeAttempt(ctx, &d, e) != ctx {
			t.Fatal("observeAttempt without a hook changed the context")
		}
		d.ran = true
		w.observe(m, &d, outcome{action: actComplete})
		d.ran = false
		w.observe(m, &d, outcome{action: actRefuse, reason: ReasonMalformed})
	})
	if allocs != 0 {
		t.Errorf("%v allocations per delivery without observers, want 0", allocs)
	}
}

func TestEntryTimeIsTheStreamEntrysMilliseconds(t *testing.T) {
	if got := entryTime("1700000000123-7"); got.UnixMilli() != 1700000000123 {
		t.Errorf("entryTime = %v", got)
	}
	for _, id := range []string{"", "x-1", "17", "0-1"} {
		if got := entryTime(id); !got.IsZero() {
			t.Errorf("entryTime(%q) = %v, want zero", id, got)
		}
	}
}

package task

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// startSettler runs a settler on f that lingers up to linger for fill outcomes; the
// returned stop stops it and waits until it has returned.
func startSettler(t *testing.T, f *fakeStore, fill int, linger time.Duration) (*settler, func()) {
	t.Helper()
	s := newSettler(f, newLeases(), slog.New(slog.DiscardHandler), fill)
	s.linger = linger
	stop, abandon, done := make(chan struct{}), make(chan struct{}), make(chan struct{})
	go func() { defer close(done); s.run(stop, abandon) }()
	stopped := false
	halt := func() {
		if !stopped {
			stopped = true
			close(stop)
			<-done
		}
	}
	t.Cleanup(halt)
	return s, halt
}

func complete(entry string) *settleRequest {
	return &settleRequest{s: redisq.Settlement{Kind: redisq.Complete, Message: redisq.Message{Queue: "q", EntryID: entry}, TaskID: "q/" + entry}}
}

// Outcomes that come while a write lingers go in one round trip, and the write goes as
// soon as fill of them wait: the linger here (a minute) is never waited out.
func TestOutcomesThatComeTogetherAreWrittenInOneRoundTrip(t *testing.T) {
	f := newFakeStore()
	s, _ := startSettler(t, f, 3, time.Minute)
	for i := range 3 {
		s.submit(complete(fmt.Sprint("1-", i)))
	}
	f.waitUntil(t, "three outcomes written", func(f *fakeStore) bool { return len(f.settled) == 3 })
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writes != 1 {
		t.Errorf("three outcomes took %d writes, want 1", f.writes)
	}
}

// An outcome alone is written once the linger has passed.
func TestAnOutcomeAloneIsWrittenAfterTheLinger(t *testing.T) {
	f := newFakeStore()
	s, _ := startSettler(t, f, 3, 20*time.Millisecond)
	s.submit(complete("1-0"))
	f.waitUntil(t, "the outcome written", func(f *fakeStore) bool { return len(f.settled) == 1 })
}

// A worker that stops writes what waits at once, lingering no more.
func TestAStoppingSettlerWritesWithoutLingering(t *testing.T) {
	f := newFakeStore()
	s, stop := startSettler(t, f, 3, time.Hour)
	s.submit(complete("1-0"))
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatal("the settler lingered after its worker stopped")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.settled) != 1 {
		t.Errorf("%d outcomes written at stop, want 1", len(f.settled))
	}
}

package task

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingHandler keeps the records of level and above that a logger hands it.
type recordingHandler struct {
	level slog.Level
	mu    sync.Mutex
	recs  []slog.Record
}

func (h *recordingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler           { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler                { return h }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.recs = append(h.recs, r.Clone())
	return nil
}

// line returns the attributes of the first record with message msg, flattened to
// "key=value" ("group.key=value" inside a group), and whether there was one.
func (h *recordingHandler) line(msg string) ([]string, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, r := range h.recs {
		if r.Message != msg {
			continue
		}
		var out []string
		var add func(prefix string, a slog.Attr)
		add = func(prefix string, a slog.Attr) {
			v := a.Value.Resolve()
			if v.Kind() == slog.KindGroup {
				for _, g := range v.Group() {
					add(prefix+a.Key+".", g)
				}
				return
			}
			out = append(out, prefix+a.Key+"="+v.String())
		}
		r.Attrs(func(a slog.Attr) bool { add("", a); return true })
		return out, true
	}
	return nil, false
}

// Every line about a delivery names its queue, entry, task id and kind, attempt, caller
// (never the token) and how long it ran, whatever the level it is logged at.
func TestALineAboutATaskNamesTheTaskAndItsCaller(t *testing.T) {
	f := newFakeStore()
	h := &recordingHandler{level: slog.LevelInfo}
	w := fakeWorker(t, f, WithLogger(slog.New(h)))
	def := Def{Kind: "fake.logged", Queue: "q", MaxRetries: 2, Schema: "v1:fake", Caller: true}
	if err := Register(w, def, fakeTask(nil)); err != nil {
		t.Fatal(err)
	}
	caller := Caller{UserID: "ada", Token: NewSecret("tok-never-logged"), ExpiresAt: time.Now().Add(time.Hour).Truncate(time.Second)}
	ok := f.deliverAs(t, w, def, caller, fakeArgs{})
	failing := f.deliverAs(t, w, def, caller, fakeArgs{Fail: true})
	runFake(t, w)
	f.waitUntil(t, "both outcomes written", func(f *fakeStore) bool { return len(f.settled) == 2 })
	waitLine := func(msg string) []string {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
			if attrs, found := h.line(msg); found {
				return attrs
			}
		}
		t.Fatalf("no line %q was logged", msg)
		return nil
	}
	for _, c := range []struct {
		msg, entry string
		more       []string
	}{
		{"task succeeded", ok, nil},
		{"task failed, will retry", failing, []string{"err=failed on purpose", "retries_left=2"}},
	} {
		attrs := waitLine(c.msg)
		want := append([]string{"queue=q", "entry=" + c.entry, "kind=fake.logged", "attempt=1", "caller.user_id=ada",
			"caller.expires_at=" + slog.TimeValue(caller.ExpiresAt).String()}, c.more...)
		for _, a := range want {
			if !slices.Contains(attrs, a) {
				t.Errorf("%q: no %s in %v", c.msg, a, attrs)
			}
		}
		if !slices.ContainsFunc(attrs, func(a string) bool { return strings.HasPrefix(a, "id=q/") }) ||
			!slices.ContainsFunc(attrs, func(a string) bool { return strings.HasPrefix(a, "took=") }) {
			t.Errorf("%q: no task id or run time in %v", c.msg, attrs)
		}
		if joined := strings.Join(attrs, " "); strings.Contains(joined, caller.Token.Reveal()) {
			t.Errorf("%q logged the token: %s", c.msg, joined)
		}
	}
}

// A line the logger does not take costs nothing: the attributes of a delivery are built
// only for a line that is logged, so a worker logging at Warn spends no allocation on the
// log of a task that succeeds.
func TestALineNotLoggedBuildsNothing(t *testing.T) {
	h := &recordingHandler{level: slog.LevelWarn}
	w := fakeWorker(t, newFakeStore(), WithLogger(slog.New(h)))
	d := &delivery{queue: "q", entry: "1-0", attempted: true, took: time.Millisecond,
		caller: Caller{UserID: "ada"}, callerRead: true}
	d.attempt, d.ran = 3, true
	if n := testing.AllocsPerRun(100, func() { w.logDelivery(slog.LevelInfo, "task succeeded", d) }); n != 0 {
		t.Errorf("a line below the logger's level made %v allocations, want none", n)
	}
	w.logDelivery(slog.LevelWarn, "task failed, will retry", d)
	attrs, found := h.line("task failed, will retry")
	if !found || !slices.Contains(attrs, "attempt=3") || !slices.Contains(attrs, "caller.user_id=ada") {
		t.Errorf("a line at the logger's level: %v (logged: %v)", attrs, found)
	}
}

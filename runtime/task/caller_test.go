package task

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

const token = "tok-4242-very-secret"

func TestSecretNeverPrints(t *testing.T) {
	s := Secret(token)
	c := Caller{UserID: "u1", Token: s}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%10s", "%d"} {
		for name, v := range map[string]any{"secret": s, "caller": c, "pointer": &c} {
			if out := fmt.Sprintf(verb, v); strings.Contains(out, token) {
				t.Errorf("fmt %s of %s printed the token: %s", verb, name, out)
			}
		}
	}
	if out := fmt.Sprint(s) + fmt.Sprintln(c) + s.String() + s.GoString(); strings.Contains(out, token) {
		t.Errorf("Sprint printed the token: %s", out)
	}
	if err := fmt.Errorf("calling api with %v: %w", c, errors.New("denied")); strings.Contains(err.Error(), token) {
		t.Errorf("error message carries the token: %v", err)
	}
	if s.Reveal() != token {
		t.Errorf("Reveal = %q", s.Reveal())
	}
}

func TestSecretNeverLogsNorMarshals(t *testing.T) {
	c := Caller{UserID: "u1", Token: token, ExpiresAt: time.Now().Add(time.Hour)}
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("msg", "caller", c, "token", c.Token, "any", any(c.Token), "struct", struct{ C Caller }{c})
	}
	if strings.Contains(buf.String(), token) {
		t.Errorf("slog printed the token:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "u1") {
		t.Errorf("slog dropped the user id:\n%s", buf.String())
	}
	data, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte(token)) {
		t.Errorf("json.Marshal(Caller) = %s", data)
	}
}

func TestCallerExpiry(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		expires time.Time
		skew    time.Duration
		want    bool
	}{
		{time.Time{}, 0, false},
		{now.Add(time.Second), 0, false},
		{now, 0, true},
		{now.Add(-time.Second), 0, true},
		{now.Add(-time.Second), 2 * time.Second, false},
	} {
		if got := (Caller{UserID: "u", ExpiresAt: c.expires}).Expired(now, c.skew); got != c.want {
			t.Errorf("expires %v skew %v: Expired = %v, want %v", c.expires, c.skew, got, c.want)
		}
	}
	if System("cron").IsZero() || !System("cron").IsSystem() || (Caller{}).IsZero() == false {
		t.Error("System callers must not be empty, the zero Caller must be")
	}
}

func TestIDCarriesQueueAndSortsByTime(t *testing.T) {
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b := newID("email", t0), newID("email", t0.Add(time.Millisecond))
	if a.Queue() != "email" || !(a < b) {
		t.Fatalf("ids %s, %s: want queue email and time order", a, b)
	}
	if _, err := a.parse(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []ID{"", "email", "/01JAAAAAAAAAAAAAAAAAAAAAAA", "email/short"} {
		if _, err := bad.parse(); err == nil {
			t.Errorf("parse(%q) accepted it", bad)
		}
	}
}

func TestBackoffGrowsWithJitterUpToMax(t *testing.T) {
	w := &Worker{cfg: config{backoffBase: time.Second, backoffMax: 10 * time.Second}}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 90: 10 * time.Second} {
		for range 50 {
			if d := w.backoff(attempt); d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, base/2, base)
			}
		}
	}
}

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
	s := NewSecret(token)
	c := Caller{UserID: "u1", Token: s}
	// fmt prints what it reaches through an unexported field by reflection, calling no
	// method of the value; and it handles %p before looking for a Formatter.
	type hidden struct {
		caller Caller
		secret Secret
	}
	values := map[string]any{
		"secret": s, "pointer to secret": &s, "caller": c, "pointer to caller": &c,
		"unexported fields": hidden{c, s}, "pointer to unexported fields": &hidden{c, s},
		"slice": []Secret{s}, "map": map[string]Caller{"c": c},
	}
	verbs := []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%t", "%p", "%T", "%10s", "%-10v", "%+q", "%#x", "% x", "%010d", "%.3s", "%U", "%c", "%b", "%o", "%e", "%g"}
	for _, verb := range verbs {
		for name, v := range values {
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
	if s.Reveal() != token || (Secret{}).Reveal() != "" || !NewSecret("").IsZero() || s.IsZero() {
		t.Errorf("Reveal = %q; the empty Secret reveals %q", s.Reveal(), (Secret{}).Reveal())
	}
}

func TestSecretNeverLogsNorMarshals(t *testing.T) {
	c := Caller{UserID: "u1", Token: NewSecret(token), ExpiresAt: time.Now().Add(time.Hour)}
	type hidden struct{ caller Caller }
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		l := slog.New(h)
		l.Info("msg", "caller", c, "token", c.Token, "any", any(c.Token), "struct", struct{ C Caller }{c},
			"hidden", hidden{c}, "pointer", &c, slog.Group("g", "caller", c, "token", c.Token))
		l.WithGroup("req").With("caller", c).Info("nested", "token", c.Token)
		l.Error("failed", "err", fmt.Errorf("as %v: %w", c, errors.New("denied")))
	}
	if strings.Contains(buf.String(), token) {
		t.Errorf("slog printed the token:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "u1") {
		t.Errorf("slog dropped the user id:\n%s", buf.String())
	}
	for _, v := range []any{c, &c, c.Token, struct{ C Caller }{c}, map[string]Secret{"t": c.Token}} {
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte(token)) {
			t.Errorf("json.Marshal(%T) = %s", v, data)
		}
	}
	if text, err := c.Token.MarshalText(); err != nil || bytes.Contains(text, []byte(token)) {
		t.Errorf("MarshalText = %s, %v", text, err)
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
	w := &Worker{cfg: workerConfig{backoffBase: time.Second, backoffMax: 10 * time.Second}}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 5: 10 * time.Second, 90: 10 * time.Second} {
		seen := map[time.Duration]bool{}
		for range 50 {
			d := w.backoff(attempt)
			if d < base/2 || d > base {
				t.Fatalf("backoff(%d) = %v, want in [%v, %v]", attempt, d, base/2, base)
			}
			seen[d] = true
		}
		// Jitter: fifty retries of one attempt must not all wait alike.
		if len(seen) < 40 {
			t.Errorf("backoff(%d) took %d distinct values in 50 draws: no jitter", attempt, len(seen))
		}
	}
}

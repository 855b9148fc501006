package task

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
)

// Redacted is what a Secret prints as, through every formatting path.
const Redacted = "[redacted]"

// Secret is a credential that must never be printed or logged. Make one with NewSecret;
// the zero Secret is empty. Every way of formatting it yields "[redacted]": fmt verbs
// (%#v and %p included), slog, JSON and text encodings. Reveal returns the value.
//
// Secret is a struct holding the value behind a pointer, not a string type: fmt prints a
// string-typed value raw where it calls no methods (%p, which it handles before
// Formatter, and fields reached through an unexported struct field, which it prints by
// reflection), while a pointer inside a value prints as an address. Two Secrets holding
// equal values need not be ==; compare what Reveal returns.
type Secret struct{ value *string }

// NewSecret returns a Secret holding s. NewSecret("") is the empty Secret.
func NewSecret(s string) Secret {
	if s == "" {
		return Secret{}
	}
	return Secret{value: &s}
}

// Reveal returns the secret value, "" for the empty Secret. Call it only where the value
// is really used, for example when building an Authorization header.
func (s Secret) Reveal() string {
	if s.value == nil {
		return ""
	}
	return *s.value
}

// IsZero reports whether s holds no value.
func (s Secret) IsZero() bool { return s.Reveal() == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer, so %#v does not print the value either.
func (s Secret) GoString() string { return `task.NewSecret("` + Redacted + `")` }

// Format implements fmt.Formatter: every verb it is given, %x and %q included, prints
// the redaction (fmt does not give it %p: see Secret).
func (s Secret) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = f.Write([]byte(s.GoString()))
		return
	}
	if verb == 'q' {
		_, _ = f.Write([]byte(`"` + Redacted + `"`))
		return
	}
	_, _ = f.Write([]byte(Redacted))
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON keeps the secret out of any JSON document built with encoding/json. The
// task envelope carries the token through its own codec, never through this method.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText keeps the secret out of text encodings (and slog's JSON handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// systemPrefix marks callers made by System. A user id from an identity provider that
// starts with it is still just a user id; IsSystem is a convenience, not an authority.
const systemPrefix = "system:"

// Caller is the identity a task runs on behalf of. It is captured explicitly when the
// task is submitted, travels signed (and, with WithSealKey, encrypted) in the task
// envelope, and is verified before the task function runs.
type Caller struct {
	// UserID identifies the caller. A Caller with an empty UserID is empty.
	UserID string
	// Token is the caller's access token, for calls the task makes on the caller's behalf.
	Token Secret
	// ExpiresAt is when Token stops being valid; zero means it does not expire. A task whose
	// caller has expired when it starts fails with ErrCallerExpired and is not retried.
	ExpiresAt time.Time
	// Scopes are the caller's granted scopes, carried as given.
	Scopes []string
}

// System returns an explicit non-user caller, for work that no user started (cron jobs,
// migrations). Its UserID is "system:" + name, so it is never empty, and it carries no token.
func System(name string) Caller { return Caller{UserID: systemPrefix + name} }

// IsZero reports whether c is empty, that is has no UserID.
func (c Caller) IsZero() bool { return c.UserID == "" }

// IsSystem reports whether c was made by System.
func (c Caller) IsSystem() bool { return strings.HasPrefix(c.UserID, systemPrefix) }

// Expired reports whether the caller's token has expired at now, allowing skew of clock
// difference between the machine that issued the token and this one.
func (c Caller) Expired(now time.Time, skew time.Duration) bool {
	return !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt.Add(skew))
}

// LogValue implements slog.LogValuer: the user id and expiry are logged, the token never.
func (c Caller) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("user_id", c.UserID)}
	if !c.ExpiresAt.IsZero() {
		attrs = append(attrs, slog.Time("expires_at", c.ExpiresAt))
	}
	return slog.GroupValue(attrs...)
}

// wire is c in the envelope's codec, token in clear: only for SetCaller to seal.
func (c Caller) wire() *envelope.Caller {
	return &envelope.Caller{UserID: c.UserID, Token: c.Token.Reveal(), ExpiresAt: c.ExpiresAt, Scopes: c.Scopes}
}

// Package envelope is taskgen's versioned wire format: the JSON document that carries one
// task through Redis, its HMAC-SHA256 signature, the optional AES-GCM seal of the caller
// block, and the size limit a worker enforces before decoding anything.
//
// An envelope is signed over every field that affects execution, so whoever can write to
// Redis cannot change the kind, queue, id, arguments, caller, schema, limits or trace of
// a task, nor forge a new one, without a signing key. Open reads two versions of it.
//
// Version 2 signs its own bytes. Sign writes the fields in one fixed order with the key
// id second and the signature last:
//
//	{"v":2,"kid":"k1","id":…,"kind":…,…,"args":{…},"sig":"<44 characters of base64>"}
//
// and the MAC covers a domain tag, the scope, and the document up to and including the
// comma before "sig". Open finds the key by comparing the document's start with each
// key's `{"v":2,"kid":"<id>",`, checks the fixed-length tail, and verifies the MAC with
// hmac.Equal before it parses a byte; then it parses once, with a reader of this one
// schema (see parseV2). Even under a valid signature it accepts only the text Sign
// writes: the keys of this version once each, in Sign's order and letter case, no
// whitespace, times in UTC, strings, args and caller block with the spelling and escapes
// of encoding/json's Marshal, nothing before or after the object.
//
// Version 1 signs a canonical byte form of the decoded values (see signedBytes), so Open
// decodes it with encoding/json, verifies it, then insists on the one text Sign writes
// for those values, by marshalling them again. The rules of the text are those above, in
// version 1's field order (the key id and signature last).
//
// So an accepted envelope of either version has exactly one encoding, and no other JSON
// reader can find a duplicate or differently cased key in it that encoding/json would
// have resolved another way.
//
// # Rolling deploys
//
// Workers of earlier releases read only version 1, so a Keyring writes version 1 until
// WritingVersion(Version2) (task.WithEnvelopeVersion(2)) says otherwise, and reads both.
// Deploy this release to every worker first, then turn version 2 on for clients. Sign
// keeps the version of an envelope it re-signs (a retry, Resign), so tasks queued in
// either version keep running through the switch. Roll back in the reverse order:
// clients to version 1 first, and workers to an earlier release only once the version 2
// tasks have drained (dead letters included). Vouch,
// CheckVouch, SignOutcome and VerifyOutcome do not depend on the version.
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
	"unicode/utf8"
)

// Version is the envelope format whose signature covers its decoded values (see
// signedBytes): what a Keyring writes unless WritingVersion says Version2. Open reads both.
const Version = 1

// DefaultMaxSize is the default limit on an encoded envelope: 1 MiB.
const DefaultMaxSize = 1 << 20

// Errors returned by Open and Keyring methods. The runtime's task package re-exports the
// first two as task.ErrMalformed and task.ErrBadSignature.
var (
	ErrMalformed    = errors.New("malformed task envelope")
	ErrBadSignature = errors.New("bad envelope signature")
	ErrTooLarge     = fmt.Errorf("%w: envelope too large", ErrMalformed)
)

// Caller is the wire form of a task's caller. It exists only inside this package's codec:
// task.Caller's token is a task.Secret, which refuses to be marshalled in clear.
type Caller struct {
	UserID    string    `json:"user_id"`
	Token     string    `json:"token,omitempty"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	Scopes    []string  `json:"scopes,omitempty"`
}

// Sealed is an AES-GCM sealed caller block: Data is the nonce followed by the ciphertext,
// and the associated data binds it to the task id (see sealAD).
type Sealed struct {
	KeyID string `json:"kid"`
	Data  []byte `json:"data"`
}

// Envelope is one task on the wire. Fields are exported for the worker and for tests;
// only Keyring.Sign produces a valid KeyID and Sig.
type Envelope struct {
	Version     int       `json:"v"`
	ID          string    `json:"id"`
	Kind        string    `json:"kind"`
	Queue       string    `json:"queue"`
	Schema      string    `json:"schema"`
	Attempt     int       `json:"attempt"` // 0 for the first attempt; the worker re-signs on retry
	MaxRetries  int       `json:"max_retries"`
	TimeoutMS   int64     `json:"timeout_ms,omitempty"` // per attempt; 0: the worker's default
	SubmittedAt time.Time `json:"submitted_at"`
	// NotAfter is when the envelope stops being valid: its submit time plus the longest
	// life the task can have (delay, attempts, backoff). A worker refuses it after that,
	// so a copy written back into a stream once the task's record has expired cannot run.
	// Zero (envelopes of older clients): no limit.
	NotAfter time.Time       `json:"not_after,omitzero"`
	Caller   json.RawMessage `json:"caller,omitempty"` // the plain caller block, when not sealed
	Sealed   *Sealed         `json:"sealed,omitempty"` // the sealed caller block, with WithSealKey
	Args     json.RawMessage `json:"args"`
	// Trace is the trace context of the submitting request, as a propagator wrote it
	// (W3C traceparent, tracestate, baggage...), when the client was given one; nil
	// otherwise, and then the field is absent. It is signed like the rest, so whoever can
	// write Redis cannot attach a task's spans to another trace. See CheckTrace.
	Trace map[string]string `json:"trace,omitempty"`
	KeyID string            `json:"kid"`
	Sig   []byte            `json:"sig"`
}

// PeekID returns the id an envelope claims, without verifying anything: "" when data does
// not start as an envelope object with a string id. It reads only the first kilobytes,
// where Sign writes the id (after the version, and in version 2 after the key id), so it
// is cheap on an oversized entry. Trust the result only as a name to report a refusal under.
func PeekID(data []byte) string {
	dec := json.NewDecoder(io.LimitReader(bytes.NewReader(data), 4<<10))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ""
	}
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return ""
		}
		if key != "id" {
			var skip json.RawMessage
			if dec.Decode(&skip) != nil {
				return ""
			}
			continue
		}
		var id string
		if dec.Decode(&id) != nil {
			return ""
		}
		return id
	}
	return ""
}

// maxTimeoutMS is the longest timeout_ms a time.Duration holds.
const maxTimeoutMS = math.MaxInt64 / int64(time.Millisecond)

// Timeout returns the per-attempt timeout the submitter asked for; zero means none.
func (e *Envelope) Timeout() time.Duration { return time.Duration(e.TimeoutMS) * time.Millisecond }

// HasCaller reports whether the envelope carries a caller block, plain or sealed.
func (e *Envelope) HasCaller() bool { return len(e.Caller) > 0 || e.Sealed != nil }

// decode parses data without verifying it and checks its values (see check). Unknown
// fields are refused: a field this version does not know is not covered by the signature
// and must not be silently dropped. Open checks the canonical form (see canonical) after
// the signature, so that a forgery is reported as one.
func decode(data []byte) (*Envelope, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	var e Envelope
	if err := decodeStrict(data, &e); err != nil {
		return nil, err
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	// A version 2 envelope starts with v2Start, which Open and Resign send to decodeV2:
	// the same values in version 1's layout are not a text Sign writes.
	if e.Version != Version {
		return nil, fmt.Errorf("%w: version %d in the layout of version %d", ErrMalformed, e.Version, Version)
	}
	if e.KeyID == "" || len(e.Sig) == 0 {
		return nil, fmt.Errorf("%w: unsigned", ErrBadSignature)
	}
	return &e, nil
}

// check refuses values that no valid envelope has. Open checks them before verifying the
// signature, Sign before signing, so Sign never writes an envelope Open refuses.
func (e *Envelope) check() error {
	switch {
	case e.Version != Version && e.Version != Version2:
		return fmt.Errorf("%w: version %d, this worker reads versions %d and %d", ErrMalformed, e.Version, Version, Version2)
	case e.ID == "":
		return fmt.Errorf("%w: no id", ErrMalformed)
	case e.Kind == "":
		return fmt.Errorf("%w: no kind", ErrMalformed)
	case e.Queue == "":
		return fmt.Errorf("%w: no queue", ErrMalformed)
	case len(e.Args) == 0:
		return fmt.Errorf("%w: no args", ErrMalformed)
	case len(e.Caller) > 0 && e.Sealed != nil:
		return fmt.Errorf("%w: both a plain and a sealed caller block", ErrMalformed)
	case len(e.Caller) > 0 && e.Caller[0] != '{':
		return fmt.Errorf("%w: the caller block is not a JSON object", ErrMalformed)
	case e.Sealed != nil && (e.Sealed.KeyID == "" || len(e.Sealed.Data) == 0):
		return fmt.Errorf("%w: empty sealed caller block", ErrMalformed)
	case e.Attempt < 0 || e.MaxRetries < 0 || e.TimeoutMS < 0:
		return fmt.Errorf("%w: negative attempt, retries or timeout", ErrMalformed)
	case e.TimeoutMS > maxTimeoutMS:
		return fmt.Errorf("%w: timeout_ms %d is longer than a time.Duration holds", ErrMalformed, e.TimeoutMS)
	case e.SubmittedAt.Location() != time.UTC:
		return fmt.Errorf("%w: submitted_at is not in UTC", ErrMalformed)
	case !e.NotAfter.IsZero() && e.NotAfter.Location() != time.UTC:
		return fmt.Errorf("%w: not_after is not in UTC", ErrMalformed)
	}
	return CheckTrace(e.Trace)
}

// decodeStrict decodes the one JSON value in data into v, refusing unknown fields and
// anything but whitespace after the value (json.Decoder.More does not see a stray '}' or
// ']'). Duplicate and differently cased keys are left to canonical.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return fmt.Errorf("%w: trailing data after the JSON value", ErrMalformed)
	}
	return nil
}

// canonical refuses data unless it is exactly what json.Marshal writes for v, the value
// decoded from it: this rejects duplicate and differently cased keys (encoding/json takes
// the last, and matches case-insensitively), other key orders, whitespace, and the
// encodings encoding/json reads but never writes (escapes, base64 line breaks or unused
// bits, time zone offsets).
func canonical(data []byte, v any) error {
	if want, err := json.Marshal(v); err != nil || !bytes.Equal(want, data) {
		return fmt.Errorf("%w: not in the form Sign writes (a duplicate or differently cased key, another key order, whitespace or escape)", ErrMalformed)
	}
	return nil
}

// normalize puts e's values in the form Open reads back unchanged: args and caller block
// as json.Marshal writes them (compact, HTML-escaped), the submission time in UTC without
// a monotonic reading. It refuses strings that are not UTF-8: encoding/json would replace
// their bad bytes, and the envelope would not verify.
func (e *Envelope) normalize() error {
	for _, f := range []struct{ name, s string }{{"id", e.ID}, {"kind", e.Kind}, {"queue", e.Queue}, {"schema", e.Schema}} {
		if !utf8.ValidString(f.s) {
			return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrMalformed, f.name, f.s)
		}
	}
	var err error
	if e.Args, err = canonicalRaw("args", e.Args); err != nil {
		return err
	}
	if e.Caller, err = canonicalRaw("caller block", e.Caller); err != nil {
		return err
	}
	e.SubmittedAt = e.SubmittedAt.Round(0).UTC()
	if !e.NotAfter.IsZero() {
		e.NotAfter = e.NotAfter.Round(0).UTC()
	}
	return nil
}

// compactJSON returns raw as json.Marshal writes it inside an envelope.
func compactJSON(name string, raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%w: %s is not valid UTF-8", ErrMalformed, name)
	}
	out, err := json.Marshal(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformed, name, err)
	}
	return out, nil
}

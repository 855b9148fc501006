// Package envelope is taskgen's versioned wire format: the JSON document that carries one
// task through Redis, its HMAC-SHA256 signature, the optional AES-GCM seal of the caller
// block, and the size limit a worker enforces before decoding anything.
//
// An envelope is signed over a canonical byte form of every field that affects execution
// (see signedBytes), so whoever can write to Redis cannot change the kind, queue, id,
// arguments, caller, schema or limits of a task, nor forge a new one, without a signing key.
package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Version is the envelope format this package writes and the only one it reads.
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
	Version     int             `json:"v"`
	ID          string          `json:"id"`
	Kind        string          `json:"kind"`
	Queue       string          `json:"queue"`
	Schema      string          `json:"schema"`
	Attempt     int             `json:"attempt"` // 0 for the first attempt; the worker re-signs on retry
	MaxRetries  int             `json:"max_retries"`
	TimeoutMS   int64           `json:"timeout_ms,omitempty"` // per attempt; 0: the worker's default
	SubmittedAt time.Time       `json:"submitted_at"`
	Caller      json.RawMessage `json:"caller,omitempty"` // the plain caller block, when not sealed
	Sealed      *Sealed         `json:"sealed,omitempty"` // the sealed caller block, with WithSealKey
	Args        json.RawMessage `json:"args"`
	KeyID       string          `json:"kid"`
	Sig         []byte          `json:"sig"`
}

// Timeout returns the per-attempt timeout the submitter asked for; zero means none.
func (e *Envelope) Timeout() time.Duration { return time.Duration(e.TimeoutMS) * time.Millisecond }

// HasCaller reports whether the envelope carries a caller block, plain or sealed.
func (e *Envelope) HasCaller() bool { return len(e.Caller) > 0 || e.Sealed != nil }

// decode parses data without verifying it. Unknown fields are refused: a field this
// version does not know is not covered by the signature and must not be silently dropped.
func decode(data []byte) (*Envelope, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var e Envelope
	if err := dec.Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the envelope", ErrMalformed)
	}
	if e.Version != Version {
		return nil, fmt.Errorf("%w: version %d, this worker reads version %d", ErrMalformed, e.Version, Version)
	}
	switch {
	case e.ID == "":
		return nil, fmt.Errorf("%w: no id", ErrMalformed)
	case e.Kind == "":
		return nil, fmt.Errorf("%w: no kind", ErrMalformed)
	case e.Queue == "":
		return nil, fmt.Errorf("%w: no queue", ErrMalformed)
	case len(e.Args) == 0:
		return nil, fmt.Errorf("%w: no args", ErrMalformed)
	case e.KeyID == "" || len(e.Sig) == 0:
		return nil, fmt.Errorf("%w: unsigned", ErrBadSignature)
	case len(e.Caller) > 0 && e.Sealed != nil:
		return nil, fmt.Errorf("%w: both a plain and a sealed caller block", ErrMalformed)
	case e.Attempt < 0 || e.MaxRetries < 0 || e.TimeoutMS < 0:
		return nil, fmt.Errorf("%w: negative attempt, retries or timeout", ErrMalformed)
	}
	return &e, nil
}

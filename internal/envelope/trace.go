package envelope

import (
	"fmt"
	"sort"
)

// Limits of an envelope's trace carrier (Envelope.Trace). They hold what the common
// propagators write (W3C traceparent, tracestate and baggage, B3, Jaeger) with room to
// spare; baggage is the largest, and W3C caps it at 8192 bytes.
const (
	MaxTraceEntries  = 8
	MaxTraceKeyLen   = 64
	MaxTraceValueLen = 8192
)

// CheckTrace refuses, with ErrMalformed, a trace carrier that Sign must not write and
// Open must not accept: an empty but present one (it would not survive omitempty, so
// it has no canonical form), more than MaxTraceEntries entries, a key that is not
// 1 to MaxTraceKeyLen bytes of lower-case letters, digits, '.', '_' and '-' starting
// with a letter or digit (the header names propagators write), or a value that is
// empty, longer than MaxTraceValueLen, or not printable ASCII (what an HTTP header
// value of a propagator holds; it also keeps the JSON free of escapes). nil is valid:
// the envelope carries no trace.
func CheckTrace(trace map[string]string) error {
	if trace == nil {
		return nil
	}
	if len(trace) == 0 {
		return fmt.Errorf("%w: an empty trace carrier; leave it out", ErrMalformed)
	}
	if len(trace) > MaxTraceEntries {
		return fmt.Errorf("%w: a trace carrier of %d entries, at most %d are carried", ErrMalformed, len(trace), MaxTraceEntries)
	}
	for k, v := range trace {
		if !traceKey(k) {
			return fmt.Errorf("%w: trace carrier key %q: want 1 to %d of a-z, 0-9, '.', '_', '-', starting with a letter or digit", ErrMalformed, k, MaxTraceKeyLen)
		}
		if len(v) == 0 || len(v) > MaxTraceValueLen {
			return fmt.Errorf("%w: trace carrier value of %q is %d bytes, want 1 to %d", ErrMalformed, k, len(v), MaxTraceValueLen)
		}
		for i := 0; i < len(v); i++ {
			if v[i] < 0x20 || v[i] > 0x7e {
				return fmt.Errorf("%w: trace carrier value of %q holds byte %#x at %d, want printable ASCII", ErrMalformed, k, v[i], i)
			}
		}
	}
	return nil
}

func traceKey(k string) bool {
	if len(k) == 0 || len(k) > MaxTraceKeyLen {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// appendTrace appends the signed form of a trace carrier to b with field: a tag, the
// number of entries, then each key and value in key order (a map has no order of its own).
func appendTrace(trace map[string]string, field func(string)) {
	keys := make([]string, 0, len(trace))
	for k := range trace {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	field("trace")
	field(fmt.Sprint(len(keys)))
	for _, k := range keys {
		field(k)
		field(trace[k])
	}
}

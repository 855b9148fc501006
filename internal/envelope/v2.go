package envelope

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// Version2 is the envelope format whose signature covers its own bytes: the document up
// to its last field, "sig", is the signed text, so Open verifies it before parsing a byte
// of it and then parses it once. See the package documentation.
const Version2 = 2

// v2Form is the domain tag of a version 2 signature. Its length differs from signedForm's,
// so the first byte of what a version 2 MAC covers (the uvarint length of the tag) is not
// that of a version 1 MAC, an outcome MAC or a vouch: no MAC of one kind verifies as
// another.
const v2Form = "taskgen.envelope.v2"

// v2Start opens every version 2 envelope: the version, then the signing key's id, so
// that Open finds the key with a prefix comparison and no parsing.
const v2Start = `{"v":2,"kid":`

// sigField and sigEnd frame the signature, the last field: a base64 HMAC-SHA256 is always
// 44 characters, so the signature is a fixed-length tail and the signed text is
// everything before it.
const (
	sigField  = `"sig":"`
	sigEnd    = `"}`
	sigB64Len = 44 // base64 of sha256.Size bytes, with one '='
	sigTail   = len(sigField) + sigB64Len + len(sigEnd)
)

// v2Prefix is the start of a version 2 envelope signed with key id: v2Start, the id as
// JSON, a comma. A JSON string ends at its one unescaped quote, so no key's prefix is a
// prefix of another's.
func v2Prefix(id string) []byte {
	return append(appendString([]byte(v2Start), id), ',')
}

// macV2 is the HMAC of a version 2 envelope's signed text under signing key i: the
// domain tag and the scope, each length-prefixed (v2Head), then the text as it stands.
func (k *Keyring) macV2(i int, body []byte) []byte {
	return k.sum(i, k.v2Head, body)
}

// v2Head is what every version 2 MAC of scope takes in before the text: v2Form and the
// scope, each length-prefixed.
func v2Head(scope string) []byte {
	return appendField(appendField(nil, v2Form), scope)
}

// splitV2 cuts a version 2 envelope into its signed text and its signature, checking
// only the fixed-length tail: `"sig":"`, 44 characters of canonical base64, `"}`.
func splitV2(data []byte) (body, sig []byte, err error) {
	n := len(data) - sigTail
	if n < len(v2Start) {
		return nil, nil, fmt.Errorf("%w: too short for a version 2 envelope", ErrMalformed)
	}
	tail := data[n:]
	if string(tail[:len(sigField)]) != sigField || string(tail[len(tail)-len(sigEnd):]) != sigEnd {
		return nil, nil, fmt.Errorf("%w: a version 2 envelope ends with its signature, \"sig\", as Sign writes it", ErrMalformed)
	}
	sig, err = strictBase64(tail[len(sigField) : len(tail)-len(sigEnd)])
	if err != nil || len(sig) != sha256.Size {
		return nil, nil, fmt.Errorf("%w: the signature is not %d bytes of base64 as Sign writes it", ErrMalformed, sha256.Size)
	}
	return data[:n], sig, nil
}

// openV2 verifies a version 2 envelope, then parses it. Until the MAC has verified it
// reads nothing but the key id prefix and the signature's tail.
func (k *Keyring) openV2(data []byte) (*Envelope, error) {
	body, sig, err := splitV2(data)
	if err != nil {
		return nil, err
	}
	for i, key := range k.signing {
		if !bytes.HasPrefix(body, k.v2Prefixes[i]) {
			continue
		}
		if !key.Retired.IsZero() && time.Now().After(key.Retired) {
			return nil, fmt.Errorf("%w: signed with key %q, retired since %s", ErrBadSignature, key.ID, key.Retired.UTC().Format(time.RFC3339))
		}
		if !hmac.Equal(k.macV2(i, body), sig) {
			return nil, fmt.Errorf("%w: signature does not match (key %q)", ErrBadSignature, key.ID)
		}
		e, err := parseV2(body)
		if err != nil {
			return nil, err
		}
		if e.KeyID != key.ID { // the prefix holds the id as appendString writes it: cannot happen
			return nil, fmt.Errorf("%w: key id %q read as %q", ErrMalformed, key.ID, e.KeyID)
		}
		e.Sig = sig
		return e, nil
	}
	// No key of this keyring: name the key the envelope claims, if it names one.
	r := reader{b: body, i: len(v2Start)}
	if kid := r.str(); r.err == nil && r.i < len(body) && body[r.i] == ',' {
		return nil, fmt.Errorf("%w: unknown key id %q", ErrBadSignature, kid)
	}
	return nil, fmt.Errorf("%w: no key id where Sign writes it", ErrMalformed)
}

// decodeV2 parses a version 2 envelope without verifying its signature (see Resign).
func decodeV2(data []byte) (*Envelope, error) {
	body, sig, err := splitV2(data)
	if err != nil {
		return nil, err
	}
	e, err := parseV2(body)
	if err != nil {
		return nil, err
	}
	e.Sig = sig
	return e, nil
}

// parseV2 parses the signed text of a version 2 envelope, which must be exactly what
// encodeV2 writes: the fields in its order, spelled as it spells them, none twice and no
// whitespace, strings and times as json.Marshal writes them, args and caller block as
// compact JSON with Marshal's escapes. The envelope's strings, args and caller block are
// taken from one copy of body, not from body itself, which the caller may reuse.
func parseV2(body []byte) (*Envelope, error) {
	if !utf8.Valid(body) {
		return nil, fmt.Errorf("%w: not valid UTF-8", ErrMalformed)
	}
	r := reader{b: bytes.Clone(body)}
	e := &Envelope{Version: Version2}
	r.expect(v2Start)
	e.KeyID = r.str()
	r.expect(`,"id":`)
	e.ID = r.str()
	r.expect(`,"kind":`)
	e.Kind = r.str()
	r.expect(`,"queue":`)
	e.Queue = r.str()
	r.expect(`,"schema":`)
	e.Schema = r.str()
	r.expect(`,"attempt":`)
	e.Attempt = int(r.num(strconv.IntSize))
	r.expect(`,"max_retries":`)
	e.MaxRetries = int(r.num(strconv.IntSize))
	if r.peek(`,"timeout_ms":`) {
		if e.TimeoutMS = r.num(64); e.TimeoutMS == 0 {
			r.fail("timeout_ms 0 is written by leaving it out")
		}
	}
	r.expect(`,"submitted_at":`)
	e.SubmittedAt = r.time()
	if r.peek(`,"not_after":`) {
		if e.NotAfter = r.time(); e.NotAfter.IsZero() {
			r.fail("a zero not_after is written by leaving it out")
		}
	}
	if r.peek(`,"caller":`) {
		e.Caller = r.raw()
	}
	if r.peek(`,"sealed":{"kid":`) {
		s := &Sealed{KeyID: r.str()}
		r.expect(`,"data":`)
		s.Data = r.base64()
		r.expect(`}`)
		e.Sealed = s
	}
	r.expect(`,"args":`)
	e.Args = r.raw()
	if r.peek(`,"trace":{`) {
		e.Trace = r.trace()
	}
	r.expect(`,`)
	if r.err == nil && r.i != len(r.b) {
		r.fail("a field this version does not know, or fields out of Sign's order")
	}
	if r.err != nil {
		return nil, r.err
	}
	if !isCompactJSON(e.Args) {
		return nil, fmt.Errorf("%w: args not compact JSON as json.Marshal writes it", ErrMalformed)
	}
	if e.Caller != nil && !isCompactJSON(e.Caller) {
		return nil, fmt.Errorf("%w: caller block not compact JSON as json.Marshal writes it", ErrMalformed)
	}
	if err := e.check(); err != nil {
		return nil, err
	}
	if e.KeyID == "" {
		return nil, fmt.Errorf("%w: unsigned", ErrBadSignature)
	}
	return e, nil
}

// encodeV2 writes e, normalized and checked, as a version 2 envelope signed with key.
func (k *Keyring) encodeV2(e *Envelope) ([]byte, error) {
	b := make([]byte, 0, 384+len(e.Args)+len(e.Caller)+traceSize(e.Trace)+sealedSize(e.Sealed))
	b = append(b, v2Start...)
	b = appendString(b, e.KeyID)
	b = append(b, `,"id":`...)
	b = appendString(b, e.ID)
	b = append(b, `,"kind":`...)
	b = appendString(b, e.Kind)
	b = append(b, `,"queue":`...)
	b = appendString(b, e.Queue)
	b = append(b, `,"schema":`...)
	b = appendString(b, e.Schema)
	b = append(b, `,"attempt":`...)
	b = strconv.AppendInt(b, int64(e.Attempt), 10)
	b = append(b, `,"max_retries":`...)
	b = strconv.AppendInt(b, int64(e.MaxRetries), 10)
	if e.TimeoutMS != 0 {
		b = append(b, `,"timeout_ms":`...)
		b = strconv.AppendInt(b, e.TimeoutMS, 10)
	}
	var err error
	b = append(b, `,"submitted_at":`...)
	if b, err = appendTime(b, "submitted_at", e.SubmittedAt); err != nil {
		return nil, err
	}
	if !e.NotAfter.IsZero() {
		b = append(b, `,"not_after":`...)
		if b, err = appendTime(b, "not_after", e.NotAfter); err != nil {
			return nil, err
		}
	}
	if len(e.Caller) > 0 {
		b = append(b, `,"caller":`...)
		b = append(b, e.Caller...)
	}
	if e.Sealed != nil {
		b = append(b, `,"sealed":{"kid":`...)
		b = appendString(b, e.Sealed.KeyID)
		b = append(b, `,"data":"`...)
		b = base64.StdEncoding.AppendEncode(b, e.Sealed.Data)
		b = append(b, `"}`...)
	}
	b = append(b, `,"args":`...)
	b = append(b, e.Args...)
	if len(e.Trace) > 0 {
		keys := make([]string, 0, len(e.Trace))
		for tk := range e.Trace {
			keys = append(keys, tk)
		}
		sort.Strings(keys)
		b = append(b, `,"trace":{`...)
		for i, tk := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, tk)
			b = append(b, ':')
			b = appendString(b, e.Trace[tk])
		}
		b = append(b, '}')
	}
	b = append(b, ',')
	e.Sig = k.macV2(0, b)
	b = append(b, sigField...)
	b = base64.StdEncoding.AppendEncode(b, e.Sig)
	return append(b, sigEnd...), nil
}

func traceSize(t map[string]string) int {
	n := 0
	for k, v := range t {
		n += len(k) + len(v) + 6
	}
	return n
}

func sealedSize(s *Sealed) int {
	if s == nil {
		return 0
	}
	return len(s.KeyID) + base64.StdEncoding.EncodedLen(len(s.Data)) + 32
}

// appendTime appends t as json.Marshal writes a time.Time, refusing, as it does, a year
// that RFC 3339 cannot write.
func appendTime(b []byte, name string, t time.Time) ([]byte, error) {
	if y := t.Year(); y < 0 || y > 9999 {
		return nil, fmt.Errorf("%w: %s %s is outside the years 0 to 9999 that RFC 3339 writes", ErrMalformed, name, t)
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), nil
}

// plainByte reports whether json.Marshal writes byte c of a string as itself: printable
// ASCII but for the quote, the backslash and the HTML characters it escapes.
func plainByte(c byte) bool {
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
}

// appendString appends s as json.Marshal writes it. Plain ASCII, what nearly every id,
// kind and key is, is copied; anything else goes through json.Marshal itself, so the
// escapes are Marshal's by construction.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// strictBase64 decodes s as json.Marshal writes a []byte: standard base64 with padding,
// no line breaks, no unused bits set.
func strictBase64(s []byte) ([]byte, error) {
	for _, c := range s {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, fmt.Errorf("%w: byte %q in base64", ErrMalformed, c)
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Strict().Decode(out, s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	return out[:n], nil
}

// reader parses the fixed grammar of a version 2 envelope. Its first error sticks: every
// later call returns a zero value, so a parse reads as a list of fields, checked once at
// the end.
type reader struct {
	b   []byte
	i   int
	err error
}

func (r *reader) fail(why string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: not in the form Sign writes: %s at byte %d", ErrMalformed, why, r.i)
	}
}

// expect consumes s, which must come next.
func (r *reader) expect(s string) {
	if r.err == nil && !r.peek(s) {
		r.fail(fmt.Sprintf("want %s", s))
	}
}

// peek consumes s if it comes next and reports whether it did.
func (r *reader) peek(s string) bool {
	if r.err != nil || len(r.b)-r.i < len(s) || string(r.b[r.i:r.i+len(s)]) != s {
		return false
	}
	r.i += len(s)
	return true
}

// str reads a JSON string spelled as json.Marshal spells it. A string of plain bytes is
// taken as it is; one with an escape or a non-ASCII character is decoded by encoding/json
// and refused unless appendString writes it back to the same bytes.
func (r *reader) str() string {
	if r.err != nil {
		return ""
	}
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		r.fail("want a string")
		return ""
	}
	start := r.i
	plain := true
	for j := start + 1; j < len(r.b); j++ {
		switch c := r.b[j]; {
		case c == '"':
			r.i = j + 1
			if plain {
				return string(r.b[start+1 : j])
			}
			var s string
			if err := json.Unmarshal(r.b[start:r.i], &s); err != nil || !bytes.Equal(appendString(nil, s), r.b[start:r.i]) {
				r.i = start
				r.fail("a string not spelled as json.Marshal spells it")
				return ""
			}
			return s
		case c == '\\':
			plain = false
			j++
		case c < 0x20:
			r.i = j
			r.fail("a control character in a string")
			return ""
		case !plainByte(c):
			plain = false
		}
	}
	r.fail("an unterminated string")
	return ""
}

// num reads a non-negative integer in its one decimal spelling (no sign, no leading
// zero, no fraction or exponent) that fits in bits bits.
func (r *reader) num(bits int) int64 {
	if r.err != nil {
		return 0
	}
	j := r.i
	for j < len(r.b) && r.b[j] >= '0' && r.b[j] <= '9' {
		j++
	}
	digits := r.b[r.i:j]
	if len(digits) == 0 || len(digits) > 1 && digits[0] == '0' {
		r.fail("want a non-negative integer in its shortest decimal form")
		return 0
	}
	n, err := strconv.ParseInt(string(digits), 10, bits)
	if err != nil {
		r.fail("an integer out of range")
		return 0
	}
	r.i = j
	return n
}

// time reads a time as json.Marshal writes a UTC time.Time: RFC 3339 with the shortest
// fraction and "Z".
func (r *reader) time() time.Time {
	if r.err != nil {
		return time.Time{}
	}
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		r.fail("want a time")
		return time.Time{}
	}
	end := bytes.IndexByte(r.b[r.i+1:], '"')
	if end < 0 {
		r.fail("an unterminated time")
		return time.Time{}
	}
	t, ok := parseUTC(r.b[r.i+1 : r.i+1+end])
	if !ok {
		r.fail("a time not in UTC as json.Marshal writes it")
		return time.Time{}
	}
	r.i += end + 2
	return t
}

// base64 reads a []byte as json.Marshal writes it.
func (r *reader) base64() []byte {
	if r.err != nil {
		return nil
	}
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		r.fail("want base64")
		return nil
	}
	end := bytes.IndexByte(r.b[r.i+1:], '"')
	if end < 0 {
		r.fail("unterminated base64")
		return nil
	}
	out, err := strictBase64(r.b[r.i+1 : r.i+1+end])
	if err != nil {
		r.fail("base64 not as json.Marshal writes it")
		return nil
	}
	r.i += end + 2
	return out
}

// raw returns the extent of the JSON value that starts here. It only finds where a
// well-formed value ends; parseV2 then refuses the value unless it is the compact JSON
// json.Marshal writes, which also refuses whatever is not well formed.
func (r *reader) raw() json.RawMessage {
	if r.err != nil {
		return nil
	}
	start, depth := r.i, 0
	for j := start; j < len(r.b); j++ {
		switch r.b[j] {
		case '"':
			for j++; j < len(r.b) && r.b[j] != '"'; j++ {
				if r.b[j] == '\\' {
					j++
				}
			}
		case '{', '[':
			depth++
			continue
		case '}', ']':
			depth--
		case ',':
			if depth == 0 {
				r.i = j
				return r.value(start)
			}
			continue
		default:
			continue
		}
		if depth <= 0 {
			r.i = j + 1
			return r.value(start)
		}
	}
	r.fail("an unterminated JSON value")
	return nil
}

func (r *reader) value(start int) json.RawMessage {
	if r.i <= start || r.i > len(r.b) {
		r.fail("want a JSON value")
		return nil
	}
	return json.RawMessage(r.b[start:r.i:r.i])
}

// trace reads the entries of a trace carrier after its '{': keys in increasing order
// (json.Marshal sorts a map's keys, so a repeated key is refused) up to the closing '}'.
// CheckTrace, in check, judges the keys and values.
func (r *reader) trace() map[string]string {
	t := map[string]string{}
	last := ""
	for r.err == nil {
		key := r.str()
		if r.err == nil && len(t) > 0 && key <= last {
			r.fail("trace carrier keys not in increasing order")
		}
		r.expect(":")
		t[key] = r.str()
		last = key
		if len(t) > MaxTraceEntries {
			r.fail("too many trace carrier entries")
		}
		if r.peek("}") {
			return t
		}
		r.expect(",")
	}
	return nil
}

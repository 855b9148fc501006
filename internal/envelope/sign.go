package envelope

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// MinKeySize is the shortest signing key accepted: HMAC-SHA256 wants at least its output size.
const MinKeySize = 32

// Key is one named HMAC-SHA256 signing key.
type Key struct {
	ID     string
	Secret []byte
	// Retired, when set, makes the key verify only, and only until then: a key being
	// rotated out stops being accepted at a time the operator chose. A retired key never
	// signs.
	Retired time.Time
}

// Keyring signs and verifies envelopes and seals and opens caller blocks. The first
// signing key signs; every key verifies, which is how keys are rotated: add the new key
// second everywhere, then move it first, then drop the old one.
type Keyring struct {
	scope   string // the key prefix: an envelope signed under one prefix is refused under another
	signing []Key
	seal    cipher.AEAD // what SetCaller seals with; nil: caller blocks travel plain (but signed)
	sealID  string
	// opens holds every seal key that opens a caller block, by seal key id: the given
	// seal key, and the keys derived from each signing key (see derivedSeal).
	opens map[string]cipher.AEAD
	// writes is the version Sign gives a new envelope: Version until WritingVersion
	// says otherwise (see the package documentation on rolling deploys).
	writes int
	// v2Prefixes holds, for each signing key, the start of the version 2 envelopes it
	// signs (see v2Prefix): how Open finds the key before parsing anything.
	v2Prefixes [][]byte
	// macs holds, for each signing key, the pool of its HMACs (see sum); v2Head is what
	// they take in before a version 2 text (see macV2).
	macs   []*sync.Pool
	v2Head []byte
}

// derivedPrefix starts the id of a seal key derived from a signing key.
const derivedPrefix = "hkdf:"

// derivedSeal returns the AES-256 seal key derived from signing key k for scope, with
// HKDF-SHA256: a deployment that gives no seal key seals with the one derived from its
// first signing key, and every keyring opens blocks sealed with the key derived from any
// of its signing keys, so sealing rotates with the signing keys and needs no key of its
// own. Knowing a derived key tells nothing of the signing key.
func derivedSeal(scope string, k Key) (cipher.AEAD, string, error) {
	key, err := hkdf.Key(sha256.New, k.Secret, nil, "taskgen.caller-seal.v1\x00"+scope, 32)
	if err != nil {
		return nil, "", fmt.Errorf("derive the seal key of signing key %q: %w", k.ID, err)
	}
	block, _ := aes.NewCipher(key) // 32 bytes: AES-256
	aead, _ := cipher.NewGCM(block)
	return aead, derivedPrefix + k.ID, nil
}

// NewKeyring checks the keys and builds a Keyring for envelopes of one scope (the Redis
// key prefix): the scope is covered by every signature and seal, so an envelope copied
// from one deployment's keys to another's is refused even where both share signing keys.
// At least one signing key is required. sealKey, when not nil, must be 16, 24 or 32
// bytes (AES-128/192/256): SetCaller seals with it. With a nil sealKey, SetCaller writes
// caller blocks plain; NewDerivedKeyring seals with a key derived from the signing keys.
// Every keyring opens blocks sealed with its seal key or with a key derived from any of
// its signing keys.
func NewKeyring(scope string, signing []Key, sealKey []byte) (*Keyring, error) {
	if len(signing) == 0 {
		return nil, errors.New("no signing key: give one with task.WithSigningKey(id, key); every client and worker of a deployment needs the same keys")
	}
	seen := map[string]bool{}
	for _, k := range signing {
		if k.ID == "" {
			return nil, errors.New("signing key with an empty id")
		}
		if !utf8.ValidString(k.ID) {
			return nil, fmt.Errorf("signing key id %q is not valid UTF-8", k.ID)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("signing key id %q given twice", k.ID)
		}
		seen[k.ID] = true
		if len(k.Secret) < MinKeySize {
			return nil, fmt.Errorf("signing key %q is %d bytes; use at least %d random bytes", k.ID, len(k.Secret), MinKeySize)
		}
	}
	if !signing[0].Retired.IsZero() {
		return nil, fmt.Errorf("signing key %q is retired, and the first key signs: give a key that is not retired first", signing[0].ID)
	}
	kr := &Keyring{scope: scope, signing: append([]Key(nil), signing...), opens: map[string]cipher.AEAD{}, writes: Version, v2Head: v2Head(scope)}
	for _, k := range signing {
		kr.v2Prefixes = append(kr.v2Prefixes, v2Prefix(k.ID))
		kr.macs = append(kr.macs, macPool(k.Secret))
		aead, id, err := derivedSeal(scope, k)
		if err != nil {
			return nil, err
		}
		kr.opens[id] = aead
	}
	if sealKey != nil {
		block, err := aes.NewCipher(sealKey)
		if err != nil {
			return nil, fmt.Errorf("seal key: %w (use 16, 24 or 32 random bytes)", err)
		}
		kr.seal, _ = cipher.NewGCM(block) // cannot fail for a standard AES block
		sum := sha256.Sum256(sealKey)
		kr.sealID = hex.EncodeToString(sum[:4]) // names the key without revealing it
		kr.opens[kr.sealID] = kr.seal
	}
	return kr, nil
}

// NewDerivedKeyring is NewKeyring sealing every caller block with the key derived from
// the first signing key (see derivedSeal): sealed by default, with no key to manage.
func NewDerivedKeyring(scope string, signing []Key) (*Keyring, error) {
	kr, err := NewKeyring(scope, signing, nil)
	if err != nil {
		return nil, err
	}
	kr.sealID = derivedPrefix + signing[0].ID
	kr.seal = kr.opens[kr.sealID]
	return kr, nil
}

// SetCaller stores c in e: sealed when the keyring has a seal key, plain otherwise. A nil
// c leaves the envelope without a caller block. Call it after e.ID is set: the seal is
// bound to the id. The expiry is stored in UTC; a user id, token or scope that is not
// valid UTF-8 is refused, since JSON would silently replace its bad bytes.
func (k *Keyring) SetCaller(e *Envelope, c *Caller) error {
	e.Caller, e.Sealed = nil, nil
	if c == nil {
		return nil
	}
	if !utf8.ValidString(c.UserID) || !utf8.ValidString(c.Token) {
		return fmt.Errorf("encode caller: %w: user id or token is not valid UTF-8", ErrMalformed)
	}
	for _, s := range c.Scopes {
		if !utf8.ValidString(s) {
			return fmt.Errorf("encode caller: %w: scope %q is not valid UTF-8", ErrMalformed, s)
		}
	}
	wire := *c
	wire.ExpiresAt = c.ExpiresAt.Round(0).UTC()
	plain, err := appendCaller(make([]byte, 0, 64+len(c.UserID)+len(c.Token)+16*len(c.Scopes)), &wire)
	if err != nil {
		return fmt.Errorf("encode caller: %w", err) // an expiry outside the years 0 to 9999
	}
	if k.seal == nil {
		e.Caller = plain
		return nil
	}
	nonce := make([]byte, k.seal.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return fmt.Errorf("seal caller: %w", err)
	}
	e.Sealed = &Sealed{KeyID: k.sealID, Data: k.seal.Seal(nonce, nonce, plain, k.sealAD(e.ID))}
	return nil
}

// Caller returns the envelope's caller block, opening the seal if there is one; nil when
// the envelope carries none. Verify the envelope first. Like Open, it reads only the form
// SetCaller writes.
func (k *Keyring) Caller(e *Envelope) (*Caller, error) {
	plain := []byte(e.Caller)
	if e.Sealed != nil {
		aead := k.opens[e.Sealed.KeyID]
		if aead == nil {
			return nil, fmt.Errorf("%w: caller block sealed with key %s, which this worker lacks (it has %s); give it the same seal key (task.WithSealKey) or signing keys as the client", ErrBadSignature, e.Sealed.KeyID, k.sealIDs())
		}
		n := aead.NonceSize()
		if len(e.Sealed.Data) < n {
			return nil, fmt.Errorf("%w: sealed caller block too short", ErrMalformed)
		}
		var err error
		plain, err = aead.Open(nil, e.Sealed.Data[:n], e.Sealed.Data[n:], k.sealAD(e.ID))
		if err != nil {
			return nil, fmt.Errorf("%w: sealed caller block does not open", ErrBadSignature)
		}
	}
	if len(plain) == 0 {
		return nil, nil
	}
	if c, ok := parseCaller(plain); ok {
		return c, nil
	}
	var c Caller
	if !utf8.Valid(plain) {
		return nil, fmt.Errorf("caller block: %w: not valid UTF-8", ErrMalformed)
	}
	if err := decodeStrict(plain, &c); err != nil {
		return nil, fmt.Errorf("caller block: %w", err)
	}
	if err := canonical(plain, &c); err != nil {
		return nil, fmt.Errorf("caller block: %w", err)
	}
	return &c, nil
}

// sealIDs lists the ids of the seal keys that open caller blocks, sorted.
func (k *Keyring) sealIDs() []string {
	ids := make([]string, 0, len(k.opens))
	for id := range k.opens {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// sealAD binds a sealed caller block to its scope and task, so a sealed block copied
// into another task's envelope does not open.
func (k *Keyring) sealAD(id string) []byte {
	return []byte("taskgen.caller.v1\x00" + k.scope + "\x00" + id)
}

// WritingVersion returns a copy of k whose Sign writes new envelopes in format version
// (Version or Version2); both read both. Turn Version2 on only once every worker that
// may read the envelopes runs a release that reads it (see the package documentation).
func (k *Keyring) WritingVersion(version int) (*Keyring, error) {
	if version != Version && version != Version2 {
		return nil, fmt.Errorf("envelope version %d: this release writes version %d or %d", version, Version, Version2)
	}
	c := *k
	c.writes = version
	return &c, nil
}

// Sign sets e's key id and signature (with the first signing key) and returns the
// encoded envelope, in the version e has (an envelope re-signed for a retry keeps its
// format) or, for a new envelope (Version 0), the one the keyring writes (see
// WritingVersion). It first puts e's args and caller block in compact form and its
// submission time in UTC, and refuses (with ErrMalformed) an envelope that Open would
// refuse: no id, kind, queue or args, a negative or overlong limit, text that is not UTF-8.
func (k *Keyring) Sign(e *Envelope) ([]byte, error) {
	if e.Version == 0 {
		e.Version = k.writes
	}
	e.KeyID = k.signing[0].ID
	e.Sig = nil
	if err := e.normalize(); err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if err := e.check(); err != nil {
		return nil, fmt.Errorf("encode envelope: %w", err)
	}
	if e.Version == Version2 {
		data, err := k.encodeV2(e)
		if err != nil {
			return nil, fmt.Errorf("encode envelope: %w", err)
		}
		return data, nil
	}
	e.Sig = k.mac(0, e)
	data, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("encode envelope: %w: %v", ErrMalformed, err) // a time outside the years 0 to 9999
	}
	return data, nil
}

// Open verifies data and decodes it. It refuses data longer than maxSize (0:
// DefaultMaxSize) before reading it, and data that is not exactly what Sign writes (see
// the package documentation). A version 2 envelope is verified before it is parsed; a
// version 1 envelope, whose signature covers decoded values, is decoded, verified, then
// checked against the one text Sign writes for it.
func (k *Keyring) Open(data []byte, maxSize int) (*Envelope, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), maxSize)
	}
	if bytes.HasPrefix(data, []byte(v2Start)) {
		return k.openV2(data)
	}
	e, err := decode(data)
	if err != nil {
		return nil, err
	}
	for i, key := range k.signing {
		if key.ID == e.KeyID {
			if !key.Retired.IsZero() && time.Now().After(key.Retired) {
				return nil, fmt.Errorf("%w: signed with key %q, retired since %s", ErrBadSignature, e.KeyID, key.Retired.UTC().Format(time.RFC3339))
			}
			if !hmac.Equal(k.mac(i, e), e.Sig) {
				return nil, fmt.Errorf("%w: signature does not match (key %q)", ErrBadSignature, e.KeyID)
			}
			if err := canonical(data, e); err != nil {
				return nil, err
			}
			return e, nil
		}
	}
	return nil, fmt.Errorf("%w: unknown key id %q", ErrBadSignature, e.KeyID)
}

// mac is the version 1 signature of e under signing key i.
func (k *Keyring) mac(i int, e *Envelope) []byte {
	return k.sum(i, signedBytes(k.scope, e))
}

// sum is the HMAC-SHA256 of chunks, in order, under signing key i. It takes the key's
// HMAC from a pool: an HMAC reset after its first use restores its keyed state instead
// of hashing the padded key again, and the pool saves allocating one per MAC, which a
// task costs three of (its signature, checked, and its outcome's).
func (k *Keyring) sum(i int, chunks ...[]byte) []byte {
	pool := k.macs[i]
	h := pool.Get().(hash.Hash)
	h.Reset()
	for _, c := range chunks {
		h.Write(c)
	}
	out := h.Sum(make([]byte, 0, sha256.Size))
	pool.Put(h)
	return out
}

// macPool returns the pool of HMAC-SHA256 under secret that sum draws from.
func macPool(secret []byte) *sync.Pool {
	return &sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}
}

// signedForm names the byte form signedBytes writes: the envelope version, then the
// revision of the form. Change it with signedBytes, so that one revision's bytes are
// never read as another's. Revision 2 signs times as seconds and nanoseconds (revision 1
// signed Unix nanoseconds, which wrap outside the years 1678 to 2262): envelopes signed
// before it no longer verify.
const signedForm = "taskgen.envelope.v1/2"

// signedBytes is the canonical form the signature covers: a domain tag, the scope, then
// every field but the signature, each as a uvarint length and its bytes, in a fixed order. Length
// prefixes make the encoding unambiguous; the raw JSON of args and caller is signed as it
// stands in the envelope, so any change to it, whitespace included, breaks the signature.
// A time is signed as its Unix seconds and nanoseconds, which hold every time.Time exactly.
func signedBytes(scope string, e *Envelope) []byte {
	// Sized for the fields and their prefixes: one allocation per signature.
	b := make([]byte, 0, 160+len(scope)+len(e.KeyID)+len(e.ID)+len(e.Kind)+len(e.Queue)+len(e.Schema)+len(e.Caller)+len(e.Args)+sealedLen(e.Sealed))
	b = appendField(b, signedForm)
	b = appendField(b, scope)
	b = appendNum(b, int64(e.Version))
	b = appendField(b, e.KeyID)
	b = appendField(b, e.ID)
	b = appendField(b, e.Kind)
	b = appendField(b, e.Queue)
	b = appendField(b, e.Schema)
	b = appendNum(b, int64(e.Attempt))
	b = appendNum(b, int64(e.MaxRetries))
	b = appendNum(b, e.TimeoutMS)
	b = appendNum(b, e.SubmittedAt.Unix())
	b = appendNum(b, int64(e.SubmittedAt.Nanosecond()))
	b = appendField(b, e.Caller)
	if e.Sealed != nil {
		b = appendField(b, "sealed")
		b = appendField(b, e.Sealed.KeyID)
		b = appendField(b, e.Sealed.Data)
	} else {
		b = appendField(b, "plain")
	}
	b = appendField(b, e.Args)
	// Appended only when set, so envelopes signed before it existed verify unchanged;
	// args is length-prefixed, so nothing else can end with these bytes.
	if !e.NotAfter.IsZero() {
		b = appendField(b, "not_after")
		b = appendNum(b, e.NotAfter.Unix())
		b = appendNum(b, int64(e.NotAfter.Nanosecond()))
	}
	// Likewise appended only when set: envelopes without a trace sign as before.
	if len(e.Trace) > 0 {
		appendTrace(e.Trace, func(s string) { b = appendField(b, s) })
	}
	return b
}

// appendField appends f to b as signedBytes writes a field: its length as a uvarint,
// then its bytes.
func appendField[T ~string | ~[]byte](b []byte, f T) []byte {
	b = binary.AppendUvarint(b, uint64(len(f)))
	return append(b, f...)
}

// appendNum appends n to b as a field holding its decimal text.
func appendNum(b []byte, n int64) []byte {
	var digits [20]byte
	return appendField(b, strconv.AppendInt(digits[:0], n, 10))
}

// sealedLen is the length of a sealed caller block's key id and data, 0 for none.
func sealedLen(s *Sealed) int {
	if s == nil {
		return 0
	}
	return len(s.KeyID) + len(s.Data)
}

// Outcome is how a task finished, as a worker writes it to the task's state and a client
// reads it back: Result trusts only an outcome whose MAC verifies, so whoever can write
// Redis but holds no signing key cannot forge the result a client reads.
type Outcome struct {
	TaskID string
	State  string // the final state: succeeded or dead
	Result []byte // for a task that succeeded
	Reason string // for a task that failed
	Error  string
}

// outcomeForm names the byte form an outcome MAC covers; it differs from signedForm, so
// an envelope signature never verifies as an outcome or the other way round.
const outcomeForm = "taskgen.outcome.v1"

// SignOutcome returns the MAC of o, as "<key id>:<base64>", under the signing key keyID
// (the key that signed the task's envelope, so the client that submitted it can verify
// its outcome whatever the worker signs with now), or under the first signing key when
// the keyring has no key keyID. Attempt counts and times are not covered: they are
// informational.
func (k *Keyring) SignOutcome(o Outcome, keyID string) string {
	i := 0
	for j, s := range k.signing {
		if s.ID == keyID && s.Retired.IsZero() {
			i = j
		}
	}
	return k.signing[i].ID + ":" + base64.StdEncoding.EncodeToString(k.outcomeMAC(i, o))
}

// VerifyOutcome checks mac, as SignOutcome writes it, against o with the signing key it
// names; it returns an error wrapping ErrBadSignature when it does not verify.
func (k *Keyring) VerifyOutcome(o Outcome, mac string) error {
	id, sum, ok := strings.Cut(mac, ":")
	if !ok {
		return fmt.Errorf("%w: the outcome of %s carries no MAC", ErrBadSignature, o.TaskID)
	}
	want, err := base64.StdEncoding.DecodeString(sum)
	if err != nil {
		return fmt.Errorf("%w: the outcome MAC of %s is not base64", ErrBadSignature, o.TaskID)
	}
	for i, key := range k.signing {
		if key.ID == id {
			if !hmac.Equal(k.outcomeMAC(i, o), want) {
				return fmt.Errorf("%w: the outcome of %s does not match its MAC (key %q)", ErrBadSignature, o.TaskID, id)
			}
			return nil
		}
	}
	return fmt.Errorf("%w: the outcome of %s is signed with unknown key id %q", ErrBadSignature, o.TaskID, id)
}

// outcomeMAC is the MAC of o under signing key i.
func (k *Keyring) outcomeMAC(i int, o Outcome) []byte {
	b := make([]byte, 0, 32+len(outcomeForm)+len(k.scope)+len(o.TaskID)+len(o.State)+len(o.Result)+len(o.Reason)+len(o.Error))
	b = appendField(b, outcomeForm)
	b = appendField(b, k.scope)
	b = appendField(b, o.TaskID)
	b = appendField(b, o.State)
	b = appendField(b, o.Result)
	b = appendField(b, o.Reason)
	b = appendField(b, o.Error)
	return k.sum(i, b)
}

// vouchForm names the byte form a vouch covers.
const vouchForm = "taskgen.vouch.v1"

// Vouch returns a worker's word, under its first signing key, that data was verified as
// the envelope of task id when it was dead-lettered: with it, an operator may have the
// envelope re-signed after the key that signed it is gone (see CheckVouch).
func (k *Keyring) Vouch(data []byte, id string) string {
	return k.signing[0].ID + ":" + base64.StdEncoding.EncodeToString(k.vouchMAC(0, data, id))
}

// CheckVouch reports whether vouch, as Vouch writes it, is a worker's word under one of
// the keyring's keys that data was the verified envelope of task id; an error wrapping
// ErrBadSignature says why not.
func (k *Keyring) CheckVouch(data []byte, id, vouch string) error {
	kid, sum, ok := strings.Cut(vouch, ":")
	want, err := base64.StdEncoding.DecodeString(sum)
	if !ok || err != nil {
		return fmt.Errorf("%w: no worker vouched for the envelope of %s when it was dead-lettered", ErrBadSignature, id)
	}
	for i, key := range k.signing {
		if key.ID == kid && hmac.Equal(k.vouchMAC(i, data, id), want) {
			return nil
		}
	}
	return fmt.Errorf("%w: the vouch for the envelope of %s does not verify with this keyring's keys", ErrBadSignature, id)
}

// vouchMAC is the vouch for data as the envelope of task id under signing key i.
func (k *Keyring) vouchMAC(i int, data []byte, id string) []byte {
	digest := sha256.Sum256(data)
	var b []byte
	b = appendField(b, vouchForm)
	b = appendField(b, k.scope)
	b = appendField(b, id)
	b = appendField(b, digest[:])
	return k.sum(i, b)
}

// decodeUnverified parses data of either version, in the one text Sign writes, without
// verifying its signature.
func decodeUnverified(data []byte) (*Envelope, error) {
	if bytes.HasPrefix(data, []byte(v2Start)) {
		return decodeV2(data)
	}
	e, err := decode(data)
	if err == nil {
		err = canonical(data, e)
	}
	if err != nil {
		return nil, err
	}
	return e, nil
}

// Resign signs, with the keyring's first key, the envelope data without verifying its
// signature. Call it only for an envelope whose integrity is vouched for otherwise
// (CheckVouch). The caller block is kept as it is: it must still open with this keyring,
// or the re-signed envelope is refused with ErrBadSignature as the original would be.
func (k *Keyring) Resign(data []byte, change func(*Envelope)) ([]byte, *Envelope, error) {
	e, err := decodeUnverified(data)
	if err != nil {
		return nil, nil, err
	}
	if _, err := k.Caller(e); err != nil {
		return nil, nil, fmt.Errorf("re-sign %s: its caller block does not open with this keyring (%w); the task cannot run as its caller again: submit it anew", e.ID, err)
	}
	if change != nil {
		change(e)
	}
	out, err := k.Sign(e)
	return out, e, err
}

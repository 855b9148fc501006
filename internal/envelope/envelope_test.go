package envelope

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

var (
	keyA    = Key{ID: "a", Secret: bytes.Repeat([]byte{1}, 32)}
	keyB    = Key{ID: "b", Secret: bytes.Repeat([]byte{2}, 32)}
	sealKey = bytes.Repeat([]byte{7}, 32)
)

func keyring(t *testing.T, seal []byte, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewKeyring("taskgen", keys, seal)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sample() *Envelope {
	return &Envelope{
		ID: "email/01JAAAAAAAAAAAAAAAAAAAAAAA", Kind: "email.send", Queue: "email", Schema: "v1:abc",
		MaxRetries: 3, TimeoutMS: 1000, SubmittedAt: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC),
		NotAfter: time.Date(2026, 1, 9, 3, 4, 5, 0, time.UTC),
		Args:     json.RawMessage(`{"to":"a@example.com"}`),
	}
}

func signed(t *testing.T, k *Keyring, c *Caller) []byte {
	t.Helper()
	e := sample()
	if err := k.SetCaller(e, c); err != nil {
		t.Fatal(err)
	}
	data, err := k.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestOpenReturnsWhatWasSigned(t *testing.T) {
	k := keyring(t, nil, keyA)
	want := &Caller{UserID: "u1", Token: "tok", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
	e, err := k.Open(signed(t, k, want), 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != "email.send" || e.Queue != "email" || string(e.Args) != `{"to":"a@example.com"}` || e.Timeout() != time.Second {
		t.Errorf("opened envelope differs: %+v", e)
	}
	got, err := k.Caller(e)
	if err != nil {
		t.Fatal(err)
	}
	if got.UserID != want.UserID || got.Token != want.Token || !got.ExpiresAt.Equal(want.ExpiresAt) || got.Scopes[0] != "read" {
		t.Errorf("caller = %+v, want %+v", got, want)
	}
}

// Every field that affects execution is covered by the signature: changing, adding or
// removing any one of them in the signed bytes makes Open refuse the envelope as forged.
//
// Each case edits the bytes Sign wrote in place, so that everything else stays byte for
// byte as signed. Re-encoding the envelope instead (say through a map[string]any, which
// sorts the caller block's keys) breaks the signature by itself, and every case would pass
// whatever the signature covers. So the untouched bytes must open first, and each edit
// must fail with ErrBadSignature: ErrMalformed would say nothing about the signature.
func TestOpenRefusesEveryTamperedField(t *testing.T) {
	// Key c has key a's secret: only the signed key id tells their signatures apart.
	keys := []Key{keyA, {ID: "c", Secret: keyA.Secret}}
	plain, sealed := keyring(t, nil, keys...), keyring(t, sealKey, keys...)
	caller := &Caller{UserID: "u1", Token: "tok", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
	withCaller, noCaller, withSeal := signed(t, plain, caller), signed(t, plain, nil), signed(t, sealed, caller)
	for _, data := range [][]byte{withCaller, noCaller, withSeal} {
		if _, err := sealed.Open(data, 0); err != nil {
			t.Fatalf("untouched envelope does not open: %v\n%s", err, data)
		}
	}
	e, _ := sealed.Open(withSeal, 0)
	sealedKID, sealedData := e.Sealed.KeyID, base64.StdEncoding.EncodeToString(e.Sealed.Data)
	sealedBlock := `"sealed":{"kid":"` + sealedKID + `","data":"` + sealedData + `"}`
	otherKID := "00000000"
	if sealedKID == otherKID {
		otherKID = "11111111"
	}
	// Unix nanoseconds wrap every 2^64 ns (about 584 years): a signed form built on them
	// cannot tell these two times apart.
	wrapped := sample().SubmittedAt.Add(math.MaxInt64).Add(math.MaxInt64).Add(2).Format(time.RFC3339Nano)
	otherData := []byte(sealedData)
	otherData[10] = base64Flip(otherData[10], 1) // a full sextet, so the text stays canonical base64
	cases := []struct {
		name     string
		data     []byte
		from, to string
	}{
		{"id", withCaller, `"id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA"`, `"id":"email/01JBBBBBBBBBBBBBBBBBBBBBBB"`},
		{"kind", withCaller, `"kind":"email.send"`, `"kind":"email.other"`},
		{"queue", withCaller, `"queue":"email"`, `"queue":"other"`},
		{"schema", withCaller, `"schema":"v1:abc"`, `"schema":"v1:def"`},
		{"attempt", withCaller, `"attempt":0`, `"attempt":1`},
		{"max_retries", withCaller, `"max_retries":3`, `"max_retries":50`},
		{"timeout_ms", withCaller, `"timeout_ms":1000`, `"timeout_ms":99`},
		{"submitted_at", withCaller, `"submitted_at":"2026-`, `"submitted_at":"2027-`},
		{"submitted_at nanoseconds", withCaller, `05.000000006Z"`, `05.000000007Z"`},
		{"submitted_at 2^64 ns later", withCaller, `"submitted_at":"2026-01-02T03:04:05.000000006Z"`, `"submitted_at":"` + wrapped + `"`},
		{"args", withCaller, `"args":{"to":"a@example.com"}`, `"args":{"to":"evil@example.com"}`},
		{"kid", withCaller, `"kid":"a"`, `"kid":"c"`},
		{"caller user_id", withCaller, `"user_id":"u1"`, `"user_id":"admin"`},
		{"caller token", withCaller, `"token":"tok"`, `"token":"xyz"`},
		{"caller expires_at", withCaller, `"expires_at":"2030-`, `"expires_at":"2099-`},
		{"caller scopes", withCaller, `"scopes":["read"]`, `"scopes":["admin"]`},
		{"sealed kid", withSeal, `"kid":"` + sealedKID + `"`, `"kid":"` + otherKID + `"`},
		{"sealed data", withSeal, sealedData, string(otherData)},
		{"sealed block for a plain one", withSeal, sealedBlock, `"caller":{"user_id":"admin"}`},
		{"caller added", noCaller, `"args":`, `"caller":{"user_id":"admin"},"args":`},
		{"caller removed", withCaller, `,"caller":{"user_id":"u1","token":"tok","expires_at":"2030-01-01T00:00:00Z","scopes":["read"]}`, ``},
		{"sealed block removed", withSeal, `,` + sealedBlock, ``},
		{"caller token removed", withCaller, `"token":"tok",`, ``},
		{"caller expires_at removed", withCaller, `,"expires_at":"2030-01-01T00:00:00Z"`, ``},
		{"caller scopes removed", withCaller, `,"scopes":["read"]`, ``},
		{"schema removed", withCaller, `"schema":"v1:abc",`, ``},
		{"max_retries removed", withCaller, `"max_retries":3,`, ``},
		{"timeout_ms removed", withCaller, `"timeout_ms":1000,`, ``},
		{"submitted_at removed", withCaller, `"submitted_at":"2026-01-02T03:04:05.000000006Z",`, ``},
		{"not_after", withCaller, `"not_after":"2026-01-09T03:04:05Z"`, `"not_after":"2036-01-09T03:04:05Z"`},
		{"not_after removed", withCaller, `"not_after":"2026-01-09T03:04:05Z",`, ``},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := bytes.Count(c.data, []byte(c.from)); n != 1 {
				t.Fatalf("%s occurs %d times in the signed envelope, want once:\n%s", c.from, n, c.data)
			}
			forged := bytes.Replace(c.data, []byte(c.from), []byte(c.to), 1)
			if _, err := sealed.Open(forged, 0); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open after the edit: err = %v, want ErrBadSignature\n%s", err, forged)
			}
		})
	}
	// Open refuses any other version before it verifies (the version selects the signed
	// form), so the version's coverage shows in the signed form itself.
	t.Run("v", func(t *testing.T) {
		e, err := plain.Open(withCaller, 0)
		if err != nil {
			t.Fatal(err)
		}
		other := *e
		other.Version++
		if bytes.Equal(signedBytes("taskgen", e), signedBytes("taskgen", &other)) {
			t.Fatal("the signed form does not cover the version")
		}
	})
}

func TestRotationFirstKeySignsAllVerify(t *testing.T) {
	old := keyring(t, nil, keyA)
	rotated := keyring(t, nil, keyB, keyA)
	if _, err := rotated.Open(signed(t, old, nil), 0); err != nil {
		t.Fatalf("envelope signed with the old key: %v", err)
	}
	e, err := rotated.Open(signed(t, rotated, nil), 0)
	if err != nil {
		t.Fatal(err)
	}
	if e.KeyID != "b" {
		t.Errorf("signed with key %q, want the first key b", e.KeyID)
	}
	if _, err := old.Open(signed(t, rotated, nil), 0); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), "unknown key id") {
		t.Errorf("old keyring opened an envelope of an unknown key: %v", err)
	}
}

func TestSealedCallerHidesTokenAndIsBoundToTheTask(t *testing.T) {
	k := keyring(t, sealKey, keyA)
	// Neither name can appear by chance in base64, which has no '-'.
	data := signed(t, k, &Caller{UserID: "user-1", Token: "super-secret-token"})
	if bytes.Contains(data, []byte("super-secret-token")) || bytes.Contains(data, []byte("user-1")) {
		t.Fatalf("sealed envelope shows the caller in clear: %s", data)
	}
	e, err := k.Open(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.Caller(e)
	if err != nil || c.Token != "super-secret-token" {
		t.Fatalf("Caller = %+v, %v", c, err)
	}
	// The sealed block of one task does not open in another task's envelope.
	other := sample()
	other.ID = "email/01JCCCCCCCCCCCCCCCCCCCCCCC"
	other.Sealed = e.Sealed
	if _, err := k.Caller(other); !errors.Is(err, ErrBadSignature) {
		t.Errorf("sealed block moved to another task: err = %v, want ErrBadSignature", err)
	}
	if _, err := keyring(t, nil, keyA).Caller(e); !errors.Is(err, ErrBadSignature) {
		t.Errorf("worker without the seal key: err = %v, want ErrBadSignature", err)
	}
}

// With no seal key, a derived keyring seals with a key derived from its first signing
// key: the token is not in the envelope, a keyring holding that signing key (first or
// not: rotation) opens it, and one without it, or of another scope, does not.
func TestDerivedSealRotatesWithTheSigningKeys(t *testing.T) {
	derived := func(scope string, keys ...Key) *Keyring {
		t.Helper()
		k, err := NewDerivedKeyring(scope, keys)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	old := derived("taskgen", keyA)
	data := signed(t, old, &Caller{UserID: "u1", Token: "super-secret-token"})
	if bytes.Contains(data, []byte("super-secret-token")) || !bytes.Contains(data, []byte(`"kid":"hkdf:a"`)) {
		t.Fatalf("derived seal: %s", data)
	}
	for _, tt := range []struct {
		name string
		k    *Keyring
		want error
	}{
		{"the same keyring", old, nil},
		{"rotated: a new key first, the old one second", derived("taskgen", keyB, keyA), nil},
		{"a plain keyring with the signing key", keyring(t, nil, keyA), nil},
		{"the old key dropped", derived("taskgen", keyB), ErrBadSignature},
		{"another scope", derived("other", keyA), ErrBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e, err := keyring(t, nil, keyA).Open(data, 0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tt.k.Caller(e)
			if tt.want == nil && (err != nil || c.Token != "super-secret-token") {
				t.Errorf("Caller = %+v, %v; want the token", c, err)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Caller err = %v, want %v", err, tt.want)
			}
		})
	}
	if rotated := derived("taskgen", keyB, keyA); !bytes.Contains(signed(t, rotated, &Caller{UserID: "u1"}), []byte(`"kid":"hkdf:b"`)) {
		t.Error("a rotated keyring does not seal with the key derived from its new first signing key")
	}
}

// Every seal draws a fresh random nonce: AES-GCM with a repeated nonce leaks the XOR of
// the plaintexts and lets whoever sees two of them forge tags.
func TestSealingTwiceUsesFreshNonces(t *testing.T) {
	k := keyring(t, sealKey, keyA)
	want := Caller{UserID: "u1", Token: "tok"}
	var blocks [][]byte
	for range 2 {
		e := sample()
		if err := k.SetCaller(e, &want); err != nil {
			t.Fatal(err)
		}
		data, err := k.Sign(e)
		if err != nil {
			t.Fatal(err)
		}
		opened, err := k.Open(data, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := k.Caller(opened)
		if err != nil || got.UserID != want.UserID || got.Token != want.Token {
			t.Fatalf("Caller = %+v, %v; want %+v", got, err, want)
		}
		blocks = append(blocks, e.Sealed.Data)
	}
	n := k.seal.NonceSize()
	if bytes.Equal(blocks[0][:n], blocks[1][:n]) || bytes.Equal(blocks[0][n:], blocks[1][n:]) {
		t.Errorf("the same caller sealed twice for the same task gave the same nonce or ciphertext:\n%x\n%x", blocks[0], blocks[1])
	}
}

func TestOpenRefusesBadInput(t *testing.T) {
	k := keyring(t, nil, keyA)
	good := signed(t, k, &Caller{UserID: "u1"})
	sig := good[bytes.LastIndex(good, []byte(`"sig":"`))+7 : len(good)-2]
	// The last character before the padding carries two bits that base64 decoding ignores.
	looseSig := append([]byte(nil), sig...)
	looseSig[len(looseSig)-2] = base64Flip(looseSig[len(looseSig)-2], 1)
	replace := func(from, to string) []byte {
		t.Helper()
		if bytes.Count(good, []byte(from)) != 1 {
			t.Fatalf("%s is not once in %s", from, good)
		}
		return bytes.Replace(good, []byte(from), []byte(to), 1)
	}
	cat := func(parts ...string) []byte { return []byte(strings.Join(parts, "")) }
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":     {nil, ErrMalformed},
		"garbage":   {[]byte("\x00\xffnot json"), ErrMalformed},
		"truncated": {good[:len(good)/2], ErrMalformed},
		"null":      {[]byte("null"), ErrMalformed},
		"an array":  {[]byte("[]"), ErrMalformed},
		// Only the one object Sign writes: json.Decoder.More does not see a stray } or ].
		"trailing object":         {cat(string(good), `{}`), ErrMalformed},
		"trailing }":              {cat(string(good), `}`), ErrMalformed},
		"trailing }garbage":       {cat(string(good), `}garbage`), ErrMalformed},
		"trailing ]]]":            {cat(string(good), `]]]`), ErrMalformed},
		"trailing space":          {cat(string(good), " \n"), ErrMalformed},
		"leading space":           {cat(" ", string(good)), ErrMalformed},
		"wrong version":           {replace(`"v":1`, `"v":2`), ErrMalformed},
		"unknown field":           {replace(`{"v":1`, `{"x":1,"v":1`), ErrMalformed},
		"unknown caller field":    {replace(`"user_id":"u1"`, `"user_id":"u1","role":"admin"`), ErrBadSignature},
		"wrong type":              {replace(`"attempt":0`, `"attempt":"0"`), ErrMalformed},
		"missing kind":            {replace(`"kind":"email.send",`, ``), ErrMalformed},
		"unsigned":                {replace(`"kid":"a"`, `"kid":""`), ErrBadSignature},
		"too large":               {bytes.Repeat([]byte(" "), DefaultMaxSize+1), ErrTooLarge},
		"forged sig":              {forge(t, good), ErrBadSignature},
		"negative value":          {replace(`"max_retries":3`, `"max_retries":-1`), ErrMalformed},
		"huge number":             {replace(`"attempt":0`, `"attempt":1`+strings.Repeat("0", 400)), ErrMalformed},
		"float for an int":        {replace(`"attempt":0`, `"attempt":1e400`), ErrMalformed},
		"timeout beyond Duration": {replace(`"timeout_ms":1000`, `"timeout_ms":9223372036854776`), ErrMalformed},
		"deeply nested args":      {replace(`"args":{"to":"a@example.com"}`, `"args":`+strings.Repeat("[", 100_000)+strings.Repeat("]", 100_000)), ErrMalformed},
		"not UTF-8 in a string":   {replace(`"kind":"email.send"`, "\"kind\":\"email.send\xff\""), ErrMalformed},
		"not UTF-8 in args":       {replace(`"to":"a@example.com"`, "\"to\":\"a\xff@example.com\""), ErrMalformed},
		// The same values under the same signature in another text: encoding/json reads
		// them all alike, another JSON reader may not.
		"duplicate key":         {replace(`"kind":"email.send"`, `"kind":"email.evil","kind":"email.send"`), ErrMalformed},
		"differently cased key": {replace(`"kind":"email.send"`, `"KIND":"email.send"`), ErrMalformed},
		"keys in another order": {replace(`"kind":"email.send","queue":"email"`, `"queue":"email","kind":"email.send"`), ErrMalformed},
		"whitespace":            {replace(`"kind":"email.send"`, `"kind": "email.send"`), ErrMalformed},
		"escaped character":     {replace(`"kind":"email.send"`, `"kind":"email\u002esend"`), ErrMalformed},
		"line break in sig":     {replace(string(sig), string(sig[:20])+`\r\n`+string(sig[20:])), ErrMalformed},
		"unused bits in sig":    {replace(string(sig), string(looseSig)), ErrMalformed},
		"submitted_at not UTC":  {replace(`"2026-01-02T03:04:05.000000006Z"`, `"2026-01-02T04:04:05.000000006+01:00"`), ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := k.Open(c.data, 0); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

// base64Flip flips bits of a standard base64 character's value.
func base64Flip(c byte, bits byte) byte {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	return alphabet[strings.IndexByte(alphabet, c)^int(bits)]
}

// signRaw signs e as it stands, without Sign's normalization and checks: what a holder of
// the key could write that Sign never would.
func signRaw(t *testing.T, k *Keyring, e *Envelope) []byte {
	t.Helper()
	e.Version, e.KeyID = Version, k.signing[0].ID
	e.Sig = k.mac(0, e)
	data, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// Even under a valid signature, Open and Caller read only what Sign and SetCaller write.
func TestOpenRefusesSignedEnvelopesSignWouldNotWrite(t *testing.T) {
	k := keyring(t, nil, keyA)
	cases := map[string]func(e *Envelope){
		"caller block null":          func(e *Envelope) { e.Caller = json.RawMessage(`null`) },
		"caller block a string":      func(e *Envelope) { e.Caller = json.RawMessage(`"admin"`) },
		"unknown caller field":       func(e *Envelope) { e.Caller = json.RawMessage(`{"user_id":"u1","role":"admin"}`) },
		"duplicate caller key":       func(e *Envelope) { e.Caller = json.RawMessage(`{"user_id":"u1","user_id":"admin"}`) },
		"differently cased caller":   func(e *Envelope) { e.Caller = json.RawMessage(`{"USER_ID":"admin"}`) },
		"caller keys in other order": func(e *Envelope) { e.Caller = json.RawMessage(`{"token":"t","user_id":"u1"}`) },
		"caller expiry not UTC": func(e *Envelope) {
			e.Caller = json.RawMessage(`{"user_id":"u1","expires_at":"2030-01-01T00:00:00+00:00"}`)
		},
		"empty sealed block":      func(e *Envelope) { e.Sealed = &Sealed{} },
		"timeout beyond Duration": func(e *Envelope) { e.TimeoutMS = math.MaxInt64 / int64(time.Millisecond) * 2 },
		"submitted_at not UTC":    func(e *Envelope) { e.SubmittedAt = e.SubmittedAt.In(time.FixedZone("X", 3600)) },
		"args not UTF-8":          func(e *Envelope) { e.Args = json.RawMessage("{\"to\":\"\xff\"}") },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := sample()
			change(e)
			data := signRaw(t, k, e)
			opened, err := k.Open(data, 0)
			if err == nil {
				_, err = k.Caller(opened)
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Open and Caller: err = %v, want ErrMalformed\n%s", err, data)
			}
		})
	}
}

// Sign puts what it signs in the form Open reads back, so an envelope it signs always
// opens, with the same values: args as json.Marshal writes them, times in UTC.
func TestSignWritesWhatOpenReads(t *testing.T) {
	k := keyring(t, sealKey, keyA)
	oddZone := time.FixedZone("LMT", 9*60+21) // RFC 3339 cannot write the 21 seconds
	cases := map[string]struct {
		change func(e *Envelope, c *Caller)
		args   string // the args Open returns
	}{
		"indented args": {func(e *Envelope, _ *Caller) { e.Args = json.RawMessage("{\n  \"to\": \"a\"\n}") }, `{"to":"a"}`},
		"HTML in args":  {func(e *Envelope, _ *Caller) { e.Args = json.RawMessage(`{"to":"<a&b> "}`) }, `{"to":"\u003ca\u0026b\u003e\u2028"}`},
		"time in odd zone": {func(e *Envelope, c *Caller) {
			e.SubmittedAt = e.SubmittedAt.In(oddZone)
			c.ExpiresAt = c.ExpiresAt.In(oddZone)
		}, `{"to":"a@example.com"}`},
		"monotonic clock":    {func(e *Envelope, c *Caller) { e.SubmittedAt = time.Now(); c.ExpiresAt = time.Now().Add(time.Hour) }, `{"to":"a@example.com"}`},
		"year 9999":          {func(e *Envelope, _ *Caller) { e.SubmittedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) }, `{"to":"a@example.com"}`},
		"year 0":             {func(e *Envelope, _ *Caller) { e.SubmittedAt = time.Date(0, 1, 1, 0, 0, 0, 1, time.UTC) }, `{"to":"a@example.com"}`},
		"longest timeout":    {func(e *Envelope, _ *Caller) { e.TimeoutMS = math.MaxInt64 / int64(time.Millisecond) }, `{"to":"a@example.com"}`},
		"escapes in strings": {func(e *Envelope, c *Caller) { e.Kind, c.UserID = "a<b>\"c\u2028", "ü\x00" }, `{"to":"a@example.com"}`},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := sample()
			c := &Caller{UserID: "u1", Token: "tok", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
			tc.change(e, c)
			if err := k.SetCaller(e, c); err != nil {
				t.Fatal(err)
			}
			data, err := k.Sign(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := k.Open(data, 0)
			if err != nil {
				t.Fatalf("Open: %v\n%s", err, data)
			}
			if string(got.Args) != tc.args || got.Kind != e.Kind || !got.SubmittedAt.Equal(e.SubmittedAt) || got.Timeout() != e.Timeout() {
				t.Errorf("opened %+v, signed %+v", got, e)
			}
			gc, err := k.Caller(got)
			if err != nil || gc.UserID != c.UserID || !gc.ExpiresAt.Equal(c.ExpiresAt) {
				t.Errorf("Caller = %+v, %v; want %+v", gc, err, c)
			}
		})
	}
}

// Sign refuses what Open would refuse, instead of writing an envelope no worker runs.
func TestSignRefusesWhatOpenRefuses(t *testing.T) {
	k := keyring(t, nil, keyA)
	cases := map[string]func(e *Envelope){
		"no kind":                 func(e *Envelope) { e.Kind = "" },
		"no args":                 func(e *Envelope) { e.Args = nil },
		"args not JSON":           func(e *Envelope) { e.Args = json.RawMessage(`{"to":`) },
		"args not UTF-8":          func(e *Envelope) { e.Args = json.RawMessage("{\"to\":\"\xff\"}") },
		"kind not UTF-8":          func(e *Envelope) { e.Kind = "email.\xff" },
		"negative retries":        func(e *Envelope) { e.MaxRetries = -1 },
		"timeout beyond Duration": func(e *Envelope) { e.TimeoutMS = math.MaxInt64 / int64(time.Millisecond) * 2 },
		"caller block not object": func(e *Envelope) { e.Caller = json.RawMessage(`null`) },
	}
	for name, change := range cases {
		t.Run(name, func(t *testing.T) {
			e := sample()
			change(e)
			if data, err := k.Sign(e); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Sign: err = %v, want ErrMalformed\n%s", err, data)
			}
		})
	}
	for name, c := range map[string]*Caller{
		"user id not UTF-8": {UserID: "u\xff"},
		"token not UTF-8":   {UserID: "u1", Token: "\xfe"},
		"scope not UTF-8":   {UserID: "u1", Scopes: []string{"read\xff"}},
	} {
		if err := k.SetCaller(sample(), c); !errors.Is(err, ErrMalformed) {
			t.Errorf("SetCaller with %s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// Open refuses an envelope over the limit before it decodes a byte of it.
func TestOpenRefusesOversizedEnvelopeBeforeDecoding(t *testing.T) {
	k := keyring(t, nil, keyA)
	data := signed(t, k, nil)
	if _, err := k.Open(data, len(data)); err != nil {
		t.Fatalf("envelope at the limit: %v", err)
	}
	if _, err := k.Open(data, len(data)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("envelope one byte over the limit: err = %v, want ErrTooLarge", err)
	}
	// Not even valid JSON: refused for its size, not its content.
	if _, err := k.Open(bytes.Repeat([]byte("["), 2*DefaultMaxSize), 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized garbage: err = %v, want ErrTooLarge", err)
	}
}

func forge(t *testing.T, data []byte) []byte {
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["sig"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
	out, _ := json.Marshal(m)
	return out
}

func TestNewKeyringRefusesWeakConfiguration(t *testing.T) {
	for name, c := range map[string]struct {
		keys []Key
		seal []byte
	}{
		"no key":       {nil, nil},
		"short key":    {[]Key{{ID: "a", Secret: []byte("short")}}, nil},
		"empty id":     {[]Key{{Secret: keyA.Secret}}, nil},
		"duplicate id": {[]Key{keyA, {ID: "a", Secret: keyB.Secret}}, nil},
		"bad seal key": {[]Key{keyA}, []byte("123")},
	} {
		if _, err := NewKeyring("taskgen", c.keys, c.seal); err == nil {
			t.Errorf("%s: NewKeyring accepted it", name)
		}
	}
}

func TestEnvelopeOfAnotherScopeIsRefused(t *testing.T) {
	k := keyring(t, nil, keyA)
	other, err := NewKeyring("other-prefix", []Key{keyA}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Open(signed(t, k, nil), 0); !errors.Is(err, ErrBadSignature) {
		t.Errorf("envelope replayed under another prefix: err = %v, want ErrBadSignature", err)
	}
}

func TestPeekIDReadsOnlyTheClaimedID(t *testing.T) {
	for in, want := range map[string]string{
		`{"v":1,"id":"q/1","kind":"k"}`:                        "q/1",
		`{"v":1,"id":"q/1"` + strings.Repeat(" ", 1<<20) + `}`: "q/1",
		`{"v":1,"args":{"id":"inner"},"id":"outer"}`:           "outer",
		`{"v":1,"id":7}`: "",
		`garbage`:        "",
		`{"v":"` + strings.Repeat("x", 8<<10) + `","id":"late"}`: "",
	} {
		if got := PeekID([]byte(in)); got != want {
			t.Errorf("PeekID(%.40q) = %q, want %q", in, got, want)
		}
	}
}

// An outcome MAC verifies for exactly the outcome it was made for, under a key of the
// keyring (rotation), and under no other key, scope or outcome; an envelope signature is
// no outcome MAC.
func TestOutcomeMACCoversEveryField(t *testing.T) {
	k := keyring(t, nil, keyA)
	o := Outcome{TaskID: "q/1", State: "succeeded", Result: []byte(`"ok"`)}
	mac := k.SignOutcome(o, "")
	if err := k.VerifyOutcome(o, mac); err != nil {
		t.Fatal(err)
	}
	if err := keyring(t, nil, keyB, keyA).VerifyOutcome(o, mac); err != nil {
		t.Errorf("rotated keyring: %v", err)
	}
	// A worker that signs with a newer key MACs the outcome with the key of the task's
	// envelope, so a client that has only that key can verify it.
	if err := k.VerifyOutcome(o, keyring(t, nil, keyB, keyA).SignOutcome(o, keyA.ID)); err != nil {
		t.Errorf("outcome MAC under the envelope's key: %v", err)
	}
	changed := []Outcome{
		{TaskID: "q/2", State: "succeeded", Result: []byte(`"ok"`)},
		{TaskID: "q/1", State: "dead", Result: []byte(`"ok"`)},
		{TaskID: "q/1", State: "succeeded", Result: []byte(`"forged"`)},
		{TaskID: "q/1", State: "succeeded", Result: []byte(`"ok"`), Reason: "x"},
		{TaskID: "q/1", State: "succeeded", Result: []byte(`"ok"`), Error: "x"},
	}
	for _, c := range changed {
		if err := k.VerifyOutcome(c, mac); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%+v verified with the MAC of %+v: %v", c, o, err)
		}
	}
	other, _ := NewKeyring("other-prefix", []Key{keyA}, nil)
	for name, v := range map[string]func() error{
		"another key":   func() error { return keyring(t, nil, keyB).VerifyOutcome(o, mac) },
		"another scope": func() error { return other.VerifyOutcome(o, mac) },
		"no MAC":        func() error { return k.VerifyOutcome(o, "") },
		"not base64":    func() error { return k.VerifyOutcome(o, "a:%%%") },
	} {
		if err := v(); !errors.Is(err, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, err)
		}
	}
}

// An envelope without a not-after time, as clients before it wrote them, signs and
// opens as before: the signed form grows only when the field is set.
func TestAnEnvelopeWithoutNotAfterOpens(t *testing.T) {
	k := keyring(t, nil, keyA)
	e := sample()
	e.NotAfter = time.Time{}
	data, err := k.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(data, []byte("not_after")) {
		t.Errorf("the envelope writes a zero not_after: %s", data)
	}
	opened, err := k.Open(data, 0)
	if err != nil || !opened.NotAfter.IsZero() {
		t.Fatalf("Open = %+v, %v", opened, err)
	}
	withNA := sample()
	if bytes.Equal(signedBytes("taskgen", e), signedBytes("taskgen", withNA)) {
		t.Error("the not-after time is not signed")
	}
}

// A retired key verifies until its time and not after; it never signs. A vouch verifies
// for exactly its envelope and id, and lets a keyring that lacks the signing key re-sign.
func TestRetiredKeysAndVouches(t *testing.T) {
	data := signed(t, keyring(t, nil, keyA), &Caller{UserID: "u1"})
	for _, tt := range []struct {
		name    string
		retired time.Time
		want    error
	}{
		{"retiring later", time.Now().Add(time.Hour), nil},
		{"retired", time.Now().Add(-time.Second), ErrBadSignature},
	} {
		t.Run(tt.name, func(t *testing.T) {
			old := keyA
			old.Retired = tt.retired
			_, err := keyring(t, nil, keyB, old).Open(data, 0)
			if !errors.Is(err, tt.want) && (err != nil || tt.want != nil) {
				t.Errorf("Open = %v, want %v", err, tt.want)
			}
		})
	}
	retired := keyA
	retired.Retired = time.Now().Add(time.Hour)
	if _, err := NewKeyring("taskgen", []Key{retired, keyB}, nil); err == nil {
		t.Error("NewKeyring accepted a retired key first, to sign with")
	}

	vouch := keyring(t, nil, keyB, keyA).Vouch(data, "q/1")
	now := keyring(t, nil, keyB) // keyA is gone
	if err := now.CheckVouch(data, "q/1", vouch); err != nil {
		t.Fatalf("CheckVouch: %v", err)
	}
	for name, check := range map[string]error{
		"another id":       now.CheckVouch(data, "q/2", vouch),
		"another envelope": now.CheckVouch(append([]byte(nil), data[:len(data)-1]...), "q/1", vouch),
		"no vouch":         now.CheckVouch(data, "q/1", ""),
		"another keyring":  keyring(t, nil, keyA).CheckVouch(data, "q/1", vouch),
	} {
		if !errors.Is(check, ErrBadSignature) {
			t.Errorf("%s: err = %v, want ErrBadSignature", name, check)
		}
	}
	if _, err := now.Open(data, 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Open without the old key = %v", err)
	}
	resigned, e, err := now.Resign(data, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := now.Open(resigned, 0); err != nil || got.ID != e.ID || got.KeyID != keyB.ID {
		t.Errorf("the re-signed envelope opens as %+v, %v", got, err)
	}
	sealed := signed(t, mustDerived(t, keyA), &Caller{UserID: "u1", Token: "t"})
	if _, _, err := now.Resign(sealed, nil); err == nil {
		t.Error("re-signed an envelope whose caller is sealed with a key derived from a key that is gone")
	}
}

func mustDerived(t *testing.T, keys ...Key) *Keyring {
	t.Helper()
	k, err := NewDerivedKeyring("taskgen", keys)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

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
		Args: json.RawMessage(`{"to":"a@example.com"}`),
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
	otherData[10] ^= 'A' ^ 'B' // a full sextet, so the text stays canonical base64
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
	if _, err := keyring(t, nil, keyA).Caller(e); !errors.Is(err, ErrMalformed) {
		t.Errorf("worker without seal key: err = %v, want ErrMalformed", err)
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
	good := signed(t, k, nil)
	cases := map[string]struct {
		data []byte
		want error
	}{
		"empty":          {nil, ErrMalformed},
		"garbage":        {[]byte("\x00\xffnot json"), ErrMalformed},
		"truncated":      {good[:len(good)/2], ErrMalformed},
		"trailing data":  {append(append([]byte{}, good...), []byte(`{}`)...), ErrMalformed},
		"wrong version":  {bytes.Replace(good, []byte(`"v":1`), []byte(`"v":2`), 1), ErrMalformed},
		"unknown field":  {bytes.Replace(good, []byte(`{"v":1`), []byte(`{"x":1,"v":1`), 1), ErrMalformed},
		"wrong type":     {bytes.Replace(good, []byte(`"attempt":0`), []byte(`"attempt":"0"`), 1), ErrMalformed},
		"missing kind":   {bytes.Replace(good, []byte(`"kind":"email.send",`), nil, 1), ErrMalformed},
		"unsigned":       {bytes.Replace(good, []byte(`"kid":"a"`), []byte(`"kid":""`), 1), ErrBadSignature},
		"too large":      {bytes.Repeat([]byte(" "), DefaultMaxSize+1), ErrTooLarge},
		"forged sig":     {forge(t, good), ErrBadSignature},
		"negative value": {bytes.Replace(good, []byte(`"max_retries":3`), []byte(`"max_retries":-1`), 1), ErrMalformed},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := k.Open(c.data, 0); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
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

package envelope

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func keyringV2(t *testing.T, seal []byte, keys ...Key) *Keyring {
	t.Helper()
	k, err := keyring(t, seal, keys...).WritingVersion(Version2)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signRawV2 signs the version 2 text body (everything before "sig") as it stands: what a
// holder of the key could write that Sign never would.
func signRawV2(k *Keyring, body string) []byte {
	sig := k.macV2(0, []byte(body))
	return []byte(body + sigField + base64.StdEncoding.EncodeToString(sig) + sigEnd)
}

func TestV2WritesItsFormatAndOpens(t *testing.T) {
	k := keyringV2(t, nil, keyA)
	caller := &Caller{UserID: "u1", Token: "tok", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
	e := sample()
	e.Trace = map[string]string{"tracestate": "a=<b>", "traceparent": "00-x-y-01"}
	if err := k.SetCaller(e, caller); err != nil {
		t.Fatal(err)
	}
	data, err := k.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"v":2,"kid":"a","id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA","kind":"email.send","queue":"email","schema":"v1:abc",` +
		`"attempt":0,"max_retries":3,"timeout_ms":1000,"submitted_at":"2026-01-02T03:04:05.000000006Z","not_after":"2026-01-09T03:04:05Z",` +
		`"caller":{"user_id":"u1","token":"tok","expires_at":"2030-01-01T00:00:00Z","scopes":["read"]},"args":{"to":"a@example.com"},` +
		`"trace":{"traceparent":"00-x-y-01","tracestate":"a=\u003cb\u003e"},"sig":"`
	if !strings.HasPrefix(string(data), want) || len(data) != len(want)+sigB64Len+len(sigEnd) {
		t.Fatalf("Sign wrote\n%s\nwant\n%s<44 characters of base64>\"}", data, want)
	}
	got, err := k.Open(data, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != Version2 || got.KeyID != "a" || got.Kind != "email.send" || string(got.Args) != `{"to":"a@example.com"}` ||
		got.Trace["tracestate"] != "a=<b>" || !got.SubmittedAt.Equal(e.SubmittedAt) || got.Timeout() != time.Second {
		t.Fatalf("opened %+v", got)
	}
	c, err := k.Caller(got)
	if err != nil || c.UserID != "u1" || c.Token != "tok" {
		t.Fatalf("Caller = %+v, %v", c, err)
	}
	if id := PeekID(data); id != e.ID {
		t.Errorf("PeekID = %q, want %q", id, e.ID)
	}
	// The envelope does not alias the bytes it was opened from.
	clear(data)
	if got.Kind != "email.send" || string(got.Args) != `{"to":"a@example.com"}` {
		t.Fatalf("the opened envelope changed with the bytes it came from: %+v", got)
	}
}

// As TestOpenRefusesEveryTamperedField, for version 2: every edit of the signed bytes is
// refused as a forgery. Version 2 checks the signature before it parses anything, so
// even edits that break the JSON are reported as ErrBadSignature.
func TestV2OpenRefusesEveryTamperedField(t *testing.T) {
	keys := []Key{keyA, {ID: "c", Secret: keyA.Secret}}
	plain, sealed := keyringV2(t, nil, keys...), keyringV2(t, sealKey, keys...)
	caller := &Caller{UserID: "u1", Token: "tok", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
	traced := sample()
	traced.Trace = map[string]string{"traceparent": "00-aa-bb-01"}
	withTrace, err := plain.Sign(traced)
	if err != nil {
		t.Fatal(err)
	}
	withCaller, noCaller, withSeal := signed(t, plain, caller), signed(t, plain, nil), signed(t, sealed, caller)
	for _, data := range [][]byte{withCaller, noCaller, withSeal, withTrace} {
		if _, err := sealed.Open(data, 0); err != nil || !bytes.HasPrefix(data, []byte(v2Start)) {
			t.Fatalf("untouched version 2 envelope does not open: %v\n%s", err, data)
		}
	}
	e, _ := sealed.Open(withSeal, 0)
	sealedData := base64.StdEncoding.EncodeToString(e.Sealed.Data)
	otherData := []byte(sealedData)
	otherData[10] = base64Flip(otherData[10], 1)
	cases := []struct {
		name     string
		data     []byte
		from, to string
	}{
		{"kid", withCaller, `"kid":"a"`, `"kid":"c"`},
		{"id", withCaller, `"id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA"`, `"id":"email/01JBBBBBBBBBBBBBBBBBBBBBBB"`},
		{"kind", withCaller, `"kind":"email.send"`, `"kind":"email.other"`},
		{"queue", withCaller, `"queue":"email"`, `"queue":"other"`},
		{"schema", withCaller, `"schema":"v1:abc"`, `"schema":"v1:def"`},
		{"attempt", withCaller, `"attempt":0`, `"attempt":1`},
		{"attempt as a string", withCaller, `"attempt":0`, `"attempt":"0"`},
		{"max_retries", withCaller, `"max_retries":3`, `"max_retries":50`},
		{"timeout_ms", withCaller, `"timeout_ms":1000`, `"timeout_ms":99`},
		{"timeout_ms removed", withCaller, `"timeout_ms":1000,`, ``},
		{"submitted_at", withCaller, `"submitted_at":"2026-`, `"submitted_at":"2027-`},
		{"not_after", withCaller, `"not_after":"2026-01-09T03:04:05Z"`, `"not_after":"2036-01-09T03:04:05Z"`},
		{"not_after removed", withCaller, `"not_after":"2026-01-09T03:04:05Z",`, ``},
		{"args", withCaller, `"args":{"to":"a@example.com"}`, `"args":{"to":"evil@example.com"}`},
		{"args whitespace", withCaller, `"args":{"to":"a@example.com"}`, `"args":{"to": "a@example.com"}`},
		{"caller user_id", withCaller, `"user_id":"u1"`, `"user_id":"admin"`},
		{"caller removed", withCaller, `,"caller":{"user_id":"u1","token":"tok","expires_at":"2030-01-01T00:00:00Z","scopes":["read"]}`, ``},
		{"caller added", noCaller, `,"args":`, `,"caller":{"user_id":"admin"},"args":`},
		{"sealed data", withSeal, sealedData, string(otherData)},
		{"trace value", withTrace, `"traceparent":"00-aa-bb-01"`, `"traceparent":"00-cc-dd-01"`},
		{"trace removed", withTrace, `,"trace":{"traceparent":"00-aa-bb-01"}`, ``},
		{"field added", withCaller, `,"args":`, `,"x":1,"args":`},
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
	// Another version selects another format (version 1's is read with encoding/json and
	// checked against its own signed form), so the edit is refused, as either error.
	for _, v := range []string{`{"v":1,`, `{"v":3,`, `{"v":02,`} {
		forged := bytes.Replace(withCaller, []byte(`{"v":2,`), []byte(v), 1)
		if _, err := sealed.Open(forged, 0); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
			t.Errorf("version edited to %s: err = %v, want a refusal\n%s", v, err, forged)
		}
	}
}

func TestV2OpenRefusesBadInput(t *testing.T) {
	k := keyringV2(t, nil, keyA)
	good := signed(t, k, &Caller{UserID: "u1"})
	body := string(good[:len(good)-sigTail])
	sig := string(good[len(good)-sigTail+len(sigField) : len(good)-len(sigEnd)])
	looseSig := []byte(sig)
	looseSig[len(looseSig)-2] = base64Flip(looseSig[len(looseSig)-2], 1)
	// Under a valid signature: what only a holder of the key could write, and Sign never does.
	signedEdit := func(from, to string) []byte {
		t.Helper()
		if strings.Count(body, from) != 1 {
			t.Fatalf("%s is not once in %s", from, body)
		}
		return signRawV2(k, strings.Replace(body, from, to, 1))
	}
	v1sig := func() []byte { // a version 1 signature of the same values, put in a version 2 text
		e, err := k.Open(good, 0)
		if err != nil {
			t.Fatal(err)
		}
		e.Version = Version2
		return []byte(body + sigField + base64.StdEncoding.EncodeToString(k.mac(0, e)) + sigEnd)
	}
	cases := map[string]struct {
		data []byte
		want error
	}{
		"only the start":           {[]byte(v2Start), ErrMalformed},
		"truncated":                {good[:len(good)-1], ErrMalformed},
		"trailing }":               {append(bytes.Clone(good), '}'), ErrMalformed},
		"trailing space":           {append(bytes.Clone(good), ' '), ErrMalformed},
		"sig with unused bits":     {[]byte(body + sigField + string(looseSig) + sigEnd), ErrMalformed},
		"sig with a line break":    {[]byte(body + sigField + sig[:20] + `\n` + sig[22:] + sigEnd), ErrMalformed},
		"sig not last":             {[]byte(strings.Replace(string(good), `{"v":2,"kid":"a",`, `{"v":2,"kid":"a","sig":"`+sig+`",`, 1)), ErrBadSignature},
		"forged sig":               {[]byte(body + sigField + base64.StdEncoding.EncodeToString(make([]byte, sha256.Size)) + sigEnd), ErrBadSignature},
		"a version 1 signature":    {v1sig(), ErrBadSignature},
		"unknown key id":           {[]byte(strings.Replace(string(good), `"kid":"a"`, `"kid":"zz"`, 1)), ErrBadSignature},
		"key id not a string":      {[]byte(strings.Replace(string(good), `"kid":"a"`, `"kid":7`, 1)), ErrMalformed},
		"signed: unknown field":    {signedEdit(`,"args":`, `,"x":1,"args":`), ErrMalformed},
		"signed: duplicate key":    {signedEdit(`,"kind":"email.send"`, `,"kind":"email.send","kind":"evil"`), ErrMalformed},
		"signed: keys reordered":   {signedEdit(`"kind":"email.send","queue":"email"`, `"queue":"email","kind":"email.send"`), ErrMalformed},
		"signed: cased key":        {signedEdit(`"kind":`, `"KIND":`), ErrMalformed},
		"signed: whitespace":       {signedEdit(`"kind":"email.send"`, `"kind": "email.send"`), ErrMalformed},
		"signed: escape":           {signedEdit(`"kind":"email.send"`, `"kind":"email\u002esend"`), ErrMalformed},
		"signed: HTML unescaped":   {signedEdit(`"kind":"email.send"`, `"kind":"email<send>"`), ErrMalformed},
		"signed: args indented":    {signedEdit(`"args":{"to":"a@example.com"}`, `"args":{"to": "a@example.com"}`), ErrMalformed},
		"signed: args HTML":        {signedEdit(`"args":{"to":"a@example.com"}`, `"args":{"to":"<a>"}`), ErrMalformed},
		"signed: args not JSON":    {signedEdit(`"args":{"to":"a@example.com"}`, `"args":{"to":}`), ErrMalformed},
		"signed: args nested deep": {signedEdit(`"args":{"to":"a@example.com"}`, `"args":`+strings.Repeat("[", 20_000)+strings.Repeat("]", 20_000)), ErrMalformed},
		"signed: no args":          {signedEdit(`,"args":{"to":"a@example.com"}`, ``), ErrMalformed},
		"signed: caller not JSON":  {signedEdit(`"caller":{"user_id":"u1"}`, `"caller":{"user_id":u1}`), ErrMalformed},
		"signed: caller an array":  {signedEdit(`"caller":{"user_id":"u1"}`, `"caller":["u1"]`), ErrMalformed},
		"signed: zero timeout":     {signedEdit(`"timeout_ms":1000`, `"timeout_ms":0`), ErrMalformed},
		"signed: leading zero":     {signedEdit(`"timeout_ms":1000`, `"timeout_ms":01000`), ErrMalformed},
		"signed: negative":         {signedEdit(`"max_retries":3`, `"max_retries":-3`), ErrMalformed},
		"signed: huge number":      {signedEdit(`"attempt":0`, `"attempt":1`+strings.Repeat("0", 40)), ErrMalformed},
		"signed: beyond Duration":  {signedEdit(`"timeout_ms":1000`, `"timeout_ms":9223372036854776`), ErrMalformed},
		"signed: time not UTC":     {signedEdit(`"2026-01-02T03:04:05.000000006Z"`, `"2026-01-02T04:04:05.000000006+01:00"`), ErrMalformed},
		"signed: time padded":      {signedEdit(`"2026-01-02T03:04:05.000000006Z"`, `"2026-01-02T03:04:05.0000000060Z"`), ErrMalformed},
		"signed: zero not_after":   {signedEdit(`"not_after":"2026-01-09T03:04:05Z"`, `"not_after":"0001-01-01T00:00:00Z"`), ErrMalformed},
		"signed: no id":            {signedEdit(`"id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA"`, `"id":""`), ErrMalformed},
		"signed: not UTF-8":        {signedEdit(`"kind":"email.send"`, "\"kind\":\"email.send\xff\""), ErrMalformed},
		"signed: trace unsorted":   {signedEdit(`,"args":{"to":"a@example.com"}`, `,"args":{"to":"a@example.com"},"trace":{"b":"1","a":"2"}`), ErrMalformed},
		"signed: trace repeated":   {signedEdit(`,"args":{"to":"a@example.com"}`, `,"args":{"to":"a@example.com"},"trace":{"a":"1","a":"2"}`), ErrMalformed},
		"signed: trace empty":      {signedEdit(`,"args":{"to":"a@example.com"}`, `,"args":{"to":"a@example.com"},"trace":{}`), ErrMalformed},
		"signed: trace bad key":    {signedEdit(`,"args":{"to":"a@example.com"}`, `,"args":{"to":"a@example.com"},"trace":{"A":"1"}`), ErrMalformed},
		"signed: no comma at end":  {[]byte(strings.TrimSuffix(body, ",") + sigField + sig + sigEnd), ErrBadSignature},
		"signed: body not closed":  {signRawV2(k, strings.TrimSuffix(body, ",")), ErrMalformed},
		"signed: kid of no key":    {signRawV2(k, strings.Replace(body, `"kid":"a"`, `"kid":""`, 1)), ErrBadSignature},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := k.Open(c.data, 0); !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v\n%s", err, c.want, c.data)
			}
		})
	}
	// The same values in version 1's layout, even under a valid version 1 signature, are
	// not a text Sign writes: one encoding per envelope.
	e := sample()
	e.Version, e.KeyID = Version2, keyA.ID
	e.Sig = k.mac(0, e)
	v1layout, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Open(v1layout, 0); !errors.Is(err, ErrMalformed) {
		t.Errorf("version 2 in version 1's layout: err = %v, want ErrMalformed\n%s", err, v1layout)
	}
}

// During a rolling deploy a worker reads both versions; a keyring writes version 1 until
// told otherwise; a retry, a re-sign and a vouch keep an envelope's version.
func TestBothVersionsDuringARollingDeploy(t *testing.T) {
	old := keyring(t, nil, keyA) // a client of the previous release writes version 1
	v2 := keyringV2(t, nil, keyA)
	v1data, v2data := signed(t, old, &Caller{UserID: "u1"}), signed(t, v2, &Caller{UserID: "u1"})
	if !bytes.HasPrefix(v1data, []byte(`{"v":1,`)) || !bytes.HasPrefix(v2data, []byte(v2Start)) {
		t.Fatalf("versions written:\n%s\n%s", v1data, v2data)
	}
	for _, k := range []*Keyring{old, v2} {
		for _, data := range [][]byte{v1data, v2data} {
			e, err := k.Open(data, 0)
			if err != nil {
				t.Fatalf("Open: %v\n%s", err, data)
			}
			// A retry re-signs the opened envelope: it keeps its version.
			e.Attempt++
			again, err := k.Sign(e)
			if err != nil || again[len(`{"v":`)] != data[len(`{"v":`)] {
				t.Fatalf("re-signed for a retry as\n%s\nfrom\n%s (%v)", again, data, err)
			}
			if back, err := k.Open(again, 0); err != nil || back.Attempt != 1 {
				t.Fatalf("the retry opens as %+v, %v", back, err)
			}
		}
	}
	// A dead-lettered version 2 envelope, vouched for, re-signs with the new key.
	vouch := keyringV2(t, nil, keyB, keyA).Vouch(v2data, "q/1")
	now := keyringV2(t, nil, keyB)
	if err := now.CheckVouch(v2data, "q/1", vouch); err != nil {
		t.Fatal(err)
	}
	if _, err := now.Open(v2data, 0); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Open without the old key: %v", err)
	}
	resigned, e, err := now.Resign(v2data, func(e *Envelope) { e.Attempt = 0 })
	if err != nil || e.Version != Version2 {
		t.Fatalf("Resign: %+v, %v", e, err)
	}
	if got, err := now.Open(resigned, 0); err != nil || got.KeyID != keyB.ID || got.ID != e.ID {
		t.Fatalf("the re-signed envelope opens as %+v, %v", got, err)
	}
	if _, _, err := now.Resign(append(bytes.Clone(v2data), ' '), nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("Resign of a text Sign does not write: %v", err)
	}
	if _, err := old.WritingVersion(3); err == nil {
		t.Error("WritingVersion accepted version 3")
	}
	if data, err := old.Sign(&Envelope{Version: 3, ID: "q/1", Kind: "k", Queue: "q", Args: json.RawMessage(`{}`)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("Sign of version 3: %v\n%s", err, data)
	}
}

// appendString and reader.str are json.Marshal's strings, both ways.
func FuzzV2String(f *testing.F) {
	for _, s := range []string{"", "email.send", "a<b>&\"c\\", "\u2028\u2029", "\x00\x1f\b\f\n\r\t", "ü", "\xff", "\x7f"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		got := appendString(nil, s)
		if !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, json.Marshal: %s", s, got, want)
		}
		if !utf8.ValidString(s) {
			return // Sign refuses it (see normalize); Marshal writes its bad bytes as U+FFFD
		}
		r := reader{b: got}
		if back := r.str(); r.err != nil || r.i != len(got) || !bytes.Equal(appendString(nil, back), got) {
			t.Fatalf("reading %s back: %q, %v", got, back, r.err)
		}
		// s between quotes is read only if it is how json.Marshal spells what it stands for.
		quoted := `"` + s + `"`
		var other string
		if json.Unmarshal([]byte(quoted), &other) == nil {
			canon, _ := json.Marshal(other)
			r := reader{b: []byte(quoted)}
			if back := r.str(); r.err == nil && r.i == len(quoted) && (string(canon) != quoted || back != other) {
				t.Fatalf("read %s as %q, which json.Marshal writes as %s", quoted, back, canon)
			}
		}
	})
}

// isCompactJSON is compactJSON's fixed point, exactly: it accepts raw if and only if
// compactJSON accepts raw and writes it back unchanged.
func FuzzCompactJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":[1,-0.5e+3,true,false,null,"\u00e9\n"]}`, `{"a" :1}`, ` 1`, `"<"`, "\"\u2028\"", `01`, `1.`, `-`,
		`"\ud800"`, `[1,]`, `{"a":1,}`, `"\x"`, "\"\xff\"", `1e5`, `[[[]]]`, `"\/"`, `nul`, `{"a"}`, `[1 2]`, `"a`, `{"a":1}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) == 0 {
			return // compactJSON leaves an absent block absent; isCompactJSON is asked only of present ones
		}
		out, err := compactJSON("x", raw)
		want := err == nil && bytes.Equal(out, raw)
		if got := isCompactJSON(raw); got != want {
			t.Fatalf("isCompactJSON(%q) = %v; compactJSON = %q, %v", raw, got, out, err)
		}
	})
}

func TestIsCompactJSONNestsAsDeepAsEncodingJSON(t *testing.T) {
	for _, depth := range []int{maxJSONDepth - 1, maxJSONDepth, maxJSONDepth + 1} {
		raw := []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
		out, err := compactJSON("x", raw)
		if want := err == nil && bytes.Equal(out, raw); isCompactJSON(raw) != want {
			t.Errorf("depth %d: isCompactJSON = %v, compactJSON err = %v", depth, !want, err)
		}
	}
}

// parseCaller accepts only what Caller's strict decoder and canonical check accept, with
// the same value, and appendCaller writes a Caller as json.Marshal does.
func FuzzCallerBlock(f *testing.F) {
	for _, s := range []string{`{"user_id":"u1","token":"tok","expires_at":"2030-01-01T00:00:00Z","scopes":["read","a<b"]}`,
		`{"user_id":""}`, `{"user_id":"u","token":""}`, `{"user_id":"u","scopes":[]}`, `{"user_id":"u","expires_at":"0001-01-01T00:00:00Z"}`,
		`{"user_id":"u","expires_at":"2030-01-01T01:00:00+01:00"}`, `{"user_id":"\u00fc"}`, `{"user_id":"ü","scopes":[""]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		c, ok := parseCaller(plain)
		if !ok {
			return
		}
		var strict Caller
		if err := decodeStrict(plain, &strict); err != nil || canonical(plain, &strict) != nil || !reflect.DeepEqual(&strict, c) {
			t.Fatalf("parseCaller accepted %q as %+v; the strict decoder: %+v, %v", plain, c, strict, err)
		}
		written, err := appendCaller(nil, c)
		if want, _ := json.Marshal(c); err != nil || !bytes.Equal(written, want) || !bytes.Equal(written, plain) {
			t.Fatalf("appendCaller(%+v) = %q, %v; json.Marshal: %q; read from %q", c, written, err, want, plain)
		}
	})
}

// parseUTC accepts exactly the texts json.Marshal writes for a UTC time, with their time.
func FuzzParseUTC(f *testing.F) {
	for _, s := range []string{"2026-01-02T03:04:05Z", "2026-01-02T03:04:05.000000006Z", "2026-01-02T03:04:05.5Z", "2026-01-02T03:04:05.50Z",
		"2026-02-29T00:00:00Z", "2024-02-29T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999Z", "2026-01-02T03:04:05+00:00",
		"2026-01-02T24:00:00Z", "2026-01-02T03:04:60Z", "2026-01-02t03:04:05z", "2026-1-02T03:04:05Z", "2026-01-02T03:04:05.1234567890Z", "+026-01-02T03:04:05Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := parseUTC([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		canon := err == nil && want.Location() == time.UTC && want.Format(time.RFC3339Nano) == s
		if ok != canon || ok && (!got.Equal(want) || got.Location() != time.UTC || got != want) {
			t.Fatalf("parseUTC(%q) = %v, %v; time.Parse: %v, %v (canonical: %v)", s, got, ok, want, err, canon)
		}
	})
}

// parseV2 reads what Resign hands it without a signature to vouch for it, so it is fuzzed
// on its own: it must not panic, it refuses with the worker's errors, and what it accepts
// is exactly the text encodeV2 writes for the values it read.
func FuzzDecodeV2(f *testing.F) {
	sealing, plain := fuzzKeyrings(f)
	for _, kr := range []*Keyring{sealing, plain} {
		for _, c := range []*Caller{{UserID: "u", Token: "t", Scopes: []string{"a", "b"}}, nil} {
			e := sample()
			e.Version = Version2
			e.Trace = map[string]string{"traceparent": "00-aa-bb-01", "tracestate": `a="<b>"`}
			if err := kr.SetCaller(e, c); err != nil {
				f.Fatal(err)
			}
			data, err := kr.Sign(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := decodeV2(data)
		if err != nil {
			classified(t, "decodeV2", err)
			return
		}
		k, err := NewKeyring("taskgen", []Key{{ID: e.KeyID, Secret: keyA.Secret}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		again := *e
		out, err := k.encodeV2(&again)
		if err != nil || !bytes.Equal(out[:len(out)-sigTail], data[:len(data)-sigTail]) {
			t.Fatalf("decodeV2 accepted a text encodeV2 does not write for its values (%v):\n%q\n%q", err, data, out)
		}
	})
}

// macV2 is HMAC-SHA256 of the head and the text, however often its pooled HMACs are reused.
func TestMACV2IsHMACSHA256OfHeadAndText(t *testing.T) {
	k := keyringV2(t, nil, keyA, keyB)
	for i, key := range []Key{keyA, keyB, keyA, keyA, keyB} {
		body := []byte(strings.Repeat("x", i*50))
		want := hmac.New(sha256.New, key.Secret)
		want.Write(binary.AppendUvarint(nil, uint64(len(v2Form))))
		want.Write([]byte(v2Form))
		want.Write(binary.AppendUvarint(nil, uint64(len("taskgen"))))
		want.Write([]byte("taskgen"))
		want.Write(body)
		idx := 0
		if key.ID == keyB.ID {
			idx = 1
		}
		if got := k.macV2(idx, body); !hmac.Equal(got, want.Sum(nil)) {
			t.Fatalf("macV2 #%d under key %s = %x, want %x", i, key.ID, got, want.Sum(nil))
		}
	}
}

package envelope

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"
	"unicode/utf8"
)

// fuzzKeyrings are a sealing and a plain keyring of one scope and signing key: an
// envelope one of them signs, the other opens. Both also verify with key "A", which has
// key a's secret, so that only the signed key id refuses a flipped case in "kid":"a".
// (A changed version is refused before verification: see TestOpenRefusesEveryTamperedField.)
func fuzzKeyrings(f *testing.F) (sealing, plain *Keyring) {
	keys := []Key{keyA, {ID: "A", Secret: keyA.Secret}}
	sealing, err := NewKeyring("taskgen", keys, sealKey)
	if err != nil {
		f.Fatal(err)
	}
	plain, err = NewKeyring("taskgen", keys, nil)
	if err != nil {
		f.Fatal(err)
	}
	return sealing, plain
}

// classified fails t unless err is one of the errors the worker sorts refusals by.
func classified(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
		t.Fatalf("%s: err = %v, want ErrMalformed or ErrBadSignature", what, err)
	}
}

// FuzzOpen feeds arbitrary bytes to Open and Caller. They must not panic and must refuse
// with ErrMalformed or ErrBadSignature; and an input they accept must be
//   - exactly the bytes Sign writes for the envelope Open returned: one encoding per
//     envelope, so no other JSON reader can see another envelope in it;
//   - refused after any change to any one of its bytes: every byte is covered by the
//     signature or pinned by the canonical form, so a field the signature misses shows
//     up here as an accepted mutation;
//   - carrying the caller block SetCaller writes for the caller that Caller returns.
func FuzzOpen(f *testing.F) {
	sealing, plain := fuzzKeyrings(f)
	caller := &Caller{UserID: "u", Token: "t", ExpiresAt: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC), Scopes: []string{"read"}}
	for _, kr := range []*Keyring{sealing, plain} {
		for _, c := range []*Caller{caller, nil} {
			e := sample()
			if err := kr.SetCaller(e, c); err != nil {
				f.Fatal(err)
			}
			data, err := kr.Sign(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			for _, trailing := range []string{"}", "}}", "]]]", "}garbage", " "} {
				f.Add(append(bytes.Clone(data), trailing...))
			}
			f.Add(bytes.Replace(data, []byte(`"kind"`), []byte(`"KIND"`), 1))
			f.Add(bytes.Replace(data, []byte(`{"v":1,`), []byte(`{"v":1,"kind":"x",`), 1))
		}
		// The trace carrier: signed, then with a duplicate, an upper-case and an empty entry.
		e := sample()
		e.Trace = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=b"}
		data, err := kr.Sign(e)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
		f.Add(bytes.Replace(data, []byte(`{"traceparent"`), []byte(`{"tracestate":"x","traceparent"`), 1))
		f.Add(bytes.Replace(data, []byte(`"tracestate"`), []byte(`"TraceState"`), 1))
		f.Add(bytes.Replace(data, []byte(`"a=b"`), []byte(`""`), 1))
	}
	// The same envelopes in version 2, and edits of its framing: the key id, the tail.
	for _, kr := range []*Keyring{sealing, plain} {
		for _, c := range []*Caller{caller, nil} {
			e := sample()
			e.Version = Version2
			e.Trace = map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "a=<b>"}
			if err := kr.SetCaller(e, c); err != nil {
				f.Fatal(err)
			}
			data, err := kr.Sign(e)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
			f.Add(append(bytes.Clone(data), '}'))
			f.Add(bytes.Replace(data, []byte(`"kid":"a"`), []byte(`"kid":"A"`), 1))
			f.Add(bytes.Replace(data, []byte(`{"v":2,`), []byte(`{"v":1,`), 1))
			f.Add(bytes.Replace(data, []byte(`"kind":"email.send"`), []byte(`"kind":"email\u002esend"`), 1))
		}
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"id":"q/x","kind":"k","queue":"q","args":{},"kid":"a","sig":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kr := range []*Keyring{sealing, plain} {
			e, err := kr.Open(data, 0)
			if err != nil {
				classified(t, "Open", err)
				continue
			}
			again := *e
			if out, err := kr.Sign(&again); err != nil || !bytes.Equal(out, data) {
				t.Fatalf("accepted bytes that are not what Sign writes for them (%v):\n%q\n%q", err, data, out)
			}
			mutated := bytes.Clone(data)
			for i := range mutated {
				for _, flip := range []byte{0x01, 0x20, 0x80} {
					mutated[i] ^= flip
					if _, err := kr.Open(mutated, 0); err == nil {
						t.Fatalf("accepted the envelope with byte %d changed from %q to %q:\n%q", i, data[i], mutated[i], mutated)
					}
					mutated[i] ^= flip
				}
			}
			c, err := kr.Caller(e)
			if err != nil {
				classified(t, "Caller", err)
				continue
			}
			if c == nil {
				if e.HasCaller() {
					t.Fatalf("no caller from an envelope with a caller block: %q", data)
				}
				continue
			}
			rewritten := Envelope{ID: e.ID}
			if e.Sealed == nil {
				if err := plain.SetCaller(&rewritten, c); err != nil || !bytes.Equal(rewritten.Caller, e.Caller) {
					t.Fatalf("caller block %q is not what SetCaller writes for %+v: %q, %v", e.Caller, c, rewritten.Caller, err)
				}
				continue
			}
			if err := sealing.SetCaller(&rewritten, c); err != nil {
				t.Fatal(err)
			}
			if back, err := sealing.Caller(&rewritten); err != nil || !reflect.DeepEqual(back, c) {
				t.Fatalf("caller %+v sealed again opens as %+v, %v", c, back, err)
			}
		}
	})
}

// FuzzSignOpen signs envelopes of arbitrary values. SetCaller and Sign must refuse exactly
// those that cannot be written (with ErrMalformed), and write the others as bytes that
// Open accepts, with the same values (args as json.Marshal writes them, times at the same
// instant in UTC), and whose caller Caller returns unchanged.
func FuzzSignOpen(f *testing.F) {
	sealing, plain := fuzzKeyrings(f)
	f.Add("email/01JAAAAAAAAAAAAAAAAAAAAAAA", "email.send", "email", "v1:abc", 0, 3, int64(1000),
		int64(1767323045), int64(6), int32(0), []byte(`{"to":"a@example.com"}`), "u1", "tok", "read", int64(1893456000), true)
	f.Add("q/x", "k<&>", "q", "", 2, 0, int64(0), int64(-62167219200), int64(999999999), int32(561),
		[]byte(" [1, \"\u2028\", {\"a\" : null}] "), "ü", "", "", int64(0), false)
	f.Add("q/x", "k", "q", "", 0, 0, int64(9223372036854), int64(253402300799), int64(0), int32(-3600),
		[]byte(`"x"`), "", "", "", int64(0), true)
	f.Add("q/x", "k", "q", "", 0, 0, int64(0), int64(253402300800), int64(0), int32(0), // submitted in year 10000
		[]byte(`{}`), "", "", "", int64(0), true)
	f.Add("q/x", "k", "q", "", 0, 0, int64(0), int64(0), int64(0), int32(0),
		[]byte(`{}`), "u", "", "", int64(-62167219201), true) // expires in year -1
	f.Fuzz(func(t *testing.T, id, kind, queue, schema string, attempt, retries int, timeoutMS, sec, nsec int64, zone int32,
		args []byte, user, token, scope string, expires int64, seal bool) {
		for _, version := range []int{Version, Version2} {
			signOpen(t, plain, sealing, version, id, kind, queue, schema, attempt, retries, timeoutMS, sec, nsec, zone, args, user, token, scope, expires, seal)
		}
	})
}

// signOpen is one case of FuzzSignOpen, written in the given envelope version.
func signOpen(t *testing.T, plain, sealing *Keyring, version int, id, kind, queue, schema string, attempt, retries int, timeoutMS, sec, nsec int64, zone int32,
	args []byte, user, token, scope string, expires int64, seal bool) {
	t.Helper()
	{
		kr := plain
		if seal {
			kr = sealing
		}
		kr, err := kr.WritingVersion(version)
		if err != nil {
			t.Fatal(err)
		}
		at := time.Unix(sec, nsec).In(time.FixedZone("z", int(zone%86400)))
		e := &Envelope{ID: id, Kind: kind, Queue: queue, Schema: schema, Attempt: attempt, MaxRetries: retries,
			TimeoutMS: timeoutMS, SubmittedAt: at, Args: bytes.Clone(args)}
		var c *Caller
		if user != "" {
			c = &Caller{UserID: user, Token: token, ExpiresAt: time.Unix(expires, 0).In(at.Location()), Scopes: []string{scope}}
		}
		inRange := func(t time.Time) bool { return t.UTC().Year() >= 0 && t.UTC().Year() <= 9999 } // what RFC 3339 holds
		callerOK := c == nil || utf8.ValidString(user) && utf8.ValidString(token) && utf8.ValidString(scope) && inRange(c.ExpiresAt)
		if err := kr.SetCaller(e, c); err != nil || !callerOK {
			if callerOK || !errors.Is(err, ErrMalformed) {
				t.Fatalf("SetCaller(%+v): err = %v, want it to refuse exactly what cannot be written, with ErrMalformed", c, err)
			}
			return
		}
		envelopeOK := id != "" && kind != "" && queue != "" && utf8.ValidString(id) && utf8.ValidString(kind) &&
			utf8.ValidString(queue) && utf8.ValidString(schema) && json.Valid(args) && utf8.Valid(args) &&
			attempt >= 0 && retries >= 0 && timeoutMS >= 0 && timeoutMS <= maxTimeoutMS && inRange(at)
		data, err := kr.Sign(e)
		if err != nil || !envelopeOK {
			if envelopeOK || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Sign(%+v): err = %v, want it to refuse exactly what cannot be written, with ErrMalformed", e, err)
			}
			return
		}
		got, err := kr.Open(data, 0)
		if err != nil {
			t.Fatalf("Open refuses what Sign wrote: %v\n%q", err, data)
		}
		if got.ID != id || got.Kind != kind || got.Queue != queue || got.Schema != schema || got.Attempt != attempt ||
			got.MaxRetries != retries || got.TimeoutMS != timeoutMS || !got.SubmittedAt.Equal(at) || got.SubmittedAt.Location() != time.UTC {
			t.Fatalf("opened %+v, signed %+v", got, e)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("opened %+v, Sign left %+v", got, e)
		}
		if compact, err := compactJSON("args", args); err != nil || !bytes.Equal(got.Args, compact) {
			t.Fatalf("args %q opened as %q", args, got.Args)
		}
		gc, err := kr.Caller(got)
		if err != nil {
			t.Fatalf("Caller: %v", err)
		}
		if (gc == nil) != (c == nil) || c != nil && (gc.UserID != user || gc.Token != token ||
			!gc.ExpiresAt.Equal(c.ExpiresAt) || !slices.Equal(gc.Scopes, c.Scopes)) {
			t.Fatalf("caller %+v opened as %+v", c, gc)
		}
	}
}

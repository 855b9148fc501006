package envelope

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// traceparent is a W3C trace context header, as the OTel propagator writes it.
const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func withTrace(t *testing.T, k *Keyring, trace map[string]string) []byte {
	t.Helper()
	e := sample()
	e.Trace = trace
	data, err := k.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestTraceCarrierRoundTripsAndIsOmittedWhenUnset(t *testing.T) {
	k := keyring(t, nil, keyA)
	trace := map[string]string{"traceparent": traceparent, "tracestate": "vendor=a,other=b", "baggage": "user.tier=gold"}
	e, err := k.Open(withTrace(t, k, trace), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(e.Trace, trace) {
		t.Errorf("trace = %v, want %v", e.Trace, trace)
	}
	if plain := signed(t, k, nil); bytes.Contains(plain, []byte(`"trace"`)) {
		t.Errorf("an envelope without a trace carrier has a trace field:\n%s", plain)
	}
}

// The trace carrier is covered by the signature like every other field: a changed,
// added or removed entry, or a whole carrier added or removed, is a forgery.
func TestOpenRefusesATamperedTraceCarrier(t *testing.T) {
	k := keyring(t, nil, keyA)
	trace := map[string]string{"traceparent": traceparent, "tracestate": "vendor=a"}
	traced, untraced := withTrace(t, k, trace), signed(t, k, nil)
	for _, data := range [][]byte{traced, untraced} {
		if _, err := k.Open(data, 0); err != nil {
			t.Fatalf("untouched envelope does not open: %v\n%s", err, data)
		}
	}
	block := `,"trace":{"traceparent":"` + traceparent + `","tracestate":"vendor=a"}`
	cases := []struct {
		name     string
		data     []byte
		from, to string
	}{
		{"trace id", traced, "4bf92f3577b34da6", "4bf92f3577b34da7"},
		{"sampled flag", traced, "0ba902b7-01", "0ba902b7-00"},
		{"tracestate value", traced, `"vendor=a"`, `"vendor=b"`},
		{"tracestate key", traced, `"tracestate":`, `"tracestatf":`},
		{"entry added", traced, `{"traceparent"`, `{"baggage":"x=1","traceparent"`},
		{"entry removed", traced, `,"tracestate":"vendor=a"`, ``},
		{"carrier removed", traced, block, ``},
		{"carrier added", untraced, `,"kid":`, `,"trace":{"traceparent":"` + traceparent + `"},"kid":`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if n := bytes.Count(c.data, []byte(c.from)); n != 1 {
				t.Fatalf("%s occurs %d times in the signed envelope, want once:\n%s", c.from, n, c.data)
			}
			forged := bytes.Replace(c.data, []byte(c.from), []byte(c.to), 1)
			if _, err := k.Open(forged, 0); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open after the edit: err = %v, want ErrBadSignature\n%s", err, forged)
			}
		})
	}
}

// A trace carrier has one text: Open refuses the forms Sign never writes even where the
// signature would still verify (an empty carrier signs as none; a duplicate key decodes
// as its last value).
func TestOpenRefusesATraceCarrierSignWouldNotWrite(t *testing.T) {
	k := keyring(t, nil, keyA)
	traced, untraced := withTrace(t, k, map[string]string{"traceparent": traceparent}), signed(t, k, nil)
	cases := []struct {
		name     string
		data     []byte
		from, to string
	}{
		{"empty carrier", untraced, `,"kid":`, `,"trace":{},"kid":`},
		{"null carrier", untraced, `,"kid":`, `,"trace":null,"kid":`},
		{"duplicate key", traced, `{"traceparent":`, `{"traceparent":"00-x","traceparent":`},
		{"upper-case key", traced, `"traceparent":`, `"Traceparent":`},
		{"escaped value", traced, `"00-`, `"\u0030\u0030-`},
		{"whitespace", traced, `"trace":{`, `"trace": {`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			forged := bytes.Replace(c.data, []byte(c.from), []byte(c.to), 1)
			if bytes.Equal(forged, c.data) {
				t.Fatalf("%s is not in the signed envelope:\n%s", c.from, c.data)
			}
			if _, err := k.Open(forged, 0); !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Open: err = %v, want a refusal\n%s", err, forged)
			}
		})
	}
	// Under a valid signature, too: what a holder of the key could sign but Sign never would.
	for name, trace := range map[string]map[string]string{
		"control byte in value": {"traceparent": "00-\x01"},
		"non-ASCII value":       {"baggage": "k=ü"},
		"key with a space":      {"trace parent": "x"},
	} {
		e := sample()
		e.Trace = trace
		if _, err := k.Open(signRaw(t, k, e), 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("Open of a signed %s: err = %v, want ErrMalformed", name, err)
		}
	}
}

// Sign refuses a carrier that Open would refuse, with an error naming the entry.
func TestSignRefusesABadTraceCarrier(t *testing.T) {
	k := keyring(t, nil, keyA)
	many := map[string]string{}
	for i := range MaxTraceEntries + 1 {
		many[fmt.Sprintf("k%d", i)] = "v"
	}
	cases := map[string]struct {
		trace map[string]string
		say   string
	}{
		"empty carrier":   {map[string]string{}, "empty trace carrier"},
		"too many":        {many, "at most 8"},
		"upper-case key":  {map[string]string{"X-B3-TraceId": "1"}, `"X-B3-TraceId"`},
		"empty key":       {map[string]string{"": "1"}, `key ""`},
		"key too long":    {map[string]string{strings.Repeat("k", MaxTraceKeyLen+1): "1"}, "1 to 64"},
		"key starts with": {map[string]string{"-x": "1"}, `"-x"`},
		"empty value":     {map[string]string{"tracestate": ""}, "0 bytes"},
		"value too long":  {map[string]string{"baggage": strings.Repeat("a", MaxTraceValueLen+1)}, "1 to 8192"},
		"newline value":   {map[string]string{"baggage": "a\nb"}, "printable ASCII"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			e := sample()
			e.Trace = c.trace
			_, err := k.Sign(e)
			if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), c.say) {
				t.Fatalf("Sign: err = %v, want ErrMalformed saying %q", err, c.say)
			}
		})
	}
	longest := map[string]string{}
	for i := range MaxTraceEntries {
		longest[fmt.Sprintf("%s%d", strings.Repeat("k", MaxTraceKeyLen-1), i)] = strings.Repeat("~", MaxTraceValueLen)
	}
	if _, err := k.Open(withTrace(t, k, longest), 0); err != nil {
		t.Fatalf("the largest carrier within the limits: %v", err)
	}
}

// FuzzTrace signs envelopes with arbitrary trace carriers: Sign must refuse exactly the
// carriers CheckTrace refuses, and write the others as envelopes that open with the same
// carrier and are refused after any change to a byte of the carrier's text.
func FuzzTrace(f *testing.F) {
	f.Add("traceparent", traceparent, "tracestate", "vendor=a")
	f.Add("baggage", "user.tier=gold;p=1", "", "")
	f.Add("uber-trace-id", "a:b:0:1", "x-b3-sampled", "1")
	f.Add("Traceparent", "x", "k", "\x7f")
	f.Add("k", "", "k2", "ü")
	_, plain := fuzzKeyrings(f)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		trace := map[string]string{k1: v1}
		if k2 != "" {
			trace[k2] = v2
		}
		e := sample()
		e.Trace = trace
		data, err := plain.Sign(e)
		if want := CheckTrace(trace); (err == nil) != (want == nil) || err != nil && !errors.Is(err, ErrMalformed) {
			t.Fatalf("Sign(trace %q): err = %v, CheckTrace says %v", trace, err, want)
		}
		if err != nil {
			return
		}
		got, err := plain.Open(data, 0)
		if err != nil || !reflect.DeepEqual(got.Trace, trace) {
			t.Fatalf("Open: trace %q, %v; signed %q\n%q", got.Trace, err, trace, data)
		}
		start := bytes.Index(data, []byte(`"trace":`))
		end := bytes.Index(data, []byte(`,"kid":`))
		mutated := bytes.Clone(data)
		for i := start; i < end; i++ {
			mutated[i] ^= 0x01
			if _, err := plain.Open(mutated, 0); err == nil {
				t.Fatalf("accepted the envelope with byte %d of the trace changed:\n%q", i, mutated)
			}
			mutated[i] ^= 0x01
		}
	})
}

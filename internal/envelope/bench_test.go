package envelope_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
)

// benchArgs are the three small arguments of issue 14's workload.
type benchArgs struct {
	Order string `json:"order"`
	Qty   int    `json:"qty"`
	Note  string `json:"note"`
}

// BenchmarkEnvelope measures what the envelope costs a task against plain JSON of the
// same arguments, the peer each ratio is read against (issue 14's goal: encode+sign and
// verify+decode together at most 2× the plain round trip):
//
//	go test -run '^$' -bench BenchmarkEnvelope -benchmem -count 6 ./internal/envelope
//
// Each of json, signed and sealed has three parts: "encode", what a Submit does, "decode",
// what a worker does, and "roundtrip", both one after the other (the figure the goal
// reads). For json, encode is json.Marshal of the arguments and decode json.Unmarshal.
// For signed and sealed, encode+sign marshals the arguments, sets the caller (a user id,
// a 40-byte token, an expiry; in clear, or sealed with the key derived from the signing
// key) and signs; verify+decode is Open (verify and decode), reading the caller, and
// decoding the arguments. signed and sealed write envelope version 1, signed.v2 and
// sealed.v2 version 2 (signed over its own bytes, verified before it is parsed).
func BenchmarkEnvelope(b *testing.B) {
	args := benchArgs{Order: "o-12345", Qty: 3, Note: "leave at the door"}
	caller := &envelope.Caller{UserID: "user-8f14e45f", Token: "tok-0123456789abcdef0123456789abcdef0123", ExpiresAt: time.Now().Add(time.Hour).UTC().Round(time.Millisecond)}
	signing := []envelope.Key{{ID: "k1", Secret: []byte("bench-signing-key-0123456789abcdef")}}
	sealed, err := envelope.NewDerivedKeyring("bench", signing)
	if err != nil {
		b.Fatal(err)
	}
	plain, err := envelope.NewKeyring("bench", signing, nil)
	if err != nil {
		b.Fatal(err)
	}

	jsonEncode := func(b *testing.B) []byte {
		data, err := json.Marshal(args)
		if err != nil {
			b.Fatal(err)
		}
		return data
	}
	jsonDecode := func(b *testing.B, data []byte) {
		var back benchArgs
		if err := json.Unmarshal(data, &back); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("json", func(b *testing.B) {
		data := jsonEncode(b)
		b.Run("encode", func(b *testing.B) {
			for b.Loop() {
				jsonEncode(b)
			}
		})
		b.Run("decode", func(b *testing.B) {
			for b.Loop() {
				jsonDecode(b, data)
			}
		})
		b.Run("roundtrip", func(b *testing.B) {
			for b.Loop() {
				jsonDecode(b, jsonEncode(b))
			}
		})
	})
	plainV2, err := plain.WritingVersion(envelope.Version2)
	if err != nil {
		b.Fatal(err)
	}
	sealedV2, err := sealed.WritingVersion(envelope.Version2)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range []struct {
		name string
		keys *envelope.Keyring
	}{{"signed", plain}, {"sealed", sealed}, {"signed.v2", plainV2}, {"sealed.v2", sealedV2}} {
		encode := func(b *testing.B) []byte {
			raw, err := json.Marshal(args)
			if err != nil {
				b.Fatal(err)
			}
			e := &envelope.Envelope{ID: "q/01M8T5QFRPFWEC63S9TNW8Y5CQ", Kind: "shop.order", Queue: "q", Schema: "v2:0123456789abcdef",
				MaxRetries: 3, SubmittedAt: time.Now().UTC(), Args: raw}
			if err := k.keys.SetCaller(e, caller); err != nil {
				b.Fatal(err)
			}
			data, err := k.keys.Sign(e)
			if err != nil {
				b.Fatal(err)
			}
			return data
		}
		decode := func(b *testing.B, data []byte) {
			got, err := k.keys.Open(data, 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.keys.Caller(got); err != nil {
				b.Fatal(err)
			}
			var back benchArgs
			if err := json.Unmarshal(got.Args, &back); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(k.name, func(b *testing.B) {
			data := encode(b)
			b.Run("encode+sign", func(b *testing.B) {
				for b.Loop() {
					encode(b)
				}
			})
			b.Run("verify+decode", func(b *testing.B) {
				for b.Loop() {
					decode(b, data)
				}
			})
			b.Run("roundtrip", func(b *testing.B) {
				for b.Loop() {
					decode(b, encode(b))
				}
			})
		})
	}
}

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
// "json" is json.Marshal of the arguments, then json.Unmarshal back. "signed" and
// "sealed" are what Submit and a worker do with them: marshal the arguments, set the
// caller (a user id, a 40-byte token, an expiry; in clear, or sealed with the key derived
// from the signing key), sign; then Open (verify and decode) and read the caller and the
// arguments back.
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

	b.Run("json", func(b *testing.B) {
		for b.Loop() {
			data, err := json.Marshal(args)
			if err != nil {
				b.Fatal(err)
			}
			var back benchArgs
			if err := json.Unmarshal(data, &back); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, k := range []struct {
		name string
		keys *envelope.Keyring
	}{{"signed", plain}, {"sealed", sealed}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
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
		})
	}
}

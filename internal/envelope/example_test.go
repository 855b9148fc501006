package envelope_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/internal/envelope"
)

// A keyring set to write version 2 signs the envelope's own text, with the key id second
// and the signature last; a keyring of the same keys that writes version 1 reads it.
func ExampleKeyring_WritingVersion() {
	keys := []envelope.Key{{ID: "k1", Secret: bytes.Repeat([]byte{1}, envelope.MinKeySize)}}
	old, err := envelope.NewKeyring("app", keys, nil)
	if err != nil {
		panic(err)
	}
	v2, err := old.WritingVersion(envelope.Version2)
	if err != nil {
		panic(err)
	}
	e := &envelope.Envelope{ID: "q/1", Kind: "demo", Queue: "q", SubmittedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Args: json.RawMessage(`{"n":1}`)}
	data, err := v2.Sign(e)
	if err != nil {
		panic(err)
	}
	signedText, _, _ := bytes.Cut(data, []byte(`"sig":`))
	fmt.Println(string(signedText))
	opened, err := old.Open(data, 0)
	fmt.Println(opened.Version, opened.Kind, err)
	// Output:
	// {"v":2,"kid":"k1","id":"q/1","kind":"demo","queue":"q","schema":"","attempt":0,"max_retries":0,"submitted_at":"2026-01-02T03:04:05Z","args":{"n":1},
	// 2 demo <nil>
}

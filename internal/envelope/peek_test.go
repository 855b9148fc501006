package envelope

import (
	"errors"
	"testing"
)

// Peek reads what an envelope of either version claims without a key that verifies it,
// and refuses what Open would refuse as malformed before it looks at the signature.
func TestPeekReadsBothVersionsWithoutVerifying(t *testing.T) {
	for version, k := range map[int]*Keyring{Version: keyring(t, nil, keyA), Version2: keyringV2(t, nil, keyA)} {
		data, err := k.Sign(sample())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := keyring(t, nil, keyB).Open(data, 0); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Open with another key = %v, want ErrBadSignature", err)
		}
		e, err := Peek(data, 0)
		if err != nil || e.ID != sample().ID || e.Kind != sample().Kind || e.KeyID != keyA.ID {
			t.Errorf("Peek of version %d = %+v, %v; want what it claims", version, e, err)
		}
		if _, err := Peek(append(data[:len(data):len(data)], ' '), 0); !errors.Is(err, ErrMalformed) {
			t.Errorf("Peek of version %d with a trailing space = %v, want ErrMalformed", version, err)
		}
		if _, err := Peek(data, len(data)-1); !errors.Is(err, ErrTooLarge) {
			t.Errorf("Peek of version %d over its limit = %v, want ErrTooLarge", version, err)
		}
	}
}

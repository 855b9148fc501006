package envelope

import (
	"bytes"
	"testing"
)

// FuzzOpen feeds arbitrary bytes to Open and to Caller: they must never panic, and an
// envelope they accept must be one the keyring signed (re-signing it gives the same bytes
// for every signed field), so a mutation that keeps a valid signature is a forgery.
func FuzzOpen(f *testing.F) {
	k, err := NewKeyring("taskgen", []Key{keyA}, bytes.Repeat([]byte{9}, 32))
	if err != nil {
		f.Fatal(err)
	}
	plain, _ := NewKeyring("taskgen", []Key{keyA}, nil)
	for _, kr := range []*Keyring{k, plain} {
		e := sample()
		_ = kr.SetCaller(e, &Caller{UserID: "u", Token: "t"})
		data, _ := kr.Sign(e)
		f.Add(data)
	}
	f.Add([]byte(`{"v":1}`))
	f.Add([]byte(`{"v":1,"id":"q/x","kind":"k","queue":"q","args":{},"kid":"a","sig":"AA=="}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, kr := range []*Keyring{k, plain} {
			e, err := kr.Open(data, 0)
			if err != nil {
				continue
			}
			if _, err := kr.Caller(e); err != nil {
				continue
			}
			sig := append([]byte(nil), e.Sig...)
			if _, err := kr.Sign(e); err != nil || !bytes.Equal(sig, e.Sig) {
				t.Fatalf("accepted an envelope whose signature is not the keyring's: %q", data)
			}
		}
	})
}

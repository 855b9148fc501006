package envelope

import (
	"testing"
	"time"
)

// What an earlier release wrote must verify in this one: workers and clients of two
// releases share a queue through every rolling deploy. These texts and MACs were written
// by the release before the MAC code was reworked (pooled HMACs, signedBytes without
// closures); a change to the signed bytes fails here, where every other test, signing
// and verifying with the same code, would pass.
const (
	earlierPlainV1   = `{"v":1,"id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA","kind":"email.send","queue":"email","schema":"v1:abc","attempt":2,"max_retries":3,"timeout_ms":1000,"submitted_at":"2026-01-02T03:04:05.000000006Z","not_after":"2026-01-09T03:04:05Z","caller":{"user_id":"u1","token":"tok","expires_at":"2030-01-01T00:00:00Z","scopes":["read"]},"args":{"to":"a@example.com"},"trace":{"traceparent":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},"kid":"a","sig":"k1V3Ci/BUtwxSxMb3uxuhhYNYr2i1gGbZ73MxiD1lhk="}`
	earlierSealedV1  = `{"v":1,"id":"email/01JAAAAAAAAAAAAAAAAAAAAAAA","kind":"email.send","queue":"email","schema":"v1:abc","attempt":0,"max_retries":3,"timeout_ms":1000,"submitted_at":"2026-01-02T03:04:05.000000006Z","not_after":"2026-01-09T03:04:05Z","sealed":{"kid":"hkdf:a","data":"sy3eHBrTm8puBzQLZcgozwcIHaRASKWaKLCIWmA5ILgaY8eAayIYA+6UrPTM4giIqfQaSr3PR285cyIpZjRpS4YDGA=="},"args":{"to":"a@example.com"},"kid":"a","sig":"IZxt1kxn3OzU5u69ZTsX1AhYBdl/v5rHulmLLEvjZAo="}`
	earlierSucceeded = "a:zQIKNPzX9Fbi1SFP2ZClV1Ap3iQoDWpho+v/MSFlUww="
	earlierDead      = "a:Hn4pPD40LSyEviH3a4jHHU7PjQr0q+7Xkj6YNNMjcDI="
	earlierVouch     = "a:OKuryEavJIeSClG0uVEZy+u/17uchdFJ+7nki5MxfJM="
)

const earlierID = "email/01JAAAAAAAAAAAAAAAAAAAAAAA"

func TestEnvelopesOfAnEarlierReleaseOpen(t *testing.T) {
	plain := keyring(t, nil, keyA)
	e, err := plain.Open([]byte(earlierPlainV1), 0)
	if err != nil {
		t.Fatalf("plain version 1 envelope: %v", err)
	}
	if e.ID != earlierID || e.Attempt != 2 || e.Trace["traceparent"] == "" || !e.NotAfter.Equal(time.Date(2026, 1, 9, 3, 4, 5, 0, time.UTC)) {
		t.Errorf("opened %+v", e)
	}
	c, err := plain.Caller(e)
	if err != nil || c.UserID != "u1" || c.Token != "tok" {
		t.Errorf("caller = %+v, %v", c, err)
	}
	// Signing the same values again writes the same text, byte for byte.
	again, err := plain.Sign(e)
	if err != nil || string(again) != earlierPlainV1 {
		t.Errorf("re-signed:\n%s\nwant\n%s (err %v)", again, earlierPlainV1, err)
	}

	sealed, err := NewDerivedKeyring("taskgen", []Key{keyA})
	if err != nil {
		t.Fatal(err)
	}
	e, err = sealed.Open([]byte(earlierSealedV1), 0)
	if err != nil {
		t.Fatalf("sealed version 1 envelope: %v", err)
	}
	if c, err := sealed.Caller(e); err != nil || c.UserID != "u2" || c.Token != "secret-token" {
		t.Errorf("sealed caller = %+v, %v", c, err)
	}
}

func TestOutcomeMACsAndVouchesOfAnEarlierReleaseVerify(t *testing.T) {
	k := keyring(t, nil, keyA)
	succeeded := Outcome{TaskID: earlierID, State: "succeeded", Result: []byte(`{"ok":true}`)}
	dead := Outcome{TaskID: earlierID, State: "dead", Reason: "failed", Error: "boom"}
	for _, c := range []struct {
		o   Outcome
		mac string
	}{{succeeded, earlierSucceeded}, {dead, earlierDead}} {
		if err := k.VerifyOutcome(c.o, c.mac); err != nil {
			t.Errorf("%s outcome: %v", c.o.State, err)
		}
		if got := k.SignOutcome(c.o, "a"); got != c.mac {
			t.Errorf("%s outcome signed as %s, an earlier release as %s", c.o.State, got, c.mac)
		}
	}
	if err := k.CheckVouch([]byte(earlierSealedV1), earlierID, earlierVouch); err != nil {
		t.Errorf("vouch: %v", err)
	}
	if got := k.Vouch([]byte(earlierSealedV1), earlierID); got != earlierVouch {
		t.Errorf("vouch = %s, an earlier release wrote %s", got, earlierVouch)
	}
}

package wireschema

import (
	"crypto/sha256"
	"encoding/hex"
)

// FingerprintVersion prefixes every fingerprint Fingerprint returns. It changes when the
// grammar or the canonical form does, so that fingerprints of different versions never
// compare equal by accident.
const FingerprintVersion = "v2"

// Fingerprint returns the fingerprint of a canonical description (see Canonical):
// FingerprintVersion, ":", then the first 16 hex digits of the SHA-256 of the text. It
// hashes what it is given; a description that is not canonical gets a fingerprint that
// differs from the canonical one's.
func Fingerprint(canonical string) string {
	sum := sha256.Sum256([]byte(canonical))
	return FingerprintVersion + ":" + hex.EncodeToString(sum[:8])
}

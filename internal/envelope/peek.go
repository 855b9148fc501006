package envelope

// Peek decodes data without verifying its signature, for an operator's view of an
// envelope that does not verify (a forgery, or one signed with a key this keyring lacks):
// nothing it returns may be trusted, or acted upon. It reads both versions, checks the form
// and values as Open does, and refuses data longer than maxSize (0: DefaultMaxSize).
func Peek(data []byte, maxSize int) (*Envelope, error) {
	if maxSize <= 0 {
		maxSize = DefaultMaxSize
	}
	if len(data) > maxSize {
		return nil, ErrTooLarge
	}
	return decodeUnverified(data)
}

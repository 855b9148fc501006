package task

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"strings"
	"time"
)

// ID identifies one submitted task: "<queue>/<26 characters>", sortable by submit time.
// The queue is part of the id because every key of a task lives under its queue's hash
// tag, so Result can find the task from its id alone.
type ID string

// Queue returns the queue part of the id.
func (id ID) Queue() string {
	q, _, _ := strings.Cut(string(id), "/")
	return q
}

func (id ID) parse() (queue string, err error) {
	q, rest, ok := strings.Cut(string(id), "/")
	if !ok || q == "" || len(rest) != 26 {
		return "", fmt.Errorf("task id %q is not of the form <queue>/<26 characters>", string(id))
	}
	return q, nil
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newID returns a new id on queue: 48 bits of milliseconds then 80 random bits, in
// Crockford base32 (the ULID layout).
func newID(queue string, now time.Time) ID {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMilli())<<16)
	_, _ = rand.Read(b[6:])
	var s [26]byte
	// 128 bits in 26 base32 digits: the first digit takes the top 3 bits.
	hi, lo := binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])
	for i := 25; i >= 0; i-- {
		s[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return ID(queue + "/" + string(s[:]))
}

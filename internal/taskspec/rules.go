package taskspec

import (
	"fmt"
	"strings"
)

const (
	// DefaultQueue is the queue of a task whose directive names none.
	DefaultQueue = "default"
	// DefaultMaxRetries is the number of retries of a task whose directive gives no
	// retries=: four attempts in all.
	DefaultMaxRetries = 3
	// MaxQueueLen bounds a queue name, which is part of every Redis key of the queue and
	// of every task id.
	MaxQueueLen = 128
)

// KindSyntax and QueueSyntax describe the two forms in error messages.
const (
	KindSyntax  = "lower-case letters, digits and . _ -, starting with a letter or digit"
	QueueSyntax = "letters, digits and . _ -, starting with a letter or digit, without .., at most 128 bytes"
)

// CheckKind returns an error saying how to write kind when it is not a valid task kind:
// the stable wire name of a task, [a-z0-9][a-z0-9._-]*.
func CheckKind(kind string) error {
	if kind == "" {
		return fmt.Errorf("empty task kind: a kind is %s, such as email.send_welcome", KindSyntax)
	}
	for i := 0; i < len(kind); i++ {
		c := kind[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("invalid task kind %q: a kind is %s, such as email.send_welcome", kind, KindSyntax)
		}
	}
	return nil
}

// CheckQueue returns an error saying how to write name when it is not a valid queue
// name. A queue name becomes a Redis hash tag and part of task ids, so braces, colons,
// slashes and spaces are not allowed.
func CheckQueue(name string) error {
	bad := name == "" || len(name) > MaxQueueLen || strings.Contains(name, "..")
	for i := 0; i < len(name) && !bad; i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			bad = true
		}
	}
	if bad {
		return fmt.Errorf("invalid queue name %q: a queue name is %s (it is part of Redis keys and task ids)", name, QueueSyntax)
	}
	return nil
}

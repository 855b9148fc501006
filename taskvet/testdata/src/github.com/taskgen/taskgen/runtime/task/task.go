// Package task stands for taskgen's runtime: only what the test packages use.
package task

// Caller is who submitted a task.
type Caller struct {
	UserID string
}

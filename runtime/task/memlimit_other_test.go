//go:build !linux

package task_test

import (
	"fmt"
	"runtime"
)

// limitMemory fails: the memory-limited worker relies on Linux's RLIMIT_AS, and running
// the huge-entry test without a limit would prove nothing, so it fails instead of
// passing or skipping quietly.
func limitMemory(uint64) (string, error) {
	return "", fmt.Errorf("no hard memory limit on %s: the huge-entry test needs Linux (RLIMIT_AS)", runtime.GOOS)
}

func addressSpaceLimit(int) (string, error) {
	return "", fmt.Errorf("no address space limit to read on %s", runtime.GOOS)
}

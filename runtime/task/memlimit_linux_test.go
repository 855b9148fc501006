//go:build linux

package task_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// limitMemory puts this process under a hard memory limit: its address space may grow by
// no more than headroom beyond what it has mapped now (RLIMIT_AS). A mapping past that
// fails, and the Go runtime dies of it ("fatal error: out of memory"). It returns the
// limit in words.
//
// The limit is measured from the start because the Go runtime reserves far more address
// space than it uses (about 1.2 GiB on linux/amd64 before main runs): an absolute limit
// would measure reservations. A read of a 256 MiB entry maps 256 MiB at once, which no
// headroom below that allows.
//
// Why not a cgroup: a cgroup v2 memory.max bounds resident memory, which is closer to
// the truth, but a cgroup of the child's own needs the memory controller delegated to a
// subtree the test may write. This project's machines mount the memory controller as
// cgroup v1 (the v2 hierarchy has none), and where v2 has it, a process in a non-root
// cgroup can give it to a child cgroup only after moving itself into a leaf ("no internal
// processes"): the test would have to rearrange cgroups it does not own. RLIMIT_AS is the
// process's own, needs no privilege, and is there on every Linux.
func limitMemory(headroom uint64) (string, error) {
	mapped, err := statusField(os.Getpid(), "VmSize:")
	if err != nil {
		return "", err
	}
	limit := mapped + headroom
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		return "", fmt.Errorf("set RLIMIT_AS to %d bytes: %w", limit, err)
	}
	return fmt.Sprintf("RLIMIT_AS of %d MiB: %d MiB mapped at start, and %d MiB more", limit>>20, mapped>>20, headroom>>20), nil
}

// addressSpaceLimit returns the soft RLIMIT_AS of process pid as /proc shows it: a
// number of bytes, or "unlimited".
func addressSpaceLimit(pid int) (string, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "Max address space"); ok {
			if fields := strings.Fields(rest); len(fields) > 0 {
				return fields[0], nil
			}
		}
	}
	return "", errors.New("no \"Max address space\" in /proc/" + strconv.Itoa(pid) + "/limits")
}

// statusField returns a size field of /proc/<pid>/status ("VmSize:"), in bytes.
func statusField(pid int, field string) (uint64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s in /proc/%d/status: %w", field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

package main

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// xaddLimits is what redis-benchmark measures of XADD on the harness's server: what one
// stream append costs Redis and the loopback alone, the limit under any task queue on
// streams.
type xaddLimits struct {
	Requests    int     `json:"requests"`
	Unpipelined float64 `json:"unpipelined_per_sec"`
	Pipelined16 float64 `json:"pipelined_16_per_sec"`
	// Missing says why they were not measured, when they were not.
	Missing string `json:"missing,omitempty"`
}

// xaddLimit runs `redis-benchmark -n requests -q XADD s '*' f v` against addr, then the
// same with -P 16.
func xaddLimit(ctx context.Context, addr string, requests int) xaddLimits {
	l := xaddLimits{Requests: requests}
	if requests == 0 {
		l.Missing = "skipped (-xadd-requests 0)"
		return l
	}
	bin, err := exec.LookPath("redis-benchmark")
	if err != nil {
		l.Missing = "redis-benchmark is not on PATH: install Debian's redis-tools (make tools does)"
		return l
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		l.Missing = fmt.Sprintf("server address %q: %v", addr, err)
		return l
	}
	for _, p := range []struct {
		pipeline string
		into     *float64
	}{{"1", &l.Unpipelined}, {"16", &l.Pipelined16}} {
		out, err := exec.CommandContext(ctx, bin, "-h", host, "-p", port, "-n", strconv.Itoa(requests), "-P", p.pipeline,
			"-q", "XADD", "s", "*", "f", "v").CombinedOutput()
		if err == nil {
			*p.into, err = requestsPerSecond(string(out))
		}
		if err != nil {
			l.Missing = fmt.Sprintf("redis-benchmark -P %s: %v: %s", p.pipeline, err, strings.TrimSpace(string(out)))
			return l
		}
	}
	return l
}

// requestsPerSecond reads the rate from redis-benchmark -q output, whose last line (after
// progress lines ended by carriage returns) reads
// "XADD s * f v: 98039.22 requests per second, p50=0.271 msec".
func requestsPerSecond(out string) (float64, error) {
	const marker = " requests per second"
	lines := strings.FieldsFunc(out, func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range slices.Backward(lines) {
		before, _, ok := strings.Cut(line, marker)
		if !ok {
			continue
		}
		fields := strings.Fields(before)
		if len(fields) == 0 {
			break
		}
		return strconv.ParseFloat(fields[len(fields)-1], 64)
	}
	return 0, fmt.Errorf("no %q in its output", strings.TrimSpace(marker))
}

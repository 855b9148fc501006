package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/runtime/redistest"
)

func TestRequestsPerSecondReadsTheLastLineOfRedisBenchmark(t *testing.T) {
	out := "XADD s * f v: rps=0.0 (overall: nan) avg_msec=nan (overall: nan)\r" +
		"XADD s * f v: rps=81234.0 (overall: 81234.0) avg_msec=0.310 (overall: 0.310)\r" +
		"XADD s * f v: 98039.22 requests per second, p50=0.271 msec                    \n\n"
	got, err := requestsPerSecond(out)
	if err != nil || got != 98039.22 {
		t.Fatalf("requestsPerSecond = %v, %v; want 98039.22", got, err)
	}
	if _, err := requestsPerSecond("Could not connect to Redis at 127.0.0.1:1: Connection refused\n"); err == nil {
		t.Fatal("requestsPerSecond of an error message: no error")
	}
}

func TestMedianTakesTheMiddleRoundOfEachFigureOnItsOwn(t *testing.T) {
	rounds := []measurement{
		{System: "a", EnqueuePerSec: 10, P99Ms: 9},
		{System: "b", EnqueuePerSec: 1000, P99Ms: 1000},
		{System: "a", EnqueuePerSec: 30, P99Ms: 1},
		{System: "a", EnqueuePerSec: 20, P99Ms: 5},
	}
	m := median("a", rounds)
	if m.EnqueuePerSec != 20 || m.P99Ms != 5 || m.Round != -1 {
		t.Fatalf("median = enqueue %v, p99 %v, round %d; want 20, 5, -1", m.EnqueuePerSec, m.P99Ms, m.Round)
	}
	if even := median("a", rounds[:3]); even.EnqueuePerSec != 20 {
		t.Fatalf("median of 10 and 30 = %v; want 20", even.EnqueuePerSec)
	}
}

func TestRatioIsAboveOneWhenTaskgenIsBetter(t *testing.T) {
	faster := measurement{EnqueuePerSec: 300, P99Ms: 1}
	slower := measurement{EnqueuePerSec: 100, P99Ms: 4}
	for _, mt := range metrics {
		switch mt.label {
		case "enqueue, tasks/s (one Submit/Enqueue per task)":
			if r := mt.ratio(&faster, &slower); r != 3 {
				t.Errorf("enqueue ratio = %v; want 3", r)
			}
		case "submit-to-start p99, ms (paced)":
			if r := mt.ratio(&faster, &slower); r != 4 {
				t.Errorf("p99 ratio = %v; want 4", r)
			}
		}
	}
}

func TestPercentileIsTheNearestRank(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 100; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	if p := percentile(lat, 0.99); p != 99*time.Millisecond {
		t.Errorf("p99 of 1..100 ms = %s; want 99ms", p)
	}
	if p := percentile(lat, 0.5); p != 50*time.Millisecond {
		t.Errorf("p50 of 1..100 ms = %s; want 50ms", p)
	}
	if p := percentile(lat[:1], 0.99); p != time.Millisecond {
		t.Errorf("p99 of one = %s; want 1ms", p)
	}
}

// TestSnapshotsCountTheCommandsBetweenThemAndRoundTripsCountAPipelineOnce checks the two
// counts the table's per-task figures divide, on a real server.
func TestSnapshotsCountTheCommandsBetweenThemAndRoundTripsCountAPipelineOnce(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.NewClient()
	defer admin.Close()
	ctx := context.Background()
	rdb, trips := countingClient(srv.Addr, 2)
	defer rdb.Close()

	before, err := takeSnapshot(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := rdb.Set(ctx, "k", "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
	pipe := rdb.Pipeline()
	for range 5 {
		pipe.Incr(ctx, "n")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := takeSnapshot(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	d := delta(before, after)
	if d.calls["set"] != 3 || d.calls["incr"] != 5 || d.commands() != 8 {
		t.Errorf("commands between the snapshots = %v; want set 3 and incr 5 only (the harness's INFO left out)", d.calls)
	}
	if d.keys != 2 {
		t.Errorf("keys grew by %d; want 2", d.keys)
	}
	// The connection's handshake (HELLO, CLIENT SETINFO) went through the same hooks.
	if got := trips.n.Load(); got != 4 {
		t.Errorf("round trips = %d; want 4: three SETs and one pipeline", got)
	}
	kept, err := keptKeys(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	if kept["k"] != (keptPattern{Keys: 1, Expiring: 1}) || kept["n"] != (keptPattern{Keys: 1}) || len(kept) != 2 {
		t.Errorf("kept = %v; want k (expiring) and n", kept)
	}
}

// TestARunMeasuresEverySystemAndPrintsTheTable runs the whole harness on a few tasks:
// each system's tasks all run, each figure of the table is there, and what taskgen keeps
// for its result TTL is reported.
func TestARunMeasuresEverySystemAndPrintsTheTable(t *testing.T) {
	cfg := config{Tasks: 30, Rounds: 1, Concurrency: 4, Warmup: 5, Rate: 200, RateFor: 200 * time.Millisecond,
		ManyBatch: 7, XaddRequests: 200, Timeout: time.Minute}
	var out bytes.Buffer
	rep, err := measureAll(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if err := printTable(&out, rep); err != nil {
		t.Fatal(err)
	}
	if len(rep.Rounds) != 4 {
		t.Fatalf("%d measurements; want 4, one per system", len(rep.Rounds))
	}
	for _, m := range rep.Rounds {
		if m.EnqueuePerSec <= 0 || m.ProcessPerSec <= 0 || m.P99Ms <= 0 || m.RateTasks != 40 || m.EnqueueTripsPerTask <= 0 {
			t.Errorf("%s: enqueue %v/s, process %v/s, p99 %v ms, %d paced tasks, %v round trips per submit; want all positive, 40 paced",
				m.System, m.EnqueuePerSec, m.ProcessPerSec, m.P99Ms, m.RateTasks, m.EnqueueTripsPerTask)
		}
		// asynq sends each Enqueue alone; taskgen's concurrent Submits share pipelines.
		if m.System == "asynq" && m.EnqueueTripsPerTask < 1 {
			t.Errorf("asynq: %v round trips per submit; want one or more", m.EnqueueTripsPerTask)
		}
		if strings.HasPrefix(m.System, "taskgen") {
			// 30 tasks in slices of 7: five SubmitMany calls, a pipeline each.
			if m.SubmitManyPerSec <= 0 || m.SubmitManyTripsPerTask <= 0 || m.SubmitManyTripsPerTask > 6.0/30 {
				t.Errorf("%s: submitmany %v/s in %v round trips per task; want positive, in at most a round trip per call (and the queue's registration)",
					m.System, m.SubmitManyPerSec, m.SubmitManyTripsPerTask)
			}
			states := m.Kept["taskgen:{bench}:task:*"]
			if states.Keys != cfg.Tasks || states.Expiring != cfg.Tasks {
				t.Errorf("%s kept %v; want the state of each of the %d tasks, with its result TTL", m.System, m.Kept, cfg.Tasks)
			}
		}
	}
	for _, want := range []string{"taskgen signed", "taskgen sealed", "asynq", "signed v2", "taskgen signed v2:", "process, tasks/s", "submit-to-start p99", "round trips/task, worker", "submitmany, tasks/s", "redis-benchmark XADD", "goals (issue 14)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if t.Failed() {
		t.Log(out.String())
	}
}

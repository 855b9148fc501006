package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/redis/go-redis/v9"
)

// metric is one row of the table: a figure of a measurement, and which way is better.
type metric struct {
	label        string
	get          func(*measurement) *float64
	higherBetter bool
	format       string
	taskgenOnly  bool // asynq has nothing to compare: its column and the ratio show "-"
}

var metrics = []metric{
	{"enqueue, tasks/s (one Submit/Enqueue per task)", func(m *measurement) *float64 { return &m.EnqueuePerSec }, true, "%.0f", false},
	{"process, tasks/s", func(m *measurement) *float64 { return &m.ProcessPerSec }, true, "%.0f", false},
	{"submitmany, tasks/s (SubmitMany, one goroutine)", func(m *measurement) *float64 { return &m.SubmitManyPerSec }, true, "%.0f", true},
	{"submit-to-start p50, ms (paced)", func(m *measurement) *float64 { return &m.P50Ms }, false, "%.2f", false},
	{"submit-to-start p99, ms (paced)", func(m *measurement) *float64 { return &m.P99Ms }, false, "%.2f", false},
	{"paced rate achieved, tasks/s", func(m *measurement) *float64 { return &m.RateAchieved }, true, "%.0f", false},
	{"CPU/task, client+worker process, µs (paced)", func(m *measurement) *float64 { return &m.ProcessCPUPerTask }, false, "%.1f", false},
	{"CPU/task, redis-server, µs (paced)", func(m *measurement) *float64 { return &m.RedisCPUPerTask }, false, "%.1f", false},
	{"Redis commands/task, enqueue (client)", func(m *measurement) *float64 { return &m.EnqueueCommandsPerTask }, false, "%.2f", false},
	{"Redis commands/task, process (worker)", func(m *measurement) *float64 { return &m.ProcessCommandsPerTask }, false, "%.2f", false},
	{"Redis commands/task, paced (both)", func(m *measurement) *float64 { return &m.RateCommandsPerTask }, false, "%.2f", false},
	{"round trips/task, client", func(m *measurement) *float64 { return &m.EnqueueTripsPerTask }, false, "%.3f", false},
	{"round trips/task, worker", func(m *measurement) *float64 { return &m.ProcessTripsPerTask }, false, "%.3f", false},
	{"round trips/task, submitmany", func(m *measurement) *float64 { return &m.SubmitManyTripsPerTask }, false, "%.4f", true},
	{"Redis memory/finished task, B", func(m *measurement) *float64 { return &m.MemoryPerTask }, false, "%.0f", false},
	{"Redis keys/finished task", func(m *measurement) *float64 { return &m.KeysPerTask }, false, "%.2f", false},
}

// median returns the median over the rounds of system's measurements, figure by figure
// (the mean of the middle two for an even count); Round is -1.
func median(system string, rounds []measurement) measurement {
	var mine []measurement
	for _, m := range rounds {
		if m.System == system {
			mine = append(mine, m)
		}
	}
	out := measurement{System: system, Round: -1}
	if len(mine) > 0 {
		// Counts, not rates: the same in every round, or near enough to show one.
		out.RateTasks, out.Kept = mine[0].RateTasks, mine[len(mine)-1].Kept
	}
	for _, mt := range metrics {
		vals := make([]float64, 0, len(mine))
		for i := range mine {
			vals = append(vals, *mt.get(&mine[i]))
		}
		slices.Sort(vals)
		var v float64
		switch n := len(vals); {
		case n == 0:
		case n%2 == 1:
			v = vals[n/2]
		default:
			v = (vals[n/2-1] + vals[n/2]) / 2
		}
		*mt.get(&out) = v
	}
	return out
}

// ratio is taskgen's figure against asynq's, oriented so that above 1 is better for
// taskgen; 0 when it is undefined.
func (mt metric) ratio(taskgen, asynq *measurement) float64 {
	t, a := *mt.get(taskgen), *mt.get(asynq)
	if mt.higherBetter {
		if a == 0 {
			return 0
		}
		return t / a
	}
	if t == 0 {
		return 0
	}
	return a / t
}

// goalVerdict is one of issue 14's goals and what this run says of it.
type goalVerdict struct {
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	Status   string `json:"status"` // "met", "not met" or "not measured here"
}

func verdict(goal, measured string, met bool) goalVerdict {
	s := "not met"
	if met {
		s = "met"
	}
	return goalVerdict{Goal: goal, Measured: measured, Status: s}
}

// goals checks issue 14's goals on the medians of taskgen signed (t) and asynq (a).
func goals(t, a measurement, x xaddLimits, cfg config) []goalVerdict {
	cpuT, cpuA := t.ProcessCPUPerTask+t.RedisCPUPerTask, a.ProcessCPUPerTask+a.RedisCPUPerTask
	return []goalVerdict{
		verdict(fmt.Sprintf("enqueue, one Submit per task from %d goroutines >= 1.5x asynq", cfg.Concurrency),
			fmt.Sprintf("%.2fx", ratioOf(t.EnqueuePerSec, a.EnqueuePerSec)), t.EnqueuePerSec >= 1.5*a.EnqueuePerSec),
		manyGoal(t, x, cfg),
		verdict(fmt.Sprintf("process >= 3x asynq at concurrency %d", cfg.Concurrency),
			fmt.Sprintf("%.2fx", ratioOf(t.ProcessPerSec, a.ProcessPerSec)), t.ProcessPerSec >= 3*a.ProcessPerSec),
		verdict(fmt.Sprintf("p99 submit-to-start at %d tasks/s <= 2 ms and below asynq's", cfg.Rate),
			fmt.Sprintf("%.2f ms (asynq %.2f ms)", t.P99Ms, a.P99Ms), t.P99Ms <= 2 && t.P99Ms < a.P99Ms),
		verdict(fmt.Sprintf("CPU per task (client + Redis) at %d tasks/s <= asynq's", cfg.Rate),
			fmt.Sprintf("%.1f µs (asynq %.1f µs)", cpuT, cpuA), cpuT <= cpuA),
		verdict("round trips per processed task <= 0.2 (worker)",
			fmt.Sprintf("%.3f", t.ProcessTripsPerTask), t.ProcessTripsPerTask <= 0.2),
		verdict("Redis memory per finished task <= 200 B",
			fmt.Sprintf("%.0f B", t.MemoryPerTask), t.MemoryPerTask <= 200),
		{Goal: "envelope encode+sign+verify+decode <= 2x plain JSON", Measured: "-",
			Status: "not measured here: BenchmarkEnvelope in internal/envelope (make bench runs it)"},
	}
}

// manyGoal checks SubmitMany's goal: at least half of redis-benchmark's XADD -P 16 on
// the same server.
func manyGoal(t measurement, x xaddLimits, cfg config) goalVerdict {
	goal := fmt.Sprintf("SubmitMany (slices of %d) >= 50%% of pipelined XADD (-P 16)", cfg.ManyBatch)
	if x.Missing != "" {
		return goalVerdict{Goal: goal, Measured: fmt.Sprintf("%.0f/s", t.SubmitManyPerSec), Status: "not measured here: " + xaddNote(x)}
	}
	return verdict(goal, fmt.Sprintf("%.0f%% (%.0f/s; %s)", 100*ratioOf(t.SubmitManyPerSec, x.Pipelined16), t.SubmitManyPerSec, xaddNote(x)),
		t.SubmitManyPerSec >= x.Pipelined16/2)
}

func ratioOf(t, a float64) float64 {
	if a == 0 {
		return 0
	}
	return t / a
}

func xaddNote(x xaddLimits) string {
	if x.Missing != "" {
		return "XADD limit: " + x.Missing
	}
	return fmt.Sprintf("XADD -P 16: %.0f/s", x.Pipelined16)
}

// printTable writes the report as text: the medians, the XADD limits and the goals.
func printTable(w io.Writer, rep report) error {
	c := rep.Config
	fmt.Fprintf(w, "taskbench: %d tasks, %d round(s), concurrency %d, paced at %d tasks/s for %s (%d tasks)\n",
		c.Tasks, c.Rounds, c.Concurrency, c.Rate, c.RateFor, rep.Medians[0].RateTasks)
	mc := rep.Machine
	fmt.Fprintf(w, "machine: %s %s/%s, %d CPUs (GOMAXPROCS %d) %s; redis-server %s on %s\n",
		mc.GoVersion, mc.OS, mc.Arch, mc.CPUs, mc.GOMAXPROCS, mc.CPUModel, mc.RedisVersion, mc.RedisAddr)
	fmt.Fprintf(w, "medians of the rounds; ratio = taskgen signed / asynq, oriented so that > 1 is better for taskgen;\n")
	fmt.Fprintf(w, "signed v2: taskgen signed writing envelope version 2 (WithEnvelopeVersion(2)), ratio v2 the same against asynq\n\n")
	byName := map[string]*measurement{}
	for i := range rep.Medians {
		byName[rep.Medians[i].System] = &rep.Medians[i]
	}
	signed, sealed, aq, v2 := byName["taskgen signed"], byName["taskgen sealed"], byName["asynq"], byName["taskgen signed v2"]
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "metric\tasynq\ttaskgen signed\ttaskgen sealed\tratio\tsigned v2\tratio v2\t")
	for _, mt := range metrics {
		if mt.taskgenOnly {
			fmt.Fprintf(tw, "%s\t-\t"+mt.format+"\t"+mt.format+"\t-\t"+mt.format+"\t-\t\n", mt.label, *mt.get(signed), *mt.get(sealed), *mt.get(v2))
			continue
		}
		fmt.Fprintf(tw, "%s\t"+mt.format+"\t"+mt.format+"\t"+mt.format+"\t%.2f\t"+mt.format+"\t%.2f\t\n",
			mt.label, *mt.get(aq), *mt.get(signed), *mt.get(sealed), mt.ratio(signed, aq), *mt.get(v2), mt.ratio(v2, aq))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if x := rep.Xadd; x.Missing != "" {
		fmt.Fprintf(w, "redis-benchmark XADD: not measured: %s\n", x.Missing)
	} else {
		fmt.Fprintf(w, "redis-benchmark XADD (-n %d): unpipelined %.0f/s, -P 16 %.0f/s; taskgen signed enqueue is %.0f%% of unpipelined XADD\n",
			x.Requests, x.Unpipelined, x.Pipelined16, 100*ratioOf(signed.EnqueuePerSec, x.Unpipelined))
	}
	fmt.Fprintf(w, "\nkept in Redis after the process phase of the last round (keys, of which with a TTL):\n")
	for _, m := range []*measurement{aq, signed, sealed, v2} {
		patterns := slices.Sorted(maps.Keys(m.Kept))
		parts := make([]string, 0, len(patterns))
		for _, p := range patterns {
			k := m.Kept[p]
			part := fmt.Sprintf("%s %d (%d)", p, k.Keys, k.Expiring)
			if k.StreamEntries > 0 {
				part += fmt.Sprintf(" [%d stream entries]", k.StreamEntries)
			}
			parts = append(parts, part)
		}
		if len(parts) == 0 {
			parts = append(parts, "nothing")
		}
		fmt.Fprintf(w, "  %s: %s\n", m.System, strings.Join(parts, ", "))
	}
	fmt.Fprintln(w, "\ngoals (issue 14), taskgen signed:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, g := range rep.Goals {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", g.Goal, g.Measured, g.Status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\ntook %s\n", rep.Took.Round(1e9))
	return nil
}

// redisVersion returns the server's redis_version.
func redisVersion(ctx context.Context, rdb *redis.Client) (string, error) {
	text, err := rdb.Info(ctx, "server").Result()
	if err != nil {
		return "", fmt.Errorf("read INFO server of redis-server: %w", err)
	}
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v, nil
		}
	}
	return "", fmt.Errorf("INFO server has no redis_version")
}

// cpuModel returns the first "model name" of /proc/cpuinfo, or "" where there is none.
func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

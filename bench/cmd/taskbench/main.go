// Command taskbench runs one workload on taskgen and on hibiken/asynq, side by side, on
// a redis-server of its own, and prints what each costs (issue 14):
//
//	cd bench && go run ./cmd/taskbench [-tasks 20000] [-rounds 3] [-concurrency 50] [-rate 2000] [-json]
//
// The workload is package workload's task: three small arguments and a caller with a
// user id, a 40-byte token and an expiry; asynq's payload is the JSON of the same fields,
// the token included. Each system first runs -warmup tasks unmeasured; then each round
// measures, in this order, taskgen with callers signed in clear (WithPlainCallers),
// taskgen signed and sealed (its default), asynq, and taskgen signed writing envelope
// version 2 (WithEnvelopeVersion(2), an opt-in), each on a flushed server:
//
//   - enqueue/s: -tasks tasks submitted from -concurrency goroutines, one Submit
//     (generated SubmitOrder) or one asynq Client.Enqueue per task, no worker running;
//   - process/s: a worker of concurrency -concurrency started on those tasks, from its
//     start until the last body ran; then, the worker stopped, the Redis memory that the
//     finished tasks left (used_memory less client buffers) and the keys, per task;
//   - at -rate tasks/s for -rate-for, paced, with a worker running: submit-to-start
//     latency p50 and p99, CPU per task of this process (client and worker: getrusage)
//     and of redis-server (INFO used_cpu_sys + used_cpu_user);
//   - submitmany/s (taskgen only): the same number of tasks enqueued with the generated
//     SubmitOrderMany in slices of -many-batch from one goroutine, no worker running,
//     reported beside redis-benchmark's XADD -P 16 (the goal: at least half of it);
//   - Redis commands per task (INFO commandstats, commands run by Lua scripts included)
//     of the enqueue phase (the client's) and of the process phase (the worker's), and
//     round trips per task counted on each side's go-redis client (a pipeline is one).
//
// Then redis-benchmark's XADD, unpipelined and with -P 16, as the limit of the server.
// The table shows the median of the rounds of each figure and the ratio taskgen signed /
// asynq oriented so that above 1 is better for taskgen, and checks issue 14's goals.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"runtime"
	"time"

	"github.com/taskgen/taskgen/bench/workload"
	"github.com/taskgen/taskgen/runtime/redistest"
)

// config is what the flags set.
type config struct {
	Tasks        int           `json:"tasks"`
	Rounds       int           `json:"rounds"`
	Concurrency  int           `json:"concurrency"`
	Warmup       int           `json:"warmup_tasks"`
	Rate         int           `json:"rate"`
	RateFor      time.Duration `json:"rate_for_ns"`
	ManyBatch    int           `json:"submit_many_batch"`
	XaddRequests int           `json:"xadd_requests"`
	Timeout      time.Duration `json:"timeout_ns"`
	JSON         bool          `json:"-"`
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("taskbench: ")
	var cfg config
	flag.IntVar(&cfg.Tasks, "tasks", 20000, "tasks per enqueue and process measurement")
	flag.IntVar(&cfg.Rounds, "rounds", 3, "rounds; each figure is the median of the rounds")
	flag.IntVar(&cfg.Concurrency, "concurrency", 50, "submitting goroutines, and worker concurrency")
	flag.IntVar(&cfg.Warmup, "warmup", 1000, "tasks each system runs, unmeasured, before the first round (0: none)")
	flag.IntVar(&cfg.Rate, "rate", 2000, "tasks per second of the paced latency and CPU measurement")
	flag.DurationVar(&cfg.RateFor, "rate-for", 5*time.Second, "how long the paced submitter runs")
	flag.IntVar(&cfg.ManyBatch, "many-batch", 1000, "tasks per SubmitMany call in the submitmany phase (taskgen only)")
	flag.IntVar(&cfg.XaddRequests, "xadd-requests", 200000, "requests of each redis-benchmark XADD run (0: skip)")
	flag.DurationVar(&cfg.Timeout, "timeout", 5*time.Minute, "longest wait for a phase's tasks to run")
	flag.BoolVar(&cfg.JSON, "json", false, "print JSON instead of the table")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: taskbench [flags]\n\nRuns one workload on taskgen and asynq on a redis-server of its own and compares them.\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := cfg.check(); err != nil {
		log.Print(err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		log.Fatal(err)
	}
}

func (c config) check() error {
	switch {
	case c.Tasks < 1:
		return fmt.Errorf("-tasks %d: give at least 1", c.Tasks)
	case c.Rounds < 1:
		return fmt.Errorf("-rounds %d: give at least 1", c.Rounds)
	case c.Concurrency < 1:
		return fmt.Errorf("-concurrency %d: give at least 1", c.Concurrency)
	case c.Warmup < 0:
		return fmt.Errorf("-warmup %d: give 0 for no warm-up, or a positive count", c.Warmup)
	case c.Rate < 1 || c.Rate > int(time.Second):
		return fmt.Errorf("-rate %d: give a rate from 1 to 1e9 tasks per second", c.Rate)
	case float64(c.Rate)*c.RateFor.Seconds() < 1:
		return fmt.Errorf("-rate %d for -rate-for %s submits no task: lengthen -rate-for", c.Rate, c.RateFor)
	case c.ManyBatch < 1:
		return fmt.Errorf("-many-batch %d: give at least 1", c.ManyBatch)
	case c.XaddRequests < 0:
		return fmt.Errorf("-xadd-requests %d: give 0 to skip redis-benchmark, or a positive count", c.XaddRequests)
	case c.Timeout <= 0:
		return fmt.Errorf("-timeout %s: give a positive duration", c.Timeout)
	}
	return nil
}

// report is the whole result of a run, as -json prints it.
type report struct {
	Config  config        `json:"config"`
	Machine machine       `json:"machine"`
	Rounds  []measurement `json:"rounds"`
	Medians []measurement `json:"medians"` // one per system, Round -1
	Xadd    xaddLimits    `json:"xadd"`
	Goals   []goalVerdict `json:"goals"`
	Started time.Time     `json:"started"`
	Took    time.Duration `json:"took_ns"`
}

// machine describes where the run ran.
type machine struct {
	GoVersion    string `json:"go_version"`
	OS           string `json:"os"`
	Arch         string `json:"arch"`
	CPUs         int    `json:"cpus"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	CPUModel     string `json:"cpu_model,omitempty"`
	RedisVersion string `json:"redis_version"`
	RedisAddr    string `json:"redis_addr"`
}

func run(ctx context.Context, cfg config) error {
	progress := io.Writer(os.Stderr)
	if cfg.JSON {
		progress = io.Discard
	}
	rep, err := measureAll(ctx, cfg, progress)
	if err != nil {
		return err
	}
	if cfg.JSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printTable(os.Stdout, rep)
}

// measureAll starts a redis-server, measures every system for cfg and returns the
// report, saying on progress what it is doing.
func measureAll(ctx context.Context, cfg config, progress io.Writer) (report, error) {
	started := time.Now()
	srv, err := redistest.StartServer()
	if err != nil {
		return report{}, err
	}
	defer srv.Stop()
	admin := srv.NewClient()
	defer admin.Close()
	version, err := redisVersion(ctx, admin)
	if err != nil {
		return report{}, err
	}
	rep := report{Config: cfg, Started: started.UTC(), Machine: machine{
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), CPUModel: cpuModel(), RedisVersion: version, RedisAddr: srv.Addr,
	}}

	log := logger()
	signed, err := newTaskgen(srv.Addr, cfg.Concurrency, false, 1, log)
	if err != nil {
		return report{}, err
	}
	defer signed.close()
	sealed, err := newTaskgen(srv.Addr, cfg.Concurrency, true, 1, log)
	if err != nil {
		return report{}, err
	}
	defer sealed.close()
	aq := newAsynq(srv.Addr, cfg.Concurrency)
	defer aq.close()
	signedV2, err := newTaskgen(srv.Addr, cfg.Concurrency, false, 2, log)
	if err != nil {
		return report{}, err
	}
	defer signedV2.close()
	// The goals are checked on the defaults (signed, version 1), which come first; asynq
	// is third, and version 2 last, where its figures show what the opt-in buys.
	systems := []system{signed, sealed, aq, signedV2}

	b := &bench{admin: admin, tasks: cfg.Tasks, concurrency: cfg.Concurrency, rate: cfg.Rate, rateFor: cfg.RateFor, manyBatch: cfg.ManyBatch, timeout: cfg.Timeout, rec: &workload.Recorder{}}
	if cfg.Warmup > 0 {
		for _, s := range systems {
			fmt.Fprintf(progress, "warm-up: %s, %d tasks\n", s.name(), cfg.Warmup)
			if err := b.warmUp(ctx, s, cfg.Warmup); err != nil {
				return report{}, fmt.Errorf("warm-up: %w", err)
			}
		}
	}
	for r := range cfg.Rounds {
		for _, s := range systems {
			fmt.Fprintf(progress, "round %d/%d: %s\n", r+1, cfg.Rounds, s.name())
			m, err := b.round(ctx, s, r+1)
			if err != nil {
				return report{}, fmt.Errorf("round %d: %w", r+1, err)
			}
			rep.Rounds = append(rep.Rounds, m)
		}
	}
	if err := admin.FlushAll(ctx).Err(); err != nil {
		return report{}, fmt.Errorf("flush redis-server: %w", err)
	}
	if cfg.XaddRequests > 0 {
		fmt.Fprintln(progress, "redis-benchmark XADD")
	}
	rep.Xadd = xaddLimit(ctx, srv.Addr, cfg.XaddRequests)
	for _, s := range systems {
		rep.Medians = append(rep.Medians, median(s.name(), rep.Rounds))
	}
	rep.Goals = goals(rep.Medians[0], rep.Medians[2], rep.Xadd, cfg)
	rep.Took = time.Since(started)
	return rep, nil
}

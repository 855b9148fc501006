package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

var (
	chaosTasks = flag.Int("chaos.tasks", 10000, "short tasks the chaos test submits")
	chaosKill  = flag.Duration("chaos.kill", 300*time.Millisecond, "interval between worker kills")
	chaosLong  = flag.Int("chaos.long", 40, "long tasks whose worker is stopped and loses Redis, but is never killed")
	chaosTaken = flag.Int("chaos.taken", 8, "long tasks whose worker is killed while it runs them")
	// A long task outlasts the worker's longest internal timeout (a read: 1 s block and
	// 5 s slack) by more than a takeover takes (a lease, and a read's block until the next
	// reclaim): heartbeats that stopped with such a timeout are caught in every run. It
	// also outlasts every disturbance of disturbLong, which all hit it while it runs.
	chaosLongFor = flag.Duration("chaos.longfor", 14*time.Second, "how long a long task runs: past the lease, every internal timeout and every disturbance")
)

// The environment of a chaos worker process: when chaosWorkerEnv is set to a Redis
// address, the test binary is a worker of the queues in chaosQueuesEnv (default the
// short tasks' queues) running chaosConcurrencyEnv tasks at once (default 8).
const (
	chaosWorkerEnv      = "TASKGEN_CHAOS_WORKER"
	chaosQueuesEnv      = "TASKGEN_CHAOS_QUEUES"
	chaosConcurrencyEnv = "TASKGEN_CHAOS_CONCURRENCY"
)

// chaosLease is every chaos worker's lease: short next to the long tasks' run, which
// must therefore live on heartbeats.
const chaosLease = time.Second

// shortConcurrency is how many tasks a worker of the short tasks runs at once: the most
// executions a kill of it can duplicate.
const shortConcurrency = 8

// chaosPrefix is the key prefix of the chaos tasks.
const chaosPrefix = "chaos"

var (
	chaosQueues = []string{"alpha", "beta", "gamma"}
	// longQueue holds the long tasks whose worker is never killed; takenQueue those whose
	// worker is killed mid-run, for another worker to take over.
	longQueue, takenQueue = "long", "taken"
	chaosKey              = []byte("chaos-signing-key-0123456789abcdef")
	// The ledgers live outside the prefix. chaosLedger counts the executions of each
	// short task; the long ledgers are sets, per queue, of "<task number>:<run id>" for
	// each run that began and each that ended.
	chaosLedger    = "chaos-ledger"
	longBegan      = "chaos-long-began:"
	longEnded      = "chaos-long-ended:"
	chaosAllQueues = append(slices.Clip(chaosQueues), longQueue, takenQueue)
)

type chaosArgs struct {
	N int `json:"n"`
}

type longArgs struct {
	N   int           `json:"n"`
	For time.Duration `json:"for"`
}

func chaosDef(queue string) task.Def {
	return task.Def{Kind: "chaos.work." + queue, Queue: queue, MaxRetries: 25, Schema: "v1:chaos", Timeout: 10 * time.Second}
}

func longDef(queue string) task.Def {
	return task.Def{Kind: "chaos.long." + queue, Queue: queue, MaxRetries: 3, Schema: "v1:chaos-long", Timeout: time.Minute}
}

// chaosShared is what the client and the worker processes share.
func chaosShared() []task.Option {
	return []task.Option{task.WithSigningKey("chaos", chaosKey), task.WithPrefix(chaosPrefix)}
}

func chaosWorkerOptions() []task.WorkerOption {
	opts := []task.WorkerOption{
		task.WithQueues(chaosQueues...), task.WithLease(chaosLease), task.WithConcurrency(shortConcurrency),
		task.WithBackoff(20*time.Millisecond, 200*time.Millisecond),
	}
	for _, o := range chaosShared() {
		opts = append(opts, o)
	}
	return opts
}

func TestMain(m *testing.M) {
	if addr := os.Getenv(chaosWorkerEnv); addr != "" {
		os.Exit(chaosWorker(addr))
	}
	os.Exit(redistest.Main(m))
}

// chaosWorker is one worker process: it runs until killed (or SIGTERM), recording every
// execution in the ledger before returning the task number as the result.
func chaosWorker(addr string) int {
	queues := chaosQueues
	if q := os.Getenv(chaosQueuesEnv); q != "" {
		queues = strings.Split(q, ",")
	}
	concurrency := shortConcurrency
	if c := os.Getenv(chaosConcurrencyEnv); c != "" {
		concurrency, _ = strconv.Atoi(c)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	opts := append(chaosWorkerOptions(), task.WithQueues(queues...), task.WithConcurrency(concurrency), task.WithLogger(log))
	w, err := task.NewWorker(rdb, opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	for _, q := range queues {
		if slices.Contains(chaosQueues, q) {
			err = task.Register(w, chaosDef(q), shortTask(rdb))
		} else {
			err = task.Register(w, longDef(q), longTask(rdb, q))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := w.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// shortTask counts its execution and returns at once.
func shortTask(rdb *redis.Client) func(context.Context, task.Caller, chaosArgs) (int, error) {
	return func(ctx context.Context, _ task.Caller, a chaosArgs) (int, error) {
		if err := rdb.HIncrBy(ctx, chaosLedger, strconv.Itoa(a.N), 1).Err(); err != nil {
			return 0, err // Redis is away: a failed attempt, retried
		}
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		return a.N, nil
	}
}

// longTask records that a run began, sleeps a.For unless its context ends first, and
// records that the run ended.
func longTask(rdb *redis.Client, queue string) func(context.Context, task.Caller, longArgs) (int, error) {
	return func(ctx context.Context, _ task.Caller, a longArgs) (int, error) {
		run := fmt.Sprintf("%d:%016x", a.N, rand.Uint64())
		if err := record(ctx, rdb, longBegan+queue, run); err != nil {
			return 0, err
		}
		t := time.NewTimer(a.For)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		if err := record(ctx, rdb, longEnded+queue, run); err != nil {
			return 0, err
		}
		return a.N, nil
	}
}

// record adds run to the ledger set, trying again while Redis is away: a long task that
// ran must not run again for a failed ledger write, and SADD makes a repeat harmless.
func record(ctx context.Context, rdb *redis.Client, set, run string) error {
	for {
		err := rdb.SAdd(ctx, set, run).Err()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// runs reads a long ledger: how many runs of each task number of queue began or ended.
func runs(ctx context.Context, rdb *redis.Client, ledger, queue string) (map[int]int, error) {
	members, err := rdb.SMembers(ctx, ledger+queue).Result()
	if err != nil {
		return nil, err
	}
	out := map[int]int{}
	for _, m := range members {
		n, _, _ := strings.Cut(m, ":")
		i, err := strconv.Atoi(n)
		if err != nil {
			return nil, fmt.Errorf("ledger %s%s holds %q", ledger, queue, m)
		}
		out[i]++
	}
	return out, nil
}

// chaosProc is one worker process of the chaos test.
type chaosProc struct {
	addr        string
	queues      []string
	concurrency int
	cmd         *exec.Cmd // nil while not running
}

func (p *chaosProc) start() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), chaosWorkerEnv+"="+p.addr, chaosQueuesEnv+"="+strings.Join(p.queues, ","),
		chaosConcurrencyEnv+"="+strconv.Itoa(p.concurrency))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start worker process of %v: %w", p.queues, err)
	}
	p.cmd = cmd
	return nil
}

// kill SIGKILLs the process, stopped (SIGSTOP) or not, and waits for it.
func (p *chaosProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// stop ends the process with SIGTERM, as a deployment would, and waits for it.
func (p *chaosProc) stop() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	_ = p.cmd.Wait()
	p.cmd = nil
}

// pause freezes the process (SIGSTOP) for d: its heartbeats stop, nothing else does.
func (p *chaosProc) pause(d time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGSTOP)
	time.Sleep(d)
	_ = p.cmd.Process.Signal(syscall.SIGCONT)
}

// TestChaosNoTaskIsLost submits short tasks over three queues to four worker processes
// while a random one of them is SIGKILLed and restarted every 300 ms, and long tasks,
// which run for longer than the lease and every internal timeout of the worker, to
// dedicated worker processes. The long tasks' worker is never killed, but is stopped
// (SIGSTOP) for longer than the lease while it alone consumes their queue, then for a
// third of the lease while another worker stands by to take over what it stops renewing,
// redis-server hangs for less than the lease, then stalls (SIGSTOP) for longer than it,
// and is killed and restarted (appendonly, fsync always) while they run: each must run
// exactly once. The worker of a few more long tasks is killed while it runs them: another
// worker must take them over and finish them.
//
// Into the load the test writes, past the client, poison entries (garbage, no envelope
// field, a truncated envelope, entries of 4 and 64 MiB over the workers' 1 MiB limit) and
// forgeries of genuine envelopes (one digit of the args changed): each must be
// dead-lettered naming no task, malformed or bad_signature, and the task it claims must
// still run. Byte-identical replays of finished tasks must not run again.
//
// Every task must finish, as seen by Result, and no genuine one may be dead-lettered.
// Executions of short tasks beyond one per task are counted and printed, and fail only
// past what the kills can cause: every kill duplicates at most what its worker ran.
func TestChaosNoTaskIsLost(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: runs in make test and make chaos, skipped with -short")
	}
	began := time.Now()
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: 3})
	defer rdb.Close()
	var clientOpts []task.ClientOption
	for _, o := range chaosShared() {
		clientOpts = append(clientOpts, o)
	}
	client, err := task.NewClient(rdb, clientOpts...)
	if err != nil {
		t.Fatal(err)
	}

	workers := make([]*chaosProc, 4)
	for i := range workers {
		workers[i] = &chaosProc{addr: srv.Addr, queues: chaosQueues, concurrency: shortConcurrency}
	}
	longConcurrency := max(*chaosLong+*chaosTaken, 1)
	steady := &chaosProc{addr: srv.Addr, queues: []string{longQueue}, concurrency: longConcurrency}
	doomed := &chaosProc{addr: srv.Addr, queues: []string{takenQueue}, concurrency: longConcurrency}
	// standby joins once the long tasks began: it takes over the doomed worker's tasks, and
	// would take over the steady worker's if that one let a lease run out.
	standby := &chaosProc{addr: srv.Addr, queues: []string{longQueue, takenQueue}, concurrency: longConcurrency}
	procs := append(slices.Clip(workers), steady, doomed, standby)
	t.Cleanup(func() { // after a Fatal: leave no worker process behind
		for _, p := range procs {
			p.kill()
		}
	})
	for _, p := range append(slices.Clip(workers), steady, doomed) { // standby joins later
		if err := p.start(); err != nil {
			t.Fatal(err)
		}
	}

	stopChaos := make(chan struct{})
	chaosDone, longDone := make(chan struct{}), make(chan struct{})
	var stopOnce sync.Once
	stopAll := func() {
		stopOnce.Do(func() { close(stopChaos) })
		<-chaosDone
		<-longDone
	}
	var killsMu sync.Mutex
	kills := 0
	go func() {
		defer close(chaosDone)
		tick := time.NewTicker(*chaosKill)
		defer tick.Stop()
		for {
			select {
			case <-stopChaos:
				return
			case <-tick.C:
			}
			w := workers[rand.IntN(len(workers))]
			w.kill()
			killsMu.Lock()
			kills++
			killsMu.Unlock()
			if err := w.start(); err != nil {
				t.Error(err) // not Fatal: this is not the test's goroutine
				return
			}
		}
	}()
	var lc longChaos
	go func() {
		defer close(longDone)
		lc = disturbLong(t, stopChaos, srv, rdb, steady, doomed, standby)
	}()

	t.Cleanup(stopAll) // runs before the processes are killed

	// Submit with a uniqueness key per task: a submit whose reply was lost while Redis
	// restarted is repeated, and returns the first submit's id instead of a second task.
	submit := func(def task.Def, key string, args any) task.ID {
		t.Helper()
		for attempt := 0; ; attempt++ {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			id, err := task.Submit(ctx, client, def, task.Caller{}, args, task.Unique(key, time.Hour))
			cancel()
			if err == nil {
				return id
			}
			if attempt > 200 {
				t.Fatalf("submit %s: %v", key, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	longIDs := make([]task.ID, *chaosLong)
	for n := range longIDs {
		longIDs[n] = submit(longDef(longQueue), "long"+strconv.Itoa(n), longArgs{N: n, For: *chaosLongFor})
	}
	takenIDs := make([]task.ID, *chaosTaken)
	for n := range takenIDs {
		takenIDs[n] = submit(longDef(takenQueue), "taken"+strconv.Itoa(n), longArgs{N: n, For: *chaosLongFor})
	}

	// Into the load go forgeries of genuine envelopes, read from the streams right after
	// their submit, and poison entries made of them; the long tasks' queue gets forgeries
	// of two, whose tasks then run on while the test holds their envelopes for a replay.
	in := &injector{t: t, rdb: rdb}
	longQueued, err := queued(context.Background(), rdb, longQueue)
	if err != nil {
		t.Fatal(err)
	}
	var longReplays []genuine
	for _, g := range longQueued[:min(2, len(longQueued))] {
		in.forge(g)
		longReplays = append(longReplays, g)
	}
	var plan []func(genuine)
	for i := range 3 * len(poisonKinds) {
		kind := poisonKinds[i%len(poisonKinds)]
		plan = append(plan, in.forge, func(g genuine) { in.poison(kind, g) })
	}
	step := max(*chaosTasks/(len(plan)+1), 1)
	var seen []genuine // the envelopes the injections were made of
	ids := make([]task.ID, *chaosTasks)
	for n := range ids {
		queue := chaosQueues[n%len(chaosQueues)]
		ids[n] = submit(chaosDef(queue), "n"+strconv.Itoa(n), chaosArgs{N: n})
		if n%step != step-1 || len(seen) == len(plan) {
			continue
		}
		if g, ok := newest(context.Background(), rdb, queue); ok {
			plan[len(seen)](g)
			seen = append(seen, g)
		}
	}

	// finished reports whether task n returned n; it shows the first few that did not.
	shown := 0
	finished := func(what string, n int, id task.ID) bool {
		got, err := resultOf(client, id, time.Minute)
		if err == nil && got == n {
			return true
		}
		if shown++; shown <= 10 {
			t.Errorf("%s task %d (%s): result %d, %v", what, n, id, got, err)
		}
		return false
	}
	longOK := make([]bool, len(longIDs))
	for n, id := range longIDs {
		longOK[n] = finished("long", n, id)
	}
	takenOK := make([]bool, len(takenIDs))
	for n, id := range takenIDs {
		takenOK[n] = finished("taken-over", n, id)
	}
	// Replays of finished tasks, byte for byte: the long ledger shows a second run of a
	// long one; the short ledger must still hold the count it held before the replay.
	// With them goes the one huge entry.
	for _, g := range longReplays {
		in.replay(g)
	}
	type shortReplay struct {
		g     genuine
		count string
	}
	var shortReplays []shortReplay
	for _, g := range seen[:min(3, len(seen))] {
		if !finished("replayed short", g.n, g.id) {
			continue
		}
		c, err := rdb.HGet(context.Background(), chaosLedger, strconv.Itoa(g.n)).Result()
		if err != nil {
			t.Fatalf("read the ledger of task %d: %v", g.n, err)
		}
		in.replay(g)
		shortReplays = append(shortReplays, shortReplay{g, c})
	}
	if len(seen) > 0 {
		in.poison("huge", seen[len(seen)-1])
	}
	lost := 0
	for n, id := range ids {
		if !finished("short", n, id) {
			lost++
		}
	}
	for _, x := range in.waitGone(context.Background(), 20*time.Second) {
		t.Errorf("injected entry %s (%s) still in the stream of %s at the end", x.entry, x.what, x.queue)
	}
	stopAll()
	for _, p := range procs {
		p.stop()
	}

	ctx := context.Background()
	ledger, err := rdb.HGetAll(ctx, chaosLedger).Result()
	if err != nil {
		t.Fatal(err)
	}
	duplicates, unrecorded := 0, 0
	for n := range ids {
		c, _ := strconv.Atoi(ledger[strconv.Itoa(n)])
		if c == 0 {
			unrecorded++
		}
		duplicates += max(c-1, 0)
	}

	// A long task is lost, too, when no run of it ended. One whose worker was never killed
	// runs once: a second run means a lease ran out under a worker that renewed it, or a
	// worker took back an entry it was running.
	longBeganRuns, err1 := runs(ctx, rdb, longBegan, longQueue)
	longEndedRuns, err2 := runs(ctx, rdb, longEnded, longQueue)
	takenBeganRuns, err3 := runs(ctx, rdb, longBegan, takenQueue)
	takenEndedRuns, err4 := runs(ctx, rdb, longEnded, takenQueue)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		t.Fatal(err)
	}
	longLost, ranTwice := 0, 0
	for n := range longIDs {
		b, e := longBeganRuns[n], longEndedRuns[n]
		if !longOK[n] || e == 0 {
			longLost++
		}
		if b > 1 || e > 1 {
			ranTwice++
			if ranTwice <= 10 {
				t.Errorf("long task %d (%s): %d runs began and %d ended, on a worker that was never killed: a lease or heartbeat bug",
					n, longIDs[n], b, e)
			}
		}
	}
	takenLost, takenRuns, takenEnds, notTakenOver := 0, 0, 0, 0
	for n := range takenIDs {
		b, e := takenBeganRuns[n], takenEndedRuns[n]
		takenRuns, takenEnds = takenRuns+b, takenEnds+e
		if !takenOK[n] || e == 0 {
			takenLost++
		}
		if b < 2 {
			notTakenOver++
		}
	}

	replaysRan := 0
	for _, r := range shortReplays {
		if c := ledger[strconv.Itoa(r.g.n)]; c != r.count {
			replaysRan++
			t.Errorf("short task %d (%s) ran again after a replay of its envelope: %s executions before, %s after", r.g.n, r.g.id, r.count, c)
		}
	}
	for _, g := range longReplays {
		if b := longBeganRuns[g.n]; b > 1 {
			replaysRan++
			t.Errorf("long task %d (%s) ran again after a replay of its envelope: %d runs began", g.n, g.id, b)
		}
	}

	// The dead letters the injections must leave: poison entries malformed, forgeries
	// bad_signature, each naming no task. One that names a task ended a genuine one.
	deadPoison, deadForged, wronglyDead, otherDead := 0, 0, 0, 0
	for _, q := range chaosAllQueues {
		for after := ""; ; {
			dls, err := client.DeadLetters(ctx, q, after, 100)
			if err != nil {
				t.Fatal(err)
			}
			if len(dls) == 0 {
				break
			}
			after = dls[len(dls)-1].EntryID
			for _, d := range dls {
				switch {
				case d.ID != "":
					if wronglyDead++; wronglyDead <= 10 {
						t.Errorf("genuine task dead-lettered on %s: task %s (%s) after %d attempts: %s: %s", q, d.ID, d.Kind, d.Attempts, d.Reason, d.Error)
					}
					continue
				case d.Reason == task.ReasonMalformed:
					deadPoison++
					continue
				case d.Reason == task.ReasonBadSignature:
					deadForged++
					continue
				}
				if otherDead++; otherDead <= 10 {
					t.Errorf("dead letter on %s of no task: %s: %s", q, d.Reason, d.Error)
				}
			}
		}
	}
	bound := kills * shortConcurrency

	summary := fmt.Sprintf("chaos: submitted %d, lost %d, unrecorded %d, duplicate executions %d (bound %d), worker kills %d; "+
		"long: submitted %d, lost %d, run twice %d; taken over: submitted %d, lost %d, runs %d, ended %d; "+
		"injected: poison %d, forged %d, replayed %d (ran again %d); dead letters: poison %d, forged %d, wrongly dead-lettered %d, other %d; "+
		"redis hung %v, stalled %v, restarted %v (down %s, %s into the long runs); wall %s",
		len(ids), lost, unrecorded, duplicates, bound, kills,
		len(longIDs), longLost, ranTwice, len(takenIDs), takenLost, takenRuns, takenEnds,
		in.poisoned, in.forged, in.replayed, replaysRan, deadPoison, deadForged, wronglyDead, otherDead,
		lc.hung, lc.stalled, lc.restarted, lc.outage.Round(time.Millisecond), lc.restartAt.Round(100*time.Millisecond), time.Since(began).Round(time.Millisecond))
	fmt.Println(summary)
	t.Log(summary)
	if lost > 0 || unrecorded > 0 || longLost > 0 || takenLost > 0 {
		t.Fatalf("tasks were lost: %s", summary)
	}
	if ranTwice > 0 && lc.outage > outageBudget {
		t.Errorf("redis-server was down %s, longer than the %s a lease of %s leaves after a heartbeat: "+
			"a takeover of a long task is then by design; this run proves nothing about the runs that doubled", lc.outage, outageBudget, chaosLease)
	}
	if ranTwice > 0 || wronglyDead > 0 || otherDead > 0 || replaysRan > 0 {
		t.Fatalf("long tasks ran twice without a kill, genuine tasks were dead-lettered, or replays ran: %s", summary)
	}
	if deadPoison != in.poisoned || deadForged != in.forged {
		t.Errorf("injected %d poison entries and %d forgeries, dead-lettered %d malformed and %d bad_signature: %s",
			in.poisoned, in.forged, deadPoison, deadForged, summary)
	}
	if duplicates > bound {
		t.Errorf("%d duplicate executions of short tasks, more than the %d that %d kills of workers running %d tasks each can make: %s",
			duplicates, bound, kills, shortConcurrency, summary)
	}
	switch {
	case !lc.restarted:
		t.Error("redis-server was never restarted: the run did not test what it claims")
	case lc.endedBeforeRestart > 0:
		t.Errorf("%d long tasks ended before redis-server was killed: the run did not test what it claims", lc.endedBeforeRestart)
	case notTakenOver > 0:
		t.Errorf("%d of the long tasks whose worker was killed ran only once: the kill did not hit them mid-run", notTakenOver)
	}
}

// longChaos is what disturbLong did.
type longChaos struct {
	hung      bool // redis-server hung for redisHang
	stalled   bool // redis-server stalled for redisStall, and raised the grace
	restarted bool
	// outage is how long redis-server was down, from its kill until it answered again;
	// restartAt is when it was killed, counted from the moment every long task had begun.
	outage, restartAt  time.Duration
	endedBeforeRestart int // long runs that had ended when redis-server was killed
}

// The disturbances of the steady worker. A lease runs out when no heartbeat renews it
// for a whole lease, and heartbeats come every third of it, so the disturbances that must
// not cost a lease are timed from a heartbeat seen renewing the leases (renewedWithin).
const (
	renewedWithin = 50 * time.Millisecond
	// stopAlone is past the lease: only the stopped worker consumes the queue.
	stopAlone = 3 * chaosLease / 2
	// stopWithin begins right after a heartbeat, while another worker stands by: the
	// heartbeat on resuming renews the leases with a third of the lease to spare.
	stopWithin = chaosLease / 3
	// redisHang is how long redis-server hangs (SIGSTOP) from right after a heartbeat:
	// past the deadline of the next heartbeat (a third of the lease after it began), which
	// fails, while the one after, sent meanwhile, is answered as Redis resumes.
	redisHang = 2*chaosLease/3 + 50*time.Millisecond
	// redisStall is how long redis-server stalls (SIGSTOP) later: past the lease, so every
	// lease runs out by Redis's clock while no worker can renew it. Redis takes the silence
	// for a stall of its own and holds takeovers back for a lease, in which the heartbeats
	// renew them: no live run may be taken over.
	redisStall = 5 * chaosLease / 2
	// killAfter is how long after a heartbeat redis-server is killed: shortly before the
	// next heartbeat, which finds it down. outageBudget is how long it may then stay down:
	// the heartbeat after that one must reach it.
	killAfter    = chaosLease / 4
	outageBudget = 2*chaosLease/3 - killAfter - renewedWithin
)

// disturbLong waits until every long task began, then, while they run: kills the doomed
// worker and stops the steady one for longer than the lease while it alone consumes its
// queue; starts the standby worker, which takes over the doomed worker's tasks; stops the
// steady worker again for a third of the lease; makes redis-server hang until one
// heartbeat of the steady worker has failed; stops redis-server for longer than the lease;
// and kills and restarts redis-server.
func disturbLong(t *testing.T, stop <-chan struct{}, srv *redistest.Server, rdb *redis.Client, steady, doomed, standby *chaosProc) longChaos {
	var lc longChaos
	ctx := context.Background()
	began := func(queue string, n, times int) func() bool {
		return func() bool {
			r, err := runs(ctx, rdb, longBegan, queue)
			if err != nil {
				return false
			}
			for i := range n {
				if r[i] < times {
					return false
				}
			}
			return true
		}
	}
	if !waitFor(stop, 30*time.Second, began(longQueue, *chaosLong, 1), 50*time.Millisecond) ||
		!waitFor(stop, 30*time.Second, began(takenQueue, *chaosTaken, 1), 50*time.Millisecond) {
		t.Error("the long tasks did not all begin within 30s")
		return lc
	}
	// justRenewed waits until the steady worker's heartbeat has just renewed its leases:
	// a heartbeat renews all of them in one script, so the first tells of all.
	justRenewed := func() bool {
		stream := redisq.QueueKeys(chaosPrefix, longQueue).Stream()
		return *chaosLong == 0 || waitFor(stop, 2*chaosLease, func() bool {
			p, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: redisq.Group, Start: "-", End: "+", Count: 1}).Result()
			return err == nil && len(p) == 1 && p[0].Idle < renewedWithin
		}, 5*time.Millisecond)
	}
	t0 := time.Now()
	doomed.kill()
	steady.pause(stopAlone)
	// The steady worker renews the leases that ran out while it was stopped before a
	// worker that could take them over joins: that takeover would be by design.
	time.Sleep(chaosLease / 2)
	if err := standby.start(); err != nil {
		t.Error(err)
		return lc
	}
	if !waitFor(stop, 10*time.Second, began(takenQueue, *chaosTaken, 2), 50*time.Millisecond) {
		t.Error("the standby worker did not take over the killed worker's long tasks within 10s")
		return lc
	}
	if !justRenewed() {
		t.Error("the steady worker renewed no lease within two leases")
		return lc
	}
	steady.pause(stopWithin)
	time.Sleep(chaosLease / 2) // the heartbeats catch up
	if !justRenewed() {
		t.Error("the steady worker renewed no lease within two leases")
		return lc
	}
	if err := srv.Pause(); err != nil {
		t.Errorf("pause redis: %v", err)
		return lc
	}
	time.Sleep(redisHang)
	if err := srv.Resume(); err != nil {
		t.Errorf("resume redis: %v", err)
		return lc
	}
	lc.hung = true
	time.Sleep(chaosLease / 2)

	if !justRenewed() {
		t.Error("the steady worker renewed no lease within two leases")
		return lc
	}
	before, err := rdb.Time(ctx).Result()
	if err != nil {
		t.Errorf("read redis time: %v", err)
		return lc
	}
	if err := srv.Pause(); err != nil {
		t.Errorf("pause redis: %v", err)
		return lc
	}
	time.Sleep(redisStall)
	if err := srv.Resume(); err != nil {
		t.Errorf("resume redis: %v", err)
		return lc
	}
	time.Sleep(chaosLease + chaosLease/2) // the grace runs out: takeovers resume
	grace, err := rdb.HGet(ctx, redisq.QueueKeys(chaosPrefix, longQueue).Tick(), redisq.TickGrace).Int64()
	if err != nil {
		t.Errorf("read the tick of %s: %v", longQueue, err)
		return lc
	}
	if min := before.Add(redisStall).UnixMilli(); grace < min {
		t.Errorf("redis-server stalled %s, and its grace ends at %d ms, before %d ms: the stall did not hold takeovers back", redisStall, grace, min)
		return lc
	}
	lc.stalled = true

	ended, err := rdb.SCard(ctx, longEnded+longQueue).Result()
	if err != nil {
		t.Errorf("read the long ledger: %v", err)
		return lc
	}
	executions, _ := rdb.HLen(ctx, chaosLedger).Result()
	if !justRenewed() {
		t.Error("the steady worker renewed no lease within two leases")
		return lc
	}
	time.Sleep(killAfter)
	lc.endedBeforeRestart, lc.restartAt = int(ended), time.Since(t0)
	srv.Kill()
	down := time.Now()
	if err := srv.Restart(); err != nil {
		t.Errorf("restart redis: %v", err)
		return lc
	}
	lc.restarted, lc.outage = true, time.Since(down)
	t.Logf("redis-server killed after %d short executions, %s into the long runs; down %s",
		executions, lc.restartAt.Round(time.Millisecond), lc.outage.Round(time.Millisecond))
	return lc
}

// waitFor polls cond every interval until it holds (true), or timeout passes or stop is
// closed (false).
func waitFor(stop <-chan struct{}, timeout time.Duration, cond func() bool, interval time.Duration) bool {
	deadline := time.After(timeout)
	for !cond() {
		select {
		case <-stop:
			return false
		case <-deadline:
			return false
		case <-time.After(interval):
		}
	}
	return true
}

func resultOf(c *task.Client, id task.ID, timeout time.Duration) (int, error) {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := task.Result[int](ctx, c, id)
		cancel()
		var failed *task.FailedError
		if err == nil || errors.As(err, &failed) || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(100 * time.Millisecond) // Redis restarting: ask again
	}
}

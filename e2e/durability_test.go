package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// The figures of README.md's "Durability" come from `make durability`, which runs these
// tests with -durability.tasks=100 -durability.persist=50000. In `make test` they run
// small, in a few seconds, and check only what holds at any size.
var (
	durabilityTasks   = flag.Int("durability.tasks", 20, "tasks per phase of the failover measurement")
	durabilityPersist = flag.Int("durability.persist", 2000, "tasks per mode of the persistence measurement")
)

var (
	probeDef     = task.Def{Kind: "durability.probe", Queue: "probe", Schema: "v1:probe"}
	probeSigning = task.WithSigningKey("probe", []byte("durability-probe-key-0123456789ab"))
	probePrefix  = task.WithPrefix("probe")
)

// submitted is what a batch of submits was told.
type submitted struct {
	acked      []task.ID // Submit returned nil
	notDurable []task.ID // Submit returned the ID with ErrNotDurable
	took       time.Duration
}

// submitAll submits n tasks from conc goroutines.
func submitAll(t *testing.T, c *task.Client, n, conc int) submitted {
	t.Helper()
	var (
		mu   sync.Mutex
		out  submitted
		wg   sync.WaitGroup
		errs = make(chan error, conc)
		next = make(chan int)
	)
	start := time.Now()
	for range conc {
		wg.Go(func() {
			for i := range next {
				id, err := task.Submit(context.Background(), c, probeDef, task.Caller{}, i)
				mu.Lock()
				switch {
				case err == nil:
					out.acked = append(out.acked, id)
				case errors.Is(err, task.ErrNotDurable):
					out.notDurable = append(out.notDurable, id)
				default:
					select {
					case errs <- err:
					default:
					}
				}
				mu.Unlock()
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	out.took = time.Since(start)
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
	return out
}

// missing returns how many of ids have no task record on rdb.
func missing(t *testing.T, rdb *redis.Client, ids []task.ID) int {
	t.Helper()
	keys := redisq.QueueKeys("probe", probeDef.Queue)
	pipe := rdb.Pipeline()
	cmds := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		cmds[i] = pipe.Exists(context.Background(), keys.State(string(id)))
	}
	if _, err := pipe.Exec(context.Background()); err != nil && len(ids) > 0 {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cmds {
		if c.Val() == 0 {
			n++
		}
	}
	return n
}

func probeClient(t *testing.T, rdb redis.UniversalClient, more ...task.ClientOption) *task.Client {
	t.Helper()
	opts := append([]task.ClientOption{probePrefix, probeSigning, task.WithLogger(slog.New(slog.DiscardHandler))}, more...)
	c, err := task.NewClient(rdb, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// replOffset returns a field of INFO replication that holds an offset.
func replOffset(t *testing.T, rdb *redis.Client, field string) string {
	t.Helper()
	info, err := rdb.Info(context.Background(), "replication").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// waitUntil polls cond for up to 10s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10s for %s", what)
		}
	}
}

// failoverRun is one failover: n tasks submitted while the replica is in sync, n while it
// is cut off, then the primary killed and the replica promoted.
type failoverRun struct {
	live, cut         submitted
	lostLive, lostCut int // of the acknowledged ones
	lostNotDurable    int // of those Submit reported ErrNotDurable
}

// failover runs one failoverRun. The replica is cut off by pausing it (SIGSTOP) and
// closing its replication link on the primary (CLIENT KILL TYPE replica): the primary
// goes on acknowledging writes that never leave it, as in a partition or when the
// replica lags. (A pause alone is not enough: the kernel keeps receiving the stream for
// the stopped process, which applies it once it resumes.)
func failover(t *testing.T, n int, opts ...task.ClientOption) failoverRun {
	t.Helper()
	ctx := context.Background()
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	p, r := primary.NewClient(), replica.NewClient()
	defer p.Close()
	defer r.Close()
	c := probeClient(t, p, opts...)

	var run failoverRun
	run.live = submitAll(t, c, n, 10)
	waitUntil(t, "the replica to catch up", func() bool {
		return replOffset(t, p, "master_repl_offset") == replOffset(t, r, "slave_repl_offset")
	})
	if err := replica.Pause(); err != nil {
		t.Fatal(err)
	}
	if err := p.ClientKillByFilter(ctx, "TYPE", "replica").Err(); err != nil {
		t.Fatal(err)
	}
	run.cut = submitAll(t, c, n, 10)

	primary.Kill()
	if err := replica.Resume(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the replica to see its primary gone", func() bool {
		return replOffset(t, r, "master_link_status") == "down"
	})
	if err := r.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	run.lostLive = missing(t, r, run.live.acked)
	run.lostCut = missing(t, r, run.cut.acked)
	run.lostNotDurable = missing(t, r, append(run.live.notDurable, run.cut.notDurable...))
	return run
}

func TestDurabilityOfSubmitsAcrossAFailover(t *testing.T) {
	n := *durabilityTasks
	plain := failover(t, n)
	durable := failover(t, n, task.WithDurability(task.Durability{Replicas: 1, Timeout: 100 * time.Millisecond}))

	t.Logf("failover, %d tasks with the replica in sync, then %d with it cut off:", n, n)
	t.Logf("| client | acknowledged | acknowledged and lost | ErrNotDurable | ErrNotDurable and lost |")
	t.Logf("| default | %d | %d | - | - |", len(plain.live.acked)+len(plain.cut.acked), plain.lostLive+plain.lostCut)
	t.Logf("| WithDurability(Replicas: 1) | %d | %d | %d | %d |", len(durable.live.acked)+len(durable.cut.acked),
		durable.lostLive+durable.lostCut, len(durable.live.notDurable)+len(durable.cut.notDurable), durable.lostNotDurable)

	if plain.lostCut == 0 {
		t.Errorf("the default client lost none of the %d tasks acknowledged while the replica was cut off: the scenario did not cut it off", len(plain.cut.acked))
	}
	if lost := durable.lostLive + durable.lostCut; lost != 0 {
		t.Errorf("%d tasks confirmed by a replica were lost in the failover", lost)
	}
	if got := len(durable.cut.notDurable); got != n {
		t.Errorf("%d of the %d durable submits made while the replica was cut off returned ErrNotDurable, want all", got, n)
	}
}

// persistence is one configuration of Redis persistence for TestDurabilityOfSubmitsAcross
// ARedisCrash.
type persistence struct {
	name string
	args []string
	opts []task.ClientOption
	n    int // tasks; 0: -durability.persist
}

func TestDurabilityOfSubmitsAcrossARedisCrash(t *testing.T) {
	modes := []persistence{
		{name: "none (appendonly no, save \"\")"},
		{name: "RDB, default save points", args: []string{"--save", "3600 1 300 100 60 10000"}},
		{name: "AOF, appendfsync no", args: []string{"--appendonly", "yes", "--appendfsync", "no"}},
		{name: "AOF, appendfsync everysec", args: []string{"--appendonly", "yes", "--appendfsync", "everysec"}},
		{name: "AOF, appendfsync always", args: []string{"--appendonly", "yes", "--appendfsync", "always"}},
	}
	if probe := redistest.Client(t); waitAOF(t, probe) {
		modes = append(modes, persistence{
			name: "AOF, appendfsync everysec, WithDurability(LocalAOF)", args: []string{"--appendonly", "yes", "--appendfsync", "everysec"},
			opts: []task.ClientOption{task.WithDurability(task.Durability{LocalAOF: true, Timeout: 5 * time.Second})},
			n:    min(*durabilityPersist, 64), // each submit waits for the next fsync, up to a second
		})
	}
	t.Logf("redis-server SIGKILLed after the last acknowledgement, then restarted:")
	t.Logf("| persistence | submits/s | acknowledged | lost |")
	for _, m := range modes {
		srv := redistest.Start(t, m.args...)
		rdb := srv.NewClient()
		n := m.n
		if n == 0 {
			n = *durabilityPersist
		}
		got := submitAll(t, probeClient(t, rdb, m.opts...), n, 16)
		srv.Kill()
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		lost := missing(t, rdb, got.acked)
		rdb.Close()
		t.Logf("| %s | %.0f | %d | %d |", m.name, float64(n)/got.took.Seconds(), len(got.acked), lost)
		if strings.Contains(m.name, "always") && lost != 0 {
			t.Errorf("%s: %d tasks fsynced before their acknowledgement were lost", m.name, lost)
		}
	}
}

// waitAOF reports whether rdb runs Redis 7.2 or later, which has WAITAOF.
func waitAOF(t *testing.T, rdb *redis.Client) bool {
	t.Helper()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		t.Fatal(err)
	}
	var major, minor int
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			_, _ = fmt.Sscanf(v, "%d.%d", &major, &minor)
		}
	}
	return major > 7 || major == 7 && minor >= 2
}

package taskctl

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var signingKey = []byte("taskctl-test-signing-key-0123456789")

// flakyDef fails permanently while its deployment's failing flag is set, and succeeds
// once it is cleared: a dead letter that a requeue then makes succeed.
var flakyDef = task.Def{Kind: "ctl.flaky", Queue: "ctlq", MaxRetries: 1, Schema: "v1:flaky", Caller: true}

// slowDef runs until its deployment releases it: a running task, held past the lease.
var slowDef = task.Def{Kind: "ctl.slow", Queue: "ctlq", Schema: "v1:slow", Caller: true}

// idleDef is submitted to a queue no worker serves, to leave tasks pending and scheduled.
var idleDef = task.Def{Kind: "ctl.idle", Queue: "ctlidle", Schema: "v1:idle", Caller: true}

type flakyArgs struct {
	Note string `json:"note"`
}

// deployment is a Redis prefix with a client, a worker of queue ctlq and the environment
// that points taskctl at them.
type deployment struct {
	rdb     *redis.Client
	prefix  string
	opts    []task.Option
	client  *task.Client
	failing atomic.Bool
	release chan struct{}
	once    sync.Once
	started chan task.ID
	env     map[string]string
}

// lease is the worker's lease: the slow task runs past it.
const lease = time.Second

// newDeployment starts a worker of ctlq on the shared Redis under a fresh prefix; plain
// makes its client and worker pass callers in clear (WithPlainCallers); extra options go
// to the client, the worker and the inspector.
func newDeployment(t *testing.T, plain bool, extra ...task.Option) *deployment {
	t.Helper()
	d := &deployment{rdb: redistest.Client(t), prefix: redistest.Prefix(t), release: make(chan struct{}), started: make(chan task.ID, 16)}
	d.failing.Store(true)
	d.opts = []task.Option{task.WithPrefix(d.prefix), task.WithSigningKey("k1", signingKey), task.WithLogger(slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))}
	if plain {
		d.opts = append(d.opts, task.WithPlainCallers())
	}
	d.opts = append(d.opts, extra...)
	var copts []task.ClientOption
	wopts := []task.WorkerOption{task.WithQueues("ctlq"), task.WithBackoff(10*time.Millisecond, 50*time.Millisecond), task.WithLease(lease)}
	for _, o := range d.opts {
		copts = append(copts, o)
		wopts = append(wopts, o)
	}
	c, err := task.NewClient(d.rdb, copts...)
	if err != nil {
		t.Fatal(err)
	}
	d.client = c
	w, err := task.NewWorker(d.rdb, wopts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.RegisterWithInfo(w, flakyDef, func(ctx context.Context, info task.Info, caller task.Caller, a flakyArgs) (string, error) {
		if d.failing.Load() {
			return "", task.Permanent(errors.New("mailbox full"))
		}
		return "sent " + a.Note + " for " + caller.UserID, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := task.RegisterWithInfo(w, slowDef, func(ctx context.Context, info task.Info, caller task.Caller, a flakyArgs) (string, error) {
		d.started <- info.ID
		select {
		case <-d.release:
			return "slow done", nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		d.releaseSlow()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker Run: %v", err)
		}
	})
	d.env = map[string]string{
		EnvRedisURL:    "redis://" + d.rdb.Options().Addr + "/0",
		EnvPrefix:      d.prefix,
		EnvSigningKeys: "k1:" + base64.StdEncoding.EncodeToString(signingKey),
	}
	return d
}

// releaseSlow lets the slow tasks finish.
func (d *deployment) releaseSlow() { d.once.Do(func() { close(d.release) }) }

func (d *deployment) inspector(t *testing.T) *task.Inspector {
	t.Helper()
	in, err := task.NewInspector(d.rdb, d.opts...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// submit submits a task for caller and fails the test if it cannot.
func (d *deployment) submit(t *testing.T, def task.Def, caller task.Caller, note string, opts ...task.SubmitOption) task.ID {
	t.Helper()
	id, err := task.Submit(context.Background(), d.client, def, caller, flakyArgs{Note: note}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// waitState polls the inspector until id is in state want.
func waitState(t *testing.T, in *task.Inspector, id task.ID, want task.TaskState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := in.Status(context.Background(), id)
		if err == nil && st.State == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %q (err %v), want %q", id, st.State, err, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// forms are the ways a token could leak into output: as is, in base64 (standard and URL,
// padded or not) and in hex, lower and upper case.
func forms(token string) []string {
	b := []byte(token)
	return []string{
		token,
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
		hex.EncodeToString(b), toUpper(hex.EncodeToString(b)),
	}
}

func toUpper(s string) string {
	out := []byte(s)
	for i, c := range out {
		if 'a' <= c && c <= 'f' {
			out[i] = c - 'a' + 'A'
		}
	}
	return string(out)
}

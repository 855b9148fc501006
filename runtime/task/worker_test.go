package task_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/envelope"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

func TestMain(m *testing.M) {
	if os.Getenv(memoryWorkerEnv) != "" { // the test binary as a worker of its own (memory_test.go)
		os.Exit(memoryWorker())
	}
	os.Exit(redistest.Main(m))
}

var signingKey = []byte("test-signing-key-0123456789abcdef")

// harness is a client and the options for its workers, on a Redis shared with other
// tests, under a prefix of the test's own.
//
// Every test that runs on the shared server runs on the shared cluster too: its body is
// a redistest.ForEachBackend, which hands newHarness a client of each. A test that needs
// a server of its own (it stops, pauses or restarts it, counts its commands, or sets ACL
// users) gives newHarness a client of that server and says why.
type harness struct {
	rdb    redis.UniversalClient
	prefix string
	seal   []byte        // the seal key its clients and workers share, if any
	plain  bool          // its clients and workers have WithPlainCallers
	opts   []task.Option // what the client and its workers share
	client *task.Client
}

func newHarness(t *testing.T, rdb redis.UniversalClient, opts ...task.Option) *harness {
	t.Helper()
	if rdb == nil {
		t.Fatal("newHarness: nil Redis client; run the test under redistest.ForEachBackend")
	}
	h := &harness{rdb: rdb, prefix: redistest.Prefix(t)}
	h.opts = append([]task.Option{
		task.WithPrefix(h.prefix), task.WithSigningKey("k1", signingKey),
		task.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))),
	}, opts...)
	c, err := task.NewClient(rdb, clientOptions(h.opts)...)
	if err != nil {
		t.Fatal(err)
	}
	h.client = c
	return h
}

// enqueueExpiring puts a task of d into its queue that becomes due after delay, when its
// caller may have expired, as a client whose clock ran behind would: task.Submit refuses
// to. The envelope is signed (and sealed) with the harness's keys.
func (h *harness) enqueueExpiring(t *testing.T, d task.Def, caller task.Caller, args any, delay time.Duration) task.ID {
	t.Helper()
	id, _ := h.enqueueRaw(t, d, caller, args, delay, time.Time{})
	return id
}

// enqueueRaw puts a task of d into its queue as a client would, with the envelope's
// not-after time set to notAfter (zero: none), and returns its id and envelope.
func (h *harness) enqueueRaw(t *testing.T, d task.Def, caller task.Caller, args any, delay time.Duration, notAfter time.Time) (task.ID, []byte) {
	t.Helper()
	signing := []envelope.Key{{ID: "k1", Secret: signingKey}}
	keys, err := envelope.NewDerivedKeyring(h.prefix, signing)
	if h.seal != nil || h.plain {
		keys, err = envelope.NewKeyring(h.prefix, signing, h.seal)
	}
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	id := task.ID(d.Queue + "/" + strings.ToUpper(rand.Text()[:26]))
	e := &envelope.Envelope{ID: string(id), Kind: d.Kind, Queue: d.Queue, Schema: d.Schema, MaxRetries: d.MaxRetries, SubmittedAt: time.Now(), NotAfter: notAfter, Args: raw}
	wire := &envelope.Caller{UserID: caller.UserID, Token: caller.Token.Reveal(), ExpiresAt: caller.ExpiresAt, Scopes: caller.Scopes}
	if err := keys.SetCaller(e, wire); err != nil {
		t.Fatal(err)
	}
	data, err := keys.Sign(e)
	if err != nil {
		t.Fatal(err)
	}
	_, err = redisq.New(h.rdb, h.prefix).Enqueue(context.Background(), redisq.Task{ID: string(id), Kind: d.Kind, Queue: d.Queue, Envelope: data, Delay: delay})
	if err != nil {
		t.Fatal(err)
	}
	return id, data
}

// worker returns a worker of the harness's queue q1 with short retry delays, configured
// further by opts.
func (h *harness) worker(t *testing.T, opts ...task.WorkerOption) *task.Worker {
	t.Helper()
	base := []task.WorkerOption{task.WithBackoff(10*time.Millisecond, 50*time.Millisecond), task.WithQueues("q1")}
	w, err := task.NewWorker(h.rdb, append(workerOptions(h.opts, base...), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// clientOptions and workerOptions hand the options a client and a worker share to
// NewClient and NewWorker, followed by more of their own.
func clientOptions(shared []task.Option, more ...task.ClientOption) []task.ClientOption {
	opts := make([]task.ClientOption, 0, len(shared)+len(more))
	for _, o := range shared {
		opts = append(opts, o)
	}
	return append(opts, more...)
}

func workerOptions(shared []task.Option, more ...task.WorkerOption) []task.WorkerOption {
	opts := make([]task.WorkerOption, 0, len(shared)+len(more))
	for _, o := range shared {
		opts = append(opts, o)
	}
	return append(opts, more...)
}

// run starts w and stops it when the test ends, failing the test if Run fails.
func run(t *testing.T, w *task.Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func wait[R any](t *testing.T, c *task.Client, id task.ID) (R, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return task.Result[R](ctx, c, id)
}

type echoArgs struct {
	Msg string `json:"msg"`
}

var echoDef = task.Def{Kind: "test.echo", Queue: "q1", MaxRetries: 2, Schema: "v1:echo", Caller: true}

var alice = task.Caller{UserID: "alice", Token: task.NewSecret("alice-token"), ExpiresAt: time.Now().Add(time.Hour), Scopes: []string{"mail"}}

func TestTaskRunsWithItsCallerAndReturnsItsResult(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		err := task.Register(w, echoDef, func(_ context.Context, c task.Caller, a echoArgs) (string, error) {
			return fmt.Sprintf("%s/%s/%s/%v", c.UserID, c.Token.Reveal(), a.Msg, c.Scopes), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		run(t, w)
		id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "hi"})
		if err != nil {
			t.Fatal(err)
		}
		if id.Queue() != "q1" {
			t.Errorf("id %s: want queue q1", id)
		}
		got, err := wait[string](t, h.client, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := "alice/alice-token/hi/[mail]"; got != want {
			t.Errorf("result = %q, want %q", got, want)
		}
	})
}

type ctxKey struct{}

func TestTaskContextCarriesNothingOfTheSubmitter(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		def := echoDef
		def.Timeout = 7 * time.Second
		task.Register(w, def, func(ctx context.Context, _ task.Caller, _ echoArgs) (string, error) {
			dl, ok := ctx.Deadline()
			return fmt.Sprintf("value=%v deadline=%v within=%v", ctx.Value(ctxKey{}), ok, time.Until(dl) <= 7*time.Second), nil
		})
		run(t, w)
		submitCtx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "submitter"))
		id, err := task.Submit(submitCtx, h.client, def, alice, echoArgs{})
		cancel() // the submitter's context ending must not touch the task
		if err != nil {
			t.Fatal(err)
		}
		got, err := wait[string](t, h.client, id)
		if err != nil {
			t.Fatal(err)
		}
		if want := "value=<nil> deadline=true within=true"; got != want {
			t.Errorf("task saw %q, want %q", got, want)
		}
	})
}

func TestEachTaskSeesOnlyItsOwnCaller(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithConcurrency(3))
		task.Register(w, echoDef, func(_ context.Context, c task.Caller, a echoArgs) (string, error) {
			return c.UserID + ":" + c.Token.Reveal() + ":" + a.Msg, nil
		})
		run(t, w)
		ids := map[task.ID]string{}
		for i := range 30 {
			user := fmt.Sprintf("user%d", i)
			c := task.Caller{UserID: user, Token: task.NewSecret("token-of-" + user)}
			if i%3 == 0 {
				c.Token = task.Secret{} // a caller without a token must not inherit one
			}
			id, err := task.Submit(context.Background(), h.client, echoDef, c, echoArgs{Msg: user})
			if err != nil {
				t.Fatal(err)
			}
			ids[id] = user + ":" + c.Token.Reveal() + ":" + user
		}
		for id, want := range ids {
			got, err := wait[string](t, h.client, id)
			if err != nil || got != want {
				t.Errorf("task %s: got %q, %v; want %q", id, got, err, want)
			}
		}
	})
}

func TestExpiredCallerFailsWithErrCallerExpiredWithoutRunning(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var ran atomic.Int32
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) {
			ran.Add(1)
			return "ran", nil
		})
		run(t, w)
		short := task.Caller{UserID: "bob", Token: task.NewSecret("bob-token"), ExpiresAt: time.Now().Add(200 * time.Millisecond)}
		id := h.enqueueExpiring(t, echoDef, short, echoArgs{}, 600*time.Millisecond)
		_, err := wait[string](t, h.client, id)
		var failed *task.FailedError
		if !errors.Is(err, task.ErrCallerExpired) || !errors.As(err, &failed) || failed.Reason != task.ReasonCallerExpired {
			t.Fatalf("Result err = %v, want ErrCallerExpired", err)
		}
		if ran.Load() != 0 {
			t.Error("the task function ran with an expired caller")
		}
		dead := deadLetters(t, h, "q1")
		if len(dead) != 1 || dead[0]["reason"] != task.ReasonCallerExpired || dead[0]["id"] != string(id) {
			t.Errorf("dead letters = %v", dead)
		}
		// The failure stays readable through Result for the normal result TTL (24h here).
		ttl, err := h.rdb.PTTL(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id))).Result()
		if err != nil || ttl < 23*time.Hour || ttl > 24*time.Hour {
			t.Errorf("the expired task's state expires in %v (%v), want the result TTL of 24h", ttl, err)
		}
		expired := task.Caller{UserID: "bob", ExpiresAt: time.Now().Add(-time.Second)}
		if _, err := task.Submit(context.Background(), h.client, echoDef, expired, echoArgs{}); !errors.Is(err, task.ErrCallerExpired) {
			t.Errorf("Submit with an expired caller: err = %v, want ErrCallerExpired", err)
		}
	})
}

func TestSubmitRefusesEmptyCallerOnlyWhenTheTaskTakesOne(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		if _, err := task.Submit(context.Background(), h.client, echoDef, task.Caller{}, echoArgs{}); !errors.Is(err, task.ErrNoCaller) {
			t.Errorf("err = %v, want ErrNoCaller", err)
		}
		if _, err := task.Submit(context.Background(), h.client, echoDef, task.System("cron"), echoArgs{}); err != nil {
			t.Errorf("System caller refused: %v", err)
		}
		noCaller := echoDef
		noCaller.Caller = false
		if _, err := task.Submit(context.Background(), h.client, noCaller, task.Caller{}, echoArgs{}); err != nil {
			t.Errorf("task without caller refused an empty caller: %v", err)
		}
	})
}

func TestFailedAttemptsAreRetriedWithAFreshAttemptCount(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var calls atomic.Int32
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (int32, error) {
			n := calls.Add(1)
			switch n {
			case 1:
				return 0, errors.New("flaky")
			case 2:
				panic("flakier")
			}
			return n, nil
		})
		run(t, w)
		id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := wait[int32](t, h.client, id)
		if err != nil || got != 3 {
			t.Fatalf("Result = %d, %v; want 3 after two failed attempts (an error, a panic)", got, err)
		}
	})
}

func TestTaskFailingEveryAttemptIsDeadLettered(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var calls atomic.Int32
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (struct{}, error) {
			calls.Add(1)
			return struct{}{}, errors.New("smtp down")
		})
		run(t, w)
		id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
		_, err := wait[struct{}](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || failed.Reason != task.ReasonRetriesSpent || failed.Attempts != 3 || failed.Message != "smtp down" {
			t.Fatalf("Result err = %#v", err)
		}
		if calls.Load() != 3 {
			t.Errorf("ran %d times, want 1 + MaxRetries = 3", calls.Load())
		}
		if d := deadLetters(t, h, "q1"); len(d) != 1 || d[0]["attempts"] != "3" || d[0]["error"] != "smtp down" {
			t.Errorf("dead letters = %v", d)
		}
	})
}

func TestPermanentErrorIsNotRetried(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var calls atomic.Int32
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (struct{}, error) {
			calls.Add(1)
			return struct{}{}, task.Permanent(errors.New("no such user"))
		})
		run(t, w)
		id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
		_, err := wait[struct{}](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || failed.Reason != task.ReasonPermanent || calls.Load() != 1 {
			t.Fatalf("err = %v after %d calls, want a permanent failure after 1", err, calls.Load())
		}
	})
}

// Whatever lands in the stream, the worker refuses what it cannot verify or resolve,
// dead-letters it with the reason, and goes on: valid tasks submitted around each bad
// input all run. Where the bad input has a task id of its own (submitted through a
// client), Result of that id returns the matching error instead of waiting forever.
func TestRefusedEnvelopesAreDeadLetteredAndTheWorkerGoesOn(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithMaxEnvelopeSize(4<<20))
		// No skew grace: an unknown kind and a schema mismatch are dead-lettered at once,
		// like every other refusal here (skew_test.go tests the grace).
		w := h.worker(t, task.WithMaxEnvelopeSize(1<<20), task.WithConcurrency(4), task.WithSkewGrace(0))
		var ran sync.Map // messages of the valid tasks that ran
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			ran.Store(a.Msg, true)
			return a.Msg, nil
		})
		run(t, w)
		ctx := context.Background()
		stream := redisq.QueueKeys(h.prefix, "q1").Stream()
		add := func(values ...any) task.ID {
			if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: values}).Err(); err != nil {
				t.Fatal(err)
			}
			return ""
		}
		submit := func(c *task.Client, d task.Def, caller task.Caller, args echoArgs, opts ...task.SubmitOption) task.ID {
			id, err := task.Submit(ctx, c, d, caller, args, opts...)
			if err != nil {
				t.Fatal(err)
			}
			return id
		}
		client := func(opts ...task.ClientOption) *task.Client {
			c, err := task.NewClient(h.rdb, append([]task.ClientOption{task.WithPrefix(h.prefix)}, opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			return c
		}
		forger := client(task.WithSigningKey("k1", []byte("an-attacker-key-0123456789abcdef")))
		unknownKey := client(task.WithSigningKey("k9", []byte("a-key-the-worker-lacks-0123456789")))
		big := client(task.WithSigningKey("k1", signingKey), task.WithMaxEnvelopeSize(4<<20))
		envelope := `{"v":1,"id":"q1/01JAAAAAAAAAAAAAAAAAAAAAAA","kind":"test.echo","queue":"q1","schema":"v1:echo","attempt":0,"max_retries":2,"submitted_at":"2026-01-01T00:00:00Z","args":{},"kid":"k1","sig":"AAAA"}`
		tests := []struct {
			name   string
			inject func() task.ID // returns the id Result must answer for, if any
			reason string
			err    error
		}{
			{"garbage bytes", func() task.ID { return add("env", "\x00\xff garbage") }, task.ReasonMalformed, nil},
			{"entry without the envelope field", func() task.ID { return add("other", "field") }, task.ReasonMalformed, nil},
			{"truncated JSON", func() task.ID { return add("env", envelope[:60]) }, task.ReasonMalformed, nil},
			{"wrong version", func() task.ID { return add("env", strings.Replace(envelope, `"v":1`, `"v":2`, 1)) }, task.ReasonMalformed, nil},
			{"missing id", func() task.ID {
				return add("env", strings.Replace(envelope, `"id":"q1/01JAAAAAAAAAAAAAAAAAAAAAAA",`, "", 1))
			}, task.ReasonMalformed, nil},
			{"missing signature", func() task.ID { return add("env", strings.Replace(envelope, `,"sig":"AAAA"`, "", 1)) }, task.ReasonBadSignature, nil},
			{"wrong type of id", func() task.ID {
				return add("env", strings.Replace(envelope, `"id":"q1/01JAAAAAAAAAAAAAAAAAAAAAAA"`, `"id":7`, 1))
			}, task.ReasonMalformed, nil},
			{"wrong type of attempt", func() task.ID { return add("env", strings.Replace(envelope, `"attempt":0`, `"attempt":"0"`, 1)) }, task.ReasonMalformed, nil},
			{"unknown field", func() task.ID { return add("env", strings.Replace(envelope, `"v":1,`, `"v":1,"admin":true,`, 1)) }, task.ReasonMalformed, nil},
			{"oversized", func() task.ID {
				return add("env", strings.Replace(envelope, `"args":{}`, `"args":{"msg":"`+strings.Repeat("x", 2<<20)+`"}`, 1))
			}, task.ReasonMalformed, nil},
			{"over the worker's limit", func() task.ID {
				return submit(big, echoDef, alice, echoArgs{Msg: strings.Repeat("x", 2<<20)})
			}, task.ReasonMalformed, task.ErrMalformed},
			{"forged signature", func() task.ID {
				return submit(forger, echoDef, task.Caller{UserID: "admin"}, echoArgs{Msg: "forged"})
			}, task.ReasonBadSignature, task.ErrBadSignature},
			{"unknown key id", func() task.ID { return submit(unknownKey, echoDef, alice, echoArgs{}) }, task.ReasonBadSignature, task.ErrBadSignature},
			{"replayed from another queue", func() task.ID {
				other := echoDef
				other.Queue = "q2"
				submit(h.client, other, alice, echoArgs{})
				xs, _ := h.rdb.XRange(ctx, redisq.QueueKeys(h.prefix, "q2").Stream(), "-", "+").Result()
				return add("env", xs[len(xs)-1].Values["env"])
			}, task.ReasonBadSignature, nil},
			{"expired caller", func() task.ID {
				short := task.Caller{UserID: "bob", Token: task.NewSecret("bob-token"), ExpiresAt: time.Now().Add(100 * time.Millisecond)}
				return h.enqueueExpiring(t, echoDef, short, echoArgs{}, 300*time.Millisecond)
			}, task.ReasonCallerExpired, task.ErrCallerExpired},
			{"unknown kind", func() task.ID {
				unknown := echoDef
				unknown.Kind = "test.unknown"
				return submit(h.client, unknown, alice, echoArgs{})
			}, task.ReasonUnknownKind, task.ErrUnknownKind},
			{"schema mismatch", func() task.ID {
				changed := echoDef
				changed.Schema = "v1:changed"
				return submit(h.client, changed, alice, echoArgs{})
			}, task.ReasonSchemaMismatch, task.ErrSchemaMismatch},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				before := len(deadLetters(t, h, "q1"))
				valid := []task.ID{submit(h.client, echoDef, alice, echoArgs{Msg: "before " + tt.name})}
				id := tt.inject()
				valid = append(valid, submit(h.client, echoDef, alice, echoArgs{Msg: "after " + tt.name}))
				for _, v := range valid {
					if _, err := wait[string](t, h.client, v); err != nil {
						t.Errorf("valid task %s next to the bad input: %v", v, err)
					}
				}
				dead := waitDeadLetters(t, h, "q1", before+1)
				if len(dead) != before+1 {
					t.Fatalf("%d dead letters, want %d", len(dead), before+1)
				}
				if got := dead[before]["reason"]; got != tt.reason {
					t.Errorf("dead-letter reason = %q, want %q (%v)", got, tt.reason, dead[before])
				}
				if id != "" {
					_, err := wait[string](t, h.client, id)
					var failed *task.FailedError
					if !errors.Is(err, tt.err) || !errors.As(err, &failed) || failed.Reason != tt.reason {
						t.Errorf("Result of the refused task = %v, want %v", err, tt.err)
					}
				}
			})
		}
		for _, tt := range tests {
			for _, when := range []string{"before ", "after "} {
				if _, ok := ran.Load(when + tt.name); !ok {
					t.Errorf("the valid task %q did not run", when+tt.name)
				}
			}
		}
	})
}

func TestDelayedTaskRunsNotBeforeItsTime(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (time.Time, error) { return time.Now(), nil })
		run(t, w)
		submitted := time.Now()
		id, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{}, task.Delay(700*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		idAt, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{}, task.At(submitted.Add(400*time.Millisecond)))
		if err != nil {
			t.Fatal(err)
		}
		for id, delay := range map[task.ID]time.Duration{id: 700 * time.Millisecond, idAt: 400 * time.Millisecond} {
			ranAt, err := wait[time.Time](t, h.client, id)
			if err != nil {
				t.Fatal(err)
			}
			if ranAt.Before(submitted.Add(delay)) {
				t.Errorf("task delayed %v ran after %v", delay, ranAt.Sub(submitted))
			}
		}
	})
}

func TestUniqueSubmitReturnsTheFirstTasksID(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		first, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}, task.Unique("welcome:alice", time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		second, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}, task.Unique("welcome:alice", time.Minute))
		if err != nil || second != first {
			t.Fatalf("second submit = %s, %v; want %s", second, err, first)
		}
		if n, _ := h.rdb.XLen(ctx, redisq.QueueKeys(h.prefix, "q1").Stream()).Result(); n != 1 {
			t.Errorf("stream holds %d tasks, want 1", n)
		}
	})
}

func TestRunDrainsRunningTasksWhenItsContextEnds(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		started := make(chan struct{})
		task.Register(w, echoDef, func(ctx context.Context, _ task.Caller, _ echoArgs) (string, error) {
			close(started)
			time.Sleep(300 * time.Millisecond)
			return "finished", ctx.Err()
		})
		stop := run(t, w)
		id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
		<-started
		stop() // returns only after the running task finished
		st, err := h.rdb.HGet(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id)), "state").Result()
		if err != nil || st != redisq.StateSucceeded {
			t.Fatalf("state right after Run returned = %q, %v; want succeeded", st, err)
		}
	})
}

// Once Run's context ends the worker takes no new task, while it drains the ones it runs:
// a task submitted then stays in the stream, undelivered, for another worker.
func TestRunStopsFetchingWhenItsContextEnds(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithShutdownTimeout(time.Minute))
		started, release := make(chan struct{}, 2), make(chan struct{})
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			started <- struct{}{}
			<-release
			return a.Msg, nil
		})
		stop := run(t, w)
		ctx := context.Background()
		first, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "running"})
		<-started
		stopped := make(chan struct{})
		go func() { stop(); close(stopped) }()
		// A read blocked in Redis when the context ended still hands over what arrives within
		// its block (a second at most); submit after that.
		time.Sleep(1500 * time.Millisecond)
		late, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "late"})
		time.Sleep(300 * time.Millisecond)
		close(release)
		<-stopped
		if got, err := wait[string](t, h.client, first); err != nil || got != "running" {
			t.Errorf("the running task: %q, %v; want it drained", got, err)
		}
		stream := redisq.QueueKeys(h.prefix, "q1").Stream()
		p, _ := h.rdb.XPending(ctx, stream, redisq.Group).Result()
		if n, _ := h.rdb.XLen(ctx, stream).Result(); n != 1 || p == nil || p.Count != 0 {
			t.Errorf("stream holds %d entries, %v pending; want the late task undelivered", n, p)
		}
		if st, _ := h.rdb.HGet(ctx, redisq.QueueKeys(h.prefix, "q1").State(string(late)), "state").Result(); st != redisq.StatePending {
			t.Errorf("late task state = %q, want pending", st)
		}
	})
}

func TestTaskOfACrashedWorkerIsTakenOverAfterItsLease(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		id, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "orphan"})
		// A worker that read the task and died before finishing it.
		b := redisq.New(h.rdb, h.prefix)
		if err := b.EnsureGroup(ctx, "q1"); err != nil {
			t.Fatal(err)
		}
		if msgs, err := b.Fetch(ctx, "q1", "crashed-worker", 1, time.Second, 1<<20); err != nil || len(msgs) != 1 {
			t.Fatalf("fetch = %v, %v", msgs, err)
		}
		crashed := time.Now()
		const lease = 600 * time.Millisecond
		w := h.worker(t, task.WithLease(lease))
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (time.Time, error) { return time.Now(), nil })
		run(t, w)
		ranAt, err := wait[time.Time](t, h.client, id)
		if err != nil {
			t.Fatalf("Result = %v", err)
		}
		if ranAt.Before(crashed.Add(lease)) {
			t.Errorf("taken over %v after the crash, before the %v lease ran out", ranAt.Sub(crashed), lease)
		}
	})
}

// A task function that returns one of the errors the runtime refuses tasks with is not
// retried either: it ends with that reason at once.
func TestATaskReturningARefusalErrorIsNotRetried(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var calls sync.Map
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			n, _ := calls.LoadOrStore(a.Msg, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			switch a.Msg {
			case "expired":
				return "", fmt.Errorf("calling the mail API: %w", task.ErrCallerExpired)
			case "malformed":
				return "", fmt.Errorf("decoding the template: %w", task.ErrMalformed)
			}
			return "", task.ErrNoCaller
		})
		run(t, w)
		for msg, want := range map[string]error{"expired": task.ErrCallerExpired, "malformed": task.ErrMalformed, "nocaller": task.ErrNoCaller} {
			id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: msg})
			_, err := wait[string](t, h.client, id)
			if !errors.Is(err, want) {
				t.Errorf("%s: err = %v, want %v", msg, err, want)
			}
			if n, _ := calls.Load(msg); n.(*atomic.Int32).Load() != 1 {
				t.Errorf("%s: ran %d times, want once", msg, n.(*atomic.Int32).Load())
			}
		}
	})
}

// A worker whose task takes a caller refuses an envelope that carries none (a client
// built from a Def without Caller), with ErrNoCaller, without running it.
func TestAWorkerRefusesATaskWithoutTheCallerItTakes(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		var ran atomic.Bool
		task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) { ran.Store(true); return "", nil })
		run(t, w)
		noCaller := echoDef
		noCaller.Caller = false
		id, err := task.Submit(context.Background(), h.client, noCaller, task.Caller{}, echoArgs{})
		if err != nil {
			t.Fatal(err)
		}
		var failed *task.FailedError
		if _, err := wait[string](t, h.client, id); !errors.Is(err, task.ErrNoCaller) || !errors.As(err, &failed) || failed.Reason != task.ReasonNoCaller {
			t.Errorf("err = %v, want ErrNoCaller", err)
		}
		if ran.Load() {
			t.Error("the task ran without its caller")
		}
	})
}

// Result blocks on Redis instead of polling: waiting for a slow task costs a handful of
// commands, not one per poll interval.
//
// One backend: a server of its own, whose commands the test counts.
func TestResultWaitsWithoutPolling(t *testing.T) {
	srv := redistest.Start(t)
	rdb := srv.NewClient()
	defer rdb.Close()
	h := newHarness(t, rdb)
	w := h.worker(t)
	task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (string, error) {
		time.Sleep(1500 * time.Millisecond)
		return "slow", nil
	})
	run(t, w)
	id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
	if got, err := wait[string](t, h.client, id); err != nil || got != "slow" {
		t.Fatalf("Result = %q, %v", got, err)
	}
	stats, _ := rdb.Info(context.Background(), "commandstats").Result()
	if calls := commandCalls(stats, "hgetall"); calls > 3 {
		t.Errorf("Result read the task state %d times while waiting 1.5s; want at most 3", calls)
	}
}

func commandCalls(info, cmd string) int {
	for _, line := range strings.Split(info, "\n") {
		if rest, ok := strings.CutPrefix(line, "cmdstat_"+cmd+":calls="); ok {
			var n int
			fmt.Sscanf(rest, "%d", &n)
			return n
		}
	}
	return 0
}

// The broker passes every key of its Lua scripts in KEYS and nothing else, so a Redis
// user limited to the prefix runs the whole flow: submit, retry, delay, dead letter, result.
//
// One backend each, this test and the next: a server of its own to set the ACL user on,
// and the shared cluster with that user on every node.
func TestACLUserLimitedToThePrefixRunsTheWholeFlow(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.NewClient()
	defer admin.Close()
	if err := setACLUser(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "app", Password: "app-password"})
	defer rdb.Close()
	aclFlow(t, rdb, admin)
}

// The same on a cluster, whose every node has the restricted user: each script's KEYS
// are checked against the ACL on the node that owns their slot.
func TestACLUserLimitedToThePrefixRunsTheWholeFlowOnACluster(t *testing.T) {
	cluster := redistest.SharedCluster(t)
	admin := cluster.NewClient()
	defer admin.Close()
	ctx := context.Background()
	if err := admin.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error { return setACLUser(ctx, node) }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ForEachShard(ctx, func(ctx context.Context, node *redis.Client) error {
			return node.Do(ctx, "ACL", "DELUSER", "app").Err()
		})
	})
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), Username: "app", Password: "app-password"})
	defer rdb.Close()
	aclFlow(t, rdb, admin)
}

// setACLUser makes user app on node: every command, keys under taskgen: only, no channels.
func setACLUser(ctx context.Context, node *redis.Client) error {
	return node.Do(ctx, "ACL", "SETUSER", "app", "on", ">app-password", "resetkeys", "~taskgen:*", "resetchannels", "+@all").Err()
}

// aclFlow runs the whole flow through rdb, a client logged in as the restricted user, and
// checks the result through admin.
func aclFlow(t *testing.T, rdb, admin redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	// The default prefix, taskgen, shared by the server or cluster's other users of this
	// test: clear what a previous run left.
	for _, k := range []string{"taskgen:{acl}:stream", "taskgen:{acl}:delayed", "taskgen:{acl}:dead"} {
		admin.Del(ctx, k)
	}
	if err := rdb.Set(ctx, "outside:{acl}:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("the ACL does not restrict keys (err = %v), the test would prove nothing", err)
	}
	def := echoDef
	def.Queue = "acl"
	shared := []task.Option{task.WithSigningKey("k1", signingKey), task.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil)))}
	c, err := task.NewClient(rdb, clientOptions(shared)...)
	if err != nil {
		t.Fatal(err)
	}
	w, err := task.NewWorker(rdb, workerOptions(shared, task.WithQueues("acl"),
		task.WithBackoff(10*time.Millisecond, 20*time.Millisecond), task.WithLease(500*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	task.Register(w, def, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
		switch a.Msg {
		case "fail":
			return "", errors.New("always")
		case "slow":
			time.Sleep(time.Second) // outlives two leases: heartbeats renew it
			return a.Msg, nil
		}
		if calls.Add(1) == 1 {
			return "", errors.New("first attempt fails")
		}
		return a.Msg, nil
	})
	run(t, w)
	ok, _ := task.Submit(ctx, c, def, alice, echoArgs{Msg: "ok"}, task.Delay(200*time.Millisecond), task.Unique("u", time.Minute))
	bad, _ := task.Submit(ctx, c, def, alice, echoArgs{Msg: "fail"})
	slow, _ := task.Submit(ctx, c, def, alice, echoArgs{Msg: "slow"})
	if got, err := wait[string](t, c, ok); err != nil || got != "ok" {
		t.Errorf("retried delayed task: %q, %v", got, err)
	}
	if got, err := wait[string](t, c, slow); err != nil || got != "slow" {
		t.Errorf("task renewing its lease: %q, %v", got, err)
	}
	var failed *task.FailedError
	if _, err := wait[string](t, c, bad); !errors.As(err, &failed) || failed.Reason != task.ReasonRetriesSpent {
		t.Errorf("dead-lettered task: %v", err)
	}
	dead, err := c.DeadLetters(ctx, "acl", "", 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("dead letters = %v, %v", dead, err)
	}
	if err := c.Requeue(ctx, dead[0]); err != nil {
		t.Errorf("requeue as the restricted user: %v", err)
	}
	if _, err := wait[string](t, c, bad); !errors.As(err, &failed) {
		t.Errorf("requeued task: %v", err)
	}
	dead, _ = c.DeadLetters(ctx, "acl", "", 10)
	for _, d := range dead {
		if err := c.DeleteDeadLetter(ctx, d); err != nil {
			t.Errorf("delete a dead letter as the restricted user: %v", err)
		}
	}
}

// A worker serves several queues at once; on a cluster their keys live in different
// slots, each queue's scripts in its own.
func TestAWorkerServesQueuesInEverySlot(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		queues := []string{"alpha", "beta", "gamma", "delta", "epsilon"}
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithQueues(queues...))
		for _, q := range queues {
			d := echoDef
			d.Kind, d.Queue = "test.echo."+q, q
			task.Register(w, d, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return q + ":" + a.Msg, nil })
		}
		run(t, w)
		ids := map[task.ID]string{}
		for _, q := range queues {
			d := echoDef
			d.Kind, d.Queue = "test.echo."+q, q
			for _, opt := range [][]task.SubmitOption{nil, {task.Delay(100 * time.Millisecond)}} {
				id, err := task.Submit(context.Background(), h.client, d, alice, echoArgs{Msg: "hi"}, opt...)
				if err != nil {
					t.Fatal(err)
				}
				ids[id] = q + ":hi"
			}
		}
		for id, want := range ids {
			if got, err := wait[string](t, h.client, id); err != nil || got != want {
				t.Errorf("task %s: %q, %v; want %q", id, got, err, want)
			}
		}
	})
}

func TestClientAndWorkerRequireASigningKey(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		if _, err := task.NewClient(rdb); err == nil || !strings.Contains(err.Error(), "WithSigningKey") {
			t.Errorf("NewClient without a key: %v", err)
		}
		if _, err := task.NewWorker(rdb); err == nil {
			t.Error("NewWorker without a key succeeded")
		}
	})
}

func TestRegisterRefusesADuplicateKind(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t)
		fn := func(context.Context, task.Caller, echoArgs) (string, error) { return "", nil }
		if err := task.Register(w, echoDef, fn); err != nil {
			t.Fatal(err)
		}
		if err := task.Register(w, echoDef, fn); !errors.Is(err, task.ErrDuplicateKind) {
			t.Errorf("second Register: %v, want ErrDuplicateKind", err)
		}
		bad := echoDef
		bad.Kind = "Bad Kind"
		if err := task.Register(w, bad, fn); err == nil {
			t.Error("Register accepted an invalid kind")
		}
		// The generator validates directives with the same rules (internal/taskspec),
		// so a queue that generates is a queue that registers, and one that does not,
		// like a..b, fails at both.
		dots := echoDef
		dots.Kind, dots.Queue = "echo.dots", "a..b"
		if err := task.Register(w, dots, fn); err == nil || !strings.Contains(err.Error(), `invalid queue name "a..b"`) {
			t.Errorf("Register with queue a..b: %v, want an invalid queue name error", err)
		}
		if _, err := task.Submit(context.Background(), h.client, dots, alice, echoArgs{}); err == nil || !strings.Contains(err.Error(), `invalid queue name "a..b"`) {
			t.Errorf("Submit with queue a..b: %v, want an invalid queue name error", err)
		}
	})
}

func TestSubmitRefusesAnOversizedEnvelope(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithMaxEnvelopeSize(1024))
		_, err := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: strings.Repeat("x", 2000)})
		if !errors.Is(err, task.ErrMalformed) || !strings.Contains(err.Error(), "limit") {
			t.Errorf("err = %v", err)
		}
	})
}

// callerTrace is a caller whose user id and token are easy to find in a dump of Redis.
var callerTrace = task.Caller{UserID: "uid-5f1e2d", Token: task.NewSecret("tok-9c8b7a"), ExpiresAt: time.Now().Add(24 * time.Hour)}

// leaveEveryKindOfKey runs tasks that leave, under the harness prefix, every kind of key
// the runtime writes: a succeeded and a dead task's states, results and done signals, dead
// letters (a failure and an expired caller), a retry the worker re-signed waiting in the
// delayed set, a delayed submit, a unique key, and an envelope waiting in a stream.
func leaveEveryKindOfKey(t *testing.T, h *harness, opts ...task.WorkerOption) {
	t.Helper()
	w := h.worker(t, append([]task.WorkerOption{task.WithBackoff(time.Hour, time.Hour)}, opts...)...)
	task.Register(w, echoDef, func(_ context.Context, c task.Caller, a echoArgs) (bool, error) {
		switch a.Msg {
		case "fail":
			return false, task.Permanent(fmt.Errorf("failing with token %v", c.Token))
		case "retry":
			return false, fmt.Errorf("retry later, token %s", c.Token)
		}
		return c.Token.Reveal() == callerTrace.Token.Reveal(), nil
	})
	run(t, w)
	ctx := context.Background()
	submit := func(caller task.Caller, msg string, opts ...task.SubmitOption) task.ID {
		id, err := task.Submit(ctx, h.client, echoDef, caller, echoArgs{Msg: msg}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Delayed, so that the Result below waits on it and it leaves a done list: only a
	// task a Result waits on has one.
	id := submit(callerTrace, "", task.Unique("once", time.Hour), task.Delay(300*time.Millisecond))
	if got, err := wait[bool](t, h.client, id); err != nil || !got {
		t.Fatalf("the caller did not arrive: %v, %v", got, err)
	}
	short := callerTrace
	short.ExpiresAt = time.Now().Add(100 * time.Millisecond)
	for _, id := range []task.ID{submit(callerTrace, "fail"), h.enqueueExpiring(t, echoDef, short, echoArgs{}, 300*time.Millisecond)} {
		if _, err := wait[bool](t, h.client, id); err == nil {
			t.Fatalf("task %s should have failed", id)
		}
	}
	retried := submit(callerTrace, "retry")
	waitFor(t, "the retry to be scheduled", func() bool {
		st, _ := h.rdb.HGet(ctx, redisq.QueueKeys(h.prefix, "q1").State(string(retried)), "state").Result()
		return st == redisq.StateRetrying
	})
	submit(callerTrace, "", task.Delay(time.Hour))
	other := echoDef
	other.Queue = "q-unconsumed"
	if _, err := task.Submit(ctx, h.client, other, callerTrace, echoArgs{}); err != nil {
		t.Fatal(err)
	}
}

// By default the caller block is sealed with a key derived from the signing keys; with
// WithSealKey, with that key. Either way no key under the prefix holds the caller's token
// or user id in clear, and no log line holds the token.
func TestSealedCallerNeverRestsInRedisInClear(t *testing.T) {
	t.Run("derived key", func(t *testing.T) {
		redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
			testSealedCaller(t, newHarness(t, rdb))
		})
	})
	t.Run("seal key", func(t *testing.T) {
		redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
			seal := []byte("seal-key-0123456789abcdef0123456")
			h := newHarness(t, rdb, task.WithSealKey(seal))
			h.seal = seal
			testSealedCaller(t, h)
		})
	})
}

func testSealedCaller(t *testing.T, h *harness) {
	{
		var logs syncBuffer
		leaveEveryKindOfKey(t, h, task.WithLogger(slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
		dump := dumpPrefix(t, h)
		for _, want := range []string{":stream (stream)", ":delayed (zset)", ":retry (zset)", ":dead (stream)", ":task:", ":done:", ":unique:", ":meta (hash)", ":queues (set)"} {
			if !strings.Contains(dump, want) {
				t.Errorf("the dump has no %s key: it would not prove the caller is absent there", want)
			}
		}
		for _, secret := range []string{callerTrace.Token.Reveal(), callerTrace.UserID} {
			if strings.Contains(dump, secret) {
				t.Errorf("a key under the prefix holds %q in clear:\n%s", secret, dump)
			}
		}
		if text := logs.String(); strings.Contains(text, callerTrace.Token.Reveal()) {
			t.Errorf("the worker logged the token:\n%s", text)
		}
	}
}

// With WithPlainCallers the caller travels in clear inside the envelope, and only there:
// task states, results, done signals, unique keys and the dead-letter reasons and errors
// hold nothing of it.
func TestStatesAndResultsHoldNoCallerData(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb, task.WithPlainCallers())
		h.plain = true
		leaveEveryKindOfKey(t, h)
		ctx := context.Background()
		n := 0
		for _, k := range prefixKeys(t, h) {
			typ, v := keyContent(ctx, h.rdb, k)
			switch {
			case strings.HasSuffix(k, ":dead"):
				// Dead letters keep the envelope as received; their other fields count.
				for _, x := range v.([]redis.XMessage) {
					delete(x.Values, "env")
				}
			case typ == "stream" || typ == "zset":
				continue // envelopes: the one place the caller rests
			}
			n++
			for _, secret := range []string{callerTrace.Token.Reveal(), callerTrace.UserID} {
				if text := fmt.Sprint(v); strings.Contains(text, secret) {
					t.Errorf("%s (%s) holds %q: %s", k, typ, secret, text)
				}
			}
		}
		if n < 8 {
			t.Errorf("only %d keys checked: the test would prove little", n)
		}
	})
}

func deadLetters(t *testing.T, h *harness, queue string) []map[string]string {
	t.Helper()
	xs, err := h.rdb.XRange(context.Background(), redisq.QueueKeys(h.prefix, queue).Dead(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, x := range xs {
		m := map[string]string{}
		for k, v := range x.Values {
			m[k] = fmt.Sprint(v)
		}
		out = append(out, m)
	}
	return out
}

// waitDeadLetters returns the dead letters of queue once there are n of them, or what
// there is after 10 s. Refused entries have no result to wait for, and the worker settles
// them concurrently with the valid tasks a test waits for.
func waitDeadLetters(t *testing.T, h *harness, queue string, n int) []map[string]string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		d := deadLetters(t, h, queue)
		if len(d) >= n || time.Now().After(deadline) {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// prefixKeys returns every key under the harness prefix, on every node of a cluster.
func prefixKeys(t *testing.T, h *harness) []string {
	t.Helper()
	ctx := context.Background()
	var keys []string
	var mu sync.Mutex
	collect := func(ctx context.Context, node *redis.Client) error {
		ks, err := node.Keys(ctx, h.prefix+":*").Result()
		mu.Lock()
		defer mu.Unlock()
		keys = append(keys, ks...)
		return err
	}
	var err error
	if cc, ok := h.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, collect)
	} else {
		err = collect(ctx, h.rdb.(*redis.Client))
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys under the prefix: a check of them would prove nothing")
	}
	slices.Sort(keys)
	return keys
}

// dumpPrefix returns every key under the harness prefix with its content.
func dumpPrefix(t *testing.T, h *harness) string {
	t.Helper()
	ctx := context.Background()
	var b strings.Builder
	for _, k := range prefixKeys(t, h) {
		typ, v := keyContent(ctx, h.rdb, k)
		fmt.Fprintf(&b, "%s (%s): %v\n", k, typ, v)
	}
	return b.String()
}

// keyContent returns the type of key and everything it holds.
func keyContent(ctx context.Context, rdb redis.UniversalClient, key string) (typ string, v any) {
	typ, _ = rdb.Type(ctx, key).Result()
	switch typ {
	case "stream":
		v, _ = rdb.XRange(ctx, key, "-", "+").Result()
	case "zset":
		v, _ = rdb.ZRange(ctx, key, 0, -1).Result()
	case "hash":
		v, _ = rdb.HGetAll(ctx, key).Result()
	case "list":
		v, _ = rdb.LRange(ctx, key, 0, -1).Result()
	case "set":
		v, _ = rdb.SMembers(ctx, key).Result()
	default:
		v, _ = rdb.Get(ctx, key).Result()
	}
	return typ, v
}

var _ = envelope.Version

// A task still running when the shutdown timeout runs out is cancelled and handed back
// at once: another worker runs it without waiting for the lease and without spending an
// attempt.
func TestShutdownHandsUnfinishedTasksBackAtOnce(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		slow := h.worker(t, task.WithShutdownTimeout(100*time.Millisecond), task.WithLease(time.Hour))
		started := make(chan struct{})
		task.Register(slow, echoDef, func(ctx context.Context, _ task.Caller, _ echoArgs) (string, error) {
			close(started)
			<-ctx.Done()
			return "", ctx.Err()
		})
		stop := run(t, slow)
		id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{Msg: "handed over"})
		<-started
		stop()

		next := h.worker(t, task.WithLease(time.Hour))
		task.Register(next, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil })
		run(t, next)
		got, err := wait[string](t, h.client, id)
		if err != nil || got != "handed over" {
			t.Fatalf("Result = %q, %v; with an hour-long lease only a hand-back makes this pass", got, err)
		}
		st, _ := h.rdb.HGet(context.Background(), redisq.QueueKeys(h.prefix, "q1").State(string(id)), "attempts").Result()
		if st != "1" {
			t.Errorf("attempts = %s, want 1: the interrupted run must not count", st)
		}
	})
}

func TestClockSkewAllowanceAcceptsARecentlyExpiredCaller(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		w := h.worker(t, task.WithClockSkew(time.Minute))
		task.Register(w, echoDef, func(_ context.Context, c task.Caller, _ echoArgs) (string, error) { return c.UserID, nil })
		run(t, w)
		soon := task.Caller{UserID: "carol", ExpiresAt: time.Now().Add(150 * time.Millisecond)}
		id := h.enqueueExpiring(t, echoDef, soon, echoArgs{}, 400*time.Millisecond)
		if got, err := wait[string](t, h.client, id); err != nil || got != "carol" {
			t.Fatalf("within the skew allowance: %q, %v", got, err)
		}
	})
}

// countingHandler counts log records by message.
type countingHandler struct {
	mu     sync.Mutex
	counts map[string]int
	last   map[string]map[string]string // message -> attributes of its last record
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.counts[r.Message]++
	h.counts[r.Level.String()+": "+r.Message]++ // for the tests that count by level
	attrs := map[string]string{}
	r.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	if h.last == nil {
		h.last = map[string]map[string]string{}
	}
	h.last[r.Message] = attrs
	return nil
}

// attr returns attribute key of the last record logged with msg.
func (h *countingHandler) attr(msg, key string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last[msg][key]
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) count(msg string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.counts[msg]
}

// String prints the counts so far; the worker may still be logging.
func (h *countingHandler) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return fmt.Sprint(h.counts)
}

// syncBuffer is a bytes.Buffer that a worker's logger writes while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// While Redis is away the worker backs off instead of spinning, Submit gives up with its
// context, and when Redis is back the worker carries on without having leaked goroutines.
//
// One backend: a server of its own, which the test kills and restarts.
func TestWorkerSurvivesRedisGoingAwayAndComingBack(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	// A client that fails at once while Redis is away, so that what paces the worker's
	// attempts is the worker's own backoff, not go-redis's retries.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, DialerRetries: 1})
	defer rdb.Close()
	logs := &countingHandler{counts: map[string]int{}}
	h := newHarness(t, rdb)
	w := h.worker(t, task.WithLogger(slog.New(logs)))
	task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil })
	run(t, w)
	ctx := context.Background()
	id, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "before"})
	if got, err := wait[string](t, h.client, id); err != nil || got != "before" {
		t.Fatalf("before the outage: %q, %v", got, err)
	}
	goroutines := runtime.NumGoroutine()

	srv.Kill()
	sctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	began := time.Now()
	_, err := task.Submit(sctx, h.client, echoDef, alice, echoArgs{})
	cancel()
	if err == nil || time.Since(began) > 3*time.Second {
		t.Errorf("Submit with Redis away: err = %v after %v; want an error once its context ends", err, time.Since(began))
	}
	before := map[string]int{"fetch failed": logs.count("fetch failed"), "promote failed": logs.count("promote failed")}
	time.Sleep(2 * time.Second)
	for msg, n := range before {
		if n := logs.count(msg) - n; n < 1 || n > 20 {
			t.Errorf("%d times %q in 2s of outage: want a few, backing off; %v", n, msg, logs)
		}
	}

	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	id, err = task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := wait[string](t, h.client, id); err != nil || got != "after" {
		t.Fatalf("after the outage: %q, %v", got, err)
	}
	if n := runtime.NumGoroutine(); n > goroutines+5 {
		t.Errorf("goroutines: %d before the outage, %d after", goroutines, n)
	}
}

// A task whose workers keep dying while they run it is dead-lettered once as many runs
// began and never finished as it may run at all, instead of taking down worker after
// worker forever; it does not run again.
func TestTaskThatKeepsKillingItsWorkersIsDeadLettered(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		def := echoDef
		def.MaxRetries = 1
		id, _ := task.Submit(ctx, h.client, def, alice, echoArgs{})
		b := h.broker(t)
		// Two workers began the task and died: the first delivery, then one takeover.
		msgs, err := b.Fetch(ctx, "q1", "dead-1", 1, time.Second, 1<<20)
		if err != nil || len(msgs) != 1 {
			t.Fatalf("fetch = %v, %v", msgs, err)
		}
		begin(t, b, msgs[0], string(id), "dead-1", 2)
		time.Sleep(60 * time.Millisecond)
		if msgs, _, _, err = b.Reclaim(ctx, "q1", "dead-2", 50*time.Millisecond, 1, "", nil); err != nil || len(msgs) != 1 {
			t.Fatalf("reclaim = %+v, %v; want the entry", msgs, err)
		}
		begin(t, b, msgs[0], string(id), "dead-2", 2)
		w := h.worker(t, task.WithLease(200*time.Millisecond))
		var ran atomic.Bool
		task.Register(w, def, func(context.Context, task.Caller, echoArgs) (string, error) { ran.Store(true); return "", nil })
		run(t, w)
		_, err = wait[string](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || failed.Reason != task.ReasonWorkerLost || failed.Attempts != 2 {
			t.Fatalf("err = %v, want reason %s after 2 attempts", err, task.ReasonWorkerLost)
		}
		if ran.Load() {
			t.Error("the task ran again after its workers died as often as it may run")
		}
	})
}

// broker returns a broker on the harness's prefix, with queue q1's consumer group made:
// for tests that play a worker that vanished.
func (h *harness) broker(t *testing.T) *redisq.Broker {
	t.Helper()
	b := redisq.New(h.rdb, h.prefix)
	if err := b.EnsureGroup(context.Background(), "q1"); err != nil {
		t.Fatal(err)
	}
	return b
}

// begin begins delivery m of task id as consumer would, allowing runs deliveries.
func begin(t *testing.T, b *redisq.Broker, m redisq.Message, id, consumer string, runs int) redisq.Start {
	t.Helper()
	st, err := b.StartDelivery(context.Background(), redisq.StartRequest{
		Message: m, TaskID: id, Consumer: consumer, Runs: runs,
	})
	if err != nil || st.Outcome != redisq.StartRun {
		t.Fatalf("StartDelivery = %+v, %v", st, err)
	}
	return st
}

// Key rotation: a worker given the new key first and the old one second runs tasks
// signed with either; a client still on the old key keeps working during the rollout.
func TestRotatedWorkerRunsTasksSignedWithTheOldKey(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		newKey := []byte("the-new-signing-key-0123456789abc")
		h := newHarness(t, rdb) // the client signs with k1
		w, err := task.NewWorker(h.rdb, task.WithPrefix(h.prefix), task.WithQueues("q1"),
			task.WithSigningKey("k2", newKey), task.WithSigningKey("k1", signingKey))
		if err != nil {
			t.Fatal(err)
		}
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) { return a.Msg, nil })
		run(t, w)
		rotated, err := task.NewClient(h.rdb, task.WithPrefix(h.prefix), task.WithSigningKey("k2", newKey), task.WithSigningKey("k1", signingKey))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []*task.Client{h.client, rotated} {
			id, err := task.Submit(context.Background(), c, echoDef, alice, echoArgs{Msg: "signed"})
			if err != nil {
				t.Fatal(err)
			}
			if got, err := wait[string](t, c, id); err != nil || got != "signed" {
				t.Errorf("Result = %q, %v", got, err)
			}
		}
	})
}

func TestRunRefusesAWorkerWithoutTasks(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		w := newHarness(t, rdb).worker(t)
		if err := w.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "RegisterTasks") {
			t.Errorf("Run without tasks: %v", err)
		}
	})
}

// A task running for several leases keeps its lease through heartbeats: a second worker
// waiting on the same queue does not take it over while it runs.
func TestLongTaskKeepsItsLeaseWhileAlive(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		var runs atomic.Int32
		for range 2 {
			w := h.worker(t, task.WithLease(300*time.Millisecond))
			task.Register(w, echoDef, func(context.Context, task.Caller, echoArgs) (int32, error) {
				n := runs.Add(1)
				time.Sleep(1500 * time.Millisecond)
				return n, nil
			})
			run(t, w)
		}
		id, _ := task.Submit(context.Background(), h.client, echoDef, alice, echoArgs{})
		if got, err := wait[int32](t, h.client, id); err != nil || got != 1 {
			t.Fatalf("Result = %d, %v", got, err)
		}
		if n := runs.Load(); n != 1 {
			t.Errorf("the task ran %d times: another worker stole it while it was alive", n)
		}
	})
}

// A worker renews the leases of a queue whose Cluster node is healthy while another
// queue's node hangs: the heartbeat waiting on the hung node must not hold back the
// others, or a second worker takes over a task that is alive and runs it again.
func TestAHungNodeDoesNotCostTheLeasesOfQueuesOnOtherNodes(t *testing.T) {
	c, err := redistest.StartCluster() // of its own: a node of it is paused
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Stop)
	rdb := c.NewClient()
	t.Cleanup(func() { rdb.Close() })
	h := newHarness(t, rdb)
	ctx := context.Background()
	master := func(queue string) string {
		m, err := rdb.MasterForKey(ctx, redisq.QueueKeys(h.prefix, queue).Stream())
		if err != nil {
			t.Fatal(err)
		}
		return m.Options().Addr
	}
	hung, healthy := "hung", ""
	for i := 0; healthy == ""; i++ {
		if q := fmt.Sprintf("healthy%d", i); master(q) != master(hung) {
			healthy = q
		}
	}
	var node *redistest.Server
	for _, n := range c.Nodes {
		if n.Addr == master(hung) {
			node = n
		}
	}

	var began [2]atomic.Int32 // runs of the hung queue's task, of the healthy queue's
	defs := [2]task.Def{{Kind: "test.hung", Queue: hung, MaxRetries: 3}, {Kind: "test.healthy", Queue: healthy, MaxRetries: 3}}
	long := func(i int) func(context.Context, task.Caller, echoArgs) (int32, error) {
		return func(ctx context.Context, _ task.Caller, _ echoArgs) (int32, error) {
			n := began[i].Add(1)
			select {
			case <-time.After(4 * time.Second): // past the lease, and past the hang
				return n, nil
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
	}
	w := h.worker(t, task.WithLease(time.Second), task.WithQueues(hung, healthy))
	for i, d := range defs {
		if err := task.Register(w, d, long(i)); err != nil {
			t.Fatal(err)
		}
	}
	run(t, w)
	var ids [2]task.ID
	for i, d := range defs {
		if ids[i], err = task.Submit(ctx, h.client, d, alice, echoArgs{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "both tasks to begin", func() bool { return began[0].Load() == 1 && began[1].Load() == 1 })
	// A second worker of the healthy queue takes over whatever lease runs out there.
	standby := h.worker(t, task.WithLease(time.Second), task.WithQueues(healthy))
	if err := task.Register(standby, defs[1], long(1)); err != nil {
		t.Fatal(err)
	}
	run(t, standby)

	if err := node.Pause(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond) // two and a half leases
	if err := node.Resume(); err != nil {
		t.Fatal(err)
	}
	if got, err := wait[int32](t, h.client, ids[1]); err != nil || got != 1 {
		t.Errorf("task of the healthy queue: Result = %d, %v; want 1", got, err)
	}
	if n := began[1].Load(); n != 1 {
		t.Errorf("the task of the healthy queue ran %d times while another queue's node hung: its lease ran out under a live worker", n)
	}
}

// The client's calls end with their context even when Redis accepts commands and never
// answers, and even with a client whose own timeouts are far longer: an HTTP handler that
// submits with a request deadline is not held past it.
//
// One backend: a server of its own, which the test pauses.
func TestClientCallsEndWithTheirContextWhenRedisHangs(t *testing.T) {
	srv := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute, PoolTimeout: time.Minute, MaxRetries: -1})
	defer rdb.Close()
	h := newHarness(t, rdb)
	ctx := context.Background()
	id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Pause(); err != nil {
		t.Fatal(err)
	}
	defer srv.Resume()
	calls := map[string]func(context.Context) error{
		"Submit": func(ctx context.Context) error {
			_, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{})
			return err
		},
		"Result": func(ctx context.Context) error {
			_, err := task.Result[string](ctx, h.client, id)
			return err
		},
		"DeadLetters": func(ctx context.Context) error {
			_, err := h.client.DeadLetters(ctx, "q1", "", 10)
			return err
		},
	}
	for name, call := range calls {
		cctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		began := time.Now()
		err := call(cctx)
		took := time.Since(began)
		cancel()
		// The bound is a tenth of the client's own timeout: without the context kept,
		// the call would take a minute.
		if !errors.Is(err, context.DeadlineExceeded) || took > 6*time.Second {
			t.Errorf("%s with Redis hanging: err = %v after %v; want DeadlineExceeded once its 300ms context ends", name, err, took)
		}
	}
}

// An envelope of a task that has finished, copied back into the stream, does not run the
// task again: the worker drops it and the first outcome stands.
func TestAReplayedEnvelopeOfAFinishedTaskDoesNotRunAgain(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		id, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{Msg: "once"})
		if err != nil {
			t.Fatal(err)
		}
		stream := redisq.QueueKeys(h.prefix, "q1").Stream()
		entries, err := h.rdb.XRange(ctx, stream, "-", "+").Result()
		if err != nil || len(entries) != 1 {
			t.Fatalf("stream = %v, %v", entries, err)
		}
		w := h.worker(t)
		var runs atomic.Int32
		task.Register(w, echoDef, func(_ context.Context, _ task.Caller, a echoArgs) (string, error) {
			runs.Add(1)
			return a.Msg, nil
		})
		run(t, w)
		if got, err := wait[string](t, h.client, id); err != nil || got != "once" {
			t.Fatalf("Result = %q, %v", got, err)
		}
		if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: entries[0].Values}).Err(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the replayed entry to be dropped", func() bool {
			n, _ := h.rdb.XLen(ctx, stream).Result()
			p, _ := h.rdb.XPending(ctx, stream, redisq.Group).Result()
			return n == 0 && p != nil && p.Count == 0
		})
		if n := runs.Load(); n != 1 {
			t.Errorf("the task ran %d times, want once", n)
		}
		if got, err := wait[string](t, h.client, id); err != nil || got != "once" {
			t.Errorf("Result after the replay = %q, %v", got, err)
		}
	})
}

// A worker whose task was taken over by another (it missed its lease) learns it from its
// next heartbeat, stops the run and settles nothing: the new owner's outcome is the one.
func TestARunWhoseLeaseWasTakenOverStopsAndSettlesNothing(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		w := h.worker(t, task.WithLease(300*time.Millisecond))
		started := make(chan struct{})
		stopped := make(chan error, 1)
		task.Register(w, echoDef, func(ctx context.Context, _ task.Caller, _ echoArgs) (string, error) {
			close(started)
			<-ctx.Done()
			stopped <- ctx.Err()
			return "", ctx.Err()
		})
		run(t, w)
		id, _ := task.Submit(ctx, h.client, echoDef, alice, echoArgs{})
		<-started
		// Another worker takes the entry over, as if this one had stalled past its lease.
		stream := redisq.QueueKeys(h.prefix, "q1").Stream()
		pending, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: redisq.Group, Start: "-", End: "+", Count: 1}).Result()
		if err != nil || len(pending) != 1 {
			t.Fatalf("pending = %v, %v", pending, err)
		}
		taken, err := h.rdb.XClaimJustID(ctx, &redis.XClaimArgs{Stream: stream, Group: redisq.Group, Consumer: "other-worker", Messages: []string{pending[0].ID}}).Result()
		if err != nil || len(taken) != 1 {
			t.Fatalf("XCLAIM = %v, %v", taken, err)
		}
		select {
		case err := <-stopped:
			if err == nil {
				t.Error("the run's context ended without an error")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the run went on after another worker took its task over")
		}
		time.Sleep(100 * time.Millisecond) // let a settlement, if the worker made one, land
		keys := redisq.QueueKeys(h.prefix, "q1")
		p, err := h.rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: keys.Stream(), Group: redisq.Group, Start: "-", End: "+", Count: 10}).Result()
		if err != nil || len(p) != 1 || p[0].Consumer != "other-worker" {
			t.Errorf("pending = %+v, %v; want the entry still with the worker that took it over", p, err)
		}
		if st, _ := h.rdb.HGet(ctx, keys.State(string(id)), "state").Result(); st != redisq.StateRunning {
			t.Errorf("state = %q, want running: the stopped run settled the task", st)
		}
		if n, _ := h.rdb.ZCard(ctx, keys.Delayed()).Result(); n != 0 {
			t.Error("the stopped run scheduled a retry")
		}
	})
}

// waitFor waits up to 10 s for cond, failing the test with what it waited for.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOptionsOutOfRangeAreRefused(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		key := task.WithSigningKey("k1", signingKey)
		if _, err := task.NewClient(rdb, key, task.WithMaxEnvelopeSize(0)); err == nil || !strings.Contains(err.Error(), "WithMaxEnvelopeSize") {
			t.Errorf("NewClient with a zero envelope limit: %v", err)
		}
		if _, err := task.NewWorker(rdb, key, task.WithMaxEnvelopeSize(-1)); err == nil {
			t.Error("NewWorker accepted a negative envelope limit")
		}
		if _, err := task.NewWorker(rdb, key, task.WithClockSkew(-time.Second)); err == nil || !strings.Contains(err.Error(), "WithClockSkew") {
			t.Errorf("NewWorker with a negative clock skew: %v", err)
		}
	})
}

// A uniqueness key is the kind's own: two kinds of one queue using the same key each get
// their task.
func TestUniqueKeysOfTwoKindsDoNotCollide(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		ctx := context.Background()
		other := echoDef
		other.Kind = "test.other"
		a, err := task.Submit(ctx, h.client, echoDef, alice, echoArgs{}, task.Unique("daily", time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		b, err := task.Submit(ctx, h.client, other, alice, echoArgs{}, task.Unique("daily", time.Minute))
		if err != nil || b == a {
			t.Fatalf("second kind's submit = %s, %v; want a task of its own, not %s", b, err, a)
		}
	})
}

// A worker refuses a caller block that arrived in clear (its client has
// WithPlainCallers, or someone wrote it without the keys to seal): the token rested in
// Redis readable. Given WithPlainCallers itself, it runs such tasks, and sealed ones too.
func TestAWorkerRefusesAnUnsealedCallerUnlessToldToAccept(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		h := newHarness(t, rdb)
		plain, err := task.NewClient(h.rdb, task.WithPrefix(h.prefix), task.WithSigningKey("k1", signingKey), task.WithPlainCallers())
		if err != nil {
			t.Fatal(err)
		}
		strict := h.worker(t)
		task.Register(strict, echoDef, func(_ context.Context, c task.Caller, _ echoArgs) (string, error) { return c.UserID, nil })
		stop := run(t, strict)
		id, _ := task.Submit(context.Background(), plain, echoDef, alice, echoArgs{})
		_, err = wait[string](t, h.client, id)
		var failed *task.FailedError
		if !errors.As(err, &failed) || !errors.Is(err, task.ErrBadSignature) || !strings.Contains(failed.Message, "arrived unsealed") {
			t.Fatalf("Result of a plain caller on a strict worker = %v, want a refusal", err)
		}
		stop()
		lenient := h.worker(t, task.WithPlainCallers())
		task.Register(lenient, echoDef, func(_ context.Context, c task.Caller, _ echoArgs) (string, error) { return c.UserID, nil })
		run(t, lenient)
		for _, c := range []*task.Client{plain, h.client} {
			id, _ := task.Submit(context.Background(), c, echoDef, alice, echoArgs{})
			if got, err := wait[string](t, h.client, id); err != nil || got != "alice" {
				t.Errorf("Result on a worker that accepts plain callers = %q, %v", got, err)
			}
		}
	})
}

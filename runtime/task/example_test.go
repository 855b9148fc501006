package task_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

// exampleKey is the signing key the examples share; use 32 random bytes from your
// secret store.
var exampleKey = []byte("example-signing-key-0123456789abcdef")

// greetTask is what taskgen generates for a function marked //task:greet.
var greetTask = task.Def{Kind: "greet", Queue: "default", MaxRetries: 1, Schema: "v1:greet", Caller: true}

// exampleRedis starts a throwaway redis-server for an example; an application passes its
// own client.
func exampleRedis() (redis.UniversalClient, func()) {
	srv, err := redistest.StartServer()
	if err != nil {
		panic(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	return rdb, func() { rdb.Close(); srv.Stop() }
}

// The whole flow: a worker registers a task with what it needs, a client submits it on
// behalf of a caller, and Result returns what the task returned. The task sees the
// caller it was submitted for, verified, and nothing else of the submitter.
func Example() {
	rdb, done := exampleRedis()
	defer done()
	quiet := task.WithLogger(slog.New(slog.DiscardHandler))

	w, err := task.NewWorker(rdb, task.WithSigningKey("k1", exampleKey), quiet)
	if err != nil {
		fmt.Println(err)
		return
	}
	greeting := "hello" // lifespan state: the worker's, passed explicitly
	err = task.Register(w, greetTask, func(ctx context.Context, caller task.Caller, name string) (string, error) {
		return fmt.Sprintf("%s %s, from a task run for %s", greeting, name, caller.UserID), nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()

	c, err := task.NewClient(rdb, task.WithSigningKey("k1", exampleKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	caller := task.Caller{UserID: "alice", Token: task.NewSecret("alice's token"), ExpiresAt: time.Now().Add(time.Hour)}
	id, err := task.Submit(ctx, c, greetTask, caller, "Bob")
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := task.Result[string](ctx, c, id)
	fmt.Println(out, err)

	stop()
	fmt.Println("worker stopped:", <-stopped)
	// Output:
	// hello Bob, from a task run for alice <nil>
	// worker stopped: <nil>
}

// A task that fails for good: Result returns a *FailedError with the reason, the last
// error and the attempts, and errors.Is matches it against the package's errors.
func ExampleFailedError() {
	rdb, done := exampleRedis()
	defer done()
	quiet := task.WithLogger(slog.New(slog.DiscardHandler))
	w, _ := task.NewWorker(rdb, task.WithSigningKey("k1", exampleKey), quiet)
	_ = task.Register(w, greetTask, func(ctx context.Context, caller task.Caller, name string) (string, error) {
		return "", task.Permanent(errors.New("no such user: " + name))
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)

	c, _ := task.NewClient(rdb, task.WithSigningKey("k1", exampleKey))
	id, _ := task.Submit(ctx, c, greetTask, task.System("signup-cron"), "Mallory")
	_, err := task.Result[string](ctx, c, id)
	var failed *task.FailedError
	if errors.As(err, &failed) {
		fmt.Println(failed.Reason, failed.Attempts, failed.Message)
	}
	fmt.Println("expired caller?", errors.Is(err, task.ErrCallerExpired))
	// Output:
	// permanent 1 no such user: Mallory
	// expired caller? false
}

// Many tasks at once: SubmitMany signs one envelope per element, sends them in pipelines,
// and returns the IDs in order. The generated SubmitFMany calls it with FArgs.
func ExampleSubmitMany() {
	rdb, done := exampleRedis()
	defer done()
	quiet := task.WithLogger(slog.New(slog.DiscardHandler))
	w, _ := task.NewWorker(rdb, task.WithSigningKey("k1", exampleKey), quiet)
	_ = task.Register(w, greetTask, func(ctx context.Context, caller task.Caller, name string) (string, error) {
		return "hello " + name, nil
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)

	c, _ := task.NewClient(rdb, task.WithSigningKey("k1", exampleKey))
	names := []string{"Ann", "Bob", "Cy"}
	// One unique key per task: submitting the same batch again returns the same IDs.
	once := task.UniqueKeys([]string{"greet-ann", "greet-bob", "greet-cy"}, time.Hour)
	ids, err := task.SubmitMany(ctx, c, greetTask, task.System("newsletter"), names, once)
	if err != nil {
		fmt.Println(err)
		return
	}
	again, _ := task.SubmitMany(ctx, c, greetTask, task.System("newsletter"), names, once)
	for i, id := range ids {
		out, err := task.Result[string](ctx, c, id)
		fmt.Println(out, err, again[i] == id)
	}
	// Output:
	// hello Ann <nil> true
	// hello Bob <nil> true
	// hello Cy <nil> true
}

// A token never prints, whatever formats it.
func ExampleSecret() {
	token := task.NewSecret("eyJhbGciOi...")
	fmt.Println(token)
	fmt.Printf("%v %q %#v\n", token, token, token)
	slog.New(slog.NewTextHandler(exampleStdout{}, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	})).Info("calling the API", "token", token)
	fmt.Println(len(token.Reveal()), "bytes when revealed")
	// Output:
	// [redacted]
	// [redacted] "[redacted]" task.NewSecret("[redacted]")
	// level=INFO msg="calling the API" token=[redacted]
	// 13 bytes when revealed
}

// exampleStdout writes to the example's standard output, which the test compares.
type exampleStdout struct{}

func (exampleStdout) Write(p []byte) (int, error) { fmt.Print(string(p)); return len(p), nil }

// A task that takes a task.Info knows its own id and attempt: the id is the same on every
// run of one submitted task, so it is the key that makes a side effect happen once under
// at-least-once delivery. Here the first attempt fails after "charging", the retry finds
// the charge under the task's id and does not charge again.
func ExampleRegisterWithInfo() {
	rdb, done := exampleRedis()
	defer done()
	quiet := task.WithLogger(slog.New(slog.DiscardHandler))
	w, err := task.NewWorker(rdb, task.WithSigningKey("k1", exampleKey), task.WithBackoff(10*time.Millisecond, 10*time.Millisecond), quiet)
	if err != nil {
		fmt.Println(err)
		return
	}
	charge := task.Def{Kind: "billing.charge", Queue: "billing", MaxRetries: 2, Schema: "v1:charge"}
	var mu sync.Mutex
	charged := map[task.ID]int{} // stands for the payment API's idempotency keys
	err = task.RegisterWithInfo(w, charge, func(_ context.Context, info task.Info, _ task.Caller, cents int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		if _, done := charged[info.ID]; !done {
			charged[info.ID] = cents
		}
		if info.Attempt == 1 {
			return "", errors.New("the connection dropped after the charge")
		}
		return fmt.Sprintf("attempt %d of %d: %d cents charged once", info.Attempt, info.MaxRetries+1, charged[info.ID]), nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()

	c, err := task.NewClient(rdb, task.WithSigningKey("k1", exampleKey))
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := task.Submit(ctx, c, charge, task.Caller{}, 1250)
	if err != nil {
		fmt.Println(err)
		return
	}
	out, err := task.ResultOf[string](ctx, c, charge, id)
	fmt.Println(out, err)
	stop()
	fmt.Println("worker stopped:", <-stopped)
	// Output:
	// attempt 2 of 3: 1250 cents charged once <nil>
	// worker stopped: <nil>
}

// CallerInfo.ExpiresIn words a caller's expiry for a person, as the inspector's CLI and
// console show it.
func ExampleCallerInfo_ExpiresIn() {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []task.CallerInfo{
		{UserID: "alice", ExpiresAt: now.Add(4*time.Minute + 10*time.Second), Readable: true},
		{UserID: "bob", ExpiresAt: now.Add(-3 * time.Hour), Readable: true},
		{UserID: "system:digest", Readable: true},
		{Sealed: true},
	} {
		fmt.Printf("%q: %s\n", c.UserID, c.ExpiresIn(now))
	}
	// Output:
	// "alice": expires in 4m
	// "bob": expired 3h ago
	// "system:digest": no expiry
	// "": unknown expiry
}

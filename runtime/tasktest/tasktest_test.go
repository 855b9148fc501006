package tasktest_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/internal/wireschema"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/tasktest"
)

// schema returns the fingerprint the generator gives a wire shape.
func schema(t *testing.T, wire string) string {
	t.Helper()
	ty, err := wireschema.Parse(wire)
	if err != nil {
		t.Fatal(err)
	}
	return wireschema.Fingerprint(ty.String())
}

type greetArgs struct {
	Name string `json:"name"`
}

// greetDef is a Def as taskgen generates it for a task taking a caller and one name.
func greetDef(t *testing.T) task.Def {
	wire := `{"name":string}`
	return task.Def{Kind: "test.greet", Queue: "greet", MaxRetries: 2, Timeout: 5 * time.Second,
		Schema: schema(t, wire), Wire: wire, Caller: true}
}

func newEnv(t *testing.T, opts ...task.WorkerOption) *tasktest.Env {
	t.Helper()
	env, err := tasktest.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func mustRegister[A, R any](t *testing.T, env *tasktest.Env, d task.Def, fn func(context.Context, task.Info, task.Caller, A) (R, error)) {
	t.Helper()
	if err := task.RegisterWithInfo(env.Worker(), d, fn); err != nil {
		t.Fatal(err)
	}
}

func alice(ttl time.Duration) task.Caller {
	return task.Caller{UserID: "alice", Token: task.NewSecret("alice-secret-token"), ExpiresAt: time.Now().Add(ttl), Scopes: []string{"mail"}}
}

// seen is what a task function saw of its call.
type seen struct {
	caller      task.Caller
	info        task.Info
	hasDeadline bool
	args        greetArgs
}

func TestRunPassesTheCallerInfoAndArguments(t *testing.T) {
	env := newEnv(t)
	d := greetDef(t)
	var got seen
	mustRegister(t, env, d, func(ctx context.Context, info task.Info, caller task.Caller, a greetArgs) (string, error) {
		_, got.hasDeadline = ctx.Deadline()
		got.caller, got.info, got.args = caller, info, a
		return "hello " + a.Name + " from " + caller.UserID, nil
	})
	id := task.ID("greet/01J0000000000000000000000A")
	submitted := time.Now().Add(-time.Minute).UTC().Truncate(time.Millisecond)
	res, err := tasktest.Run[string](env, d, alice(time.Hour), greetArgs{Name: "Ada"},
		tasktest.WithInfo(task.Info{ID: id, Attempt: 2, SubmittedAt: submitted}))
	if err != nil || res != "hello Ada from alice" {
		t.Fatalf("Run = %q, %v", res, err)
	}
	if got.caller.UserID != "alice" || got.caller.Token.Reveal() != "alice-secret-token" || len(got.caller.Scopes) != 1 {
		t.Errorf("caller = %+v (token %q)", got.caller, got.caller.Token.Reveal())
	}
	want := task.Info{ID: id, Kind: d.Kind, Attempt: 2, MaxRetries: 2, SubmittedAt: submitted}
	if got.info != want {
		t.Errorf("info = %+v, want %+v", got.info, want)
	}
	if !got.hasDeadline || got.args.Name != "Ada" {
		t.Errorf("deadline %v, args %+v", got.hasDeadline, got.args)
	}
}

// Every refusal of the worker's verification comes out of an inline run, with the
// error a worker records and the decision it takes.
func TestRunRefusesAsTheWorkerDoes(t *testing.T) {
	d := greetDef(t)
	incompatible := `{"name":int}`
	type extraArgs struct {
		Name  string `json:"name"`
		Admin bool   `json:"admin"`
	}
	cases := []struct {
		name   string
		opts   []task.WorkerOption
		run    func(env *tasktest.Env) (tasktest.Outcome, error)
		want   error
		reason string
	}{
		{"no caller", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			return tasktest.Execute(env, d, task.Caller{}, greetArgs{Name: "x"})
		}, task.ErrNoCaller, task.ReasonNoCaller},
		{"expired caller", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			return tasktest.Execute(env, d, alice(-time.Second), greetArgs{Name: "x"})
		}, task.ErrCallerExpired, task.ReasonCallerExpired},
		{"expired past the clock skew", []task.WorkerOption{task.WithClockSkew(time.Minute)}, func(env *tasktest.Env) (tasktest.Outcome, error) {
			return tasktest.Execute(env, d, alice(-2*time.Minute), greetArgs{Name: "x"})
		}, task.ErrCallerExpired, task.ReasonCallerExpired},
		{"unknown field", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			return tasktest.Execute(env, d, alice(time.Hour), extraArgs{Name: "x", Admin: true})
		}, task.ErrMalformed, task.ReasonMalformed},
		{"incompatible schema", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			old := d
			old.Wire, old.Schema = incompatible, schema(t, incompatible)
			return tasktest.Execute(env, old, alice(time.Hour), map[string]int{"name": 1})
		}, task.ErrSchemaMismatch, task.ReasonSchemaMismatch},
		{"unknown kind", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			other := d
			other.Kind = "test.other"
			return tasktest.Execute(env, other, alice(time.Hour), greetArgs{Name: "x"})
		}, task.ErrUnknownKind, task.ReasonUnknownKind},
		{"stale envelope", nil, func(env *tasktest.Env) (tasktest.Outcome, error) {
			return tasktest.Execute(env, d, alice(time.Hour), greetArgs{Name: "x"},
				tasktest.WithInfo(task.Info{SubmittedAt: time.Now().Add(-40 * 24 * time.Hour)}))
		}, task.ErrStale, task.ReasonStale},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newEnv(t, c.opts...)
			ran := false
			mustRegister(t, env, d, func(context.Context, task.Info, task.Caller, greetArgs) (string, error) {
				ran = true
				return "", nil
			})
			o, err := c.run(env)
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(o.Err, c.want) || o.Decision != tasktest.Dead || o.Reason != c.reason || ran {
				t.Errorf("outcome = %+v (ran %v), want %v dead with %s", o, ran, c.want, c.reason)
			}
		})
	}
}

// Within the clock skew an expired caller is accepted, and a schema that is compatible
// (a field added) is decoded leniently, as a worker does in a rolling deploy.
func TestRunAcceptsWhatTheWorkerAccepts(t *testing.T) {
	env := newEnv(t, task.WithClockSkew(time.Minute))
	d := greetDef(t)
	mustRegister(t, env, d, func(_ context.Context, _ task.Info, c task.Caller, a greetArgs) (string, error) {
		return c.UserID + ":" + a.Name, nil
	})
	if res, err := tasktest.Run[string](env, d, alice(-30*time.Second), greetArgs{Name: "Ada"}); err != nil || res != "alice:Ada" {
		t.Errorf("caller expired within the skew: %q, %v", res, err)
	}
	newer := d
	newer.Wire = `{"name":string,"nickname":string}`
	newer.Schema = schema(t, newer.Wire)
	res, err := tasktest.Run[string](env, newer, alice(time.Hour), map[string]string{"name": "Ada", "nickname": "A"})
	if err != nil || res != "alice:Ada" {
		t.Errorf("compatible schema: %q, %v", res, err)
	}
}

func TestOutcomesAreTheWorkersDecisions(t *testing.T) {
	d := greetDef(t)
	errFlaky := errors.New("mail server busy")
	cases := []struct {
		name     string
		fn       func() (string, error)
		attempt  int
		decision tasktest.Decision
		reason   string
		err      string
	}{
		{"success", func() (string, error) { return "ok", nil }, 1, tasktest.Succeeded, "", ""},
		{"plain error", func() (string, error) { return "", errFlaky }, 1, tasktest.Retry, "", "mail server busy"},
		{"permanent error", func() (string, error) { return "", task.Permanent(errFlaky) }, 1, tasktest.Dead, task.ReasonPermanent, "mail server busy"},
		{"last attempt", func() (string, error) { return "", errFlaky }, 3, tasktest.Dead, task.ReasonRetriesSpent, "mail server busy"},
		{"panic", func() (string, error) { panic("nil map") }, 1, tasktest.Retry, "", "task panicked: nil map"},
		{"caller expires before the retry", func() (string, error) { return "", errFlaky }, 1, tasktest.Dead, task.ReasonCallerExpired, "mail server busy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := newEnv(t, task.WithBackoff(time.Second, time.Second), task.WithLogger(nil))
			mustRegister(t, env, d, func(context.Context, task.Info, task.Caller, greetArgs) (string, error) { return c.fn() })
			caller := alice(time.Hour)
			if c.reason == task.ReasonCallerExpired {
				caller = alice(300 * time.Millisecond) // expires before the backoff of at least 0.5s ends
			}
			o, err := tasktest.Execute(env, d, caller, greetArgs{Name: "x"}, tasktest.WithInfo(task.Info{Attempt: c.attempt}))
			if err != nil {
				t.Fatal(err)
			}
			gotErr := ""
			if o.Err != nil {
				gotErr = o.Err.Error()
			}
			if o.Decision != c.decision || o.Reason != c.reason || gotErr != c.err || o.Attempt != c.attempt {
				t.Errorf("outcome = %+v, want %s %q with error %q", o, c.decision, c.reason, c.err)
			}
			if c.decision == tasktest.Retry && (o.RetryIn < 500*time.Millisecond || o.RetryIn > time.Second) {
				t.Errorf("retry in %s, want the worker's backoff of 0.5s to 1s", o.RetryIn)
			}
			if c.decision == tasktest.Succeeded && string(o.Result) != `"ok"` {
				t.Errorf("result = %s", o.Result)
			}
		})
	}
	// The plain error itself comes back, for errors.Is.
	env := newEnv(t)
	mustRegister(t, env, d, func(context.Context, task.Info, task.Caller, greetArgs) (string, error) { return "", errFlaky })
	if _, err := tasktest.Run[string](env, d, alice(time.Hour), greetArgs{}); !errors.Is(err, errFlaky) {
		t.Errorf("Run = %v, want the task's error", err)
	}
}

// A task that runs past its Def's timeout sees its context's deadline, and the worker
// retries it; an inline run holds no lease, so a task longer than WithLease finishes.
func TestRunBoundsATaskByItsTimeoutNotByTheLease(t *testing.T) {
	env := newEnv(t, task.WithLease(100*time.Millisecond))
	slow := greetDef(t)
	slow.Kind, slow.Timeout = "test.slow", 150*time.Millisecond
	mustRegister(t, env, slow, func(ctx context.Context, _ task.Info, _ task.Caller, _ greetArgs) (string, error) {
		<-ctx.Done()
		return "", ctx.Err()
	})
	long := greetDef(t)
	long.Kind = "test.long"
	mustRegister(t, env, long, func(ctx context.Context, _ task.Info, _ task.Caller, _ greetArgs) (string, error) {
		select {
		case <-time.After(400 * time.Millisecond): // past the lease, four times over
			return "done", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})
	began := time.Now()
	o, err := tasktest.Execute(env, slow, alice(time.Hour), greetArgs{})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(o.Err, context.DeadlineExceeded) || o.Decision != tasktest.Retry || time.Since(began) < slow.Timeout {
		t.Errorf("past its timeout: %+v after %s", o, time.Since(began))
	}
	if res, err := tasktest.Run[string](env, long, alice(time.Hour), greetArgs{}); err != nil || res != "done" {
		t.Errorf("past the lease: %q, %v", res, err)
	}
}

func TestTheRecordingClientChecksAsSubmitDoes(t *testing.T) {
	env := newEnv(t, task.WithMaxEnvelopeSize(2048))
	d := greetDef(t)
	ctx := context.Background()
	c := env.Client()
	cases := []struct {
		name   string
		caller task.Caller
		args   greetArgs
		opts   []task.SubmitOption
		want   error
	}{
		{"no caller", task.Caller{}, greetArgs{Name: "x"}, nil, task.ErrNoCaller},
		{"expired caller", alice(-time.Second), greetArgs{Name: "x"}, nil, task.ErrCallerExpired},
		{"due after the caller expires", alice(time.Minute), greetArgs{Name: "x"}, []task.SubmitOption{task.Delay(time.Hour)}, task.ErrCallerExpired},
		{"envelope too large", alice(time.Hour), greetArgs{Name: strings.Repeat("x", 4096)}, nil, task.ErrMalformed},
	}
	for _, c2 := range cases {
		if _, err := task.Submit(ctx, c, d, c2.caller, c2.args, c2.opts...); !errors.Is(err, c2.want) {
			t.Errorf("%s: Submit = %v, want %v", c2.name, err, c2.want)
		}
	}
	bad := d
	bad.Kind = "Not A Kind"
	if _, err := task.Submit(ctx, c, bad, alice(time.Hour), greetArgs{}); err == nil {
		t.Error("a Def with an invalid kind was recorded")
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := task.Submit(cancelled, c, d, alice(time.Hour), greetArgs{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Submit with a cancelled context = %v", err)
	}
	if subs := env.Submitted(); len(subs) != 0 {
		t.Errorf("refused submits were recorded: %+v", subs)
	}
}

func TestTheRecordingClientRecordsWhatWasSubmitted(t *testing.T) {
	env := newEnv(t)
	d := greetDef(t)
	ctx := context.Background()
	caller := alice(time.Hour)
	before := time.Now()
	id, err := task.Submit(ctx, env.Client(), d, caller, greetArgs{Name: "Ada"}, task.Delay(time.Minute), task.Unique("ada", time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	again, err := task.Submit(ctx, env.Client(), d, caller, greetArgs{Name: "Ada again"}, task.Unique("ada", time.Hour))
	if err != nil || again != id {
		t.Errorf("a second submit with the Unique key = %s, %v; want the first task's %s", again, err, id)
	}
	noCaller := task.Def{Kind: "test.tick", Queue: "greet"}
	if _, err := task.Submit(ctx, env.Client(), noCaller, caller, struct{}{}, task.At(time.Now().Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	subs := env.Submitted()
	if len(subs) != 2 {
		t.Fatalf("recorded %d submits, want 2: %+v", len(subs), subs)
	}
	s := subs[0]
	if s.ID != id || s.Kind != d.Kind || s.Queue != "greet" || string(s.Args) != `{"name":"Ada"}` ||
		s.UserID != "alice" || !s.ExpiresAt.Equal(caller.ExpiresAt) || fmt.Sprint(s.Scopes) != "[mail]" ||
		s.Delay != time.Minute || !s.DueAt.Equal(s.SubmittedAt.Add(time.Minute)) || s.SubmittedAt.Before(before.Add(-time.Millisecond)) ||
		s.UniqueKey != "ada" || s.UniqueTTL != time.Hour {
		t.Errorf("submission = %+v", s)
	}
	var args greetArgs
	if err := s.Decode(&args); err != nil || args.Name != "Ada" {
		t.Errorf("Decode = %+v, %v", args, err)
	}
	var wrong struct{ Other int }
	if err := s.Decode(&wrong); err == nil {
		t.Error("Decode into a type without the arguments' fields succeeded")
	}
	if tick := subs[1]; tick.UserID != "" || tick.Delay < 59*time.Minute || tick.Delay > time.Hour {
		t.Errorf("a task without a caller sent one, or lost its At: %+v", tick)
	}
}

// No field, method or encoding of what the package returns shows the token.
func TestTheTokenIsNeverVisible(t *testing.T) {
	env := newEnv(t)
	d := greetDef(t)
	mustRegister(t, env, d, func(_ context.Context, _ task.Info, c task.Caller, a greetArgs) (string, error) {
		if c.Token.Reveal() != "alice-secret-token" {
			return "", task.Permanent(errors.New("the task did not get the token"))
		}
		return a.Name, nil
	})
	if _, err := task.Submit(context.Background(), env.Client(), d, alice(time.Hour), greetArgs{Name: "Ada"}); err != nil {
		t.Fatal(err)
	}
	outs, err := env.RunAll()
	if err != nil || len(outs) != 1 || outs[0].Decision != tasktest.Succeeded {
		t.Fatalf("RunAll = %+v, %v", outs, err)
	}
	subs := env.Submitted()
	js, err := json.Marshal(struct {
		S []tasktest.Submission
		O []tasktest.Outcome
	}{subs, outs})
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{
		fmt.Sprintf("%v", subs), fmt.Sprintf("%+v", subs), fmt.Sprintf("%#v", subs),
		fmt.Sprintf("%v", outs), fmt.Sprintf("%+v", outs), fmt.Sprintf("%#v", outs),
		fmt.Sprintf("%+v", env), fmt.Sprintf("%#v", env), string(js),
	} {
		if strings.Contains(text, "alice-secret-token") || strings.Contains(text, "alice-secret") {
			t.Errorf("the token shows in %s", text)
		}
	}
	if !strings.Contains(fmt.Sprintf("%+v", subs), "alice") {
		t.Error("the user id is missing from the recording, so the search above proves nothing")
	}
}

type chainArgs struct {
	N int `json:"n"`
}

func TestRunAllRunsTheTasksThatTasksSubmit(t *testing.T) {
	env := newEnv(t)
	wire := `{"n":int}`
	d := task.Def{Kind: "test.chain", Queue: "chain", Schema: schema(t, wire), Wire: wire, Caller: true}
	var order []int
	mustRegister(t, env, d, func(ctx context.Context, _ task.Info, c task.Caller, a chainArgs) (int, error) {
		order = append(order, a.N)
		if a.N > 0 {
			if _, err := task.Submit(ctx, env.Client(), d, c, chainArgs{N: a.N - 1}); err != nil {
				return 0, err
			}
		}
		return a.N, nil
	})
	for _, n := range []int{2, 10} {
		if _, err := task.Submit(context.Background(), env.Client(), d, alice(time.Hour), chainArgs{N: n}); err != nil {
			t.Fatal(err)
		}
	}
	outs, err := env.RunAll()
	if err != nil || len(outs) != 14 {
		t.Fatalf("RunAll ran %d tasks, err %v", len(outs), err)
	}
	// In order of submission: 2 and 10 first, then what each submitted.
	if fmt.Sprint(order[:5]) != "[2 10 1 9 0]" {
		t.Errorf("order = %v", order)
	}
	var last int
	if err := outs[13].Decode(&last); err != nil || last != 0 || outs[13].Attempt != 1 {
		t.Errorf("last outcome %+v: %d, %v", outs[13], last, err)
	}
	if again, err := env.RunAll(); err != nil || len(again) != 0 {
		t.Errorf("a second RunAll ran %d tasks again, %v", len(again), err)
	}
}

func TestRunAllStopsATaskThatSubmitsItself(t *testing.T) {
	env := newEnv(t, task.WithLogger(nil))
	wire := `{"n":int}`
	d := task.Def{Kind: "test.forever", Schema: schema(t, wire), Wire: wire}
	mustRegister(t, env, d, func(ctx context.Context, _ task.Info, c task.Caller, a chainArgs) (int, error) {
		_, err := task.Submit(ctx, env.Client(), d, c, chainArgs{N: a.N + 1})
		return a.N, err
	})
	if _, err := task.Submit(context.Background(), env.Client(), d, task.Caller{}, chainArgs{}); err != nil {
		t.Fatal(err)
	}
	outs, err := env.RunAll()
	if err == nil || !strings.Contains(err.Error(), "keep submitting") || len(outs) != tasktest.MaxRunAll {
		t.Errorf("RunAll = %d outcomes, %v", len(outs), err)
	}
}

// What needs Redis fails and says why, rather than reaching a server or panicking.
func TestWhatNeedsRedisFails(t *testing.T) {
	env := newEnv(t)
	d := greetDef(t)
	mustRegister(t, env, d, func(context.Context, task.Info, task.Caller, greetArgs) (string, error) { return "", nil })
	if err := env.Worker().Run(context.Background()); err == nil || !strings.Contains(err.Error(), "tasktest") {
		t.Errorf("Worker.Run = %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := task.Result[string](ctx, env.Client(), task.ID("greet/01J0000000000000000000000A")); err == nil || !strings.Contains(err.Error(), "tasktest") {
		t.Errorf("Result = %v", err)
	}
}

func TestSetupErrors(t *testing.T) {
	if _, err := tasktest.New(task.WithLease(time.Millisecond)); err == nil || !strings.Contains(err.Error(), "WithLease") {
		t.Errorf("New with a bad option = %v", err)
	}
	env := newEnv(t)
	d := greetDef(t)
	for name, info := range map[string]task.Info{
		"kind":        {Kind: "test.other"},
		"max retries": {MaxRetries: 7},
		"attempt":     {Attempt: -1},
		"id":          {ID: "other/01J0000000000000000000000A"},
	} {
		if _, err := tasktest.Execute(env, d, alice(time.Hour), greetArgs{}, tasktest.WithInfo(info)); err == nil {
			t.Errorf("WithInfo with a wrong %s was accepted", name)
		}
	}
}

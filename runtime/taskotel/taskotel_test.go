package taskotel_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/taskotel"
	"github.com/taskgen/taskgen/runtime/tasktest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

var signingKey = []byte("test-signing-key-0123456789abcdef")

// telemetry is an SDK tracer provider exporting to memory and a meter provider read by
// hand, as a test reads them.
type telemetry struct {
	spans  *tracetest.InMemoryExporter
	tp     *sdktrace.TracerProvider
	reader *sdkmetric.ManualReader
	mp     *sdkmetric.MeterProvider
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	tel := &telemetry{spans: tracetest.NewInMemoryExporter(), reader: sdkmetric.NewManualReader()}
	tel.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(tel.spans))
	tel.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(tel.reader))
	t.Cleanup(func() {
		_ = tel.tp.Shutdown(context.Background())
		_ = tel.mp.Shutdown(context.Background())
	})
	return tel
}

// spansNamed returns the ended spans called name, in the order they ended.
func (tel *telemetry) spansNamed(name string) []tracetest.SpanStub {
	var out []tracetest.SpanStub
	for _, s := range tel.spans.GetSpans() {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// deployment is a client and a running worker of queue q1 under a prefix of the test's
// own, both with telemetry.
type deployment struct {
	rdb    redis.UniversalClient
	prefix string
	client *task.Client
	worker *task.Worker
}

func shared(t *testing.T, prefix string) []task.Option {
	return []task.Option{
		task.WithPrefix(prefix), task.WithSigningKey("k1", signingKey),
		task.WithLogger(slog.New(slog.NewTextHandler(t.Output(), nil))),
	}
}

// newClient returns a client with the telemetry of clientOtel.
func newClient(t *testing.T, rdb redis.UniversalClient, prefix string, clientOtel ...taskotel.Option) *task.Client {
	t.Helper()
	observe, err := taskotel.Client(clientOtel...)
	if err != nil {
		t.Fatal(err)
	}
	var opts []task.ClientOption
	for _, o := range shared(t, prefix) {
		opts = append(opts, o)
	}
	c, err := task.NewClient(rdb, append(opts, observe)...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newWorker returns a worker of q1 with short backoffs, the telemetry of workerOtel and
// the options more.
func newWorker(t *testing.T, rdb redis.UniversalClient, prefix string, workerOtel []taskotel.Option, more ...task.WorkerOption) *task.Worker {
	t.Helper()
	observe, err := taskotel.Worker(workerOtel...)
	if err != nil {
		t.Fatal(err)
	}
	opts := []task.WorkerOption{task.WithQueues("q1"), task.WithBackoff(10*time.Millisecond, 50*time.Millisecond), observe}
	for _, o := range shared(t, prefix) {
		opts = append(opts, o)
	}
	w, err := task.NewWorker(rdb, append(opts, more...)...)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// run runs w until the test ends.
func run(t *testing.T, w *task.Worker) {
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-stopped; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
}

func mustRegister[A, R any](t *testing.T, w *task.Worker, d task.Def, fn func(context.Context, task.Info, task.Caller, A) (R, error)) {
	t.Helper()
	if err := task.RegisterWithInfo(w, d, fn); err != nil {
		t.Fatal(err)
	}
}

func mustSubmit(t *testing.T, ctx context.Context, c *task.Client, d task.Def, args string, opts ...task.SubmitOption) task.ID {
	t.Helper()
	id, err := task.Submit(ctx, c, d, task.System("otel-test"), args, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// wait waits for the task to finish and returns its error.
func wait(t *testing.T, c *task.Client, id task.ID) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := task.Result[string](ctx, c, id)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("task %s did not finish in time", id)
	}
	return err
}

func attr(s tracetest.SpanStub, key attribute.Key) attribute.Value {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

type ctxKey struct{}

// The trace of a request crosses Redis: the send span is a child of the request's span,
// and each attempt's span, retries included, is a child of the send span and links to
// it. The task function's ctx carries its attempt's span, and nothing else of the
// submitter's ctx.
func TestAttemptSpansContinueTheSubmittersTrace(t *testing.T) {
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		tel := newTelemetry(t)
		prefix := redistest.Prefix(t)
		prop := propagation.TraceContext{}
		c := newClient(t, rdb, prefix, taskotel.WithPropagator(prop), taskotel.WithTracerProvider(tel.tp), taskotel.WithMeterProvider(tel.mp))
		w := newWorker(t, rdb, prefix, []taskotel.Option{taskotel.WithTracerProvider(tel.tp), taskotel.WithMeterProvider(tel.mp)})
		flaky := task.Def{Kind: "otel.flaky", Queue: "q1", MaxRetries: 1}
		var mu sync.Mutex
		var inside []trace.SpanContext // the span in the function's ctx, per attempt
		var leaked []any               // ctx.Value(ctxKey{}) in the function, per attempt
		mustRegister(t, w, flaky, func(ctx context.Context, info task.Info, _ task.Caller, name string) (string, error) {
			mu.Lock()
			inside = append(inside, trace.SpanContextFromContext(ctx))
			leaked = append(leaked, ctx.Value(ctxKey{}))
			mu.Unlock()
			if info.Attempt == 1 {
				return "", errors.New("first attempt fails")
			}
			return "hello " + name, nil
		})
		run(t, w)

		ctx, request := tel.tp.Tracer("test").Start(context.WithValue(context.Background(), ctxKey{}, "request only"), "request")
		id := mustSubmit(t, ctx, c, flaky, "Ada")
		request.End()
		if err := wait(t, c, id); err != nil {
			t.Fatal(err)
		}

		sends := tel.spansNamed("send q1")
		if len(sends) != 1 {
			t.Fatalf("%d send spans, want 1", len(sends))
		}
		send := sends[0]
		if send.Parent.SpanID() != request.SpanContext().SpanID() || send.SpanKind != trace.SpanKindProducer {
			t.Errorf("send span: parent %s, kind %s; want the request span %s, producer", send.Parent.SpanID(), send.SpanKind, request.SpanContext().SpanID())
		}
		for key, want := range map[attribute.Key]string{
			"messaging.system": "taskgen", "messaging.operation.type": "send", "messaging.destination.name": "q1",
			"messaging.message.id": string(id), "taskgen.task.kind": "otel.flaky",
		} {
			if got := attr(send, key).Emit(); got != want {
				t.Errorf("send span %s = %q, want %q", key, got, want)
			}
		}

		attempts := tel.spansNamed("process q1")
		if len(attempts) != 2 {
			t.Fatalf("%d attempt spans, want 2 (a failed attempt and its retry)", len(attempts))
		}
		for i, a := range attempts {
			if a.Parent.SpanID() != send.SpanContext.SpanID() || a.SpanContext.TraceID() != request.SpanContext().TraceID() {
				t.Errorf("attempt %d: parent %s in trace %s; want the send span %s in the request's trace %s",
					i+1, a.Parent.SpanID(), a.SpanContext.TraceID(), send.SpanContext.SpanID(), request.SpanContext().TraceID())
			}
			if len(a.Links) != 1 || a.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() {
				t.Errorf("attempt %d: links %v, want one to the send span", i+1, a.Links)
			}
			if a.SpanKind != trace.SpanKindConsumer || attr(a, "messaging.operation.type").Emit() != "process" ||
				attr(a, "messaging.message.id").Emit() != string(id) || attr(a, taskotel.AttemptKey).AsInt64() != int64(i+1) {
				t.Errorf("attempt %d: kind %s, attributes %v", i+1, a.SpanKind, a.Attributes)
			}
			if i < len(inside) && inside[i].SpanID() != a.SpanContext.SpanID() {
				t.Errorf("attempt %d: the function's ctx carries span %s, want its attempt's %s", i+1, inside[i].SpanID(), a.SpanContext.SpanID())
			}
		}
		first, second := attempts[0], attempts[1]
		if attr(first, taskotel.OutcomeKey).Emit() != "retry" || first.Status.Code != codes.Error || len(first.Events) == 0 || first.Events[0].Name != "exception" {
			t.Errorf("failed attempt: outcome %q, status %v, events %v; want retry, an error status and the error recorded",
				attr(first, taskotel.OutcomeKey).Emit(), first.Status, first.Events)
		}
		if attr(second, taskotel.OutcomeKey).Emit() != "succeeded" || second.Status.Code == codes.Error {
			t.Errorf("second attempt: outcome %q, status %v; want succeeded without an error", attr(second, taskotel.OutcomeKey).Emit(), second.Status)
		}
		mu.Lock()
		defer mu.Unlock()
		for i, v := range leaked {
			if v != nil {
				t.Errorf("attempt %d: ctx.Value of the submitter's key = %v, want nil: only the trace context crosses", i+1, v)
			}
		}
	})
}

// A task running past the worker's lease (kept by the heartbeat) is one attempt and one
// span, which lasts as long as the run.
func TestAnAttemptPastTheLeaseIsOneSpan(t *testing.T) {
	rdb := redistest.Client(t)
	tel := newTelemetry(t)
	prefix := redistest.Prefix(t)
	c := newClient(t, rdb, prefix, taskotel.WithPropagator(propagation.TraceContext{}), taskotel.WithTracerProvider(tel.tp))
	w := newWorker(t, rdb, prefix, []taskotel.Option{taskotel.WithTracerProvider(tel.tp)}, task.WithLease(2*time.Second))
	slow := task.Def{Kind: "otel.slow", Queue: "q1", MaxRetries: 2}
	const runFor = 3 * time.Second
	mustRegister(t, w, slow, func(ctx context.Context, _ task.Info, _ task.Caller, _ string) (string, error) {
		select {
		case <-time.After(runFor):
			return "done", nil
		case <-ctx.Done():
			return "", context.Cause(ctx)
		}
	})
	run(t, w)
	id := mustSubmit(t, context.Background(), c, slow, "x")
	if err := wait(t, c, id); err != nil {
		t.Fatal(err)
	}
	attempts := tel.spansNamed("process q1")
	if len(attempts) != 1 {
		t.Fatalf("%d attempt spans, want 1", len(attempts))
	}
	a := attempts[0]
	send := tel.spansNamed("send q1")[0]
	if a.Parent.SpanID() != send.SpanContext.SpanID() || attr(a, taskotel.OutcomeKey).Emit() != "succeeded" || a.Status.Code == codes.Error {
		t.Errorf("attempt: parent %s (send %s), outcome %q, status %v", a.Parent.SpanID(), send.SpanContext.SpanID(), attr(a, taskotel.OutcomeKey).Emit(), a.Status)
	}
	if took := a.EndTime.Sub(a.StartTime); took < runFor {
		t.Errorf("the attempt span lasts %s, less than the %s the task ran", took, runFor)
	}
}

// envelopes returns the envelopes in queue q1's stream.
func envelopes(t *testing.T, rdb redis.UniversalClient, prefix string) []string {
	t.Helper()
	entries, err := rdb.XRange(context.Background(), redisq.QueueKeys(prefix, "q1").Stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, fmt.Sprint(e.Values[redisq.EnvelopeField]))
	}
	return out
}

// Only a client given a propagator puts a trace context into envelopes; without one,
// the worker's attempt span starts a trace of its own, with no link.
func TestWithoutAPropagatorNothingCrosses(t *testing.T) {
	rdb := redistest.Client(t)
	tel := newTelemetry(t)
	prefix := redistest.Prefix(t)
	without := newClient(t, rdb, prefix, taskotel.WithTracerProvider(tel.tp))
	with := newClient(t, rdb, prefix, taskotel.WithPropagator(propagation.TraceContext{}), taskotel.WithTracerProvider(tel.tp))
	d := task.Def{Kind: "otel.plain", Queue: "q1"}

	ctx, request := tel.tp.Tracer("test").Start(context.Background(), "request")
	id := mustSubmit(t, ctx, without, d, "x")
	mustSubmit(t, ctx, with, d, "y")
	request.End()
	envs := envelopes(t, rdb, prefix)
	if len(envs) != 2 {
		t.Fatalf("%d envelopes in the stream, want 2", len(envs))
	}
	if strings.Contains(envs[0], `"trace"`) {
		t.Errorf("the client without a propagator put a trace into the envelope:\n%s", envs[0])
	}
	if !strings.Contains(envs[1], `"trace":{"traceparent":"00-`+request.SpanContext().TraceID().String()) {
		t.Errorf("the client with a propagator put no traceparent of the request's trace into the envelope:\n%s", envs[1])
	}

	w := newWorker(t, rdb, prefix, []taskotel.Option{taskotel.WithTracerProvider(tel.tp)})
	mustRegister(t, w, d, func(context.Context, task.Info, task.Caller, string) (string, error) { return "ok", nil })
	run(t, w)
	if err := wait(t, without, id); err != nil {
		t.Fatal(err)
	}
	for _, a := range tel.spansNamed("process q1") {
		if attr(a, "messaging.message.id").Emit() != string(id) {
			continue
		}
		if a.Parent.IsValid() || len(a.Links) != 0 || a.SpanContext.TraceID() == request.SpanContext().TraceID() {
			t.Errorf("attempt of the untraced task: parent %v, links %v, trace %s; want a root of its own trace",
				a.Parent, a.Links, a.SpanContext.TraceID())
		}
		return
	}
	t.Fatalf("no attempt span for task %s", id)
}

// WithLinkOnly makes each attempt the root of its own trace, linked to the send span.
func TestLinkOnlyStartsATraceLinkedToTheSendSpan(t *testing.T) {
	rdb := redistest.Client(t)
	tel := newTelemetry(t)
	prefix := redistest.Prefix(t)
	c := newClient(t, rdb, prefix, taskotel.WithPropagator(propagation.TraceContext{}), taskotel.WithTracerProvider(tel.tp))
	w := newWorker(t, rdb, prefix, []taskotel.Option{taskotel.WithTracerProvider(tel.tp), taskotel.WithLinkOnly()})
	d := task.Def{Kind: "otel.linked", Queue: "q1"}
	mustRegister(t, w, d, func(context.Context, task.Info, task.Caller, string) (string, error) { return "ok", nil })
	run(t, w)
	if err := wait(t, c, mustSubmit(t, context.Background(), c, d, "x")); err != nil {
		t.Fatal(err)
	}
	send, a := tel.spansNamed("send q1")[0], tel.spansNamed("process q1")[0]
	if a.Parent.IsValid() || a.SpanContext.TraceID() == send.SpanContext.TraceID() {
		t.Errorf("attempt: parent %v in trace %s, want a root outside the send span's trace %s", a.Parent, a.SpanContext.TraceID(), send.SpanContext.TraceID())
	}
	if len(a.Links) != 1 || a.Links[0].SpanContext.SpanID() != send.SpanContext.SpanID() {
		t.Errorf("attempt links %v, want one to the send span", a.Links)
	}
}

// A worker option of taskotel given to runtime/tasktest traces its inline runs too:
// each run is one ended span, with its outcome.
func TestInlineRunsOfTasktestEndTheirSpans(t *testing.T) {
	tel := newTelemetry(t)
	observe, err := taskotel.Worker(taskotel.WithTracerProvider(tel.tp))
	if err != nil {
		t.Fatal(err)
	}
	env, err := tasktest.New(observe)
	if err != nil {
		t.Fatal(err)
	}
	d := task.Def{Kind: "otel.inline", Queue: "q1", MaxRetries: 1}
	if err := task.Register(env.Worker(), d, func(context.Context, task.Caller, string) (string, error) {
		return "", errors.New("fails")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := tasktest.Execute(env, d, task.Caller{}, "x"); err != nil {
		t.Fatal(err)
	}
	spans := tel.spansNamed("process q1")
	if len(spans) != 1 || attr(spans[0], taskotel.OutcomeKey).Emit() != string(task.OutcomeRetry) || spans[0].Status.Code != codes.Error {
		t.Fatalf("spans %+v, want one ended span of outcome retry with an error status", spans)
	}
}

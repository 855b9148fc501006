package taskotel_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/taskotel"
)

// matches reports whether set holds every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		if v, ok := set.Value(kv.Key); !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// collect reads the metrics, by name.
func collect(t *testing.T, tel *telemetry) map[string]metricdata.Aggregation {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tel.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Aggregation{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != taskotel.ScopeName {
			continue
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m.Data
		}
	}
	return out
}

// count sums the points of counter name whose attributes hold want.
func count(t *testing.T, ms map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	s, ok := ms[name].(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("no counter %s (have %v)", name, keys(ms))
	}
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// samples counts the values recorded in histogram name whose attributes hold want.
func samples(t *testing.T, ms map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) uint64 {
	t.Helper()
	h, ok := ms[name].(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("no histogram %s (have %v)", name, keys(ms))
	}
	var n uint64
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Count
		}
	}
	return n
}

func keys(ms map[string]metricdata.Aggregation) []string {
	var out []string
	for k := range ms {
		out = append(out, k)
	}
	return out
}

// Every submit, attempt and outcome is counted by kind, outcome and reason, and every
// attempt's run and wait are recorded.
func TestMetricsCountOutcomesByKindAndReason(t *testing.T) {
	rdb := redistest.Client(t)
	tel := newTelemetry(t)
	prefix := redistest.Prefix(t)
	c := newClient(t, rdb, prefix, taskotel.WithMeterProvider(tel.mp), taskotel.WithTracerProvider(tel.tp))
	// No skew grace: the task of a kind no worker has is dead-lettered at once.
	w := newWorker(t, rdb, prefix, []taskotel.Option{taskotel.WithMeterProvider(tel.mp), taskotel.WithTracerProvider(tel.tp)}, task.WithSkewGrace(0))
	ok := task.Def{Kind: "otel.ok", Queue: "q1"}
	flaky := task.Def{Kind: "otel.flaky", Queue: "q1", MaxRetries: 3}
	doomed := task.Def{Kind: "otel.doomed", Queue: "q1", MaxRetries: 3}
	unknown := task.Def{Kind: "otel.unknown", Queue: "q1"}
	mustRegister(t, w, ok, func(context.Context, task.Info, task.Caller, string) (string, error) { return "ok", nil })
	mustRegister(t, w, flaky, func(_ context.Context, info task.Info, _ task.Caller, _ string) (string, error) {
		if info.Attempt < 3 {
			return "", errors.New("not yet")
		}
		return "ok", nil
	})
	mustRegister(t, w, doomed, func(context.Context, task.Info, task.Caller, string) (string, error) {
		return "", task.Permanent(errors.New("never"))
	})
	run(t, w)
	for _, d := range []task.Def{ok, flaky, doomed, unknown} {
		id := mustSubmit(t, context.Background(), c, d, "x")
		err := wait(t, c, id)
		if wantErr := d.Kind == doomed.Kind || d.Kind == unknown.Kind; (err != nil) != wantErr {
			t.Fatalf("task %s: err = %v", d.Kind, err)
		}
	}

	// An entry that is no envelope: refused unread, and counted with no kind.
	garbage := map[string]any{redisq.EnvelopeField: `{"v":1,"id":"q1/forged"}`}
	if err := rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: redisq.QueueKeys(prefix, "q1").Stream(), Values: garbage}).Err(); err != nil {
		t.Fatal(err)
	}
	malformed := []attribute.KeyValue{taskotel.KindKey.String(""), taskotel.OutcomeKey.String(string(task.OutcomeDead)), taskotel.ReasonKey.String(task.ReasonMalformed)}
	for deadline := time.Now().Add(10 * time.Second); count(t, collect(t, tel), "taskgen.task.outcomes", malformed...) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the malformed entry was not counted as refused within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}

	ms := collect(t, tel)
	kind := taskotel.KindKey.String
	outcome := func(o task.Outcome) attribute.KeyValue { return taskotel.OutcomeKey.String(string(o)) }
	queue := attribute.String("messaging.destination.name", "q1")
	system := attribute.String("messaging.system", "taskgen")
	cases := []struct {
		name string
		got  int64
		want int64
	}{
		{"sent", count(t, ms, "messaging.client.sent.messages", system, queue), 4},
		{"sent otel.flaky", count(t, ms, "messaging.client.sent.messages", kind("otel.flaky")), 1},
		{"attempts started", count(t, ms, "messaging.client.consumed.messages", system, queue), 1 + 3 + 1},
		{"otel.flaky attempts started", count(t, ms, "messaging.client.consumed.messages", kind("otel.flaky")), 3},
		{"succeeded", count(t, ms, "taskgen.task.outcomes", outcome(task.OutcomeSucceeded)), 2},
		{"otel.flaky retried", count(t, ms, "taskgen.task.outcomes", kind("otel.flaky"), outcome(task.OutcomeRetry)), 2},
		{"otel.flaky succeeded", count(t, ms, "taskgen.task.outcomes", kind("otel.flaky"), outcome(task.OutcomeSucceeded)), 1},
		{"dead", count(t, ms, "taskgen.task.outcomes", outcome(task.OutcomeDead)), 3},
		{"dead malformed", count(t, ms, "taskgen.task.outcomes", outcome(task.OutcomeDead), taskotel.ReasonKey.String(task.ReasonMalformed)), 1},
		{"dead permanent", count(t, ms, "taskgen.task.outcomes", kind("otel.doomed"), outcome(task.OutcomeDead), taskotel.ReasonKey.String(task.ReasonPermanent)), 1},
		{"dead unknown kind", count(t, ms, "taskgen.task.outcomes", kind("otel.unknown"), outcome(task.OutcomeDead), taskotel.ReasonKey.String(task.ReasonUnknownKind)), 1},
		{"run durations", int64(samples(t, ms, "messaging.process.duration", system, queue)), 5},
		{"failed run durations", int64(samples(t, ms, "messaging.process.duration", kind("otel.flaky"), outcome(task.OutcomeRetry))), 2},
		{"wait durations", int64(samples(t, ms, "taskgen.task.wait.duration", system, queue)), 5},
		{"submit durations", int64(samples(t, ms, "messaging.client.operation.duration", system, attribute.String("messaging.operation.type", "send"))), 4},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: %d, want %d", c.name, c.got, c.want)
		}
	}
}

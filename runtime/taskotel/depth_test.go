package taskotel_test

import (
	"context"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/taskotel"
)

// The depth gauges report each known queue's counts by state and its oldest pending
// task's age, as the Inspector reads them at collection time, and nothing once
// unregistered.
func TestQueueDepthReportsTheInspectorsCounts(t *testing.T) {
	rdb := redistest.Client(t)
	tel := newTelemetry(t)
	prefix := redistest.Prefix(t)
	c := newClient(t, rdb, prefix)
	in, err := task.NewInspector(rdb, shared(t, prefix)...)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := taskotel.QueueDepth(in, taskotel.WithMeterProvider(tel.mp))
	if err != nil {
		t.Fatal(err)
	}
	// No worker serves depthq: its tasks stay pending and scheduled.
	d := task.Def{Kind: "otel.depth", Queue: "depthq"}
	for range 3 {
		mustSubmit(t, context.Background(), c, d, "x")
	}
	for range 2 {
		mustSubmit(t, context.Background(), c, d, "x", task.Delay(time.Hour))
	}
	time.Sleep(1100 * time.Millisecond) // an oldest pending age of at least a second

	ms := collect(t, tel)
	queue := semconv.MessagingDestinationName("depthq")
	for state, want := range map[task.TaskState]int64{task.StatePending: 3, task.StateScheduled: 2, task.StateRunning: 0, task.StateRetrying: 0, task.StateDead: 0} {
		if got := gauge(t, ms, "taskgen.queue.depth", queue, taskotel.StateKey.String(string(state))); got != want {
			t.Errorf("depth of %s = %d, want %d", state, got, want)
		}
	}
	g, ok := ms["taskgen.queue.oldest_pending"].(metricdata.Gauge[float64])
	if !ok || len(g.DataPoints) != 1 || g.DataPoints[0].Value < 1 || g.DataPoints[0].Value > 60 {
		t.Errorf("oldest pending = %+v, want one point of depthq between 1s and 60s", ms["taskgen.queue.oldest_pending"])
	}

	if err := reg.Unregister(); err != nil {
		t.Fatal(err)
	}
	if g, ok := collect(t, tel)["taskgen.queue.depth"].(metricdata.Gauge[int64]); ok && len(g.DataPoints) > 0 {
		t.Errorf("after Unregister the depth still reports %+v", g.DataPoints)
	}
}

// gauge returns the one point of gauge name whose attributes hold want.
func gauge(t *testing.T, ms map[string]metricdata.Aggregation, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	g, ok := ms[name].(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("no gauge %s (have %v)", name, keys(ms))
	}
	var found []int64
	for _, p := range g.DataPoints {
		if matches(p.Attributes, want) {
			found = append(found, p.Value)
		}
	}
	if len(found) != 1 {
		t.Fatalf("gauge %s has %d points with %v, want 1: %+v", name, len(found), want, g.DataPoints)
	}
	return found[0]
}

package taskotel

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/taskgen/taskgen/runtime/task"
)

// StateKey is the attribute of taskgen.queue.depth that names the state counted.
const StateKey = attribute.Key("taskgen.task.state")

// depthTimeout bounds one collection's reads of the queue counts: a collection must not
// hang on a Redis that does not answer.
const depthTimeout = 5 * time.Second

// QueueDepth registers two observable gauges read from in at each collection:
// taskgen.queue.depth, the tasks of every known queue by state (taskgen.task.state:
// pending, running, scheduled, retrying, dead), and taskgen.queue.oldest_pending, the
// age in seconds of each queue's oldest pending task. Both carry messaging.system and
// messaging.destination.name.
//
// Depth is a property of the deployment, not of one worker: register it in one
// process (a worker, or taskctl's host), or read it as a gauge that every reporter
// reports alike. A collection costs a few Redis reads per queue (see Inspector.Queue);
// when they fail, the gauges report nothing for that collection and the error goes to
// the OpenTelemetry error handler. Unregister it with the returned Registration.
func QueueDepth(in *task.Inspector, opts ...Option) (metric.Registration, error) {
	if in == nil {
		return nil, fmt.Errorf("taskotel: QueueDepth of a nil *task.Inspector")
	}
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	meter := c.meters.Meter(ScopeName)
	depth, err := meter.Int64ObservableGauge("taskgen.queue.depth", metric.WithUnit("{task}"),
		metric.WithDescription("Tasks of a queue by state: pending, running, scheduled, retrying, dead."))
	if err != nil {
		return nil, fmt.Errorf("taskotel: %w", err)
	}
	oldest, err := meter.Float64ObservableGauge("taskgen.queue.oldest_pending", metric.WithUnit("s"),
		metric.WithDescription("Age of the oldest pending task of a queue, by Redis's clock; 0 when none is pending."))
	if err != nil {
		return nil, fmt.Errorf("taskotel: %w", err)
	}
	return meter.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, depthTimeout)
		defer cancel()
		qs, err := in.Queues(ctx)
		if err != nil {
			return fmt.Errorf("taskotel: queue depth: %w", err)
		}
		for _, q := range qs {
			queue := []attribute.KeyValue{systemAttr, semconv.MessagingDestinationName(q.Name)}
			for _, s := range []struct {
				state task.TaskState
				n     int64
			}{
				{task.StatePending, q.Pending}, {task.StateRunning, q.Running}, {task.StateScheduled, q.Delayed},
				{task.StateRetrying, q.Retrying}, {task.StateDead, q.Dead},
			} {
				o.ObserveInt64(depth, s.n, metric.WithAttributes(append(queue[:len(queue):len(queue)], StateKey.String(string(s.state)))...))
			}
			o.ObserveFloat64(oldest, q.OldestPending.Seconds(), metric.WithAttributes(queue...))
		}
		return nil
	}, depth, oldest)
}

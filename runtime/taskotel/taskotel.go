package taskotel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/messagingconv"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskgen/taskgen/runtime/task"
)

// ScopeName names the tracer and the meter of this package.
const ScopeName = "github.com/taskgen/taskgen/runtime/taskotel"

// System is the value of messaging.system on every span and metric.
const System = "taskgen"

// Attributes of taskgen's own, beside the messaging conventions'.
const (
	KindKey    = attribute.Key("taskgen.task.kind")     // the task's kind
	AttemptKey = attribute.Key("taskgen.task.attempt")  // the attempt, from 1
	OutcomeKey = attribute.Key("taskgen.task.outcome")  // a task.Outcome
	ReasonKey  = attribute.Key("taskgen.task.reason")   // a task.Reason* constant, for dead tasks
	RetryInKey = attribute.Key("taskgen.task.retry_in") // seconds before the next attempt, on a span of outcome retry
)

// Option configures Client and Worker.
type Option func(*config)

type config struct {
	propagator propagation.TextMapPropagator
	tracers    trace.TracerProvider
	meters     metric.MeterProvider
	linkOnly   bool
}

// WithPropagator sets the propagator that carries the trace context from Submit to the
// worker. On a client, it is what turns propagation on: without it no trace context is
// put into envelopes (the send span is still recorded). On a worker it reads what the
// clients' propagator wrote; the default is propagation.TraceContext, the W3C
// traceparent and tracestate that the clients' propagator most likely writes. Give the
// same propagator to both.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return func(c *config) { c.propagator = p }
}

// WithTracerProvider sets where spans go; the default is otel.GetTracerProvider().
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tracers = tp }
}

// WithMeterProvider sets where metrics go; the default is otel.GetMeterProvider().
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) { c.meters = mp }
}

// WithLinkOnly makes a worker start each attempt's span as the root of a new trace, with
// a link to the send span instead of it as parent: for tasks that run long after their
// request, or that one request fans out by the thousand. Clients ignore it.
func WithLinkOnly() Option {
	return func(c *config) { c.linkOnly = true }
}

func newConfig(opts []Option) (config, error) {
	c := config{tracers: otel.GetTracerProvider(), meters: otel.GetMeterProvider()}
	for _, o := range opts {
		o(&c)
	}
	if c.tracers == nil || c.meters == nil {
		return c, errors.New("taskotel: nil tracer or meter provider; leave the option out to use the global one")
	}
	return c, nil
}

// durationBuckets are the histogram bounds of the duration instruments, in seconds:
// the SDK's default bounds are for milliseconds.
var durationBuckets = metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)

var systemAttr = semconv.MessagingSystemKey.String(System)

// Client returns a task.ClientOption that traces and counts the client's submits (see
// the package documentation); with WithPropagator it also carries the trace context
// to the workers. It fails only when an instrument cannot be made.
func Client(opts ...Option) (task.ClientOption, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	meter := c.meters.Meter(ScopeName)
	sent, err := messagingconv.NewClientSentMessages(meter)
	if err != nil {
		return nil, fmt.Errorf("taskotel: %w", err)
	}
	took, err := messagingconv.NewClientOperationDuration(meter, durationBuckets)
	if err != nil {
		return nil, fmt.Errorf("taskotel: %w", err)
	}
	tracer := c.tracers.Tracer(ScopeName)
	o := task.ClientObserver{
		Submit: func(ctx context.Context, s task.Submission) (context.Context, func(task.ID, error)) {
			// The conventions' Add and Record add the system and the operation name.
			attrs := []attribute.KeyValue{semconv.MessagingDestinationName(s.Queue), KindKey.String(s.Kind)}
			ctx, span := tracer.Start(ctx, "send "+s.Queue, trace.WithSpanKind(trace.SpanKindProducer),
				trace.WithAttributes(append(attrs[:len(attrs):len(attrs)], systemAttr, semconv.MessagingOperationTypeSend,
					semconv.MessagingOperationName("send"), semconv.MessagingMessageID(string(s.ID)))...))
			began := time.Now()
			return ctx, func(id task.ID, err error) {
				metricAttrs := attrs
				if err != nil {
					span.RecordError(err)
					span.SetStatus(codes.Error, err.Error())
					metricAttrs = append(metricAttrs[:len(metricAttrs):len(metricAttrs)], semconv.ErrorType(err))
				}
				if id != "" && id != s.ID { // Unique found the task already there
					span.SetAttributes(semconv.MessagingMessageID(string(id)))
				}
				span.End()
				sent.Add(ctx, 1, "send", System, metricAttrs...)
				took.Record(ctx, time.Since(began).Seconds(), "send", System, append(metricAttrs, took.AttrOperationType(messagingconv.OperationTypeSend))...)
			}
		},
	}
	if p := c.propagator; p != nil {
		o.Inject = func(ctx context.Context, carrier map[string]string) { p.Inject(ctx, propagation.MapCarrier(carrier)) }
	}
	return task.WithClientObserver(o), nil
}

// Worker returns a task.WorkerOption that traces and measures the worker's attempts and
// counts its refusals (see the package documentation). It fails only when an
// instrument cannot be made.
func Worker(opts ...Option) (task.WorkerOption, error) {
	c, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	if c.propagator == nil {
		c.propagator = propagation.TraceContext{}
	}
	ins, err := newInstruments(c.meters.Meter(ScopeName))
	if err != nil {
		return nil, err
	}
	tracer := c.tracers.Tracer(ScopeName)
	o := task.WorkerObserver{
		Attempt: func(ctx context.Context, a task.AttemptStart) (context.Context, func(task.AttemptEnd)) {
			attrs := []attribute.KeyValue{
				semconv.MessagingDestinationName(a.Queue), KindKey.String(a.Kind),
			}
			start := []trace.SpanStartOption{
				trace.WithSpanKind(trace.SpanKindConsumer),
				trace.WithAttributes(append(attrs[:len(attrs):len(attrs)], systemAttr, semconv.MessagingOperationTypeProcess,
					semconv.MessagingOperationName("process"), semconv.MessagingMessageID(string(a.ID)),
					AttemptKey.Int(a.Attempt))...),
			}
			if len(a.Trace) > 0 {
				sent := trace.SpanContextFromContext(c.propagator.Extract(context.Background(), propagation.MapCarrier(a.Trace)))
				if sent.IsValid() {
					start = append(start, trace.WithLinks(trace.Link{SpanContext: sent}))
					if !c.linkOnly {
						ctx = trace.ContextWithRemoteSpanContext(ctx, sent)
					}
				}
			}
			if c.linkOnly {
				start = append(start, trace.WithNewRoot())
			}
			ctx, span := tracer.Start(ctx, "process "+a.Queue, start...)
			ins.consumed.Add(ctx, 1, "process", System, attrs...)
			if !a.Ready.IsZero() {
				ins.wait.Record(ctx, max(time.Since(a.Ready), 0).Seconds(), metric.WithAttributes(append(attrs[:len(attrs):len(attrs)], systemAttr)...))
			}
			return ctx, func(end task.AttemptEnd) {
				span.SetAttributes(OutcomeKey.String(string(end.Outcome)))
				outcomeAttrs := append(attrs[:len(attrs):len(attrs)], OutcomeKey.String(string(end.Outcome)))
				if end.Reason != "" {
					span.SetAttributes(ReasonKey.String(end.Reason))
				}
				processAttrs := outcomeAttrs
				if end.Err != nil {
					span.RecordError(end.Err)
					span.SetStatus(codes.Error, end.Err.Error())
					processAttrs = append(processAttrs[:len(processAttrs):len(processAttrs)], semconv.ErrorType(end.Err))
				}
				if end.Outcome == task.OutcomeRetry {
					span.SetAttributes(RetryInKey.Float64(end.RetryIn.Seconds()))
				}
				span.End()
				ins.process.Record(ctx, end.Took.Seconds(), "process", System, processAttrs...)
				ins.outcome(ctx, outcomeAttrs, end.Reason)
			}
		},
		Refused: func(r task.Refusal) {
			attrs := []attribute.KeyValue{
				semconv.MessagingDestinationName(r.Queue), KindKey.String(r.Kind), OutcomeKey.String(string(r.Outcome)),
			}
			ins.outcome(context.Background(), attrs, r.Reason)
		},
	}
	return task.WithWorkerObserver(o), nil
}

// instruments are a worker's metrics. Queue depth is not among them: it is the
// deployment's, read from task.Inspector (see QueueDepth).
type instruments struct {
	consumed messagingconv.ClientConsumedMessages
	process  messagingconv.ProcessDuration
	outcomes metric.Int64Counter
	wait     metric.Float64Histogram
}

func newInstruments(meter metric.Meter) (*instruments, error) {
	var ins instruments
	var errs [4]error
	ins.consumed, errs[0] = messagingconv.NewClientConsumedMessages(meter)
	ins.process, errs[1] = messagingconv.NewProcessDuration(meter, durationBuckets)
	ins.outcomes, errs[2] = meter.Int64Counter("taskgen.task.outcomes", metric.WithUnit("{outcome}"),
		metric.WithDescription("How attempts and refused deliveries ended, by outcome (succeeded, retry, dead, canceled, lease_lost, handed_back) and, for dead tasks, reason."))
	ins.wait, errs[3] = meter.Float64Histogram("taskgen.task.wait.duration", metric.WithUnit("s"), durationBuckets,
		metric.WithDescription("Time from a task becoming ready (its submit, or the end of its delay or retry backoff) to the start of its attempt."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("taskotel: %w", err)
	}
	return &ins, nil
}

// outcome counts one outcome with attrs, the reason added when there is one.
func (ins *instruments) outcome(ctx context.Context, attrs []attribute.KeyValue, reason string) {
	attrs = append(attrs[:len(attrs):len(attrs)], systemAttr)
	if reason != "" {
		attrs = append(attrs, ReasonKey.String(reason))
	}
	ins.outcomes.Add(ctx, 1, metric.WithAttributes(attrs...))
}

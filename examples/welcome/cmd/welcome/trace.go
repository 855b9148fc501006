package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/taskotel"
)

// tracing is the demo's OpenTelemetry setup: the stdout trace exporter, writing into a
// spanLog that prints the spans of one trace, one line each, instead of a page of JSON
// per span.
type tracing struct {
	tp    *sdktrace.TracerProvider
	spans *spanLog
}

func newTracing() (*tracing, error) {
	spans := &spanLog{}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(spans))
	if err != nil {
		return nil, err
	}
	// A syncer: each span is written as it ends, so the demo can print them at once.
	return &tracing{tp: sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp)), spans: spans}, nil
}

// clientOption traces submits and carries their trace context to the workers: the
// propagator is the explicit, and only, channel from Submit's ctx to the worker.
func (t *tracing) clientOption() (task.ClientOption, error) {
	return taskotel.Client(taskotel.WithTracerProvider(t.tp), taskotel.WithPropagator(propagation.TraceContext{}))
}

// workerOption gives every attempt a span, a child of the submit's.
func (t *tracing) workerOption() (task.WorkerOption, error) {
	return taskotel.Worker(taskotel.WithTracerProvider(t.tp), taskotel.WithPropagator(propagation.TraceContext{}))
}

// middleware gives every HTTP request a server span, as an HTTP instrumentation would.
func (t *tracing) middleware(next http.Handler) http.Handler {
	tracer := t.tp.Tracer("welcome-demo")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, span := tracer.Start(r.Context(), r.Method+" "+r.URL.Path, trace.WithSpanKind(trace.SpanKindServer))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// spanLog collects the spans stdouttrace writes (one JSON document per Write).
type spanLog struct {
	mu    sync.Mutex
	spans []exported
}

// exported is what the demo prints of a span, in stdouttrace's JSON.
type exported struct {
	Name        string
	SpanKind    int
	SpanContext struct{ TraceID, SpanID string }
	Parent      struct{ SpanID string }
	Links       []struct{ SpanContext struct{ SpanID string } }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
}

func (l *spanLog) Write(p []byte) (int, error) {
	dec := json.NewDecoder(bytes.NewReader(p))
	for dec.More() {
		var s exported
		if err := dec.Decode(&s); err != nil {
			return 0, fmt.Errorf("read an exported span: %w", err)
		}
		l.mu.Lock()
		l.spans = append(l.spans, s)
		l.mu.Unlock()
	}
	return len(p), nil
}

// printTrace prints the spans of the trace that the span called name is in, in the
// order they ended, and returns how many there were.
func (l *spanLog) printTrace(name string, show ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var traceID string
	for _, s := range l.spans {
		if s.Name == name {
			traceID = s.SpanContext.TraceID
		}
	}
	n := 0
	for _, s := range l.spans {
		if s.SpanContext.TraceID != traceID || traceID == "" {
			continue
		}
		n++
		parent, link := s.Parent.SpanID, ""
		if parent == "" || strings.Trim(parent, "0") == "" {
			parent = "none (root)"
		}
		for _, ln := range s.Links {
			link = "  link " + ln.SpanContext.SpanID
		}
		var attrs []string
		for _, a := range s.Attributes {
			for _, k := range show {
				if a.Key == k {
					attrs = append(attrs, fmt.Sprintf("%s=%v", a.Key, a.Value.Value))
				}
			}
		}
		say("%-16s span %s  parent %s%s", s.Name, s.SpanContext.SpanID, parent, link)
		if len(attrs) > 0 {
			say("%-16s %s", "", strings.Join(attrs, " "))
		}
	}
	if n > 0 {
		say("all %d spans in trace %s", n, traceID)
	}
	return n
}

func (t *tracing) shutdown() { _ = t.tp.Shutdown(context.Background()) }

package taskotel_test

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/taskotel"
)

var exampleKey = []byte("example-signing-key-0123456789abcdef")

// A request's trace continues on the worker: the client's propagator carries the send
// span's context in the signed envelope, and the attempt's span is its child.
func Example() {
	srv, err := redistest.StartServer()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer rdb.Close()

	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	shared := []task.Option{task.WithSigningKey("k1", exampleKey), task.WithLogger(slog.New(slog.DiscardHandler))}

	otelWorker, _ := taskotel.Worker(taskotel.WithTracerProvider(tp))
	w, _ := task.NewWorker(rdb, shared[0], shared[1], otelWorker)
	greet := task.Def{Kind: "example.greet", Queue: "greetings"}
	_ = task.Register(w, greet, func(ctx context.Context, _ task.Caller, name string) (string, error) {
		return "hello " + name, nil
	})
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)

	// The propagator is the one channel from Submit's ctx to the worker.
	otelClient, _ := taskotel.Client(taskotel.WithTracerProvider(tp), taskotel.WithPropagator(propagation.TraceContext{}))
	c, _ := task.NewClient(rdb, shared[0], shared[1], otelClient)
	reqCtx, request := tp.Tracer("example").Start(ctx, "POST /greet")
	id, _ := task.Submit(reqCtx, c, greet, task.Caller{}, "Ada")
	request.End()
	out, err := task.Result[string](ctx, c, id)
	fmt.Println(out, err)

	names := map[string]string{}
	for _, s := range spans.GetSpans() {
		names[s.SpanContext.SpanID().String()] = s.Name
	}
	for _, s := range spans.GetSpans() {
		parent := names[s.Parent.SpanID().String()]
		if parent == "" {
			parent = "(root)"
		}
		fmt.Printf("%s <- %s\n", s.Name, parent)
	}
	// Output:
	// hello Ada <nil>
	// send greetings <- POST /greet
	// POST /greet <- (root)
	// process greetings <- send greetings
}

package task

import "context"

// bounded runs fn and returns its outcome, or ctx's error as soon as ctx ends, whichever
// comes first. go-redis honours a context's deadline on the socket only for a client
// built with ContextTimeoutEnabled; with any other, a command to a server that stopped
// answering blocks for the client's own read and pool timeouts, seconds past the caller's
// deadline. The client API takes the caller's ctx as a promise, so it keeps it here,
// whatever client it was given. fn goes on in the background until its own timeouts end it.
func bounded[T any](ctx context.Context, fn func(context.Context) (T, error)) (T, error) {
	if ctx.Done() == nil {
		return fn(ctx)
	}
	type outcome struct {
		v   T
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		v, err := fn(ctx)
		done <- outcome{v, err}
	}()
	select {
	case o := <-done:
		return o.v, o.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	}
}

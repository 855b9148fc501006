package task

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
)

// handler is a registered task with its types erased: it decodes the arguments, runs the
// function and encodes the result.
type handler struct {
	def Def
	// run decodes args strictly (an unknown field is an error) unless lenient is set:
	// the envelope was written with another, compatible schema (see schema.go).
	run func(ctx context.Context, info Info, caller Caller, args json.RawMessage, lenient bool) (json.RawMessage, error)
}

// Register makes fn the function that runs tasks of d on w. Generated RegisterTasks
// functions call it; call it directly only for tasks without generated code. It fails if
// d.Kind is invalid or already registered on w.
func Register[A, R any](w *Worker, d Def, fn func(ctx context.Context, caller Caller, args A) (R, error)) error {
	if fn == nil {
		return RegisterWithInfo[A, R](w, d, nil)
	}
	return RegisterWithInfo(w, d, func(ctx context.Context, _ Info, caller Caller, args A) (R, error) {
		return fn(ctx, caller, args)
	})
}

// RegisterWithInfo is Register for a function that also takes the task's Info: generated
// RegisterTasks functions call it for tasks with a task.Info parameter.
func RegisterWithInfo[A, R any](w *Worker, d Def, fn func(ctx context.Context, info Info, caller Caller, args A) (R, error)) error {
	if w == nil {
		return fmt.Errorf("register %s: nil *task.Worker", d.Kind)
	}
	if fn == nil {
		return fmt.Errorf("register %s: nil function", d.Kind)
	}
	h := &handler{def: d, run: func(ctx context.Context, info Info, caller Caller, raw json.RawMessage, lenient bool) (json.RawMessage, error) {
		var args A
		dec := json.NewDecoder(bytes.NewReader(raw))
		if !lenient {
			dec.DisallowUnknownFields()
		}
		if err := dec.Decode(&args); err != nil {
			return nil, fmt.Errorf("%w: decode arguments of %s into %T: %v", ErrMalformed, d.Kind, args, err)
		}
		r, err := fn(ctx, info, caller, args)
		if err != nil {
			return nil, err
		}
		out, err := json.Marshal(r)
		if err != nil {
			return nil, Permanent(fmt.Errorf("encode result of %s: %w", d.Kind, err))
		}
		return out, nil
	}}
	return w.register(h)
}

func (w *Worker) register(h *handler) error {
	d := h.def
	if err := d.check(); err != nil {
		return fmt.Errorf("register %w", err)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if _, dup := w.handlers[d.Kind]; dup {
		return fmt.Errorf("register %s: %w (two packages declare this kind, or RegisterTasks ran twice on one worker)", d.Kind, ErrDuplicateKind)
	}
	w.handlers[d.Kind] = h
	return nil
}

func (w *Worker) handler(kind string) (*handler, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	h, ok := w.handlers[kind]
	return h, ok
}

// errorReason names why err ends a task at once, or returns "" when err may be retried.
func errorReason(err error) string {
	for _, r := range reasonErrors {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	if IsPermanent(err) {
		return ReasonPermanent
	}
	return ""
}

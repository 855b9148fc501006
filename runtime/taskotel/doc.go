// Package taskotel traces and measures taskgen tasks with OpenTelemetry, through the
// observation seams of package task (task.ClientObserver, task.WorkerObserver), so that
// the task package itself needs no OpenTelemetry.
//
// # Traces
//
// A client made with the option of Client starts a producer span "send <queue>" for
// every Submit, as a child of the span in Submit's ctx. With WithPropagator, and only
// then, the propagator writes that span's context into the task's envelope, signed like
// the rest of it: nothing else of Submit's ctx reaches the worker, no value, no
// deadline, no cancellation.
//
// A worker made with the option of Worker starts a consumer span "process <queue>" for
// every attempt, around the task function, whose ctx carries it. The span has the send
// span as its parent and also links to it. The messaging conventions require the link
// (a consumer of many messages cannot have them all as parents) and allow the parent
// for a message processed alone, which a task is; as parent it puts the request, its
// enqueue and every attempt in one trace, which is what a person debugging a request
// wants to see. Each attempt, retries included, is its own span: they are siblings under
// the send span, and the span of a failed attempt records its error. For tasks submitted
// long before they run, or fanned out by the thousand from one request, WithLinkOnly
// makes each attempt the root of a trace of its own, linked to the send span.
//
// # Metrics
//
// Instruments follow the OpenTelemetry messaging conventions where one fits, and start
// with taskgen. otherwise; every one carries messaging.system=taskgen,
// messaging.destination.name (the queue) and taskgen.task.kind:
//
//   - messaging.client.sent.messages: tasks submitted (error.type when the enqueue failed);
//   - messaging.client.operation.duration: how long Submit's enqueue took, in seconds;
//   - messaging.client.consumed.messages: attempts started;
//   - messaging.process.duration: how long task functions ran, in seconds, with
//     taskgen.task.outcome;
//   - taskgen.task.outcomes: how attempts and refused deliveries ended, by
//     taskgen.task.outcome (succeeded, retry, dead, canceled, lease_lost, handed_back) and
//     taskgen.task.reason (for dead: retries_exhausted, permanent, bad_signature...);
//     a failure is an outcome retry or dead;
//   - taskgen.task.wait.duration: from when the task became ready (its submit, or the
//     end of its delay or retry backoff, by Redis's clock) to the start of the attempt,
//     in seconds;
//   - taskgen.queue.depth and taskgen.queue.oldest_pending, registered apart with
//     QueueDepth: each queue's tasks by taskgen.task.state and the age of its oldest
//     pending task, read from a task.Inspector at each collection.
//
// Every metric is exportable to Prometheus with the OpenTelemetry Prometheus exporter
// (dots become underscores, units become suffixes).
package taskotel

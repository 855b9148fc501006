// Package task runs functions as background tasks on Redis without losing who asked for
// them or what they need.
//
// A request handler knows its caller (user id, access token, expiry) and the server's
// lifespan state (database pools, clients). Handed to a worker through a queue, both are
// usually gone, silently: a context value reads nil, a global is another copy. This
// package carries them explicitly instead. taskgen generates the typed glue from a
// //task: directive; this package is what that glue calls.
//
// # The flow
//
//  1. A handler calls the generated SubmitF (or [Submit]; SubmitFMany or [SubmitMany]
//     for many tasks at once) with its [Caller]. The client
//     signs the task envelope (HMAC-SHA256, [WithSigningKey]), seals the caller block
//     (AES-GCM, [WithSealKey]) and adds it to the queue's Redis stream. A caller that has
//     expired, or that expires before the task is due ([Delay], [At]), is refused at once
//     with [ErrCallerExpired].
//  2. A [Worker] of the queue reads the entry, verifies the envelope (signature, size,
//     queue, schema) and begins the delivery: Redis raises the task's lease token and
//     counts the attempt.
//  3. The function registered by the generated RegisterTasks (or [Register]) runs with a
//     fresh context — its deadline from the task's timeout, its cancellation from the
//     worker, nothing of the submitter's — the verified caller, its [Info] if it takes
//     one, and the lifespan values given at registration.
//  4. Its outcome is written: the result (the generated ResultF, or [Result], returns it), a retry after backoff, the
//     dead-letter stream ([Client.DeadLetters]), or, at shutdown, a hand-back to the queue.
//
// # Guarantees
//
//   - At least once. A task runs until one run's outcome is written. A worker that dies
//     loses nothing: its deliveries are taken over when their lease ([WithLease]) runs out
//     by Redis's clock. A run can happen twice only when its worker stopped renewing the
//     lease (it died, or it and Redis could not talk for longer than a lease); make side
//     effects idempotent on the task id.
//   - Exactly one outcome. Every outcome write is fenced by the delivery's lease token: a
//     worker that lost its lease writes nothing over the new owner's. A delivery of a task
//     that has finished is dropped unrun.
//   - Nothing ambient crosses. A task sees only its own caller and the values its worker
//     registered; its context carries nothing of the submitter's.
//   - Rolling deploys heal. A task whose kind a worker does not know, or whose arguments'
//     schema it cannot accept, is handed back for a worker of another version for
//     [WithSkewGrace] before it is dead-lettered; an envelope of another but compatible
//     schema (fields added, removed, reordered) runs, decoded by name (schema.go).
//   - Refusals are loud. An envelope that does not verify, a task of a kind or schema no
//     worker ran within the skew grace, an expired caller: each is dead-lettered with a reason
//     (the Reason constants) and [Result] returns a [*FailedError] that errors.Is matches
//     against [ErrBadSignature], [ErrUnknownKind], [ErrCallerExpired] and the others. A
//     forged copy of a task's envelope is dead-lettered without touching the task.
//   - Attempts count alike everywhere: the state, [FailedError.Attempts] and the log give
//     the number of deliveries of the task that began. A command the Redis client sent
//     twice (after a dropped connection or a read timeout) counts once: an enqueue that
//     finds its task writes nothing, a start that finds itself recorded answers again.
//   - Durable submits, when asked. By default Submit returns once the primary holds the
//     task in memory; with [WithDurability] it returns once replicas (WAIT) or append-only
//     files (WAITAOF, Redis 7.2+) confirm it, and otherwise returns the task's ID with
//     [ErrNotDurable]. README.md's "Durability" measures what each setup loses.
//   - Periodic tasks with an explicit caller. A [Def] with a Schedule is submitted by
//     the workers, once per tick, as [System]("schedule:<kind>"); one worker at a time
//     leads each kind, through a lock with a lease and a fencing token, and a unique key
//     per tick keeps a tick from being submitted twice, through leader crashes and stalls
//     ([WithoutSchedules], [WithScheduleLease], [WithScheduleCatchUp]; schedule.go).
//
// # Defaults
//
// Workers run 10 tasks at once ([WithConcurrency]) from the queues of the tasks
// registered on them ([WithQueues]), hold each under a 30 s lease renewed every 10 s, retry failures up to
// the task's retries with backoff from 1 s to 10 min ([WithBackoff]), give an attempt
// 5 min unless the task says otherwise ([WithDefaultTimeout]), keep results 24 h
// ([WithResultTTL]) and, when Run's context ends, wait 30 s for running tasks before
// cancelling them ([WithShutdownTimeout]), and hand back a task of an unknown kind or
// schema for 15 min ([WithSkewGrace]). Envelopes are at most 1 MiB
// ([WithMaxEnvelopeSize]). Each queue's dead-letter stream keeps at most 100,000 entries
// of at most 30 days ([WithDeadLetterRetention]).
//
// # Operating
//
// An [Inspector] shows the queues (counts by state, listings paged by cursor, one task in
// detail with its caller as metadata only, never its token) and acts on them: requeue and
// delete dead letters, delete or [Inspector.Cancel] a task (a running one sees
// [ErrCanceled] as its context's cause and is not retried), pause and resume a queue.
// [Client.Status] reads a task's state without waiting for its end.
//
// # How a worker is built
//
// A worker is small services, each in a file of its own: a fetcher per queue (fetch.go)
// reads new entries and takes over expired ones (never one it runs itself), and ends a
// task whose entry was trimmed while a worker that has died since ran it; a promoter per
// queue (promote.go) moves delayed tasks to the stream when Redis's clock says so; each
// delivery is executed (execute.go) and its outcome chosen by one pure function
// (decide.go, the worker's whole failure policy in a table); the settler (settle.go)
// writes outcomes in batches (a batch of fewer than a few dozen lingers up to 2ms for
// more), each write with a context of its own, trying a failed write
// again while the lease is renewed; the heartbeater (heartbeat.go) renews the lease of
// every delivery held (leases.go) until its outcome is written; the scheduler
// (schedule.go) leads the schedules of the scheduled Defs it can. A slot is freed when the
// task function returns, before its outcome is written.
package task

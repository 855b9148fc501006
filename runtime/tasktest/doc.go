// Package tasktest runs an application's tasks in its unit tests, with no Redis: it
// runs a registered task inline on behalf of a caller, records what a handler submits,
// and runs everything recorded.
//
// A test makes an [Env] with [New]. Its [Env.Worker] is a *task.Worker and its
// [Env.Client] a *task.Client, so the generated code works on them unchanged: register
// the application's tasks with its RegisterTasks(env.Worker(), deps), and give the
// handler under test env.Client() where it would have the real client.
//
//	env, err := tasktest.New()
//	if err != nil {
//		t.Fatal(err)
//	}
//	if err := welcome.RegisterTasks(env.Worker(), &welcome.Deps{Mailer: mailer}); err != nil {
//		t.Fatal(err)
//	}
//	receipt, err := tasktest.Run[welcome.Receipt](env, welcome.SendWelcomeTask, caller,
//		welcome.SendWelcomeArgs{To: "ada@example.com", Name: "Ada"})
//
// # What is the same as in production
//
// [Run] and [Execute] sign an envelope with the Env's test key (sealing the caller, as a
// client does), and the worker opens it and runs it through the very code that runs a
// delivery from Redis: the kind must be registered, the schema the envelope was written
// with must be the worker's or compatible with it, a task that takes a caller needs one
// ([task.ErrNoCaller]) that has not expired when it starts ([task.ErrCallerExpired],
// allowing the worker's [task.WithClockSkew]), the arguments are decoded strictly (an
// unknown field is [task.ErrMalformed]), the function gets a fresh context with the
// task's timeout and its [task.Info], and a panic is an error. Then the worker's own
// policy decides the [Outcome]: [Succeeded], [Retry] (with the backoff it would wait), or
// [Dead] with the reason (a [task.Permanent] error, a refusal, the last attempt).
//
// The Env's client makes every check of a real Submit — a caller for a task that needs
// one, not expired, not expiring before the task is due, a valid Def, the envelope's
// size limit — and then records the task instead of enqueuing it; a second submit with
// the Unique key of a recorded task returns that task's ID, as Redis would.
// [Env.Submitted] lists the recorded tasks: their kind, queue, arguments (decode them with
// [Submission.Decode]), the caller's user id, scopes and expiry — never the token, which
// no field or method of this package returns — their delay and Unique key. [Env.RunAll]
// runs them in order, with the tasks they submit in turn.
//
// # What is not
//
// Nothing is written anywhere: a run's outcome is returned, not stored, so the client's
// Result, DeadLetters and other reads fail (they need Redis), and the worker's Run
// refuses to start. A task whose outcome is [Retry] is not run again by itself: run its
// later attempts with [WithInfo]. Leases, heartbeats, fetching and settling are the
// worker's business with Redis, tested by package task against real Redis servers.
package tasktest

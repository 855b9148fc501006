// Package taskvet is a go/analysis analyzer that reports code run as a task reaching for
// ambient state: state that was there in the process that submitted the task and is not
// there in the worker that runs it.
//
// A task runs in a worker, under a context the worker made. Nothing the submitter put in
// its request context (the user, the access token, request-scoped values) is in it, and
// nothing a web server's startup put in package variables need be there either. taskgen
// gives a task explicit parameters for both: a task.Caller for who asked, signed into the
// envelope, and lifespan= values, handed to RegisterTasks by the worker. Any ambient read
// inside a task is therefore a mistake that can be pointed at.
//
// # What is checked
//
// A task is a function or method whose doc comment has a line starting exactly with
// "//task:" (taskspec.DirectivePrefix, the rule package gen applies too; gen reports
// malformed directives, taskvet needs only to know which functions are tasks). Checked is
// the body of every task and of every function and method of the same package reachable
// from it: called, or referenced as a value (handed to errgroup.Go, say), directly or
// transitively, including methods called on concrete receivers. Function literals are
// part of the function they are written in. Calls through interfaces and function values
// are not followed. In that code taskvet reports:
//
//   - ctx.Value(key) on the task's context: a context.Context parameter of the task, a
//     context derived from it by a context.With* function (WithTimeout, WithCancel,
//     WithValue, WithoutCancel, ...), a variable assigned one, or a context.Context
//     parameter of a reachable function that reachable code passes one to. A context the
//     task made itself (context.Background(), and what is derived from it) is not the
//     task's context, and its values are the task's own.
//   - A call of (or a reference to) a function listed by -ambient: a getter such as
//     example.com/auth.FromContext, which reads the submitter's state out of a context
//     or a global.
//   - A read of a package-level variable holding lifespan-like state: a variable whose
//     type is, or points to, *database/sql.DB, *net/http.Client, or
//     github.com/redis/go-redis/v9's Client, ClusterClient, Ring or UniversalClient, or
//     a type listed by -state. A read is any use but the left-hand side of an
//     assignment, so the init function or main that sets the variable is not reported,
//     and neither is code that no task reaches. Variables of the standard library
//     (http.DefaultClient) are not reported: they are always set, in a worker too. A
//     *slog.Logger is not a default either, for the same reason.
//
// Each position is reported once, naming the task it is reached from (the first, in
// source order, when several reach it), and says which explicit parameter to use
// instead: a task.Caller for who asked, a lifespan= value for the worker's state.
//
// The context tracking is deliberately simple: it follows variables and parameters, not
// struct fields or channels, and does not tell one assignment of a variable from
// another.
//
// # Running it
//
// As a vet tool, in a module that has "tool github.com/taskgen/taskgen/cmd/taskvet" in its
// go.mod:
//
//	go vet -vettool=$(go tool -n taskvet) ./...
//
// taskgen also runs the analyzer on every package it generates for, after a successful
// run, and prints its findings as warnings that never change its exit code; taskgen
// -vet=false skips it.
//
// # Flags
//
//	-ambient example.com/auth.FromContext,example.com/tenant.Current
//	    comma-separated functions, as importpath.Func, that read ambient state
//	-state example.com/store.Pool,github.com/jackc/pgx/v5/pgxpool.Pool
//	    comma-separated types, as importpath.Type, whose package-level variables are
//	    lifespan state (in addition to the defaults above)
//
// The analyzer uses no facts and no other analyzer's results, so any driver that has a
// package's syntax and types can run it: taskgen runs it on the packages it has loaded
// anyway.
package taskvet

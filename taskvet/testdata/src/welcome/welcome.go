// Package welcome has one case of every finding, each marked with the diagnostic it
// expects, and of every read that must not be reported, marked "fine". It runs with
// -ambient example.com/auth.FromContext and -state example.com/store.Pool.
package welcome

import (
	"context"
	"database/sql"
	"net/http"
	"time"

	"example.com/auth"
	"example.com/store"
	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/task"
)

type ctxKey struct{}

// Deps is lifespan state.
type Deps struct{ DB *sql.DB }

var (
	db     *sql.DB
	pool   *store.Pool
	rdb    *redis.Client
	client = &http.Client{Timeout: time.Second}
	limit  = 10 // not state: fine
)

// init opens the globals. It writes them, and no task can call it: fine, even the read
// of pool.
func init() {
	db, _ = sql.Open("postgres", "")
	pool = &store.Pool{}
	store.Default = pool
}

// SendWelcome reads the submitter's state from its context in every way there is.
//
//task:email.send_welcome queue=email lifespan=deps
func SendWelcome(ctx context.Context, caller task.Caller, deps *Deps, to string) error {
	_ = ctx.Value(ctxKey{}) // want `^ctx.Value in task email.send_welcome: the worker's context carries nothing of the submitter's \(no user, no token, no request values\); take a task.Caller parameter for who asked, or a lifespan= value for the worker's state$`
	tctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_ = tctx.Value(ctxKey{})                       // want `^tctx.Value in task email.send_welcome:`
	_ = context.WithoutCancel(ctx).Value(ctxKey{}) // want `^context.WithoutCancel\(ctx\).Value in task email.send_welcome:`

	// A context the task made itself holds only what the task put in it: fine.
	own := context.WithValue(context.Background(), ctxKey{}, caller.UserID)
	_ = own.Value(ctxKey{})
	background(own)

	user, _ := auth.FromContext(ctx)    // want `^auth.FromContext in task email.send_welcome reads ambient state \(it is listed by -ambient\), which the worker does not have; take a task.Caller parameter`
	_ = auth.Session{}.FromContext(ctx) // a method of the same name: fine
	_ = user
	_ = deps.DB.Ping() // the lifespan value, passed explicitly: fine
	_ = limit
	return render(tctx, caller, to)
}

// render passes the task's context on, derived once more, and the caller explicitly.
func render(ctx context.Context, caller task.Caller, to string) error {
	return lookup(context.WithValue(ctx, ctxKey{}, to), caller.UserID)
}

// lookup is two calls below the task, and also reached from BuildReport: it is reported
// once, from the first task in source order.
func lookup(ctx context.Context, user string) error {
	_ = ctx.Value(ctxKey{}) // want `^ctx.Value in lookup, reached from task email.send_welcome:`
	_ = db.Ping()           // want `^package variable db \(\*sql.DB\) read in lookup, reached from task email.send_welcome: lifespan state belongs in a parameter: add lifespan=db to the directive of task email.send_welcome, a parameter db \*sql.DB, and give the value to RegisterTasks in the worker$`
	_ = client              // want `^package variable client \(\*http.Client\) read in lookup`
	_ = http.DefaultClient  // the standard library's: fine
	reopen()
	return nil
}

// reopen writes db, which is fine, and reads it to do so, which is not.
func reopen() {
	if db == nil { // want `package variable db \(\*sql.DB\) read in reopen, reached from task email.send_welcome`
		db, _ = sql.Open("postgres", "")
	}
}

// background is given only contexts the task made itself: fine.
func background(ctx context.Context) {
	_ = ctx.Value(ctxKey{})
}

// BuildReport takes its database explicitly, but still reads globals.
//
//task:report.build lifespan=reports
func BuildReport(ctx context.Context, reports *sql.DB, month string) error {
	_ = reports.Ping() // explicit: fine
	background(context.Background())
	_ = pool          // want `^package variable pool \(\*store.Pool\) read in task report.build: lifespan state belongs in a parameter: add lifespan=pool`
	_ = store.Default // want `^package variable store.Default \(\*store.Pool\) read in task report.build: .* add lifespan=pool`
	_ = db            // want `^package variable db \(\*sql.DB\) read in task report.build: task report.build already takes it as lifespan=reports: use that parameter, passed down to where it is needed$`
	return lookup(ctx, month)
}

// Service is a task's receiver.
type Service struct{ rdb *redis.Client }

// Warm is a method task; what it calls on its receiver is checked too.
//
//task:cache.warm
func (s *Service) Warm(ctx context.Context) error {
	return s.fill(ctx)
}

func (s *Service) fill(ctx context.Context) error {
	_ = s.rdb.Get("k") // a field of the receiver, which is lifespan state: fine
	_ = rdb.Get("k")   // want `^package variable rdb \(\*redis.Client\) read in \(\*Service\).fill, reached from task cache.warm:`
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ctx.Value(ctxKey{}) // want `^ctx.Value in \(\*Service\).fill, reached from task cache.warm:`
	}()
	<-done
	return nil
}

// Handler is no task, and no task reaches it: the request's context is its own, and
// the globals are its to read. Fine.
func Handler(w http.ResponseWriter, r *http.Request) {
	_ = r.Context().Value(ctxKey{})
	_, _ = auth.FromContext(r.Context())
	_ = db.Ping()
	_ = pool
	unreached(r.Context())
}

// unreached is called only by Handler. Fine.
func unreached(ctx context.Context) {
	_ = ctx.Value(ctxKey{})
	_ = rdb
}

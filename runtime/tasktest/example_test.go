package tasktest_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/tasktest"
)

// What taskgen generates for
//
//	//task:report.build queue=reports retries=2
//	func BuildReport(ctx context.Context, caller task.Caller, month string) (int, error)
var BuildReportTask = task.Def{
	Kind: "report.build", Queue: "reports", MaxRetries: 2,
	Schema: "v2:b10e7b1146f092f3", Wire: `{"month":string}`, Caller: true,
}

type BuildReportArgs struct {
	Month string `json:"month"`
}

// A task runs inline, on behalf of a caller, through the worker's checks.
func ExampleRun() {
	env, err := tasktest.New()
	if err != nil {
		panic(err)
	}
	err = task.Register(env.Worker(), BuildReportTask, func(ctx context.Context, caller task.Caller, a BuildReportArgs) (int, error) {
		return len(caller.UserID + a.Month), nil
	})
	if err != nil {
		panic(err)
	}
	ada := task.Caller{UserID: "ada", Token: task.NewSecret("t0k3n"), ExpiresAt: time.Now().Add(time.Hour)}
	n, err := tasktest.Run[int](env, BuildReportTask, ada, BuildReportArgs{Month: "2026-11"})
	fmt.Println(n, err)

	// A caller whose token expired is refused before the task runs, as by a worker.
	ada.ExpiresAt = time.Now().Add(-time.Minute)
	_, err = tasktest.Run[int](env, BuildReportTask, ada, BuildReportArgs{Month: "2026-11"})
	fmt.Println(errors.Is(err, task.ErrCallerExpired))
	// Output:
	// 10 <nil>
	// true
}

// What code under test submits is recorded, then run.
func ExampleEnv_RunAll() {
	env, err := tasktest.New()
	if err != nil {
		panic(err)
	}
	err = task.Register(env.Worker(), BuildReportTask, func(ctx context.Context, caller task.Caller, a BuildReportArgs) (int, error) {
		if a.Month == "" {
			return 0, task.Permanent(errors.New("no month"))
		}
		return 1, nil
	})
	if err != nil {
		panic(err)
	}
	ada := task.Caller{UserID: "ada", Token: task.NewSecret("t0k3n")}
	// The code under test would do this, given env.Client() as its *task.Client.
	for _, month := range []string{"2026-10", ""} {
		if _, err := task.Submit(context.Background(), env.Client(), BuildReportTask, ada, BuildReportArgs{Month: month}); err != nil {
			panic(err)
		}
	}
	for _, s := range env.Submitted() {
		fmt.Println(s.Kind, s.UserID, string(s.Args))
	}
	outs, err := env.RunAll()
	if err != nil {
		panic(err)
	}
	for _, o := range outs {
		fmt.Println(o.Decision, o.Reason, string(o.Result))
	}
	// Output:
	// report.build ada {"month":"2026-10"}
	// report.build ada {"month":""}
	// succeeded  1
	// dead permanent
}

package task_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// A periodic task: taskgen generates a Def with a Schedule for a function marked
// //task:heartbeat schedule="@every 1s". The workers submit it themselves, once per tick,
// as the explicit caller System("schedule:heartbeat"); no client is involved.
func ExampleDef_schedule() {
	rdb, done := exampleRedis()
	defer done()
	heartbeat := task.Def{Kind: "heartbeat", Queue: "default", Schema: "v1:heartbeat", Caller: true, Schedule: "@every 1s"}

	w, err := task.NewWorker(rdb, task.WithSigningKey("k1", exampleKey), task.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		fmt.Println(err)
		return
	}
	ran := make(chan string, 10)
	err = task.Register(w, heartbeat, func(ctx context.Context, caller task.Caller, _ struct{}) (struct{}, error) {
		ran <- caller.UserID
		return struct{}{}, nil
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	stopped := make(chan error)
	go func() { stopped <- w.Run(ctx) }()

	select {
	case who := <-ran:
		fmt.Println("heartbeat ran as", who)
	case <-time.After(10 * time.Second):
		fmt.Println("no tick")
	}
	stop()
	if err := <-stopped; err != nil {
		fmt.Println(err)
	}
	// Output:
	// heartbeat ran as system:schedule:heartbeat
}

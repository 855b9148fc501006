// Command taskctl inspects and operates the queues of a taskgen deployment: list queues
// and tasks, show a task, requeue, delete or cancel tasks, pause and resume queues, purge
// dead letters, from the shell (with --json for scripts) or from a web console
// (taskctl serve). See package internal/taskctl and the README's "Operating" section.
//
//	go tool taskctl queues
//	go tool taskctl tasks email --state dead
//	go tool taskctl requeue email --all
//	go tool taskctl serve
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/taskgen/taskgen/internal/taskctl"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := taskctl.Main(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

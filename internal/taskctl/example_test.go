package taskctl_test

import (
	"context"
	"fmt"
	"os"

	"github.com/taskgen/taskgen/internal/taskctl"
)

// Main is the whole command, callable in-process: arguments, environment and output
// streams in, exit code out. A destructive command wants its confirmation flag.
func ExampleMain() {
	noEnv := func(string) string { return "" }
	code := taskctl.Main(context.Background(), []string{"purge", "email"}, noEnv, os.Stdout, os.Stdout)
	fmt.Println("exit", code)
	// Output:
	// taskctl: purge deletes every dead letter of email for good: add --yes to confirm
	// run 'taskctl help' for usage
	// exit 2
}

package task_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/runtime/task"
)

// What a client and a worker share is an Option, both a ClientOption and a WorkerOption;
// the rest is a WorkerOption only. The compiler checks these lines.
var (
	_ task.ClientOption = task.WithPrefix("x")
	_ task.WorkerOption = task.WithPrefix("x")
	_ task.WorkerOption = task.WithConcurrency(1)
	_ task.ClientOption = task.WithDurability(task.Durability{})
)

// NewClient refuses, at compile time, an option that only a worker uses: the option
// functions' result types say which side takes them. That the shared options configure
// both sides is what every harness test relies on: its client and workers meet only
// through the same WithPrefix and WithSigningKey (and WithSealKey in
// TestSealedCallerNeverRestsInRedisInClear).
func TestEachOptionIsTakenByTheSidesItConcerns(t *testing.T) {
	clientOption := reflect.TypeFor[task.ClientOption]()
	workerOption := reflect.TypeFor[task.WorkerOption]()
	tests := []struct {
		name         string
		option       any // the option function
		client, work bool
	}{
		{"WithPrefix", task.WithPrefix, true, true},
		{"WithSigningKey", task.WithSigningKey, true, true},
		{"WithSealKey", task.WithSealKey, true, true},
		{"WithPlainCallers", task.WithPlainCallers, true, true},
		{"WithRetiredKey", task.WithRetiredKey, true, true},
		{"WithLogger", task.WithLogger, true, true},
		{"WithMaxEnvelopeSize", task.WithMaxEnvelopeSize, true, true},
		{"WithDurability", task.WithDurability, true, false},
		{"WithQueues", task.WithQueues, false, true},
		{"WithConcurrency", task.WithConcurrency, false, true},
		{"WithBackoff", task.WithBackoff, false, true},
		{"WithDefaultTimeout", task.WithDefaultTimeout, false, true},
		{"WithResultTTL", task.WithResultTTL, false, true},
		{"WithLease", task.WithLease, false, true},
		{"WithShutdownTimeout", task.WithShutdownTimeout, false, true},
		{"WithClockSkew", task.WithClockSkew, false, true},
		{"WithSkewGrace", task.WithSkewGrace, false, true},
		{"WithConsumerName", task.WithConsumerName, false, true},
		{"WithDeadLetterRetention", task.WithDeadLetterRetention, false, true},
	}
	listed := map[string]bool{}
	for _, tt := range tests {
		listed[tt.name] = true
		result := reflect.TypeOf(tt.option).Out(0)
		if got := result.Implements(clientOption); got != tt.client {
			t.Errorf("%s returns %s: a ClientOption = %v, want %v", tt.name, result, got, tt.client)
		}
		if got := result.Implements(workerOption); got != tt.work {
			t.Errorf("%s returns %s: a WorkerOption = %v, want %v", tt.name, result, got, tt.work)
		}
	}

	// A new option is listed above, so that which side takes it is a decision.
	f, err := parser.ParseFile(token.NewFileSet(), "options.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && strings.HasPrefix(fn.Name.Name, "With") && !listed[fn.Name.Name] {
			t.Errorf("%s is not in the table of this test", fn.Name.Name)
		}
	}
}

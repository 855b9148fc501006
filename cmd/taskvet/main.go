// Command taskvet reports code run as a task that reads ambient state: ctx.Value on the
// task's context, configured getters, package-level clients. See package
// github.com/taskgen/taskgen/taskvet for what it reports and its flags.
//
// Usage, as a vet tool, in a module whose go.mod has
// "tool github.com/taskgen/taskgen/cmd/taskvet":
//
//	go vet -vettool=$(go tool -n taskvet) ./...
//
// or on its own, as taskvet [-ambient f,...] [-state T,...] [packages].
package main

import (
	"github.com/taskgen/taskgen/taskvet"
	"golang.org/x/tools/go/analysis/singlechecker"
)

func main() { singlechecker.Main(taskvet.Analyzer) }

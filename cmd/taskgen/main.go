// Command taskgen generates typed task code for functions marked with a //task:<kind>
// directive: for each task function F an FArgs struct, an FTask definition and a SubmitF
// function, and per package a RegisterTasks function. See package
// github.com/taskgen/taskgen/gen for the rules.
//
// Usage:
//
//	taskgen [-o tasks_gen.go] [-tags a,b] [-check [-against REF]] [-vet=false] [-vet.ambient f,g] [-vet.state T,U] [-v] [packages]
//
// The packages default to the current directory, so that
//
//	//go:generate go tool taskgen
//
// in any file of a package regenerates it. taskgen writes a file only when its content
// changes, removes the generated file of a package that no longer has tasks, and writes
// nothing at all when it finds an error. With -check it writes nothing and prints a
// unified diff for every stale, missing or orphaned generated file.
//
// With -check -against REF it also compares every task, as it would be generated now,
// with the generated files at git revision REF (in CI, the merge base with the main
// branch), and reports each change that tasks queued by REF's code would not survive a
// rolling deploy: a parameter or struct field whose type changed, a probable rename, a
// task removed. Each report is positioned at the task's directive and says what to do.
// Adding or removing parameters and fields, and reordering them, are compatible. A
// generated file at REF from before wire descriptions (no Wire in its task.Def values)
// is skipped with a note.
//
// After a successful run, taskgen checks the packages it generated for with package
// github.com/taskgen/taskgen/taskvet and prints each read of ambient state inside a task
// (ctx.Value on the task's context, a package-level *sql.DB, ...) as a warning,
// path:line:col: warning: ..., on standard error. Warnings never change the exit code;
// -vet=false skips the check.
//
// Exit codes: 0 success (with -check: every file fresh and, with -against, no breaking
// change); 1 invalid task declarations, or with -check an out-of-date file or a
// breaking change since REF; 2 usage or package-load errors, or a REF that git cannot
// read (not a repository, unknown revision).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/taskgen/taskgen/gen"
	"github.com/taskgen/taskgen/taskvet"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the command with its arguments and output streams; it returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "taskgen: ", 0)
	flags := flag.NewFlagSet("taskgen", flag.ContinueOnError)
	flags.SetOutput(stderr)
	output := flags.String("o", gen.DefaultOutput, "`name` of the generated file in each package directory")
	tags := flags.String("tags", "", "comma-separated list of extra build `tags` to load packages with (taskgen is always set)")
	check := flags.Bool("check", false, "write nothing; print a unified diff for each stale, missing or orphaned generated file and exit 1 if there is one")
	against := flags.String("against", "", "with -check: also compare the tasks with the generated files at git revision `REF` and exit 1 on a change that tasks queued by REF's code would not survive")
	vet := flags.Bool("vet", true, "warn about ambient reads inside tasks (package taskvet); warnings never change the exit code")
	// taskvet's own flags, for the analyzer taskgen runs: the names say whose they are.
	for _, name := range []string{"ambient", "state"} {
		f := taskvet.Analyzer.Flags.Lookup(name)
		flags.Var(f.Value, "vet."+name, f.Usage+" (taskvet's -"+name+")")
	}
	verbose := flags.Bool("v", false, "print a line for every generated file written, removed or unchanged")
	flags.Usage = func() {
		fmt.Fprintf(stderr, "usage: taskgen [-o tasks_gen.go] [-tags a,b] [-check [-against REF]] [-vet=false] [-vet.ambient f,g] [-vet.state T,U] [-v] [packages]\n\n")
		fmt.Fprintf(stderr, "taskgen generates typed task code for functions marked //task:<kind>.\nThe packages default to the current directory.\n\nFlags:\n")
		flags.PrintDefaults()
	}
	if err := flags.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}

	cfg := gen.Config{
		Patterns: flags.Args(),
		Output:   *output,
		Tags:     splitTags(*tags),
		Check:    *check,
		Against:  *against,
		Vet:      *vet,
	}
	if err := cfg.Validate(); err != nil {
		logger.Print(err)
		flags.Usage()
		return 2
	}

	res, err := gen.Run(cfg)
	if err != nil {
		var errs *gen.Errors
		var againstErr *gen.AgainstError
		if errors.As(err, &againstErr) {
			logger.Print(err)
			return 2
		}
		if !errors.As(err, &errs) {
			logger.Print(err)
			return 1
		}
		for _, e := range errs.List {
			if e.Pos.Filename == "" {
				logger.Print(e.Msg)
			} else {
				fmt.Fprintln(stderr, e.Error())
			}
		}
		if errs.Load {
			return 2
		}
		return 1
	}

	stale := 0
	for _, f := range res.Files {
		fmt.Fprint(stdout, f.Diff)
		switch f.Status {
		case gen.Orphaned:
			stale++
			logger.Printf("%s: %s: its package has no tasks; run taskgen to remove it", f.Path, f.Status)
		case gen.Stale, gen.Missing:
			stale++
			logger.Printf("%s: %s", f.Path, f.Status)
		default:
			if *verbose {
				logger.Printf("%s %s", f.Status, f.Path)
			}
		}
	}
	for _, n := range res.Notes {
		fmt.Fprintln(stderr, gen.Error{Pos: n.Pos, Msg: "note: " + n.Msg}.Error())
	}
	for _, b := range res.Breaking {
		fmt.Fprintln(stderr, b.Error())
	}
	for _, w := range res.Warnings {
		if w.Pos.Filename == "" {
			logger.Print("warning: " + w.Msg)
		} else {
			fmt.Fprintln(stderr, gen.Error{Pos: w.Pos, Msg: "warning: " + w.Msg}.Error())
		}
	}
	code := 0
	if res.OutOfDate() {
		logger.Printf("%d generated file(s) out of date: run taskgen (or go generate) to update them", stale)
		code = 1
	}
	if res.Incompatible() {
		logger.Printf("%d change(s) since %s that tasks queued by its code would not survive: see above", len(res.Breaking), cfg.Against)
		code = 1
	}
	return code
}

// splitTags splits a -tags value at commas (and, as the go command still accepts, at
// spaces).
func splitTags(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

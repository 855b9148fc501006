package taskctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/task"
)

// Exit codes of Main, documented in the package doc and the README.
const (
	ExitOK       = 0 // the command did what it was asked
	ExitFailed   = 1 // the operation failed, or a bulk action skipped entries
	ExitUsage    = 2 // bad command line or key configuration
	ExitNotFound = 3 // the task or dead letter does not exist
)

// Environment variables Main reads. Keys are read only from the environment or a keys
// file, never from flags.
const (
	EnvRedisURL     = "TASKGEN_REDIS_URL"
	EnvPrefix       = "TASKGEN_PREFIX"
	EnvKeysFile     = "TASKGEN_KEYS_FILE"
	EnvSigningKeys  = "TASKGEN_SIGNING_KEYS"
	EnvSealKey      = "TASKGEN_SEAL_KEY"
	EnvRetiredKeys  = "TASKGEN_RETIRED_KEYS"
	EnvConsoleToken = "TASKGEN_CONSOLE_TOKEN"
)

// DefaultRedisURL is the Redis taskctl connects to without --redis or TASKGEN_REDIS_URL.
const DefaultRedisURL = "redis://127.0.0.1:6379/0"

// usageError is a bad command line: Main prints it with the usage hint and exits 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return &usageError{fmt.Sprintf(format, args...)} }

// env is what a command runs with: its streams, its environment and the global flags.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	json           bool
	redisURL       string
	prefix         string
	keysFile       string

	// set by connect
	rdb redis.UniversalClient
	in  *task.Inspector
}

// command is one subcommand: its flags beyond the global ones, and what it does with its
// positional arguments.
type command struct {
	name    string
	args    string // synopsis of the arguments
	summary string
	flags   func(fs *flag.FlagSet) // its own flags, or nil
	run     func(ctx context.Context, e *env, args []string) error
}

func commands() []*command {
	return []*command{
		queuesCommand(), schedulesCommand(), tasksCommand(), showCommand(), requeueCommand(), deleteCommand(),
		cancelCommand(), pauseCommand(), resumeCommand(), purgeCommand(), serveCommand(),
	}
}

// Main runs taskctl with args (without the program name), reading the environment through
// getenv (os.Getenv in the command), and returns its exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr, getenv: getenv}
	err := run(ctx, e, args)
	if e.rdb != nil {
		e.rdb.Close()
	}
	return report(stderr, err)
}

func report(stderr io.Writer, err error) int {
	var ue *usageError
	switch {
	case err == nil:
		return ExitOK
	case errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "taskctl: %v\nrun 'taskctl help' for usage\n", err)
		return ExitUsage
	case errors.Is(err, task.ErrNotFound):
		fmt.Fprintf(stderr, "taskctl: %v\n", err)
		return ExitNotFound
	default:
		fmt.Fprintf(stderr, "taskctl: %v\n", err)
		return ExitFailed
	}
}

func run(ctx context.Context, e *env, args []string) error {
	if err := refuseKeyFlags(args); err != nil {
		return err
	}
	top := flag.NewFlagSet("taskctl", flag.ContinueOnError)
	top.SetOutput(io.Discard)
	e.globalFlags(top)
	if err := top.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(e.stdout)
			return err
		}
		return usagef("%v", err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		printUsage(e.stderr)
		return usagef("no command given")
	}
	name, rest := rest[0], rest[1:]
	if name == "help" {
		printUsage(e.stdout)
		return nil
	}
	var cmd *command
	for _, c := range commands() {
		if c.name == name {
			cmd = c
		}
	}
	if cmd == nil {
		return usagef("unknown command %q; the commands are %s", name, strings.Join(commandNames(), ", "))
	}
	fs := flag.NewFlagSet("taskctl "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.globalFlags(fs)
	if cmd.flags != nil {
		cmd.flags(fs)
	}
	positional, err := parseInterspersed(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(e.stdout, "usage: taskctl %s %s\n\n%s\n\nflags:\n", cmd.name, cmd.args, cmd.summary)
		fs.SetOutput(e.stdout)
		fs.PrintDefaults()
		return err
	}
	if err != nil {
		return usagef("%s: %v", cmd.name, err)
	}
	return cmd.run(ctx, e, positional)
}

// globalFlags defines the flags every command takes, on fs, with their environment
// defaults.
func (e *env) globalFlags(fs *flag.FlagSet) {
	fs.StringVar(&e.redisURL, "redis", e.orEnv(e.redisURL, EnvRedisURL, DefaultRedisURL), "Redis URL (redis://, rediss://; add addr= parameters for a cluster); default $"+EnvRedisURL+" or "+DefaultRedisURL)
	fs.StringVar(&e.prefix, "prefix", e.orEnv(e.prefix, EnvPrefix, task.DefaultPrefix), "key prefix of the deployment; default $"+EnvPrefix+" or "+task.DefaultPrefix)
	fs.StringVar(&e.keysFile, "keys-file", e.orEnv(e.keysFile, EnvKeysFile, ""), "file of signing and seal keys (readable by its owner only); default $"+EnvKeysFile)
	fs.BoolVar(&e.json, "json", e.json, "print JSON for scripts instead of tables")
}

// orEnv returns the value already set (by a flag before the command), else the
// environment variable, else def.
func (e *env) orEnv(set, name, def string) string {
	if set != "" {
		return set
	}
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

// parseInterspersed parses flags anywhere among the positional arguments, as in
// "tasks email --state dead"; "--" ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return positional, nil
		}
		if args[0] == "--" {
			return append(positional, args[1:]...), nil
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
}

// refuseKeyFlags refuses a key given on the command line before anything parses it, with
// the reason: it would be in the shell's history and in every process listing.
func refuseKeyFlags(args []string) error {
	for _, a := range args {
		if a == "--" {
			return nil
		}
		name := strings.TrimLeft(a, "-")
		if name == a {
			continue
		}
		name, _, _ = strings.Cut(name, "=")
		switch name {
		case "key", "keys", "signing-key", "signing-keys", "seal-key", "retired-key", "retired-keys", "token", "console-token":
			return usagef("--%s: keys and tokens are never taken from flags, which land in shell history and process listings; set %s, %s (and %s) or --keys-file, and %s for the console",
				name, EnvSigningKeys, EnvSealKey, EnvRetiredKeys, EnvConsoleToken)
		}
	}
	return nil
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	sort.Strings(names)
	return names
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `usage: taskctl [--redis URL] [--prefix P] [--keys-file PATH] [--json] COMMAND [flags] [arguments]

commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %-40s %s\n", c.name, c.args, c.summary)
	}
	fmt.Fprintf(w, `
Redis: --redis or $%[1]s (default %[2]s). Keys: $%[3]s ("id:base64,..."; the
first signs), $%[4]s (base64), $%[5]s ("id:base64:RFC3339,..."), or --keys-file
/ $%[6]s; never flags. Console token: $%[7]s, or one is made and printed.

exit codes: 0 ok, 1 failed, 2 usage, 3 not found. 'taskctl COMMAND -h' for a command's flags.
`, EnvRedisURL, DefaultRedisURL, EnvSigningKeys, EnvSealKey, EnvRetiredKeys, EnvKeysFile, EnvConsoleToken)
}

// isTerminal reports whether w is a terminal, where a progress bar belongs.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

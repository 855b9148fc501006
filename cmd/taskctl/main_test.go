package main

import (
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/runtime/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

// TestRunsAsAGoTool runs taskctl the way the README tells users to, in a module that has
// it as a tool, against a real Redis: go tool taskctl, with its exit codes.
func TestRunsAsAGoTool(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "go.mod", "module example.com/m\n\ngo 1.26\n\ntool github.com/taskgen/taskgen/cmd/taskctl\n\nrequire github.com/taskgen/taskgen v0.0.0\n\nreplace github.com/taskgen/taskgen => "+root+"\n")
	write(t, dir, "go.sum", string(sum))
	write(t, dir, "m.go", "package m\n")
	rdb := redistest.Client(t)
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=",
		"TASKGEN_REDIS_URL=redis://"+rdb.Options().Addr+"/0",
		"TASKGEN_PREFIX="+redistest.Prefix(t),
		"TASKGEN_SIGNING_KEYS=k1:"+base64.StdEncoding.EncodeToString([]byte("a-signing-key-of-32-bytes-or-more")))
	if out, code := goCmd(dir, env, "mod", "tidy"); code != 0 {
		t.Fatalf("go mod tidy: exit %d\n%s", code, out)
	}
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"help"}, 0, "exit codes: 0 ok, 1 failed, 2 usage, 3 not found"},
		{[]string{"queues", "--json"}, 0, "[]"},
		{[]string{"queues"}, 0, "no queues"},
		{[]string{"tasks"}, 2, "tasks takes one queue"},
		{[]string{"show", "email/0000000000000000000000000Z"}, 3, "not found"},
	}
	for _, c := range cases {
		out, code := goCmd(dir, env, append([]string{"tool", "taskctl"}, c.args...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("go tool taskctl %s: exit %d, want %d and %q:\n%s", strings.Join(c.args, " "), code, c.code, c.want, out)
		}
	}
}

func goCmd(dir string, env []string, args ...string) (string, int) {
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return string(out), exit.ExitCode()
	}
	if err != nil {
		return string(out) + err.Error(), -1
	}
	return string(out), 0
}

func write(t *testing.T, dir, name, text string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

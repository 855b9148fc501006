package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// appSrc is a task reading its database from a package variable.
const appSrc = `package app

import (
	"context"
	"database/sql"
)

var db *sql.DB

//task:report.build
func BuildReport(ctx context.Context, month string) error {
	_, err := db.ExecContext(ctx, "select 1", month)
	return err
}
`

// TestRunsAsAVetToolOfAGoTool runs the command the way the README tells users to, in a
// module that has it as a tool: go vet -vettool=$(go tool -n taskvet) ./...
func TestRunsAsAVetToolOfAGoTool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tool with the go command")
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "go.mod", "module example.com/m\n\ngo 1.26\n\ntool github.com/taskgen/taskgen/cmd/taskvet\n\nrequire github.com/taskgen/taskgen v0.0.0\n\nreplace github.com/taskgen/taskgen => "+root+"\n")
	write(t, dir, "go.sum", string(sum))
	write(t, dir, "app/app.go", appSrc)
	env := append(os.Environ(), "GOWORK=off", "GOFLAGS=")
	if out, err := goCmd(dir, env, "mod", "tidy"); err != nil {
		t.Fatalf("go mod tidy: %v\n%s", err, out)
	}
	tool, err := goCmd(dir, env, "tool", "-n", "taskvet")
	if err != nil {
		t.Fatalf("go tool -n taskvet: %v\n%s", err, tool)
	}
	out, err := goCmd(dir, env, "vet", "-vettool="+strings.TrimSpace(tool), "./...")
	want := "app/app.go:12:12: package variable db (*sql.DB) read in task report.build: lifespan state belongs in a parameter: add lifespan=db"
	if err == nil || !strings.Contains(out, want) {
		t.Errorf("go vet: %v\n%s\nwant a failure reporting %q", err, out, want)
	}
}

func goCmd(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	path := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

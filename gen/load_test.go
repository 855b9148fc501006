package gen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadErrorsCarryTheGoCommandsOwnMessage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{
			name: "go list failed as a whole",
			err:  &goCommandError{msg: "go: updates to go.mod needed; to update it:\n\tgo mod tidy"},
			want: "go: updates to go.mod needed; to update it:\n\tgo mod tidy",
		},
		{
			name: "go/packages' error of a failed go command",
			err:  errors.New("err: exit status 1: stderr: go: downloading example.com/x v1.0.0\ngo: go.mod requires go >= 1.99 (running go 1.26; GOTOOLCHAIN=local)\n"),
			want: "go: go.mod requires go >= 1.99 (running go 1.26; GOTOOLCHAIN=local)",
		},
		{
			name: "any other error",
			err:  errors.New("'go list' driver requires 'go', but executable file not found in $PATH"),
			want: "cannot load packages: 'go list' driver requires 'go', but executable file not found in $PATH",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := describeLoadError(tt.err); got != tt.want {
				t.Errorf("describeLoadError = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAGoCommandThatFailsAsAWholeIsReportedWithItsMessage(t *testing.T) {
	// go/packages alone reports no packages and no error for this module.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "go.mod"), []byte("module example.com/m\n\ngo 1.999\n"))
	writeFile(t, filepath.Join(dir, "p", "p.go"), []byte("package p\n"))
	env := append(os.Environ(), "GOTOOLCHAIN=local", "GOWORK=off", "GOFLAGS=")
	pkgs, err := load(dir, env, nil, []string{"./..."})
	if err == nil {
		t.Fatalf("load returned %d packages and no error for a module that needs go 1.999", len(pkgs))
	}
	msg := describeLoadError(err)
	if want := "go: go.mod requires go >= 1.999 (running go "; !strings.HasPrefix(msg, want) || !strings.HasSuffix(msg, "; GOTOOLCHAIN=local)") {
		t.Errorf("message = %q, want the go command's %q...", msg, want)
	}
}

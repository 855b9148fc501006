package gen

import (
	"errors"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
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

func TestTestFilesAreChosenAsGoTestWouldWithoutTheTaskgenTag(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"a_test.go":         "package p\n",
		"b_linux_test.go":   "package p\n",
		"c_plan9_test.go":   "package p\n",
		"d_test.go":         "//go:build integration\n\npackage p\n",
		"e_test.go":         "//go:build fast\n\npackage p\n",
		"f_test.go":         "//go:build taskgen\n\npackage p\n",
		"g_test.go":         "//go:build !taskgen\n\npackage p\n",
		"h_test.go":         "package p_test\n",
		"i.go":              "package p\n",
		"_j_test.go":        "package p\n",
		"k_test.go/x.go":    "package x\n",
		"l_test.go":         "package p\n\nfunc {\n",
		"m_windows_test.go": "package p\n",
	}
	for name, src := range files {
		writeFile(t, filepath.Join(dir, filepath.FromSlash(name)), []byte(src))
	}
	pkg := &packages.Package{Name: "p", Dir: dir, Fset: token.NewFileSet()}
	env := []string{"GOOS=linux", "GOARCH=amd64", "GOFLAGS=-tags=fast"}
	var got []string
	for _, f := range inPackageTestFiles(pkg, testBuildContext(env, []string{"integration"})) {
		got = append(got, filepath.Base(pkg.Fset.Position(f.Pos()).Filename))
	}
	if want := "a_test.go b_linux_test.go d_test.go e_test.go g_test.go"; strings.Join(got, " ") != want {
		t.Errorf("test files = %q, want %q", strings.Join(got, " "), want)
	}
}

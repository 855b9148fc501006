package gen

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestOutputNamesWithAPlatformSuffixAreRefused(t *testing.T) {
	for name, want := range map[string]bool{
		"tasks_gen.go":           false,
		"linux.go":               false,
		"tasks_unix.go":          false, // unix is a build tag, not a file-name suffix
		"tasks_linux.go":         true,
		"tasks_arm64.go":         true,
		"tasks_windows_amd64.go": true,
	} {
		if got := constrainedByName(name); got != want {
			t.Errorf("constrainedByName(%q) = %v, want %v", name, got, want)
		}
		if err := (Config{Output: name}).Validate(); (err != nil) != want {
			t.Errorf("Config{Output: %q}.Validate() = %v, want an error: %v", name, err, want)
		}
	}
}

func TestRunRemovesTheGeneratedFileOfAPackageWhoseLastTaskIsGone(t *testing.T) {
	dir, env := tempModule(t, map[string]string{
		"p/doc.go": "// Package p has one task.\npackage p\n",
		"p/p.go":   "package p\n\n//task:p.only\nfunc Only() error { return nil }\n",
	})
	pkg := filepath.Join(dir, "p")
	gen := filepath.Join(pkg, DefaultOutput)
	run := func(check bool) *Result {
		t.Helper()
		res, err := Run(Config{Dir: pkg, Env: env, Check: check})
		if err != nil {
			t.Fatalf("Run(Check: %v): %v", check, err)
		}
		return res
	}
	if res := run(false); len(res.Files) != 1 || res.Files[0].Status != Written {
		t.Fatalf("first run: %+v, want the file written", res.Files)
	}

	// go generate lists the files of a package and then reads each for directives; a
	// file it listed and a directive removed fails it. The tag generate it sets must
	// keep the generated file off its list.
	cmd := exec.Command("go", "list", "-tags=generate", "-f", "{{.GoFiles}}", ".")
	cmd.Dir, cmd.Env = pkg, env
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "[doc.go p.go]\n" {
		t.Errorf("go list -tags=generate: %v, %s; want [doc.go p.go], without the generated file", err, out)
	}

	writeFile(t, filepath.Join(pkg, "p.go"), []byte("package p\n\n// Only is no longer a task.\nfunc Only() error { return nil }\n"))
	res := run(true)
	if len(res.Files) != 1 || res.Files[0].Status != Orphaned || !strings.HasPrefix(res.Files[0].Diff, "--- a/"+DefaultOutput+"\n+++ /dev/null\n@@ -1,") {
		t.Errorf("check with the last task gone: %+v, want the file orphaned with a diff removing it", res.Files)
	}
	if _, err := os.Stat(gen); err != nil {
		t.Fatalf("check removed the file: %v", err)
	}
	if res := run(false); len(res.Files) != 1 || res.Files[0].Status != Removed {
		t.Errorf("run with the last task gone: %+v, want the file removed", res.Files)
	}
	if _, err := os.Stat(gen); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the generated file is still there: %v", err)
	}
	if res := run(false); len(res.Files) != 0 {
		t.Errorf("second run: %+v, want nothing to do", res.Files)
	}
	if res := run(true); res.OutOfDate() || len(res.Files) != 0 {
		t.Errorf("check after the removal: %+v, want nothing out of date", res.Files)
	}
}

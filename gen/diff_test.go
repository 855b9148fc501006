package gen

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// numbered returns lines "l<from>" to "l<to>", each with its newline: distinct lines, so
// that a diff between two such texts has one shortest edit script only and GNU diff
// must print exactly what unifiedDiff prints.
func numbered(from, to int) string {
	var b strings.Builder
	for i := from; i <= to; i++ {
		fmt.Fprintf(&b, "l%d\n", i)
	}
	return b.String()
}

// diffCase is a pair of texts to diff.
type diffCase struct {
	name     string
	old, new string
}

// diffCases have unique shortest edit scripts.
var diffCases = []diffCase{
	{"equal", numbered(1, 10), numbered(1, 10)},
	{"insert at the start", numbered(1, 10), "new\n" + numbered(1, 10)},
	{"insert in the middle", numbered(1, 10), numbered(1, 5) + "new1\nnew2\n" + numbered(6, 10)},
	{"insert at the end", numbered(1, 10), numbered(1, 10) + "new\n"},
	{"delete at the start", numbered(1, 10), numbered(3, 10)},
	{"delete in the middle", numbered(1, 10), numbered(1, 4) + numbered(6, 10)},
	{"delete at the end", numbered(1, 10), numbered(1, 9)},
	{"change at the start", numbered(1, 10), "new\n" + numbered(2, 10)},
	{"change in the middle", numbered(1, 10), numbered(1, 4) + "new5\nnew6\nnew7\n" + numbered(8, 10)},
	{"change at the end", numbered(1, 10), numbered(1, 9) + "new\n"},
	{"changes six lines apart share a hunk", numbered(1, 20), numbered(1, 2) + "x3\n" + numbered(4, 9) + "x10\n" + numbered(11, 20)},
	{"changes seven lines apart get a hunk each", numbered(1, 20), numbered(1, 2) + "x3\n" + numbered(4, 10) + "x11\n" + numbered(12, 20)},
	{"adjacent changes", numbered(1, 12), numbered(1, 4) + numbered(6, 6) + "new\n" + numbered(7, 12)},
	{"distant hunks after lines removed", numbered(1, 150), numbered(1, 4) + numbered(9, 110) + "x111\n" + numbered(112, 140) + "new\n" + numbered(141, 150)},
	{"distant hunks after lines added", numbered(1, 150), numbered(1, 4) + "a\nb\nc\nd\n" + numbered(5, 110) + "x111\n" + numbered(112, 150)},
	{"three hunks", numbered(1, 60), "x1\n" + numbered(2, 30) + numbered(32, 59) + "x60\n"},
	{"old empty", "", numbered(1, 3)},
	{"new empty", numbered(1, 3), ""},
	{"one line each", "a\n", "b\n"},
	{"everything replaced", numbered(1, 5), numbered(6, 9)},
	{"only a newline", "", "\n"},
	{"no newline at the end of either", numbered(1, 6) + "l7", numbered(1, 2) + "new\n" + numbered(4, 6) + "l7"},
	{"newline added at the end", numbered(1, 6) + "l7", numbered(1, 7)},
	{"newline removed at the end", numbered(1, 7), numbered(1, 6) + "l7"},
	{"unterminated last line changed", numbered(1, 6) + "l7", numbered(1, 6) + "x7"},
	{"line inserted before an unterminated last line", numbered(1, 6) + "l7", numbered(1, 6) + "new\nl7"},
	{"unterminated line only", "a", "b"},
	{"old empty, new unterminated", "", "a"},
	{"CRLF lines", "a\r\nb\r\nc\r\n", "a\r\nB\r\nc\r\n"},
}

// requireTool returns the path of a tool the diff tests check against. A missing tool
// fails the test: skipping would pass without the output ever being checked.
func requireTool(t *testing.T, name, versionMark string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is needed to check the -check diffs: install it (Debian: apt-get install diffutils patch git; make test installs them)", name)
	}
	out, err := exec.Command(path, "--version").CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte(versionMark)) {
		t.Fatalf("%s --version: %v, %q; want %q (install %s)", path, err, out, versionMark, versionMark)
	}
	return path
}

func TestUnifiedDiffIsWhatGNUDiffPrints(t *testing.T) {
	diff := requireTool(t, "diff", "GNU diffutils")
	for _, c := range diffCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "old"), []byte(c.old))
			writeFile(t, filepath.Join(dir, "new"), []byte(c.new))
			cmd := exec.Command(diff, "-u", "--label", "a/f.go", "--label", "b/f.go", "old", "new")
			cmd.Dir = dir
			want, err := cmd.Output()
			if code := cmd.ProcessState.ExitCode(); code > 1 {
				t.Fatalf("diff: %v", err)
			}
			if got := unifiedDiff("a/f.go", "b/f.go", []byte(c.old), []byte(c.new)); got != string(want) {
				t.Errorf("unifiedDiff =\n%s\nGNU diff -u =\n%s", got, want)
			}
		})
	}
}

// patchSet is texts diffed into one patch, as taskgen -check prints them one after
// another, and applied to a directory holding the old texts.
type patchSet struct {
	names    []string
	old, new map[string]*string // nil: no such file
}

func (s *patchSet) add(name string, old, new *string) {
	if s.old == nil {
		s.old, s.new = map[string]*string{}, map[string]*string{}
	}
	s.names = append(s.names, name)
	s.old[name], s.new[name] = old, new
}

// patch is the diffs of every file, with the labels checkStatus uses.
func (s *patchSet) patch() string {
	var b strings.Builder
	for _, name := range s.names {
		old, new := s.old[name], s.new[name]
		p := filePlan{}
		if old != nil {
			p.old = []byte(*old)
		}
		if new != nil {
			p.new = []byte(*new)
		}
		if bytesEqual(p.old, p.new) {
			continue
		}
		_, diff := p.checkStatus(name)
		b.WriteString(diff)
	}
	return b.String()
}

// apply writes the old texts into a new directory, runs the command there with the patch
// on its standard input, and fails unless each file ends up holding its new text (or is
// gone) and the command reports no hunk applied at an offset, with fuzz or not at all.
func (s *patchSet) apply(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	dir := t.TempDir()
	for n, old := range s.old {
		if old != nil {
			writeFile(t, filepath.Join(dir, n), []byte(*old))
		}
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdin = strings.NewReader(s.patch())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	for _, word := range []string{"offset", "fuzz", "FAILED", "Hunk"} {
		if bytes.Contains(out, []byte(word)) {
			t.Errorf("%s %s did not apply the patch exactly:\n%s", name, strings.Join(args, " "), out)
			break
		}
	}
	for _, n := range s.names {
		got, err := os.ReadFile(filepath.Join(dir, n))
		switch want := s.new[n]; {
		case want == nil && err == nil:
			t.Errorf("%s: %s should have been removed", name, n)
		case want == nil:
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case string(got) != *want:
			t.Errorf("%s: %s =\n%q\nwant\n%q\npatch:\n%s", name, n, got, *want, unifiedDiff("a/"+n, "b/"+n, []byte(*s.old[n]), []byte(*want)))
		}
	}
}

// applyAll applies s with GNU patch and with git apply.
func (s *patchSet) applyAll(t *testing.T) {
	t.Helper()
	patch := requireTool(t, "patch", "GNU patch")
	git := requireTool(t, "git", "git version")
	t.Run("patch -p1", func(t *testing.T) {
		s.apply(t, os.Environ(), patch, "-p1", "--batch", "--fuzz=0", "--no-backup-if-mismatch")
	})
	t.Run("git apply", func(t *testing.T) {
		// Outside any repository and without the user's configuration, git apply is a
		// stricter patch.
		env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CEILING_DIRECTORIES="+os.TempDir())
		s.apply(t, env, git, "apply", "-v", "--whitespace=nowarn")
	})
}

func TestUnifiedDiffAppliesWithPatchAndGitApply(t *testing.T) {
	var s patchSet
	for i, c := range diffCases {
		s.add(fmt.Sprintf("case%02d.txt", i), &c.old, &c.new)
	}
	created, removed := numbered(1, 5), numbered(1, 4)+"l5"
	s.add("missing.go", nil, &created)
	s.add("orphaned.go", &removed, nil)
	s.applyAll(t)
}

func TestUnifiedDiffOfRandomEditsApplies(t *testing.T) {
	rng := rand.New(rand.NewSource(13))
	// Few distinct lines, so that the texts repeat lines as code does ("}", blank
	// lines) and many edit scripts are equally short.
	vocabulary := []string{"}\n", "\n", "\treturn nil\n", "\tif err != nil {\n", "func F() {\n", "x\n"}
	randomLine := func() string {
		if rng.Intn(3) == 0 {
			return vocabulary[rng.Intn(len(vocabulary))]
		}
		return fmt.Sprintf("line %d\n", rng.Intn(40))
	}
	base := make([]string, 300)
	for i := range base {
		base[i] = randomLine()
	}
	var s patchSet
	for i := 0; i < 200; i++ {
		lines := append([]string(nil), base...)
		for n := 1 + rng.Intn(8); n > 0; n-- {
			at := rng.Intn(len(lines) + 1)
			switch rng.Intn(3) {
			case 0: // insert
				var ins []string
				for k := 1 + rng.Intn(5); k > 0; k-- {
					ins = append(ins, randomLine())
				}
				lines = append(lines[:at], append(ins, lines[at:]...)...)
			case 1: // delete
				end := min(len(lines), at+1+rng.Intn(5))
				lines = append(lines[:at], lines[end:]...)
			case 2: // replace
				end := min(len(lines), at+1+rng.Intn(3))
				for j := at; j < end; j++ {
					lines[j] = randomLine()
				}
			}
		}
		old, new := strings.Join(base, ""), strings.Join(lines, "")
		switch rng.Intn(10) {
		case 0:
			old = strings.TrimSuffix(old, "\n")
		case 1:
			new = strings.TrimSuffix(new, "\n")
		}
		s.add(fmt.Sprintf("random%03d.txt", i), &old, &new)
	}
	s.applyAll(t)

	// Shortest also means no longer than GNU diff's.
	diff := requireTool(t, "diff", "GNU diffutils")
	dir := t.TempDir()
	for _, name := range s.names {
		writeFile(t, filepath.Join(dir, "old", name), []byte(*s.old[name]))
		writeFile(t, filepath.Join(dir, "new", name), []byte(*s.new[name]))
	}
	cmd := exec.Command(diff, "-u", "old", "new")
	cmd.Dir = dir
	gnu, err := cmd.Output()
	if cmd.ProcessState.ExitCode() != 1 {
		t.Fatalf("diff -u old new: %v", err)
	}
	ours := s.patch()
	if got, want := changedLines(ours), changedLines(string(gnu)); got > want {
		t.Errorf("unifiedDiff deletes and inserts %d lines, GNU diff %d", got, want)
	}
}

// changedLines counts the deleted and inserted lines of a unified diff.
func changedLines(diff string) int {
	n := 0
	for _, line := range strings.Split(diff, "\n") {
		if (strings.HasPrefix(line, "-") && !strings.HasPrefix(line, "--- ")) || (strings.HasPrefix(line, "+") && !strings.HasPrefix(line, "+++ ")) {
			n++
		}
	}
	return n
}

func TestDiffLinesFindsAShortestEditScript(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for i := 0; i < 3000; i++ {
		a := make([]string, rng.Intn(14))
		b := make([]string, rng.Intn(14))
		for _, s := range [][]string{a, b} {
			for j := range s {
				s[j] = string(rune('a' + rng.Intn(3)))
			}
		}
		changes := diffLines(a, b)
		edits := 0
		for _, c := range changes {
			edits += c.a1 - c.a0 + c.b1 - c.b0
		}
		if want := len(a) + len(b) - 2*lcsLength(a, b); edits != want {
			t.Fatalf("diffLines(%q, %q) = %v: %d lines deleted and inserted, want %d", a, b, changes, edits, want)
		}
		// Applied, the changes turn a into b.
		var got []string
		i := 0
		for _, c := range changes {
			got = append(got, a[i:c.a0]...)
			got = append(got, b[c.b0:c.b1]...)
			i = c.a1
		}
		got = append(got, a[i:]...)
		if strings.Join(got, ",") != strings.Join(b, ",") {
			t.Fatalf("diffLines(%q, %q) = %v, which makes %q", a, b, changes, got)
		}
	}
}

// lcsLength is the length of a longest common subsequence, by the textbook table.
func lcsLength(a, b []string) int {
	row := make([]int, len(b)+1)
	for i := range a {
		prev := 0 // row[j] of the previous row
		for j := range b {
			cur := row[j+1]
			if a[i] == b[j] {
				row[j+1] = prev + 1
			} else {
				row[j+1] = max(row[j+1], row[j])
			}
			prev = cur
		}
	}
	return row[len(b)]
}

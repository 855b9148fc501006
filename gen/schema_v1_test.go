package gen

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The PreviousSchema the generator writes now is, task for task, the Schema the older
// taskgen wrote (testdata/v1schemas.txt, taken from the golden files and the example at
// the last commit before Def.Wire): what lets a worker run the envelopes that taskgen's
// producers queued.
func TestPreviousSchemaIsTheV1Fingerprint(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "testdata", "v1schemas.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pattern := regexp.MustCompile(`(?s)Kind:\s+"([^"]+)",.*?PreviousSchema:\s+"(v1:[0-9a-f]+)"`)
	now := map[string]map[string]string{} // file → kind → PreviousSchema
	checked := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		fields := strings.Fields(line)
		file, kind, want := fields[0], fields[1], fields[2]
		if now[file] == nil {
			src, err := os.ReadFile(filepath.Join("..", filepath.FromSlash(file)))
			if err != nil {
				t.Fatal(err)
			}
			now[file] = map[string]string{}
			// A Def's keys are in the order of emit's def: Kind first, PreviousSchema
			// last but Caller; the next Def begins with its own Kind.
			for _, def := range regexp.MustCompile(`task[0-9]*\.Def{`).Split(string(src), -1)[1:] {
				if m := pattern.FindStringSubmatch(def); m != nil {
					now[file][m[1]] = m[2]
				}
			}
		}
		if got := now[file][kind]; got != want {
			t.Errorf("%s: task %s: PreviousSchema %q, want %q, the older taskgen's Schema", file, kind, got, want)
		}
		checked++
	}
	if checked < 40 {
		t.Errorf("checked %d tasks, want the whole list", checked)
	}
}

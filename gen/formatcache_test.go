package gen

import (
	"os"
	"path/filepath"
	"testing"
)

// The format cache spares formatting an unchanged file and nothing else: a file edited by
// hand is stale whatever the cache holds, and TASKGEN_CACHE=off writes no entry.
func TestTheFormatCacheSparesOnlyAnUnchangedFile(t *testing.T) {
	cacheHome := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cacheHome) // os.UserCacheDir on Linux
	dir, env := tempModule(t, map[string]string{
		"p/p.go": "package p\n\n//task:p.send\nfunc Send(to string) error { return nil }\n",
	})
	pkg := filepath.Join(dir, "p")
	gen := filepath.Join(pkg, DefaultOutput)
	run := func(env []string, check bool) *Result {
		t.Helper()
		res, err := Run(Config{Dir: pkg, Env: env, Check: check})
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		return res
	}
	entries := func() int {
		des, _ := os.ReadDir(filepath.Join(cacheHome, "taskgen", "format"))
		return len(des)
	}
	if res := run(env, false); res.Files[0].Status != Written || entries() != 1 {
		t.Fatalf("first run: %+v with %d cache entries, want the file written and one entry", res.Files, entries())
	}
	want, err := os.ReadFile(gen)
	if err != nil {
		t.Fatal(err)
	}
	if res := run(env, true); res.Files[0].Status != Unchanged {
		t.Fatalf("second run: %+v, want the file unchanged", res.Files)
	}

	writeFile(t, gen, append(append([]byte(nil), want...), "// edited by hand\n"...))
	if res := run(env, true); res.Files[0].Status != Stale {
		t.Errorf("a hand-edited file: %+v, want it stale", res.Files)
	}
	if res := run(env, false); res.Files[0].Status != Written {
		t.Errorf("regenerating a hand-edited file: %+v, want it written", res.Files)
	}
	if got, _ := os.ReadFile(gen); string(got) != string(want) {
		t.Errorf("regenerated file differs from the first:\n%s", got)
	}

	if err := os.RemoveAll(filepath.Join(cacheHome, "taskgen")); err != nil {
		t.Fatal(err)
	}
	off := append(append([]string(nil), env...), formatCacheEnv+"=off")
	if res := run(off, true); res.Files[0].Status != Unchanged || entries() != 0 {
		t.Errorf("with %s=off: %+v with %d cache entries, want unchanged and none", formatCacheEnv, res.Files, entries())
	}
}

// emit takes the file on disk as it is when the cache says that formatting this
// rendering gives exactly it, and formats when the file has any other digest.
func TestEmitReusesTheFileTheCacheVouchesFor(t *testing.T) {
	c := &formatCache{dir: t.TempDir(), identity: []byte("test")}
	rendering, formatted := []byte("package p\nvar x=1\n"), []byte("package p\n\nvar x = 1\n")
	if c.formatted(rendering, formatted) {
		t.Fatal("an empty cache vouched for a file")
	}
	c.store(rendering, formatted)
	if !c.formatted(rendering, formatted) {
		t.Error("the cache does not vouch for what it stored")
	}
	if c.formatted(rendering, []byte("package p\n\nvar x = 2\n")) {
		t.Error("the cache vouched for another file")
	}
	if c.formatted([]byte("package p\nvar x=2\n"), formatted) {
		t.Error("the cache vouched for another rendering")
	}
	other := &formatCache{dir: c.dir, identity: []byte("another build")}
	if other.formatted(rendering, formatted) {
		t.Error("another build of the generator reused the entry")
	}
}

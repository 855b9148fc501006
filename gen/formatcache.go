package gen

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// formatCacheEnv turns the format cache off when set to "off".
const formatCacheEnv = "TASKGEN_CACHE"

// formatCacheMaxAge is how long an unused entry of the format cache is kept.
const formatCacheMaxAge = 7 * 24 * time.Hour

// formatCache lets a run whose output is unchanged skip formatting it. Formatting is most
// of what the generator costs beyond loading the package (BENCHMARKS.md), and a repeated
// go generate, or taskgen -check in CI, usually finds every file up to date.
//
// An entry maps the unformatted rendering of a package (jennifer's output, which holds
// everything the generated file says) to the SHA-256 of the formatted file. When the file
// on disk has that digest, it is what formatting would write, and it is used as it is.
// The key also holds the identity of this generator binary (path, size, modification
// time) and the Go version it was built with, so a taskgen built anew, whose formatting
// or post-processing may differ, never reuses another build's entries. An entry is 32
// bytes in the user's cache directory (os.UserCacheDir()/taskgen/format); entries unused
// for formatCacheMaxAge are removed now and then. TASKGEN_CACHE=off turns it off.
type formatCache struct {
	dir      string
	identity []byte
}

// openFormatCache returns the format cache, or nil when it is off or unavailable: then
// every run formats.
func openFormatCache(env []string) *formatCache {
	if lookupEnv(env, formatCacheEnv) == "off" {
		return nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return nil
	}
	st, err := os.Stat(exe)
	if err != nil {
		return nil
	}
	return &formatCache{
		dir:      filepath.Join(base, "taskgen", "format"),
		identity: fmt.Appendf(nil, "%s\x00%d\x00%d\x00%s\x00", exe, st.Size(), st.ModTime().UnixNano(), runtime.Version()),
	}
}

func (c *formatCache) path(unformatted []byte) string {
	h := sha256.New()
	h.Write(c.identity)
	h.Write(unformatted)
	return filepath.Join(c.dir, hex.EncodeToString(h.Sum(nil)))
}

// formatted reports whether existing is what formatting unformatted gives, as recorded.
func (c *formatCache) formatted(unformatted, existing []byte) bool {
	if c == nil || existing == nil {
		return false
	}
	path := c.path(unformatted)
	want, err := os.ReadFile(path)
	if err != nil {
		return false // no entry: nothing to hash the file against
	}
	if got := sha256.Sum256(existing); !bytes.Equal(want, got[:]) {
		return false
	}
	now := time.Now()
	_ = os.Chtimes(path, now, now) // in use: keep it
	return true
}

// store records that formatting unformatted gave formatted. Failures are ignored: the
// cache only ever saves work.
func (c *formatCache) store(unformatted, formatted []byte) {
	if c == nil {
		return
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return
	}
	sum := sha256.Sum256(formatted)
	path := c.path(unformatted)
	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if err != nil {
		return
	}
	_, werr := tmp.Write(sum[:])
	if cerr := tmp.Close(); werr != nil || cerr != nil || os.Rename(tmp.Name(), path) != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	if rand.IntN(64) == 0 {
		c.trim()
	}
}

// trim removes the entries unused for formatCacheMaxAge.
func (c *formatCache) trim() {
	entries, err := os.ReadDir(c.dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > formatCacheMaxAge {
			_ = os.Remove(filepath.Join(c.dir, e.Name()))
		}
	}
}

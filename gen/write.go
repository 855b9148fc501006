package gen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
)

// filePlan is the intended state of one generated file.
type filePlan struct {
	pkgPath string
	path    string
	old     []byte // current content; nil when the file does not exist
	new     []byte // generated content; nil when the package has no tasks
}

// plan reads the current generated files and pairs them with the new content. It returns
// a refusal for every output path of a package with tasks that holds a file taskgen did
// not generate; outs may come from a run with declaration errors, so that these refusals
// are reported together with them.
func plan(dir, output string, outs []output) ([]filePlan, []Error, error) {
	var plans []filePlan
	var refusals []Error
	for _, o := range outs {
		if o.dir == "" {
			continue
		}
		path := filepath.Join(o.dir, output)
		old, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			old = nil
		case err != nil:
			return nil, nil, err
		case !isGenerated(old):
			if !o.tasks {
				continue // not ours, and nothing to write
			}
			refusals = append(refusals, Error{
				Pos: token.Position{Filename: relPath(dir, path), Line: 1, Column: 1},
				Msg: fmt.Sprintf("%v (its first line is not %q): rename it, or choose another file name with -o", errNotGenerated, Header),
			})
			continue
		}
		if old == nil && o.src == nil {
			continue
		}
		plans = append(plans, filePlan{pkgPath: o.pkgPath, path: path, old: old, new: o.src})
	}
	return plans, refusals, nil
}

// isGenerated reports whether content starts with the generated-file header line.
func isGenerated(content []byte) bool {
	line, _, err := bufio.NewReader(bytes.NewReader(content)).ReadLine()
	return err == nil && string(bytes.TrimSuffix(line, []byte("\r"))) == Header
}

func bytesEqual(a, b []byte) bool {
	return (a == nil) == (b == nil) && bytes.Equal(a, b)
}

// checkStatus classifies an out-of-date file and diffs it; rel is its printed path.
func (p filePlan) checkStatus(rel string) (Status, string) {
	label := filepath.ToSlash(rel)
	from, to := "a/"+label, "b/"+label
	status := Stale
	switch {
	case p.old == nil:
		from, status = "/dev/null", Missing
	case p.new == nil:
		to, status = "/dev/null", Orphaned
	}
	return status, unifiedDiff(from, to, p.old, p.new)
}

// writeFileAtomic replaces path with content: it writes a temporary file in the same
// directory (named so that the go command ignores it) and renames it over path. The mode
// of an existing file is kept; a new file is 0644.
func writeFileAtomic(path string, content []byte) (err error) {
	mode := fs.FileMode(0o644)
	if info, err := os.Stat(path); err == nil {
		mode = info.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(content); err != nil {
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

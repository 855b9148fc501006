package gen

import (
	"fmt"
	"go/token"
	"path/filepath"
	"sort"
	"strings"
)

// Error is one problem found in the packages, at a source position.
type Error struct {
	// Pos is where the problem is. Run makes Pos.Filename relative to Config.Dir when
	// the file is under it. A zero Pos (no file) is a problem of the run as a whole.
	Pos token.Position
	// Msg says what is wrong and, where it can, what to do about it.
	Msg string
}

// Error formats e as "path:line:col: message", the form editors and CI annotate.
func (e Error) Error() string {
	if e.Pos.Filename == "" {
		return e.Msg
	}
	if e.Pos.Column == 0 {
		return fmt.Sprintf("%s:%d: %s", e.Pos.Filename, e.Pos.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.Pos.Filename, e.Pos.Line, e.Pos.Column, e.Msg)
}

// Errors is the error Run returns when it found problems. Nothing was written.
type Errors struct {
	// Load is true when packages could not be loaded (bad patterns, syntax or type errors
	// unrelated to the generated names): the command exits 2 for these. When false, the
	// packages loaded but declare invalid tasks: the command exits 1.
	Load bool
	// List holds every problem of the run, sorted by position.
	List []Error
}

// Error joins the problems, one per line.
func (e *Errors) Error() string {
	lines := make([]string, len(e.List))
	for i, err := range e.List {
		lines[i] = err.Error()
	}
	return strings.Join(lines, "\n")
}

// errorList collects positioned errors of one stage.
type errorList []Error

func (l *errorList) add(fset *token.FileSet, pos token.Pos, format string, args ...any) {
	var p token.Position
	if pos.IsValid() && fset != nil {
		p = fset.Position(pos)
	}
	*l = append(*l, Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

// sortErrors orders errors by file, line and column and drops exact duplicates.
func sortErrors(list []Error) []Error {
	sort.SliceStable(list, func(i, j int) bool {
		a, b := list[i].Pos, list[j].Pos
		if a.Filename != b.Filename {
			return a.Filename < b.Filename
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		if a.Column != b.Column {
			return a.Column < b.Column
		}
		return list[i].Msg < list[j].Msg
	})
	out := list[:0]
	for i, e := range list {
		if i > 0 && e == list[i-1] {
			continue
		}
		out = append(out, e)
	}
	return out
}

// relPath returns path relative to dir when path is under dir, else path unchanged.
func relPath(dir, path string) string {
	if dir == "" || path == "" || !filepath.IsAbs(path) {
		return path
	}
	rel, err := filepath.Rel(dir, path)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return path
	}
	return rel
}

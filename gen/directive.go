package gen

import (
	"fmt"
	"go/ast"
	"go/token"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/taskgen/taskgen/internal/taskspec"
)

// directivePrefix starts a task directive (see taskspec.DirectivePrefix, the one
// definition of the rule, which package taskvet applies too).
const directivePrefix = taskspec.DirectivePrefix

// validOptions is appended to every option error, so that the fix is in the message.
const validOptions = `valid options are queue=NAME, retries=N, timeout=DURATION, lifespan=p1,p2, schedule="CRON"`

// mangledMessage is the error for a directive that lost its form, usually to gofmt.
const mangledMessage = `//task must be written //task:<kind> with no space after // (gofmt turns "//task" into "// task")`

// directive is a parsed //task: line.
type directive struct {
	kind    string
	queue   string        // "" means the default queue
	retries int           // meaningful when retriesSet
	timeout time.Duration // 0 means the worker's default
	// lifespan lists the parameters named by lifespan=, in the order written.
	lifespan []string
	// retriesSet records whether retries= was given.
	retriesSet bool
	// lifespanOffset is the byte offset of the lifespan= option in the comment, for errors.
	lifespanOffset int
	// schedule is the schedule= option's spec, unquoted ("" when not given), and
	// scheduleOffset the byte offset of the option in the comment, for errors.
	schedule       string
	scheduleOffset int
}

// directiveError is a problem at a byte offset of a directive comment.
type directiveError struct {
	offset int
	msg    string
}

// parseDirective parses one comment line that starts with directivePrefix. It reports
// every problem of the line, each at the offset of the offending word.
func parseDirective(text string) (directive, []directiveError) {
	var d directive
	var errs []directiveError
	fail := func(offset int, format string, args ...any) {
		errs = append(errs, directiveError{offset: offset, msg: fmt.Sprintf(format, args...)})
	}
	words := splitWords(text, len(directivePrefix))
	if len(words) == 0 || words[0].offset != len(directivePrefix) {
		fail(len(directivePrefix), "missing task kind: write //task:<kind> [key=value ...] with the kind right after the colon")
		return d, errs
	}
	d.kind = words[0].text
	words = words[1:]
	if err := taskspec.CheckKind(d.kind); err != nil {
		fail(len(directivePrefix), "%v", err)
	}
	seen := map[string]bool{}
	for _, w := range words {
		key, value, ok := strings.Cut(w.text, "=")
		if !ok {
			fail(w.offset, "malformed option %q: write key=value; %s", w.text, validOptions)
			continue
		}
		switch key {
		case "queue", "retries", "timeout", "lifespan", "schedule":
		default:
			fail(w.offset, "unknown option %q; %s", key, validOptions)
			continue
		}
		if seen[key] {
			fail(w.offset, "duplicate option %q; %s", key, validOptions)
			continue
		}
		seen[key] = true
		valueOffset := w.offset + len(key) + 1
		quoted := strings.HasPrefix(value, `"`)
		if quoted {
			inner, ok := unquote(value)
			if !ok {
				fail(valueOffset, `malformed quoted value %s: write key="value" with one closing quote and no quote inside; %s`, value, validOptions)
				continue
			}
			value = inner
			valueOffset++
		}
		switch key {
		case "queue":
			if err := taskspec.CheckQueue(value); err != nil {
				fail(w.offset, "%v; %s", err, validOptions)
				continue
			}
			d.queue = value
		case "retries":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || strings.TrimLeft(value, "0123456789") != "" {
				fail(w.offset, "invalid retries %q: want a whole number >= 0; %s", value, validOptions)
				continue
			}
			d.retries, d.retriesSet = n, true
		case "timeout":
			t, err := time.ParseDuration(value)
			if err != nil || t <= 0 {
				fail(w.offset, "invalid timeout %q: want a positive Go duration such as 30s or 1m30s; %s", value, validOptions)
				continue
			}
			d.timeout = t
		case "lifespan":
			d.lifespanOffset = w.offset
			names := strings.Split(value, ",")
			bad := false
			dup := map[string]bool{}
			for _, name := range names {
				switch {
				case name == "_" || !token.IsIdentifier(name):
					fail(w.offset, "invalid lifespan %q: want a comma-separated list of parameter names; %s", value, validOptions)
					bad = true
				case dup[name]:
					fail(w.offset, "invalid lifespan %q: %s is listed twice; %s", value, name, validOptions)
					bad = true
				}
				if bad {
					break
				}
				dup[name] = true
			}
			if !bad {
				d.lifespan = names
			}
		case "schedule":
			if err := taskspec.CheckSchedule(value); err != nil {
				hint := ""
				if !quoted {
					hint = `; quote a spec that has spaces: schedule="0 6 * * *"`
				}
				fail(valueOffset, "%v%s", err, hint)
				continue
			}
			d.schedule, d.scheduleOffset = value, w.offset
		}
	}
	return d, errs
}

// word is a whitespace-separated word of a comment and its byte offset.
type word struct {
	offset int
	text   string
}

// splitWords splits text[from:] at spaces and tabs, keeping the offsets. A quoted value
// (key="...") is part of its word, spaces and all: a cron spec has spaces.
func splitWords(text string, from int) []word {
	return scanWords(text, from, func(r rune) bool { return r == ' ' || r == '\t' })
}

// fields is strings.Fields, but keeping a quoted value (key="...") in its word, as
// splitWords does.
func fields(s string) []string {
	var out []string
	for _, w := range scanWords(s, 0, unicode.IsSpace) {
		out = append(out, w.text)
	}
	return out
}

// scanWords splits text[from:] at the runes sep reports, except inside a quoted value: a
// '"' right after a word's '=' runs to the next '"' (or to the end of the text, for
// parseDirective to report).
func scanWords(text string, from int, sep func(rune) bool) []word {
	var words []word
	start := -1
	for i := from; i < len(text); {
		r, size := utf8.DecodeRuneInString(text[i:])
		switch {
		case sep(r):
			if start >= 0 {
				words = append(words, word{offset: start, text: text[start:i]})
				start = -1
			}
		case start < 0:
			start = i
		}
		if r == '"' && start >= 0 && i > start && text[i-1] == '=' {
			end := strings.IndexByte(text[i+1:], '"')
			if end < 0 {
				i = len(text)
				continue
			}
			size = end + 2
		}
		i += size
	}
	if start >= 0 {
		words = append(words, word{offset: start, text: text[start:]})
	}
	return words
}

// unquote returns the text between the quotes of a quoted value, "..." with no quote
// inside; ok is false for anything else.
func unquote(value string) (inner string, ok bool) {
	if len(value) < 2 || value[0] != '"' || value[len(value)-1] != '"' {
		return "", false
	}
	inner = value[1 : len(value)-1]
	return inner, !strings.Contains(inner, `"`)
}

// misspelledMessage is the error for a line that is almost a directive: a misspelled,
// capitalised or mis-punctuated "task".
const misspelledMessage = `not a task directive: write //task:<kind> [options], with lower-case "task", a colon, and the kind right after it`

// spacedMisspelledMessage is the error for a misspelled directive that also has a space
// after //: what gofmt makes of "//Task:kind" or "//task.kind", which are not in Go's
// directive form, so gofmt treats them as prose.
const spacedMisspelledMessage = `not a task directive: write //task:<kind> [options] with no space after //, lower-case "task", a colon, and the kind right after it (gofmt adds that space to any line not in directive form)`

// directiveMistake returns the error for a line comment of a function's doc comment that
// was meant as a task directive but is not one, or "" for the directive itself and for
// prose. Such a line must never be skipped silently: the task would just not exist.
func directiveMistake(text string) string {
	if !strings.HasPrefix(text, "//") || strings.HasPrefix(text, directivePrefix) {
		return ""
	}
	rest := text[2:]
	trimmed := strings.TrimLeft(rest, " \t")
	if after, ok := strings.CutPrefix(trimmed, "task"); ok && strings.HasPrefix(strings.TrimLeft(after, " \t"), ":") && after[0] != ':' {
		return misspelledMessage // "//task :kind"
	}
	if isMangledDirective(text) {
		return mangledMessage
	}
	if trimmed == rest {
		// "//Task:kind", "//tasks:kind", "//task.kind", "//task-kind", "//TASK": the
		// form of a directive (no space after //) with the wrong word or punctuation.
		if after, ok := cutTaskWord(rest); ok && (after == "" || strings.ContainsRune(":.-", rune(after[0]))) {
			return misspelledMessage
		}
		// "//tsak:kind", "//taks:kind", "//tassk:kind": a typo in the word. Only in this
		// form, which gofmt keeps for a lower-case word: with a space after //, words
		// that close to "task" are prose ("// ask: ...", "// tag:v1").
		if word, kind, ok := cutTaskTypo(rest); ok {
			fix := directivePrefix + kind
			if kind == "" {
				fix += "<kind>"
			}
			return fmt.Sprintf("%q looks like a misspelled task directive; write %s", "//"+word+":"+kind, fix)
		}
		return ""
	}
	// "// Task:kind", "// task.kind", "// TASK-kind opt=v": gofmt's rewrite of the
	// misspellings above. Prose starts the same way ("// Task-based work", "// task.Caller
	// is ...", "// Tasks: see below"), so only a kind right after the punctuation,
	// followed by nothing but options, makes it a directive.
	if after, ok := cutTaskWord(trimmed); ok && after != "" && strings.ContainsRune(":.-", rune(after[0])) && isDirectiveTail(after[1:]) {
		return spacedMisspelledMessage
	}
	// "// task: kind opt=v": a space after the colon, the rest still in the directive's
	// shape (a kind, then only options); "// task: send the mail" is prose.
	if after, ok := strings.CutPrefix(trimmed, "task:"); ok && after != "" && unicode.IsSpace(rune(after[0])) && isDirectiveTail(strings.TrimLeft(after, " \t")) {
		return misspelledMessage
	}
	return ""
}

// cutTaskWord returns what follows s's leading word when that word is "task" or "tasks"
// in any case; ok is false for any other word ("tasking", "taskgen").
func cutTaskWord(s string) (after string, ok bool) {
	after = strings.TrimLeftFunc(s, func(r rune) bool { return r|0x20 >= 'a' && r|0x20 <= 'z' })
	name := s[:len(s)-len(after)]
	return after, strings.EqualFold(name, "task") || strings.EqualFold(name, "tasks")
}

// typoDistance is how far from "task" a directive's word may be to be taken for a typo
// of it: the optimal string alignment distance (letters inserted, deleted, replaced or
// two neighbours swapped, no letter edited twice), compared in lower case. Two catches
// "tsak", "taks", "tassk", "tsk" and "tasl"; three would take in prose such as "todo:".
const typoDistance = 2

// otherDirectiveWords are the words of //word: (and //word ) directives that Go and
// common tools own. A word listed here is never taken for a misspelled "task", however
// close to it: "//ts:" is two edits from "//task:". This is the one list of them; add a
// word here when a tool's directive is reported as a typo.
var otherDirectiveWords = map[string]bool{
	// The go command and the gc compiler.
	"go": true, "line": true, "build": true, "extern": true, "export": true, "cgo": true,
	"generate": true, "embed": true, "linkname": true, "noinline": true, "nosplit": true,
	"noescape": true, "norace": true, "wasmimport": true, "wasmexport": true,
	// Linters and other generators.
	"nolint": true, "lint": true, "ts": true,
}

// cutTaskTypo reports whether s, a comment's text after its //, is a word of ASCII
// letters, a colon and the rest ("tsak:email.send queue=q"), the word a typo of "task":
// within typoDistance of it, but neither "task" itself nor another tool's directive word.
// It returns the word and what follows the colon up to the first space or tab.
func cutTaskTypo(s string) (word, kind string, ok bool) {
	after := strings.TrimLeftFunc(s, func(r rune) bool { return r|0x20 >= 'a' && r|0x20 <= 'z' })
	word = s[:len(s)-len(after)]
	after, ok = strings.CutPrefix(after, ":")
	if !ok || word == "" {
		return "", "", false
	}
	lower := strings.ToLower(word)
	if lower == "task" || otherDirectiveWords[lower] || osaDistance(lower, "task") > typoDistance {
		return "", "", false
	}
	kind, _, _ = strings.Cut(strings.ReplaceAll(after, "\t", " "), " ")
	return word, kind, true
}

// osaDistance is the optimal string alignment distance between a and b, byte-wise: the
// fewest insertions, deletions, substitutions and swaps of adjacent bytes turning a into
// b, no byte edited twice.
func osaDistance(a, b string) int {
	if d := len(a) - len(b); d > typoDistance || -d > typoDistance {
		return max(d, -d) // at least that many insertions or deletions
	}
	// d[i][j] is the distance between a[:i] and b[:j].
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

// isDirectiveTail reports whether s is what follows "//task:" in a directive: a kind
// right at its start, then only key=value options. A kind ending in a full stop is the
// end of a sentence ("// task.go."), not a kind.
func isDirectiveTail(s string) bool {
	if s == "" || unicode.IsSpace(rune(s[0])) {
		return false
	}
	fields := fields(s)
	if taskspec.CheckKind(fields[0]) != nil || strings.HasSuffix(fields[0], ".") {
		return false
	}
	for _, f := range fields[1:] {
		if !strings.Contains(f, "=") {
			return false
		}
	}
	return true
}

// isMangledDirective reports whether a line comment looks like a task directive that lost
// its form: "//task" or "//task queue=x" (which gofmt rewrites into "// task ..."), or
// "// task", "// task:kind", "// task queue=x". Prose such as "// task queue workers ..."
// is not a directive: after "task " every word must be a key=value option.
func isMangledDirective(text string) bool {
	if !strings.HasPrefix(text, "//") || strings.HasPrefix(text, directivePrefix) {
		return false
	}
	rest := text[2:]
	if rest == "task" || strings.HasPrefix(rest, "task ") || strings.HasPrefix(rest, "task\t") {
		return true
	}
	trimmed := strings.TrimLeft(rest, " \t")
	if trimmed == rest {
		return false
	}
	switch {
	case trimmed == "task":
		return true
	case strings.HasPrefix(trimmed, "task:"):
		after := trimmed[len("task:"):]
		return after != "" && !unicode.IsSpace(rune(after[0]))
	case strings.HasPrefix(trimmed, "task ") || strings.HasPrefix(trimmed, "task\t"):
		fields := fields(trimmed[len("task"):])
		for _, f := range fields {
			if !strings.Contains(f, "=") {
				return false
			}
		}
		return len(fields) > 0
	}
	return false
}

// article puts "a" or "an" before a declaration keyword: "a type", "an import".
func article(word string) string {
	if strings.ContainsRune("aeiou", rune(word[0])) {
		return "an " + word
	}
	return "a " + word
}

// funcDirective is a task directive found on a function or method declaration.
type funcDirective struct {
	file    *ast.File
	decl    *ast.FuncDecl
	comment *ast.Comment
	dir     directive
	// parsed is false for a function that only carries a mangled directive: its names
	// are reserved but it is not a task.
	parsed bool
}

// findDirectives returns the task directives of files, sorted by file name and then by
// position, and an error for every malformed, mangled or misplaced directive. It reads
// CommentGroup.List, not Text(): Text drops directive lines.
func findDirectives(fset *token.FileSet, files []*ast.File) ([]*funcDirective, errorList) {
	var found []*funcDirective
	var errs errorList
	for _, file := range sortedFiles(fset, files) {
		funcDocs := map[*ast.CommentGroup]*ast.FuncDecl{}
		otherDocs := map[*ast.CommentGroup]string{}
		for _, decl := range file.Decls {
			switch decl := decl.(type) {
			case *ast.FuncDecl:
				if decl.Doc != nil {
					funcDocs[decl.Doc] = decl
				}
			case *ast.GenDecl:
				what := decl.Tok.String()
				if decl.Doc != nil {
					otherDocs[decl.Doc] = what
				}
				for _, spec := range decl.Specs {
					switch spec := spec.(type) {
					case *ast.TypeSpec:
						if spec.Doc != nil {
							otherDocs[spec.Doc] = what
						}
					case *ast.ValueSpec:
						if spec.Doc != nil {
							otherDocs[spec.Doc] = what
						}
					}
				}
			}
		}
		for _, group := range file.Comments {
			decl := funcDocs[group]
			var proper, mangled []*ast.Comment
			for _, c := range group.List {
				if strings.HasPrefix(c.Text, directivePrefix) {
					proper = append(proper, c)
					continue
				}
				// Mangled and misspelled directives are looked for on functions only,
				// where they lose a task. Anywhere else a directive would make no task
				// even if spelled right (spelled right, it is reported as misplaced), and
				// comments there, in function bodies and between declarations, are
				// mostly prose.
				if decl == nil {
					continue
				}
				if msg := directiveMistake(c.Text); msg != "" {
					mangled = append(mangled, c)
					errs.add(fset, c.Slash, "%s", msg)
				}
			}
			if decl == nil {
				for _, c := range proper {
					if what, ok := otherDocs[group]; ok {
						errs.add(fset, c.Slash, "//task: directive on %s declaration: only functions and methods can be tasks", article(what))
					} else {
						errs.add(fset, c.Slash, "//task: directive is not attached to a function: put it in the function's doc comment, directly above func with no blank line")
					}
				}
				continue
			}
			switch {
			case len(proper) > 0:
				for _, c := range proper[1:] {
					errs.add(fset, c.Slash, "more than one //task: directive on %s", decl.Name.Name)
				}
				d, derrs := parseDirective(proper[0].Text)
				for _, e := range derrs {
					errs.add(fset, proper[0].Slash+token.Pos(e.offset), "%s", e.msg)
				}
				found = append(found, &funcDirective{file: file, decl: decl, comment: proper[0], dir: d, parsed: true})
			case len(mangled) > 0:
				// Not generated, but its names are reserved, so that references to them
				// elsewhere in the package are not reported on top of the real problem.
				found = append(found, &funcDirective{file: file, decl: decl, comment: mangled[0]})
			}
		}
	}
	return found, errs
}

// sortedFiles returns files ordered by file name, the order in which declarations are
// generated and lifespan parameters first appear.
func sortedFiles(fset *token.FileSet, files []*ast.File) []*ast.File {
	out := append([]*ast.File(nil), files...)
	sort.SliceStable(out, func(i, j int) bool {
		return fset.File(out[i].Pos()).Name() < fset.File(out[j].Pos()).Name()
	})
	return out
}

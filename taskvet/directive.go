package taskvet

import (
	"go/ast"
	"strings"

	"github.com/taskgen/taskgen/internal/taskspec"
)

// taskDirective reports whether doc, a function's doc comment, marks a task: whether a
// line of it starts with taskspec.DirectivePrefix. It returns the kind written right
// after the prefix ("" when there is none: gen reports that, taskvet still checks the
// function) and the names listed by lifespan=. It reads CommentGroup.List, not Text(),
// which drops directive lines.
func taskDirective(doc *ast.CommentGroup) (kind string, lifespan []string, ok bool) {
	if doc == nil {
		return "", nil, false
	}
	for _, c := range doc.List {
		rest, found := strings.CutPrefix(c.Text, taskspec.DirectivePrefix)
		if !found {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) > 0 && strings.HasPrefix(rest, fields[0]) {
			kind, fields = fields[0], fields[1:]
		}
		for _, f := range fields {
			if v, ok := strings.CutPrefix(f, "lifespan="); ok {
				lifespan = strings.Split(v, ",")
			}
		}
		return kind, lifespan, true
	}
	return "", nil, false
}

package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/internal/taskspec"
)

// formatDirective writes d back as a directive line, options in a fixed order.
func formatDirective(d directive) string {
	var b strings.Builder
	b.WriteString(directivePrefix + d.kind)
	if d.queue != "" {
		b.WriteString(" queue=" + d.queue)
	}
	if d.retriesSet {
		b.WriteString(" retries=" + strconv.Itoa(d.retries))
	}
	if d.timeout != 0 {
		b.WriteString(" timeout=" + d.timeout.String())
	}
	if d.lifespan != nil {
		b.WriteString(" lifespan=" + strings.Join(d.lifespan, ","))
	}
	if d.schedule != "" {
		b.WriteString(` schedule="` + d.schedule + `"`)
	}
	return b.String()
}

// FuzzParseDirective feeds arbitrary comment text to the directive parser and to the
// directive finder on a function's doc comment. Neither may panic; an error must point
// into the line; a line that parses must have a valid kind and options that survive being
// written back and parsed again.
//
// Seeds: testdata/fuzz/FuzzParseDirective. Run with
//
//	go test -run '^$' -fuzz '^FuzzParseDirective$' -fuzztime 30s ./gen
func FuzzParseDirective(f *testing.F) {
	f.Add("//task:email.send_welcome queue=email retries=5 timeout=30s lifespan=deps")
	f.Add("// task queue=email")
	f.Add(`//task:reports.daily schedule="0 6 * * *" lifespan=db`)
	f.Fuzz(func(t *testing.T, text string) {
		mistake := directiveMistake(text)
		if strings.HasPrefix(text, directivePrefix) {
			if mistake != "" {
				t.Errorf("directiveMistake(%q) = %q for a line in the directive form", text, mistake)
			}
			checkParse(t, text)
		}
		if strings.HasPrefix(text, "//") && !strings.ContainsAny(text, "\r\n") {
			checkFind(t, text, mistake)
		}
	})
}

// checkParse checks parseDirective on a line that starts with the directive prefix.
func checkParse(t *testing.T, text string) {
	d, errs := parseDirective(text)
	for _, e := range errs {
		if e.offset < len(directivePrefix) || e.offset > len(text) {
			t.Errorf("parseDirective(%q): error %q at offset %d, outside the line's words [%d, %d]", text, e.msg, e.offset, len(directivePrefix), len(text))
		}
		if e.msg == "" {
			t.Errorf("parseDirective(%q): an error without a message at offset %d", text, e.offset)
		}
	}
	if len(errs) > 0 {
		return
	}
	if err := taskspec.CheckKind(d.kind); err != nil {
		t.Errorf("parseDirective(%q) accepted kind %q: %v", text, d.kind, err)
	}
	if d.retries < 0 || d.timeout < 0 || (d.queue != "" && taskspec.CheckQueue(d.queue) != nil) || (d.schedule != "" && taskspec.CheckSchedule(d.schedule) != nil) {
		t.Errorf("parseDirective(%q) accepted invalid options: %+v", text, d)
	}
	line := formatDirective(d)
	again, errs := parseDirective(line)
	if len(errs) > 0 {
		t.Fatalf("parseDirective(%q) = %+v, written back as %q, which does not parse: %v", text, d, line, errs)
	}
	d.lifespanOffset, again.lifespanOffset = 0, 0
	d.scheduleOffset, again.scheduleOffset = 0, 0
	if !reflect.DeepEqual(d, again) {
		t.Errorf("options do not round-trip: %q parses as %+v, written back as %q, which parses as %+v", text, d, line, again)
	}
}

// checkFind puts text on a function's doc comment and runs findDirectives over the file.
func checkFind(t *testing.T, text string, mistake string) {
	src := "package p\n\n" + text + "\nfunc F() error { return nil }\n"
	fset := token.NewFileSet()
	file, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		return // not a comment on its own: "//" inside a string, say
	}
	found, errs := findDirectives(fset, []*ast.File{file})
	for _, e := range errs {
		if e.Pos.Line != 3 || e.Pos.Column < 1 || e.Pos.Column > len(text)+1 {
			t.Errorf("findDirectives on %q: error %q at %v, not on the comment", text, e.Msg, e.Pos)
		}
	}
	proper := strings.HasPrefix(text, directivePrefix)
	switch {
	case proper && len(found) != 1:
		t.Errorf("findDirectives on %q found %d directives, want 1", text, len(found))
	case proper:
		_, perrs := parseDirective(text)
		if len(perrs) == 0 && len(errs) > 0 {
			t.Errorf("findDirectives on %q reports %v for a line that parses", text, errs)
		}
	case mistake != "" && (len(errs) != 1 || errs[0].Msg != mistake):
		t.Errorf("findDirectives on mistaken %q: errors %v, want %q", text, errs, mistake)
	case mistake == "" && (len(found) > 0 || len(errs) > 0):
		t.Errorf("findDirectives on prose %q: found %d, errors %v; want nothing", text, len(found), errs)
	}
}

package gen

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseDirectiveAcceptsKindAndOptions(t *testing.T) {
	tests := []struct {
		name string
		line string
		want directive
	}{
		{
			name: "kind only",
			line: "//task:email.send",
			want: directive{kind: "email.send"},
		},
		{
			name: "every option",
			line: "//task:email.send_welcome queue=email retries=5 timeout=30s lifespan=deps",
			want: directive{kind: "email.send_welcome", queue: "email", retries: 5, retriesSet: true, timeout: 30 * time.Second, lifespan: []string{"deps"}, lifespanOffset: 60},
		},
		{
			name: "kind with digits, dots, dashes and underscores",
			line: "//task:0v2.img-resize_fast",
			want: directive{kind: "0v2.img-resize_fast"},
		},
		{
			name: "zero retries is explicit",
			line: "//task:a retries=0",
			want: directive{kind: "a", retries: 0, retriesSet: true},
		},
		{
			name: "fractional timeout",
			line: "//task:a timeout=1.5s",
			want: directive{kind: "a", timeout: 1500 * time.Millisecond},
		},
		{
			name: "several lifespan names",
			line: "//task:a lifespan=db,cache,log",
			want: directive{kind: "a", lifespan: []string{"db", "cache", "log"}, lifespanOffset: 9},
		},
		{
			name: "queue with upper case, dots and dashes",
			line: "//task:a queue=Mail.High-1",
			want: directive{kind: "a", queue: "Mail.High-1"},
		},
		{
			name: "quoted cron schedule",
			line: `//task:reports.daily schedule="0 6 * * *" queue=q`,
			want: directive{kind: "reports.daily", queue: "q", schedule: "0 6 * * *", scheduleOffset: 21},
		},
		{
			name: "unquoted descriptor schedule, and a quoted queue",
			line: `//task:a schedule=@hourly queue="q"`,
			want: directive{kind: "a", queue: "q", schedule: "@hourly", scheduleOffset: 9},
		},
		{
			name: "schedule with a time zone and tabs inside the quotes",
			line: "//task:a schedule=\"CRON_TZ=Europe/Paris 0 7\t* * 1-5\"",
			want: directive{kind: "a", schedule: "CRON_TZ=Europe/Paris 0 7\t* * 1-5", scheduleOffset: 9},
		},
		{
			name: "tabs and repeated spaces between options",
			line: "//task:a \t queue=q   retries=1",
			want: directive{kind: "a", queue: "q", retries: 1, retriesSet: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, errs := parseDirective(tt.line)
			if len(errs) > 0 {
				t.Fatalf("parseDirective(%q) errors: %v", tt.line, errs)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseDirective(%q) = %+v, want %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseDirectiveReportsEveryProblemAtItsWord(t *testing.T) {
	tests := []struct {
		name string
		line string
		want []directiveError // msg holds a substring of the message
	}{
		{"empty kind", "//task:", []directiveError{{7, "missing task kind"}}},
		{"space before the kind", "//task: email", []directiveError{{7, "missing task kind"}}},
		{"upper-case kind", "//task:Email", []directiveError{{7, `invalid task kind "Email"`}}},
		{"kind starting with a dot", "//task:.x", []directiveError{{7, `invalid task kind ".x"`}}},
		{"kind with a slash", "//task:a/b", []directiveError{{7, `invalid task kind "a/b"`}}},
		{"unknown option", "//task:a queu=x", []directiveError{{9, `unknown option "queu"; valid options are queue=NAME, retries=N, timeout=DURATION, lifespan=p1,p2, schedule="CRON"`}}},
		{"option without value", "//task:a retries", []directiveError{{9, `malformed option "retries": write key=value; valid options are`}}},
		{"duplicate option", "//task:a queue=x queue=x", []directiveError{{17, `duplicate option "queue"; valid options are`}}},
		{"negative retries", "//task:a retries=-1", []directiveError{{9, `invalid retries "-1"`}}},
		{"signed retries", "//task:a retries=+1", []directiveError{{9, `invalid retries "+1"`}}},
		{"word retries", "//task:a retries=many", []directiveError{{9, `invalid retries "many"`}}},
		{"zero timeout", "//task:a timeout=0s", []directiveError{{9, `invalid timeout "0s"`}}},
		{"timeout without unit", "//task:a timeout=30", []directiveError{{9, `invalid timeout "30"`}}},
		{"negative timeout", "//task:a timeout=-1m", []directiveError{{9, `invalid timeout "-1m"`}}},
		{"empty queue", "//task:a queue=", []directiveError{{9, `invalid queue name ""`}}},
		{"queue with a hash tag brace", "//task:a queue={q}", []directiveError{{9, `invalid queue name "{q}"`}}},
		{"queue with a colon", "//task:a queue=a:b", []directiveError{{9, `invalid queue name "a:b"`}}},
		{"queue with a slash", "//task:a queue=a/b", []directiveError{{9, `invalid queue name "a/b"`}}},
		{"empty lifespan", "//task:a lifespan=", []directiveError{{9, `invalid lifespan ""`}}},
		{"lifespan with an empty name", "//task:a lifespan=a,,b", []directiveError{{9, `invalid lifespan "a,,b"`}}},
		{"blank lifespan", "//task:a lifespan=_", []directiveError{{9, `invalid lifespan "_"`}}},
		{"lifespan listed twice", "//task:a lifespan=a,a", []directiveError{{9, "a is listed twice"}}},
		{"lifespan that is not an identifier", "//task:a lifespan=1x", []directiveError{{9, `invalid lifespan "1x"`}}},
		{"schedule with a sixth field", `//task:a schedule="0 0 6 * * *"`, []directiveError{{19, `invalid schedule "0 0 6 * * *"`}}},
		{"schedule out of range", `//task:a schedule="61 * * * *"`, []directiveError{{19, "a schedule is a standard 5-field cron spec"}}},
		{"unquoted schedule with spaces", "//task:a schedule=0 6 * * *", []directiveError{{18, `invalid schedule "0"`}, {20, `malformed option "6"`}, {22, `malformed option "*"`}, {24, `malformed option "*"`}, {26, `malformed option "*"`}}},
		{"unterminated quote", `//task:a schedule="0 6 * * * queue=q`, []directiveError{{18, `malformed quoted value "0 6 * * * queue=q`}}},
		{"text after the closing quote", `//task:a schedule="@daily"x`, []directiveError{{18, `malformed quoted value "@daily"x`}}},
		{"sub-second @every", `//task:a schedule="@every 500ms"`, []directiveError{{19, "want whole seconds"}}},
		{"unknown option, quoted", `//task:a sched="@daily"`, []directiveError{{9, `unknown option "sched"`}}},
		{"duplicate schedule", `//task:a schedule=@daily schedule=@hourly`, []directiveError{{25, `duplicate option "schedule"`}}},
		{
			name: "several problems on one line",
			line: "//task:A foo=1 retries=x queue",
			want: []directiveError{{7, "invalid task kind"}, {9, `unknown option "foo"`}, {15, `invalid retries "x"`}, {25, `malformed option "queue"`}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := parseDirective(tt.line)
			if len(errs) != len(tt.want) {
				t.Fatalf("parseDirective(%q) = %d errors %v, want %d", tt.line, len(errs), errs, len(tt.want))
			}
			for i, want := range tt.want {
				if errs[i].offset != want.offset || !strings.Contains(errs[i].msg, want.msg) {
					t.Errorf("error %d = {%d %q}, want offset %d and a message containing %q", i, errs[i].offset, errs[i].msg, want.offset, want.msg)
				}
			}
		})
	}
}

func TestMistakenDirectivesAreRecognisedButProseIsNot(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"//task", mangledMessage},
		{"//task queue=email", mangledMessage},
		{"// task", mangledMessage},
		{"// task queue=email retries=2", mangledMessage},
		{"// task:email.send", mangledMessage},
		{"//  task:email.send", mangledMessage},
		{"//\ttask", mangledMessage},
		{"//tasks:email.send", misspelledMessage},
		{"//Task:email.send", misspelledMessage},
		{"//TASK:email.send", misspelledMessage},
		{"//task.email.send", misspelledMessage},
		{"//task-email.send", misspelledMessage},
		{"//Task", misspelledMessage},
		{"//task :email.send", misspelledMessage},
		{"// task :email.send", misspelledMessage},
		{"// task: email.send", misspelledMessage},
		{"// task: email.send queue=email", misspelledMessage},
		{`// task schedule="0 6 * * *"`, mangledMessage},
		{`// task: reports.daily schedule="0 6 * * *"`, misspelledMessage},
		{`// Task.reports.daily schedule="@every 1m" queue=q`, spacedMisspelledMessage},
		{"// Task:email.send", spacedMisspelledMessage},
		{"// task.email.send", spacedMisspelledMessage},
		{"// task-email.send", spacedMisspelledMessage},
		{"// TASK:email.send", spacedMisspelledMessage},
		{"// tasks:email.send", spacedMisspelledMessage},
		{"//\tTask:email.send queue=email retries=2", spacedMisspelledMessage},
		{"// task-based", spacedMisspelledMessage}, // alone on a line, it is what gofmt makes of "//task-based"
		{"//task:email.send", ""},                  // the proper form
		{"// Task 100 is synthetic.", ""},
		{"// Tasks are retried.", ""},
		{"// task queue handling", ""},
		{"// Task-based work is retried.", ""},
		{"// task.Caller is captured at submit.", ""},
		{"// task.Caller", ""},
		{"// task.go.", ""},
		{"// Tasks: see below.", ""},
		{"// Task:", ""},
		{"// Task.", ""},
		{"// task: cleanup.", ""},
		{"// TASK-1234 tracks this.", ""},
		{"// task queue workers call it concurrently.", ""},
		{"// task: send the mail", ""},
		{"// Task: send the mail", ""},
		{"// tasks are great", ""},
		{"//taskgen:ignore", ""},
		{"//tasking", ""},
		{"//go:noinline", ""},
		{"// Task is exported.", ""},
		{"// the task runs", ""},
		{"/* task */", ""},
	}
	for _, tt := range tests {
		if got := directiveMistake(tt.line); got != tt.want {
			t.Errorf("directiveMistake(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestMisspelledDirectiveWordsAreReportedWithTheFix(t *testing.T) {
	typo := func(wrote, fix string) string {
		return `"` + wrote + `" looks like a misspelled task directive; write ` + fix
	}
	tests := []struct {
		line string
		want string
	}{
		{"//tsak:email.send", typo("//tsak:email.send", "//task:email.send")},
		{"//taks:email.send queue=email retries=2", typo("//taks:email.send", "//task:email.send")},
		{"//tassk:email.send\tqueue=email", typo("//tassk:email.send", "//task:email.send")},
		{"//tsk:email.send", typo("//tsk:email.send", "//task:email.send")},
		{"//tesk:email.send", typo("//tesk:email.send", "//task:email.send")},
		{"//atsk:email.send", typo("//atsk:email.send", "//task:email.send")},
		{"//TSAK:email.send", typo("//TSAK:email.send", "//task:email.send")},
		{"//tsak:", typo("//tsak:", "//task:<kind>")},
		{"//tsak: email.send", typo("//tsak:", "//task:<kind>")},
		{"//tasks:email.send", misspelledMessage}, // one edit too, reported as before
		{"//Task:email.send", misspelledMessage},
		// Not typos of "task": other tools' directives, words further away, other forms.
		{"//go:generate stringer -type=T", ""},
		{"//nolint:errcheck", ""},
		{"//export F", ""},
		{"//line f.go:1", ""},
		{"//ts:ignore", ""},
		{"//todo: x", ""},
		{"//note:x", ""},
		{"//taskgen:ignore", ""},
		{"//tsak email.send", ""},
		{"//tsak.email.send", ""},
		{"//t4sk:email.send", ""},
		{"// tsak:email.send", ""},
		{"//:email.send", ""},
	}
	for _, tt := range tests {
		if got := directiveMistake(tt.line); got != tt.want {
			t.Errorf("directiveMistake(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestOtherToolsDirectiveWordsAreNeverTypos(t *testing.T) {
	for word := range otherDirectiveWords {
		for _, line := range []string{"//" + word + ":x", "//" + strings.ToUpper(word) + ":x"} {
			if got := directiveMistake(line); got != "" {
				t.Errorf("directiveMistake(%q) = %q, want nothing: %s is another tool's directive", line, got, word)
			}
		}
	}
	if got := directiveMistake("//ts:x"); got != "" || osaDistance("ts", "task") > typoDistance {
		t.Errorf("//ts:x: the listed word must be one that would be a typo otherwise; got %q", got)
	}
}

func TestOSADistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"task", "task", 0},
		{"tsak", "task", 1}, // a swap
		{"taks", "task", 1},
		{"tassk", "task", 1}, // an insertion
		{"tsk", "task", 1},   // a deletion
		{"tesk", "task", 1},  // a substitution
		{"ts", "task", 2},
		{"todo", "task", 3},
		{"", "task", 4},
		{"taskgen", "task", 3},
		{"ca", "abc", 3}, // no substring is edited twice; unrestricted Damerau-Levenshtein says 2
	} {
		if got := osaDistance(tt.a, tt.b); got != tt.want {
			t.Errorf("osaDistance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestDirectivesAreFoundInFileNameAndSourceOrder(t *testing.T) {
	fset := token.NewFileSet()
	parse := func(name, src string) *ast.File {
		f, err := parser.ParseFile(fset, name, src, parser.ParseComments)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	b := parse("b.go", "package p\n\n//task:b.one\nfunc B1() error { return nil }\n\n//task:b.two\nfunc B2() error { return nil }\n")
	a := parse("a.go", "package p\n\n// A is documented.\n//\n//task:a.one retries=1\nfunc A() error { return nil }\n")
	found, errs := findDirectives(fset, []*ast.File{b, a})
	if len(errs) > 0 {
		t.Fatalf("errors: %v", errs)
	}
	var kinds []string
	for _, d := range found {
		kinds = append(kinds, d.dir.kind)
	}
	if got, want := strings.Join(kinds, " "), "a.one b.one b.two"; got != want {
		t.Errorf("kinds in order = %q, want %q", got, want)
	}
}

func TestDirectiveErrorsPointAtTheOffendingWord(t *testing.T) {
	fset := token.NewFileSet()
	src := "package p\n\n//task:a.b queue=x bogus=1\nfunc A() error { return nil }\n"
	f, err := parser.ParseFile(fset, "p.go", src, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	_, errs := findDirectives(fset, []*ast.File{f})
	if len(errs) != 1 {
		t.Fatalf("errors = %v, want one", errs)
	}
	if got, want := errs[0].Error(), `p.go:3:20: unknown option "bogus"; `+validOptions; got != want {
		t.Errorf("error = %q, want %q", got, want)
	}
}

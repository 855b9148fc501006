package taskctl

import (
	"bytes"
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ctl runs taskctl in-process with env as its whole environment.
func ctl(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrorsExitTwoAndSayWhatToDo(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"tasks"}, "tasks takes one queue"},
		{[]string{"tasks", "email", "--state", "lost"}, `--state "lost": the states listed are pending, scheduled, running, retrying, dead`},
		{[]string{"tasks", "email", "--reason", "permanent"}, "--reason filters dead letters only"},
		{[]string{"tasks", "email", "--limit", "5000"}, "--limit 5000: give 1 to 1000"},
		{[]string{"requeue", "not-an-id"}, `"not-an-id" is not a task id`},
		{[]string{"requeue", "email", "--all", "--entry"}, "requeue --all takes one queue"},
		{[]string{"purge", "email"}, "add --yes to confirm"},
		{[]string{"pause"}, "pause takes one queue"},
		{[]string{"queues", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"serve", "--listen", "0.0.0.0:8421"}, "is not a loopback address"},
		{[]string{"serve", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
	}
	for _, c := range cases {
		_, stderr, code := ctl(t, nil, c.args...)
		if code != ExitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("taskctl %q: exit %d, stderr %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}

func TestAKeyOrTokenFlagIsRefusedBeforeAnythingReadsIt(t *testing.T) {
	for _, arg := range []string{"--signing-key=k1:c2VjcmV0", "-key", "--seal-key", "--token=abc", "--console-token"} {
		_, stderr, code := ctl(t, nil, "queues", arg)
		if code != ExitUsage || !strings.Contains(stderr, "never taken from flags") || strings.Contains(stderr, "c2VjcmV0") {
			t.Errorf("taskctl queues %s: exit %d, stderr %q", arg, code, stderr)
		}
	}
}

func TestHelpListsEveryCommandAndTheExitCodes(t *testing.T) {
	stdout, _, code := ctl(t, nil, "help")
	if code != ExitOK {
		t.Fatalf("help exit %d", code)
	}
	for _, name := range append(commandNames(), "exit codes: 0 ok, 1 failed, 2 usage, 3 not found", EnvSigningKeys) {
		if !strings.Contains(stdout, name) {
			t.Errorf("help does not mention %q:\n%s", name, stdout)
		}
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestKeysFromTheEnvironment(t *testing.T) {
	e := &env{getenv: func(k string) string {
		return map[string]string{
			EnvSigningKeys: "k2:" + b64("second-key-0123456789abcdef012345") + ", k1:" + b64("first-key-0123456789abcdef0123456"),
			EnvRetiredKeys: "k0:" + b64("old-key-0123456789abcdef012345678") + ":2026-01-02T03:04:05Z",
			EnvSealKey:     b64("0123456789abcdef"),
		}[k]
	}}
	k, err := e.loadKeys()
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Signing) != 2 || k.Signing[0].ID != "k2" || string(k.Signing[1].Secret) != "first-key-0123456789abcdef0123456" {
		t.Errorf("signing keys = %+v", k.Signing)
	}
	if len(k.Retired) != 1 || k.Retired[0].ID != "k0" || k.Retired[0].Retired.Format("2006-01-02T15:04:05Z07:00") != "2026-01-02T03:04:05Z" {
		t.Errorf("retired keys = %+v", k.Retired)
	}
	if string(k.Seal) != "0123456789abcdef" {
		t.Errorf("seal key = %q", k.Seal)
	}
	if n := len(k.Options()); n != 4 {
		t.Errorf("%d options, want 4", n)
	}
}

func TestBadKeysAreRefusedWithoutQuotingThem(t *testing.T) {
	cases := []struct {
		name, value, want string
	}{
		{EnvSigningKeys, "k1", "is not id:base64"},
		{EnvSigningKeys, "k1:not*base64*secretvalue", "is not standard base64"},
		{EnvSigningKeys, ":" + b64("x"), "is not id:base64"},
		{EnvRetiredKeys, "k0:" + b64("secretvalue") + ":yesterday", "not RFC 3339"},
		{EnvSealKey, "***secretvalue", "is not standard base64"},
	}
	for _, c := range cases {
		e := &env{getenv: func(k string) string {
			if k == c.name {
				return c.value
			}
			return ""
		}}
		_, err := e.loadKeys()
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "secretvalue") {
			t.Errorf("%s=%q: err %v, want %q without the value", c.name, c.value, err, c.want)
		}
	}
}

func TestKeysFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("keys", "# the deployment's keys\n\nsigning k2 "+b64("second-key-0123456789abcdef012345")+"\nsigning k1 "+b64("first-key-0123456789abcdef0123456")+
		"\nretired k0 "+b64("old-key-0123456789abcdef012345678")+" 2026-01-02T03:04:05Z\nseal "+b64("0123456789abcdef")+"\n", 0o600)
	k, err := LoadKeysFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.Signing) != 2 || k.Signing[0].ID != "k2" || len(k.Retired) != 1 || string(k.Seal) != "0123456789abcdef" {
		t.Errorf("keys = %+v", k)
	}

	open := write("open", "signing k1 "+b64("first-key-0123456789abcdef0123456")+"\n", 0o644)
	if _, err := LoadKeysFile(open); err == nil || !strings.Contains(err.Error(), "readable by others (mode 0644): run chmod 600") {
		t.Errorf("a 0644 keys file: %v", err)
	}
	bad := write("bad", "signing k1\n", 0o600)
	if _, err := LoadKeysFile(bad); err == nil || !strings.Contains(err.Error(), "bad:1: expected") {
		t.Errorf("a bad line: %v", err)
	}

	// A keys file and keys in the environment at once is a guess waiting to happen.
	_, stderr, code := ctl(t, map[string]string{EnvKeysFile: good, EnvSigningKeys: "k1:" + b64("x")}, "queues")
	if code != ExitUsage || !strings.Contains(stderr, "give them one way") {
		t.Errorf("file and environment: exit %d, %s", code, stderr)
	}
}

func TestARedisPasswordIsNeverPrinted(t *testing.T) {
	_, stderr, code := ctl(t, map[string]string{EnvSigningKeys: "k1:" + b64("first-key-0123456789abcdef0123456")}, "--redis", "redis://user:hunter2-secret@127.0.0.1:1/0", "queues")
	if code != ExitFailed || strings.Contains(stderr, "hunter2") || !strings.Contains(stderr, "redis at redis://user:xxxxx@127.0.0.1:1/0") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

func TestProgressBar(t *testing.T) {
	cases := map[[2]int]string{
		{0, 10}:  "[>         ] 0/10",
		{5, 10}:  "[=====>    ] 5/10",
		{10, 10}: "[==========] 10/10",
		{3, 0}:   "[          ] 3",
	}
	for in, want := range cases {
		if got := bar(in[0], in[1], 10); got != want {
			t.Errorf("bar(%d, %d) = %q, want %q", in[0], in[1], got, want)
		}
	}
	var buf bytes.Buffer
	p := newProgress(&buf, "requeue q", false)
	p.update(1, 2)
	p.finish()
	if buf.Len() != 0 {
		t.Errorf("a progress bar off a terminal wrote %q", buf.String())
	}

	// On a terminal it redraws one line, at most ten times a second but always at the
	// end, and ends the line when done.
	p = newProgress(&buf, "requeue q", true)
	p.update(1000, 3000)
	p.update(2000, 3000) // within 100ms of the last draw: skipped
	p.update(3000, 3000)
	p.finish()
	want := "\rrequeue q [==========>                   ] 1000/3000\rrequeue q [==============================] 3000/3000\n"
	if buf.String() != want {
		t.Errorf("on a terminal the bar wrote %q, want %q", buf.String(), want)
	}
	if isTerminal(&buf) {
		t.Errorf("a buffer counts as a terminal")
	}
}

func TestFormsRedirectOnlyWithinTheConsole(t *testing.T) {
	for in, want := range map[string]string{
		"/tasks/q/X":        "/tasks/q/X",
		"/queues/q?state=x": "/queues/q?state=x",
		"//evil.example/":   "/",
		"https://evil/":     "/",
		"/\\evil":           "/",
		"":                  "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

package taskctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// Whatever taskctl prints, as a table or as JSON, and whatever page its console serves,
// holds no caller's token: neither when callers rest sealed in Redis (the default) nor
// when they rest in clear (WithPlainCallers). Every command runs against tasks in every
// state, including one running past its lease, and every byte of every output is searched
// for the token as is, in base64 and in hex.
func TestNoOutputEverHoldsACallersToken(t *testing.T) {
	for _, mode := range []struct {
		name  string
		plain bool
	}{{"sealed", false}, {"plain", true}} {
		t.Run(mode.name, func(t *testing.T) {
			token := "tok-" + mode.name + "-Q7XW2K9RZ4MDF8N3"
			caller := task.Caller{UserID: "ursula", Token: task.NewSecret(token), ExpiresAt: time.Now().Add(3 * time.Hour), Scopes: []string{"mail:send"}}
			d := newDeployment(t, mode.plain)
			in := d.inspector(t)
			var all bytes.Buffer
			cli := func(want int, args ...string) string {
				t.Helper()
				stdout, stderr, code := ctl(t, d.env, args...)
				fmt.Fprintf(&all, "$ taskctl %s\n%s%s", strings.Join(args, " "), stdout, stderr)
				if code != want {
					t.Fatalf("taskctl %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, want, stdout, stderr)
				}
				return stdout
			}
			both := func(args ...string) string {
				t.Helper()
				cli(ExitOK, append(args, "--json")...)
				return cli(ExitOK, args...)
			}

			dead := d.submit(t, flakyDef, caller, "first")
			dead2 := d.submit(t, flakyDef, caller, "second")
			waitState(t, in, dead, task.StateDead)
			waitState(t, in, dead2, task.StateDead)
			pending := d.submit(t, idleDef, caller, "waits")
			scheduled := d.submit(t, idleDef, caller, "later", task.Delay(time.Hour))
			doomed := d.submit(t, idleDef, caller, "canceled")
			slow := d.submit(t, slowDef, caller, "slow")
			select {
			case <-d.started:
			case <-time.After(20 * time.Second):
				t.Fatal("the slow task did not start")
			}
			time.Sleep(lease + lease/2) // the slow task runs on past its lease

			if out := both("queues"); !strings.Contains(out, "ctlq") || !strings.Contains(out, "ctlidle") {
				t.Fatalf("queues does not list both queues:\n%s", out)
			}
			for _, q := range []string{"ctlq", "ctlidle"} {
				for _, st := range listableStates {
					both("tasks", q, "--state", string(st))
				}
			}
			if out := both("tasks", "ctlq", "--state", "running"); !strings.Contains(out, string(slow)) {
				t.Errorf("the slow task is not listed running past its lease:\n%s", out)
			}
			var page pageJSON
			if err := json.Unmarshal([]byte(cli(ExitOK, "tasks", "ctlq", "--state", "dead", "--json")), &page); err != nil || len(page.Tasks) != 2 {
				t.Fatalf("dead letters: %+v, %v", page, err)
			}
			for _, id := range []task.ID{dead, pending, scheduled, slow} {
				if out := both("show", string(id)); !strings.Contains(out, "ursula") {
					t.Errorf("show %s does not name the caller's user:\n%s", id, out)
				}
			}
			both("show", "ctlq", page.Tasks[0].DeadEntry)
			cli(ExitOK, "cancel", string(doomed))
			waitState(t, in, doomed, task.StateCanceled)
			both("show", string(doomed))
			cli(ExitNotFound, "show", "ctlq/0000000000000000000000000Z")

			d.releaseSlow()
			waitState(t, in, slow, task.StateSucceeded)
			both("show", string(slow))

			d.failing.Store(false)
			cli(ExitOK, "requeue", string(dead))
			cli(ExitOK, "requeue", "ctlq", "--all", "--json")
			waitState(t, in, dead, task.StateSucceeded)
			waitState(t, in, dead2, task.StateSucceeded)
			both("show", string(dead))
			cli(ExitOK, "pause", "ctlidle")
			both("queues")
			cli(ExitOK, "resume", "ctlidle", "--json")
			cli(ExitOK, "delete", string(pending))
			cli(ExitOK, "delete", string(scheduled), "--json")

			d.failing.Store(true)
			last := d.submit(t, flakyDef, caller, "purged")
			waitState(t, in, last, task.StateDead)
			both("tasks", "ctlq", "--state", "dead")
			cli(ExitOK, "purge", "ctlq", "--yes")

			// The console: every page, before and after an action.
			b := startConsole(t, in)
			page2 := func(path string) {
				t.Helper()
				code, body := b.get(path)
				fmt.Fprintf(&all, "GET %s\n%s", path, body)
				if code != http.StatusOK {
					t.Fatalf("GET %s: %d", path, code)
				}
			}
			b.get("/login")
			b.login()
			again := d.submit(t, flakyDef, caller, "console")
			waitState(t, in, again, task.StateDead)
			pend := d.submit(t, idleDef, caller, "console waits")
			page2("/")
			for _, q := range []string{"ctlq", "ctlidle"} {
				for _, st := range listableStates {
					page2(queueURL(q, st))
				}
			}
			for _, id := range []task.ID{dead, dead2, doomed, slow, again, pend} {
				page2("/tasks/" + escapeID(id))
			}
			info, err := in.Task(t.Context(), again)
			if err != nil || info.DeadEntry == "" {
				t.Fatalf("Task(%s) = %+v, %v", again, info, err)
			}
			page2("/dead/ctlq/" + url.PathEscape(info.DeadEntry))
			page2("/static/style.css")

			for _, f := range forms(token) {
				if i := bytes.Index(all.Bytes(), []byte(f)); i >= 0 {
					t.Errorf("the output holds the token as %q at byte %d:\n%s", f, i, all.Bytes()[max(0, i-200):min(all.Len(), i+200)])
				}
			}
			if !bytes.Contains(all.Bytes(), []byte("ursula")) || !bytes.Contains(all.Bytes(), []byte("mail:send")) {
				t.Errorf("the output never shows the caller's user and scopes: the search above would prove nothing")
			}
		})
	}
}

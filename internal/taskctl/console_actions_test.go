package taskctl

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/runtime/task"
)

// Each console action does what the command of the same name does, from a form with the
// session's CSRF token, and the next page says what happened.
func TestConsoleActions(t *testing.T) {
	d := newDeployment(t, false)
	in := d.inspector(t)
	b := startConsole(t, in)
	b.login()
	pending := d.submit(t, idleDef, bob, "cancel me")
	doomed := d.submit(t, idleDef, bob, "delete me")
	dead1 := d.submit(t, flakyDef, bob, "one")
	dead2 := d.submit(t, flakyDef, bob, "two")
	waitState(t, in, dead1, task.StateDead)
	waitState(t, in, dead2, task.StateDead)

	post := func(action string, form url.Values) string {
		t.Helper()
		back := "/queues/ctlq?state=dead"
		form.Set("csrf", b.csrf(back))
		form.Set("back", back)
		code, h, _ := b.do(http.MethodPost, "/actions/"+action, form, nil)
		if code != http.StatusSeeOther || h.Get("Location") != back {
			t.Fatalf("POST %s: %d to %q", action, code, h.Get("Location"))
		}
		_, body := b.get(back)
		return body
	}
	state := func(id task.ID) task.TaskState {
		t.Helper()
		st, err := in.Status(t.Context(), id)
		if err != nil {
			return ""
		}
		return st.State
	}

	if body := post("cancel", url.Values{"id": {string(pending)}}); !strings.Contains(body, "Canceled "+string(pending)) {
		t.Errorf("cancel: the page does not say so")
	}
	waitState(t, in, pending, task.StateCanceled)

	post("delete", url.Values{"id": {string(doomed)}})
	if st := state(doomed); st != "" {
		t.Errorf("after delete, %s is %q", doomed, st)
	}

	post("pause", url.Values{"queue": {"ctlidle"}})
	post("resume", url.Values{"queue": {"ctlidle"}})
	if q, err := in.Queue(t.Context(), "ctlidle"); err != nil || q.Paused {
		t.Errorf("after pause and resume: %+v, %v", q, err)
	}

	if body := post("purge", url.Values{"queue": {"ctlq"}}); !strings.Contains(body, "tick the box to confirm") {
		t.Errorf("purge without confirming: the page does not say it was refused")
	}
	if q, _ := in.Queue(t.Context(), "ctlq"); q.Dead != 2 {
		t.Fatalf("purge without confirming left %d dead letters, want 2", q.Dead)
	}

	d.failing.Store(false)
	if body := post("requeue-all", url.Values{"queue": {"ctlq"}}); !strings.Contains(body, "Requeued 2 dead letters of ctlq; 0 skipped.") {
		t.Errorf("requeue-all: the page does not say what was done")
	}
	waitState(t, in, dead1, task.StateSucceeded)
	waitState(t, in, dead2, task.StateSucceeded)

	d.failing.Store(true)
	again := d.submit(t, flakyDef, bob, "three")
	waitState(t, in, again, task.StateDead)
	if body := post("purge", url.Values{"queue": {"ctlq"}, "confirm": {"yes"}}); !strings.Contains(body, "Purged 1 dead letters of ctlq.") {
		t.Errorf("purge: the page does not say what was done")
	}
	if q, _ := in.Queue(t.Context(), "ctlq"); q.Dead != 0 {
		t.Errorf("after purge, %d dead letters", q.Dead)
	}

	if code, _, _ := b.do(http.MethodPost, "/actions/explode", url.Values{"csrf": {b.csrf("/")}}, nil); code != http.StatusNotFound {
		t.Errorf("an unknown action: %d, want 404", code)
	}
}

package taskctl

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

var bob = task.Caller{UserID: "bob", Token: task.NewSecret("bob-token"), ExpiresAt: time.Now().Add(time.Hour)}

// withEnv returns d's environment changed by kv (an empty value removes the variable).
func withEnv(d *deployment, kv ...string) map[string]string {
	env := maps.Clone(d.env)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "" {
			delete(env, kv[i])
		} else {
			env[kv[i]] = kv[i+1]
		}
	}
	return env
}

func TestRequeueWithoutTheDeploymentsKeysFailsAndSaysWhy(t *testing.T) {
	d := newDeployment(t, false)
	in := d.inspector(t)
	id := d.submit(t, flakyDef, bob, "x")
	waitState(t, in, id, task.StateDead)

	// No keys at all: listing works, requeue says what is missing.
	noKeys := withEnv(d, EnvSigningKeys, "")
	if out, _, code := ctl(t, noKeys, "tasks", "ctlq", "--state", "dead"); code != ExitOK || !strings.Contains(out, string(id)) {
		t.Errorf("tasks without keys: exit %d\n%s", code, out)
	}
	if _, stderr, code := ctl(t, noKeys, "requeue", string(id)); code != ExitFailed || !strings.Contains(stderr, "signing key") {
		t.Errorf("requeue without keys: exit %d, %s", code, stderr)
	}

	// Another deployment's key: the envelope does not verify, so show says so and a bulk
	// requeue skips it and exits 1.
	other := withEnv(d, EnvSigningKeys, "k9:"+base64.StdEncoding.EncodeToString([]byte("some-other-deployments-signing-key")))
	out, _, code := ctl(t, other, "show", "ctlq", deadEntryOf(t, d, id), "--json")
	var shown detailJSON
	if err := json.Unmarshal([]byte(out), &shown); code != ExitOK || err != nil || shown.Signature.Verified || shown.Signature.Problem == "" {
		t.Errorf("show with another key: exit %d, %+v, %v\n%s", code, shown.Signature, err, out)
	}
	out, stderr, code := ctl(t, other, "requeue", "ctlq", "--all", "--json")
	var bulk bulkJSON
	if err := json.Unmarshal([]byte(out), &bulk); code != ExitFailed || err != nil || bulk.Done != 0 || bulk.Skipped != 1 || !strings.Contains(stderr, "0 requeued, 1 skipped: requeue ") {
		t.Errorf("requeue --all with another key: exit %d, %+v, %v\n%s%s", code, bulk, err, out, stderr)
	}
	if st, err := in.Status(t.Context(), id); err != nil || st.State != task.StateDead {
		t.Errorf("after the refused requeues: %+v, %v; want it still dead", st, err)
	}
}

func deadEntryOf(t *testing.T, d *deployment, id task.ID) string {
	t.Helper()
	det, err := d.inspector(t).Task(t.Context(), id)
	if err != nil || det.DeadEntry == "" {
		t.Fatalf("Task(%s) = %+v, %v", id, det, err)
	}
	return det.DeadEntry
}

func TestActionsOnTheWrongTaskExitWithWhatIsWrong(t *testing.T) {
	d := newDeployment(t, false)
	in := d.inspector(t)
	pending := d.submit(t, idleDef, bob, "waits")
	dead := d.submit(t, flakyDef, bob, "x")
	waitState(t, in, dead, task.StateDead)

	if _, stderr, code := ctl(t, d.env, "requeue", string(pending)); code != ExitFailed || !strings.Contains(stderr, "is pending, not dead") {
		t.Errorf("requeue of a pending task: exit %d, %s", code, stderr)
	}
	if _, stderr, code := ctl(t, d.env, "requeue", "ctlq/0000000000000000000000000Z"); code != ExitNotFound {
		t.Errorf("requeue of an unknown task: exit %d, %s", code, stderr)
	}
	// delete goes on past a failure, does the rest, and reports the failure.
	out, stderr, code := ctl(t, d.env, "delete", "ctlq/0000000000000000000000000Z", string(dead), "--json")
	var res actionJSON
	if err := json.Unmarshal([]byte(out), &res); code != ExitNotFound || err != nil || len(res.Done) != 1 || res.Done[0] != string(dead) || len(res.Failed) != 1 {
		t.Errorf("delete of an unknown and a dead task: exit %d, %+v, %v\n%s%s", code, res, err, out, stderr)
	}
	if q, err := in.Queue(t.Context(), "ctlq"); err != nil || q.Dead != 0 {
		t.Errorf("after deleting the dead task by id: %+v, %v", q, err)
	}
}

// A running task canceled from taskctl stops, ends canceled and is not retried, even
// after it ran past its lease.
func TestCancelStopsARunningTask(t *testing.T) {
	d := newDeployment(t, false)
	in := d.inspector(t)
	id := d.submit(t, slowDef, bob, "stuck")
	select {
	case <-d.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow task did not start")
	}
	time.Sleep(lease + lease/2)
	if out, stderr, code := ctl(t, d.env, "cancel", string(id)); code != ExitOK || !strings.Contains(out, "canceled: "+string(id)) {
		t.Fatalf("cancel: exit %d\n%s%s", code, out, stderr)
	}
	waitState(t, in, id, task.StateCanceled)
	out, _, code := ctl(t, d.env, "show", string(id), "--json")
	var shown detailJSON
	if err := json.Unmarshal([]byte(out), &shown); code != ExitOK || err != nil || shown.State != "canceled" || shown.Attempts != 1 {
		t.Errorf("show after cancel: exit %d, %+v, %v", code, shown.summaryJSON, err)
	}
	select {
	case again := <-d.started:
		t.Errorf("the canceled task %s ran again", again)
	case <-time.After(lease):
	}
}

// With a seal key of its own (WithSealKey), a deployment's callers open only with that
// key: without TASKGEN_SEAL_KEY taskctl shows them sealed and unreadable, with it their
// user, and never the token either way.
func TestTheSealKeyComesFromTheEnvironment(t *testing.T) {
	seal := []byte("0123456789abcdef0123456789abcdef")
	d := newDeployment(t, false, task.WithSealKey(seal))
	in := d.inspector(t)
	id := d.submit(t, idleDef, bob, "sealed")
	waitState(t, in, id, task.StatePending)

	out, _, code := ctl(t, d.env, "show", string(id))
	if code != ExitOK || !strings.Contains(out, "sealed (no seal key opens it)") || strings.Contains(out, "bob") {
		t.Errorf("show without the seal key: exit %d\n%s", code, out)
	}
	out, _, code = ctl(t, withEnv(d, EnvSealKey, base64.StdEncoding.EncodeToString(seal)), "show", string(id), "--json")
	var shown detailJSON
	if err := json.Unmarshal([]byte(out), &shown); code != ExitOK || err != nil || shown.Caller == nil || shown.Caller.UserID != "bob" || !shown.Caller.Sealed || !shown.Caller.Readable {
		t.Errorf("show with the seal key: exit %d, %+v, %v\n%s", code, shown.Caller, err, out)
	}
	if strings.Contains(out, "bob-token") {
		t.Errorf("show printed the token:\n%s", out)
	}
}

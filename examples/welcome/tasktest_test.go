package welcome_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/taskgen/taskgen/examples/welcome"
	"github.com/taskgen/taskgen/runtime/task"
	"github.com/taskgen/taskgen/runtime/tasktest"
)

// These tests need no Redis: runtime/tasktest runs the tasks in the test and records
// what the handler submits.

func newTaskEnv(t *testing.T) (*tasktest.Env, *recordingMailer) {
	t.Helper()
	env, err := tasktest.New()
	if err != nil {
		t.Fatal(err)
	}
	mailer := &recordingMailer{}
	if err := welcome.RegisterTasks(env.Worker(), &welcome.Deps{Mailer: mailer, From: "The Team"}); err != nil {
		t.Fatal(err)
	}
	return env, mailer
}

// SendWelcome runs inline on behalf of the caller: it mails with the caller's token, and
// a caller whose token expired is refused before it runs.
func TestSendWelcomeRunsInlineAsTheCaller(t *testing.T) {
	env, mailer := newTaskEnv(t)
	alice := task.Caller{UserID: "alice", Token: task.NewSecret("alice-token"), ExpiresAt: time.Now().Add(time.Hour)}
	receipt, err := tasktest.Run[welcome.Receipt](env, welcome.SendWelcomeTask, alice,
		welcome.SendWelcomeArgs{To: "alice@example.com", Name: "Alice"})
	if err != nil || receipt.SentFor != "alice" {
		t.Fatalf("Run = %+v, %v", receipt, err)
	}
	if len(mailer.mails) != 1 || mailer.mails[0].Auth.Reveal() != "alice-token" || mailer.ambient[0] {
		t.Errorf("mails = %+v, ambient caller seen = %v", mailer.mails, mailer.ambient)
	}

	alice.ExpiresAt = time.Now().Add(-time.Second)
	_, err = tasktest.Run[welcome.Receipt](env, welcome.SendWelcomeTask, alice,
		welcome.SendWelcomeArgs{To: "alice@example.com", Name: "Alice"})
	if !errors.Is(err, task.ErrCallerExpired) || len(mailer.mails) != 1 {
		t.Errorf("expired caller: %v, %d mails", err, len(mailer.mails))
	}
}

// The sign-up handler submits the welcome mail as the request's caller; running what it
// submitted sends the mail.
func TestSignupSubmitsTheWelcomeMailAsTheCaller(t *testing.T) {
	env, mailer := newTaskEnv(t)
	api := &welcome.Server{Tasks: env.Client()}
	tokens := map[string]welcome.Identity{"alice-token": {UserID: "alice", ExpiresAt: time.Now().Add(time.Hour)}}
	srv := httptest.NewServer(api.Routes(tokens))
	defer srv.Close()

	signup(t, srv.URL, "alice-token", `{"email":"alice@example.com","name":"Alice"}`, http.StatusAccepted)
	subs := env.Submitted()
	if len(subs) != 1 || subs[0].Kind != welcome.SendWelcomeTask.Kind || subs[0].UserID != "alice" {
		t.Fatalf("submitted = %+v", subs)
	}
	var args welcome.SendWelcomeArgs
	if err := subs[0].Decode(&args); err != nil || args != (welcome.SendWelcomeArgs{To: "alice@example.com", Name: "Alice"}) {
		t.Errorf("args = %+v, %v", args, err)
	}

	outs, err := env.RunAll()
	if err != nil || len(outs) != 1 || outs[0].Decision != tasktest.Succeeded {
		t.Fatalf("RunAll = %+v, %v", outs, err)
	}
	var receipt welcome.Receipt
	if err := outs[0].Decode(&receipt); err != nil || receipt.SentFor != "alice" {
		t.Errorf("receipt = %+v, %v", receipt, err)
	}
	if len(mailer.mails) != 1 || mailer.mails[0].OnBehalfOf != "alice" || !strings.Contains(mailer.mails[0].Body, "The Team") {
		t.Errorf("mails = %+v", mailer.mails)
	}
}

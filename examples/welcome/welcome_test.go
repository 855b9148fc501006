package welcome_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/taskgen/taskgen/examples/welcome"
	"github.com/taskgen/taskgen/runtime/redistest"
	"github.com/taskgen/taskgen/runtime/task"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

type recordingMailer struct {
	mu      sync.Mutex
	mails   []welcome.Mail
	ambient []bool
}

func (m *recordingMailer) Send(ctx context.Context, mail welcome.Mail) (string, error) {
	_, ambient := welcome.CallerFrom(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.mails = append(m.mails, mail)
	m.ambient = append(m.ambient, ambient)
	return "msg", nil
}

// The handler hands the request's caller to the task explicitly; the task sees that
// caller's id and token, and nothing on its context.
func TestSignupSendsTheWelcomeMailAsTheCaller(t *testing.T) {
	api, mailer := start(t)
	tokens := map[string]welcome.Identity{
		"alice-token": {UserID: "alice", ExpiresAt: time.Now().Add(time.Hour)},
		"bob-token":   {UserID: "bob", ExpiresAt: time.Now().Add(300 * time.Millisecond)},
	}
	srv := httptest.NewServer(api.Routes(tokens))
	defer srv.Close()

	id := signup(t, srv.URL, "alice-token", `{"email":"alice@example.com","name":"Alice"}`, http.StatusAccepted)
	status := getStatus(t, srv.URL, id, "alice-token")
	if status["state"] != "succeeded" || status["receipt"].(map[string]any)["sent_for"] != "alice" {
		t.Fatalf("status = %v", status)
	}
	mailer.mu.Lock()
	if len(mailer.mails) != 1 || mailer.mails[0].Auth.Reveal() != "alice-token" || mailer.mails[0].OnBehalfOf != "alice" || mailer.ambient[0] {
		t.Errorf("mails = %+v, ambient caller seen = %v", mailer.mails, mailer.ambient)
	}
	mailer.mu.Unlock()

	// A mail due after bob's token expires is refused in the request, not hours later.
	signup(t, srv.URL, "bob-token", `{"email":"bob@example.com","name":"Bob","delay_ms":800}`, http.StatusUnprocessableEntity)
	signup(t, srv.URL, "stolen-token", `{"email":"x@example.com"}`, http.StatusUnauthorized)
}

// A caller reads the status of their own tasks only: another user's task id, known or
// guessed, is answered as not found.
func TestStatusAnswersOnlyTheTasksOwner(t *testing.T) {
	api, _ := start(t)
	tokens := map[string]welcome.Identity{
		"alice-token": {UserID: "alice", ExpiresAt: time.Now().Add(time.Hour)},
		"bob-token":   {UserID: "bob", ExpiresAt: time.Now().Add(time.Hour)},
	}
	srv := httptest.NewServer(api.Routes(tokens))
	defer srv.Close()
	id := signup(t, srv.URL, "alice-token", `{"email":"alice@example.com","name":"Alice"}`, http.StatusAccepted)
	if status := getStatus(t, srv.URL, id, "alice-token"); status["state"] != "succeeded" {
		t.Fatalf("alice's own task: %v", status)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/tasks/"+id, nil)
	req.Header.Set("Authorization", "Bearer bob-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || bytes.Contains(body, []byte("alice")) {
		t.Errorf("bob asking for alice's task: %s %q, want 404 telling nothing", resp.Status, body)
	}
}

func start(t *testing.T) (*welcome.Server, *recordingMailer) {
	t.Helper()
	rdb := redistest.Client(t)
	key, prefix := task.WithSigningKey("k", []byte("welcome-test-key-0123456789abcdef")), task.WithPrefix(redistest.Prefix(t))
	w, err := task.NewWorker(rdb, key, prefix, task.WithQueues("email"))
	if err != nil {
		t.Fatal(err)
	}
	mailer := &recordingMailer{}
	if err := welcome.RegisterTasks(w, &welcome.Deps{Mailer: mailer, From: "test"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	c, err := task.NewClient(rdb, key, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return &welcome.Server{Tasks: c}, mailer
}

func TestRegisterTasksRefusesMissingLifespan(t *testing.T) {
	w, err := task.NewWorker(redistest.Client(t), task.WithSigningKey("k", []byte("welcome-test-key-0123456789abcdef")))
	if err != nil {
		t.Fatal(err)
	}
	if err := welcome.RegisterTasks(w, nil); err == nil {
		t.Fatal("RegisterTasks accepted nil Deps")
	}
}

func signup(t *testing.T, base, token, body string, want int) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/signup", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("signup: %s, want %d", resp.Status, want)
	}
	var out struct{ Task string }
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return out.Task
}

func getStatus(t *testing.T, base, id, token string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/tasks/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("status %s: %v", resp.Status, err)
	}
	return out
}

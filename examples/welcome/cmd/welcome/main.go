// Command welcome runs taskgen's example end to end: an HTTP API whose handler submits a
// task on behalf of the authenticated caller, and a worker that runs it with that caller
// and its own lifespan state. It uses an embedded Redis (miniredis) unless
// TASKGEN_REDIS_URL names a real one, prints each step, and exits non-zero if anything
// did not happen as described.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/examples/welcome"
	"github.com/taskgen/taskgen/internal/taskctl"
	"github.com/taskgen/taskgen/runtime/task"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
	fmt.Println("\nAll steps behaved as described.")
}

func step(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }
func say(format string, args ...any)  { fmt.Printf("    "+format+"\n", args...) }

func run() error {
	ctx := context.Background()
	rdb, redisURL, closeRedis, err := connect()
	if err != nil {
		return err
	}
	defer closeRedis()

	// Both sides need the same signing key. A real deployment loads it from its secret
	// store; the demo makes one up.
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	signing, logging := task.WithSigningKey("demo-1", key), task.WithLogger(logger)
	tracing, err := newTracing()
	if err != nil {
		return err
	}
	defer tracing.shutdown()
	traceWorker, err := tracing.workerOption()
	if err != nil {
		return err
	}
	traceClient, err := tracing.clientOption()
	if err != nil {
		return err
	}

	step("Start a worker; its lifespan state (the mailer) goes in through RegisterTasks")
	worker, err := task.NewWorker(rdb, signing, logging, task.WithQueues("email"), traceWorker)
	if err != nil {
		return err
	}
	mailer := &printMailer{}
	if err := welcome.RegisterTasks(worker, &welcome.Deps{Mailer: mailer, From: "The Example Team"}); err != nil {
		return err
	}
	say("registered kinds: %v", worker.Kinds())
	workerCtx, stopWorker := context.WithCancel(ctx)
	defer stopWorker()
	workerDone := make(chan error, 1)
	go func() { workerDone <- worker.Run(workerCtx) }()

	step("Start the HTTP API; its auth middleware puts the caller on the request context")
	client, err := task.NewClient(rdb, signing, logging, traceClient)
	if err != nil {
		return err
	}
	tokens := map[string]welcome.Identity{
		"alice-token-7f3a9c": {UserID: "alice", ExpiresAt: time.Now().Add(time.Hour), Scopes: []string{"mail:send"}},
		"bob-token-51e0d2":   {UserID: "bob", ExpiresAt: time.Now().Add(time.Second)},
	}
	api := &welcome.Server{Tasks: client}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: tracing.middleware(api.Routes(tokens)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	base := "http://" + ln.Addr().String()
	say("listening on %s", base)

	step("Alice signs up; the handler passes her caller explicitly to SubmitSendWelcome")
	id, err := signup(base, "alice-token-7f3a9c", `{"email":"alice@example.com","name":"Alice"}`)
	if err != nil {
		return err
	}
	say("task submitted: %s", id)
	status, err := get(base+"/tasks/"+id, "alice-token-7f3a9c")
	if err != nil {
		return err
	}
	say("task result: %s", jsonString(status))
	if status["state"] != "succeeded" {
		return fmt.Errorf("alice's welcome task did not succeed: %v", status)
	}
	if !mailer.sawToken("alice", "alice-token-7f3a9c") {
		return errors.New("the task did not see alice's token")
	}

	step("Her request's trace crossed Redis: the stdout exporter's spans of it, one line each")
	if n := tracing.spans.printTrace("process email", "messaging.message.id", "taskgen.task.outcome"); n != 3 {
		return fmt.Errorf("alice's trace has %d spans, want 3: the request, the send and the attempt", n)
	}
	say("only the trace context crossed, as the client's explicit propagator wrote it into the signed envelope")

	step("Bob's token expires in 1s; he asks for his welcome mail in 2s")
	_, err = signup(base, "bob-token-51e0d2", `{"email":"bob@example.com","name":"Bob","delay_ms":2000}`)
	if err == nil || !strings.Contains(err.Error(), "422") {
		return fmt.Errorf("bob's signup should have been refused with ErrCallerExpired: %v", err)
	}
	say("refused at submit, in the request, before anything was queued: %v", err)
	say("(the worker would otherwise have refused the task in 2s, with bob long gone)")

	step("Bob signs up without a delay, then asks for alice's task")
	bobs, err := signup(base, "bob-token-51e0d2", `{"email":"bob@example.com","name":"Bob"}`)
	if err != nil {
		return err
	}
	if _, err := get(base+"/tasks/"+bobs, "bob-token-51e0d2"); err != nil {
		return err
	}
	if _, err := get(base+"/tasks/"+id, "bob-token-51e0d2"); err == nil || !strings.Contains(err.Error(), "404") {
		return fmt.Errorf("bob read alice's task: %v", err)
	}
	say("bob reads his own task; alice's is not found for him: %s is hers", id)

	step("A cron job submits the weekly digest as an explicit system caller")
	digest, err := welcome.SubmitSendDigest(ctx, client, task.System("digest"), 47, []string{"alice@example.com", "carol@example.com"})
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	sent, err := welcome.ResultSendDigest(rctx, client, digest)
	cancel()
	if err != nil {
		return err
	}
	say("digest %s sent %d mails", digest, sent)

	step("Shut down: Run drains running tasks, then returns")
	stopWorker()
	if err := <-workerDone; err != nil {
		return err
	}
	say("worker stopped cleanly")

	step("What an operator sees: taskctl queues, in-process, with the demo's Redis and key")
	ctlEnv := map[string]string{
		taskctl.EnvRedisURL:    redisURL,
		taskctl.EnvSigningKeys: "demo-1:" + base64.StdEncoding.EncodeToString(key),
	}
	if code := taskctl.Main(ctx, []string{"queues"}, func(k string) string { return ctlEnv[k] }, os.Stdout, os.Stderr); code != taskctl.ExitOK {
		return fmt.Errorf("taskctl queues exited %d", code)
	}
	say("(taskctl tasks email --state pending, taskctl show ID, taskctl serve: see the README's Operating)")
	return nil
}

// connect returns TASKGEN_REDIS_URL's Redis, or an embedded miniredis, and its URL.
func connect() (redis.UniversalClient, string, func(), error) {
	if url := os.Getenv("TASKGEN_REDIS_URL"); url != "" {
		opt, err := redis.ParseURL(url)
		if err != nil {
			return nil, "", nil, fmt.Errorf("TASKGEN_REDIS_URL: %w", err)
		}
		rdb := redis.NewClient(opt)
		step("Redis: %s (from TASKGEN_REDIS_URL)", opt.Addr)
		return rdb, url, func() { rdb.Close() }, nil
	}
	mr, err := miniredis.Run()
	if err != nil {
		return nil, "", nil, err
	}
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	step("Redis: embedded miniredis on %s (set TASKGEN_REDIS_URL to use a real server)", mr.Addr())
	return rdb, "redis://" + mr.Addr(), func() { rdb.Close(); mr.Close() }, nil
}

func signup(base, token, body string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, base+"/signup", bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+token)
	var out struct{ Task string }
	if err := do(req, &out); err != nil {
		return "", err
	}
	return out.Task, nil
}

func get(url, token string) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	var out map[string]any
	return out, do(req, &out)
}

func do(req *http.Request, out any) error {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return fmt.Errorf("%s %s: %s: %s", req.Method, req.URL.Path, resp.Status, strings.TrimSpace(b.String()))
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// printMailer prints what it would send. It also looks for the request context's ambient
// caller, to show that it is not there: the task got its caller as a parameter instead.
type printMailer struct {
	mu   sync.Mutex
	sent []welcome.Mail
}

func (m *printMailer) Send(ctx context.Context, mail welcome.Mail) (string, error) {
	ambient := "none"
	if c, ok := welcome.CallerFrom(ctx); ok {
		ambient = c.UserID
	}
	say("[task] mail %q to %s on behalf of %q, token %v (%d chars); caller on the task's ctx: %s",
		mail.Subject, mail.To, mail.OnBehalfOf, mail.Auth, len(mail.Auth.Reveal()), ambient)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sent = append(m.sent, mail)
	return fmt.Sprintf("msg-%d", len(m.sent)), nil
}

func (m *printMailer) sawToken(user, token string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.sent {
		if s.OnBehalfOf == user && s.Auth.Reveal() == token {
			return true
		}
	}
	return false
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

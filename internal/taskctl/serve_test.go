package taskctl

import (
	"bytes"
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that serve can write while the test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var servingAt = regexp.MustCompile(`taskctl console on (http://127\.0\.0\.1:\d+)/\n`)

// serve runs taskctl serve until the test ends and returns its URL and what it printed.
func serve(t *testing.T, env map[string]string) (base string, stderr *syncBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stderr = &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"serve", "--listen", "127.0.0.1:0"}, func(k string) string { return env[k] }, &bytes.Buffer{}, stderr)
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != ExitOK {
			t.Errorf("serve exited %d after its context ended:\n%s", code, stderr)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if m := servingAt.FindStringSubmatch(stderr.String()); m != nil {
			return m[1], stderr
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d:\n%s", code, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve printed no address:\n%s", stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func loginWith(t *testing.T, base, token string) int {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar}
	resp, err := c.PostForm(base+"/login", url.Values{"token": {token}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeMakesATokenAndPrintsIt(t *testing.T) {
	d := newDeployment(t, false)
	base, stderr := serve(t, d.env)
	m := regexp.MustCompile(`log in with this token \(set TASKGEN_CONSOLE_TOKEN to choose one\): (\S+)\n`).FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("serve printed no token:\n%s", stderr)
	}
	if code := loginWith(t, base, m[1]); code != http.StatusOK {
		t.Errorf("login with the printed token: %d, want the overview", code)
	}
	if code := loginWith(t, base, "not-the-token-but-long-enough"); code != http.StatusUnauthorized {
		t.Errorf("login with another token: %d, want 401", code)
	}
}

func TestServeTakesTheTokenOfTheEnvironmentAndNeverPrintsIt(t *testing.T) {
	d := newDeployment(t, false)
	env := map[string]string{EnvConsoleToken: consoleToken}
	for k, v := range d.env {
		env[k] = v
	}
	base, stderr := serve(t, env)
	if code := loginWith(t, base, consoleToken); code != http.StatusOK {
		t.Errorf("login with the environment's token: %d", code)
	}
	if out := stderr.String(); strings.Contains(out, consoleToken) || !strings.Contains(out, "log in with the token of TASKGEN_CONSOLE_TOKEN") {
		t.Errorf("serve's output:\n%s", out)
	}
}

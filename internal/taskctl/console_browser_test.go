package taskctl

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/taskgen/taskgen/runtime/task"
)

// chromium finds the browser: $CHROME, else Debian's chromium on the PATH.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROME"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no Chromium found (looked for $CHROME, chromium, chromium-browser, google-chrome): run make tools, which installs Debian's chromium")
	return ""
}

// The console in a real browser: a page without the token is refused, a person logs in
// with it, sees the queue with its dead letter, opens it, presses Requeue and sees the
// task succeed; and every page fits a phone's width.
func TestConsoleInABrowser(t *testing.T) {
	bin := chromium(t)
	d := newDeployment(t, false)
	in := d.inspector(t)
	alice := task.Caller{UserID: "alice", Token: task.NewSecret("alice-browser-token"), ExpiresAt: time.Now().Add(time.Hour), Scopes: []string{"mail:send"}}
	dead := d.submit(t, flakyDef, alice, "welcome mail")
	waitState(t, in, dead, task.StateDead)
	d.submit(t, idleDef, alice, "waits")

	con, err := NewConsole(in, ConsoleConfig{Token: task.NewSecret(consoleToken)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	defer srv.Close()

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil { // starts the browser, on a context without a timeout
		t.Fatalf("start %s: %v", bin, err)
	}
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	screens := os.Getenv("TASKCTL_SCREENSHOTS")
	shot := func(name string) {
		t.Helper()
		if screens == "" {
			return
		}
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(screens, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// Without the token: refused, with the login form.
	taskPage := srv.URL + "/tasks/" + escapeID(dead)
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(taskPage))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != 401 || strings.Contains(text("main"), "ctl.flaky") || !strings.Contains(text("main"), "Log in") {
		t.Fatalf("the task page without a session: %d %q, want 401 and the login form", resp.Status, text("main"))
	}

	// Log in; the overview shows the queue and its dead letter.
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#token"), consoleToken),
		chromedp.Click(chromedp.CSS("form.login button")),
		chromedp.WaitVisible(chromedp.CSS("table.cards")),
	); err != nil {
		t.Fatalf("log in: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); loc != srv.URL+"/" {
		t.Errorf("after login at %s, want the overview", loc)
	}
	if main := text("main"); !strings.Contains(main, "ctlq") || !strings.Contains(main, "ctlidle") {
		t.Fatalf("the overview does not list the queues:\n%s", main)
	}
	if n := text(`a.bad[href="/queues/ctlq?state=dead"]`); n != "1" {
		t.Fatalf("ctlq's dead count reads %q, want 1", n)
	}
	shot("overview")

	// Open the dead letter from the queue's dead list.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a.bad[href="/queues/ctlq?state=dead"]`)),
		chromedp.WaitVisible(chromedp.CSS(`a[href="/tasks/`+escapeID(dead)+`"]`)),
	); err != nil {
		t.Fatalf("open the dead list: %v", err)
	}
	shot("dead-list")
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`a[href="/tasks/`+escapeID(dead)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#requeue")),
	); err != nil {
		t.Fatalf("open the dead task: %v", err)
	}
	if st := text("#task-state"); st != "dead" {
		t.Fatalf("the task page shows state %q, want dead", st)
	}
	if main := text("main"); !strings.Contains(main, "mailbox full") || !strings.Contains(main, "alice") || strings.Contains(main, "alice-browser-token") {
		t.Errorf("the dead task's page does not show its error and caller (or shows the token):\n%s", main)
	}
	shot("task-dead")

	// Requeue it, now that it would succeed, and watch it succeed.
	d.failing.Store(false)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#requeue")), chromedp.WaitVisible(chromedp.CSS(".flash"))); err != nil {
		t.Fatalf("requeue: %v", err)
	}
	if f := text(".flash"); !strings.Contains(f, "Requeued "+string(dead)) {
		t.Errorf("after requeue the page says %q", f)
	}
	deadline := time.Now().Add(30 * time.Second)
	for text("#task-state") != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("the requeued task shows %q after 30s, want succeeded", text("#task-state"))
		}
		if err := chromedp.Do(ctx, chromedp.Sleep(200*time.Millisecond), chromedp.Navigate(taskPage)); err != nil {
			t.Fatal(err)
		}
	}
	if main := text("main"); !strings.Contains(main, "sent welcome mail for alice") {
		t.Errorf("the succeeded task's page does not show its result:\n%s", main)
	}
	shot("task-succeeded")

	// At a phone's width nothing scrolls sideways.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(375, 812, chromedp.EmulateMobile, chromedp.EmulatePortrait)); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/", "/queues/ctlq?state=dead", "/queues/ctlidle?state=pending", "/tasks/" + escapeID(dead), "/login"} {
		if err := chromedp.Do(ctx, chromedp.Navigate(srv.URL+path)); err != nil {
			t.Fatal(err)
		}
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("document.documentElement.scrollWidth <= window.innerWidth && window.innerWidth <= 400"))
		if err != nil {
			t.Fatal(err)
		}
		if !fits {
			w, _ := chromedp.Run(ctx, chromedp.Evaluate[[]int]("[document.documentElement.scrollWidth, window.innerWidth]"))
			t.Errorf("%s at 375px: scroll width and viewport %v: the page overflows sideways", path, w)
		}
		switch path {
		case "/":
			shot("phone-overview")
		case "/tasks/" + escapeID(dead):
			shot("phone-task")
		}
	}
}

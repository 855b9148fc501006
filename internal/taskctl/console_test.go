package taskctl

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/taskgen/taskgen/runtime/task"
)

const consoleToken = "console-token-for-the-tests-5d1c9e"

// browser is an HTTP client of a console with a cookie jar, that does not follow
// redirects so that each answer can be checked.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func startConsole(t *testing.T, in *task.Inspector) *browser {
	t.Helper()
	con, err := NewConsole(in, ConsoleConfig{Token: task.NewSecret(consoleToken)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con)
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: srv.URL, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// do sends a request and returns the status, the Location and the body.
func (b *browser) do(method, path string, form url.Values, header http.Header) (int, http.Header, string) {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.base+path, body)
	if err != nil {
		b.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, string(data)
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	code, _, body := b.do(http.MethodGet, path, nil, nil)
	return code, body
}

func (b *browser) login() {
	b.t.Helper()
	code, h, _ := b.do(http.MethodPost, "/login", url.Values{"token": {consoleToken}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		b.t.Fatalf("login: %d to %q", code, h.Get("Location"))
	}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token of the forms on page path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	code, body := b.get(path)
	m := csrfField.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		b.t.Fatalf("GET %s: %d, no csrf field", path, code)
	}
	return m[1]
}

func TestConsoleRefusesWhatComesWithoutTheToken(t *testing.T) {
	d := newDeployment(t, false)
	b := startConsole(t, d.inspector(t))

	for _, path := range []string{"/", "/queues/ctlq?state=dead", "/tasks/ctlq/01JAAAAAAAAAAAAAAAAAAAAAAA", "/dead/ctlq/1-0", "/nowhere"} {
		code, body := b.get(path)
		if code != http.StatusUnauthorized || !strings.Contains(body, `name="token"`) || strings.Contains(body, "ctl.") {
			t.Errorf("GET %s without a session: %d, want 401 and the login form", path, code)
		}
	}
	code, _, _ := b.do(http.MethodPost, "/actions/pause", url.Values{"queue": {"ctlq"}}, nil)
	if code != http.StatusForbidden {
		t.Errorf("POST without a session: %d, want 403", code)
	}
	code, _, body := b.do(http.MethodPost, "/login", url.Values{"token": {consoleToken + "x"}}, nil)
	if code != http.StatusUnauthorized || !strings.Contains(body, "not the console") {
		t.Errorf("a wrong token: %d", code)
	}

	code, h, _ := b.do(http.MethodPost, "/login", url.Values{"token": {consoleToken}}, nil)
	ck := h.Get("Set-Cookie")
	if code != http.StatusSeeOther || !strings.Contains(ck, "HttpOnly") || !strings.Contains(ck, "SameSite=Strict") || strings.Contains(ck, consoleToken) {
		t.Fatalf("login: %d, cookie %q", code, ck)
	}
	if code, body := b.get("/"); code != http.StatusOK || !strings.Contains(body, "Queues") {
		t.Fatalf("GET / with a session: %d", code)
	}

	// With a session, an action still needs the session's CSRF token, and a same-site
	// origin: a cross-site form post is refused even with a valid token.
	if code, _, _ := b.do(http.MethodPost, "/actions/pause", url.Values{"queue": {"ctlq"}, "csrf": {"forged"}}, nil); code != http.StatusForbidden {
		t.Errorf("POST with a forged CSRF token: %d, want 403", code)
	}
	csrf := b.csrf("/")
	cross := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}
	if code, _, _ := b.do(http.MethodPost, "/actions/pause", url.Values{"queue": {"ctlq"}, "csrf": {csrf}}, cross); code != http.StatusForbidden {
		t.Errorf("cross-site POST: %d, want 403", code)
	}
	in := d.inspector(t)
	if q, err := in.Queue(t.Context(), "ctlq"); err != nil || q.Paused {
		t.Fatalf("after refused posts: %+v, %v; want the queue not paused", q, err)
	}
	code, h, _ = b.do(http.MethodPost, "/actions/pause", url.Values{"queue": {"ctlq"}, "csrf": {csrf}, "back": {"//evil.example/"}}, nil)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Errorf("pause: %d to %q, want 303 to /", code, h.Get("Location"))
	}
	if q, err := in.Queue(t.Context(), "ctlq"); err != nil || !q.Paused {
		t.Errorf("after pause: %+v, %v", q, err)
	}
	if _, body := b.get("/"); !strings.Contains(body, "Paused ctlq.") {
		t.Errorf("the overview does not say what was done")
	}

	for name, want := range map[string]string{
		"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY",
		"Referrer-Policy": "no-referrer", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	} {
		if _, h, _ := b.do(http.MethodGet, "/", nil, nil); !strings.Contains(h.Get(name), want) {
			t.Errorf("header %s = %q, want %q", name, h.Get(name), want)
		}
	}

	// Logging out ends the session on the server, not only in the browser.
	jarCookies := b.c.Jar.Cookies(mustURL(t, b.base))
	if code, _, _ := b.do(http.MethodPost, "/logout", url.Values{"csrf": {b.csrf("/")}}, nil); code != http.StatusSeeOther {
		t.Fatalf("logout: %d", code)
	}
	replay := http.Header{"Cookie": {jarCookies[0].String()}}
	if code, _, _ := b.do(http.MethodGet, "/", nil, replay); code != http.StatusUnauthorized {
		t.Errorf("the old session cookie after logout: %d, want 401", code)
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestConsoleRefusesAShortToken(t *testing.T) {
	d := newDeployment(t, false)
	if _, err := NewConsole(d.inspector(t), ConsoleConfig{Token: task.NewSecret("short")}); err == nil || !strings.Contains(err.Error(), "at least 20 characters") {
		t.Errorf("NewConsole with a short token: %v", err)
	}
}

package taskctl

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// sessionCookie is the name of the console's session cookie.
const sessionCookie = "taskctl_session"

// DefaultSessionTTL is how long a console login lasts.
const DefaultSessionTTL = 12 * time.Hour

// maxSessions bounds the sessions a console keeps; a login past it drops the oldest.
const maxSessions = 1000

// ConsoleConfig configures a Console.
type ConsoleConfig struct {
	// Token is what a person types at the login page; required, at least 20 characters.
	// It is exchanged for a session cookie and never appears in a URL or a page.
	Token task.Secret
	// Secure marks the session cookie Secure: set it when the console is served over TLS
	// (directly or behind a TLS proxy).
	Secure bool
	// SessionTTL is how long a login lasts; default DefaultSessionTTL.
	SessionTTL time.Duration
	// Logger receives a line per action and per refused login; nil discards.
	Logger *slog.Logger
}

// Console is taskctl's web console, an http.Handler: the queue overview, task lists, a
// task's page and the actions of the command line, as server-rendered HTML that needs no
// JavaScript.
//
// Every page but the login page needs a session, which the login form gives for the
// token. The session cookie is HttpOnly and SameSite=Strict; every form that changes
// anything carries the session's CSRF token, and cross-origin POSTs are refused
// (http.CrossOriginProtection) before that. Pages are sent with a strict
// Content-Security-Policy, X-Frame-Options DENY, Referrer-Policy no-referrer and
// Cache-Control no-store.
type Console struct {
	in      *task.Inspector
	token   [sha256.Size]byte
	secure  bool
	ttl     time.Duration
	log     *slog.Logger
	pages   map[string]*template.Template
	handler http.Handler

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one login: its CSRF token and a message for the next page.
type session struct {
	csrf    string
	expires time.Time
	flash   string
}

// NewConsole returns the console over in.
func NewConsole(in *task.Inspector, cfg ConsoleConfig) (*Console, error) {
	if in == nil {
		return nil, errors.New("console: nil inspector")
	}
	if len(cfg.Token.Reveal()) < 20 {
		return nil, fmt.Errorf("console: the token must have at least 20 characters (set %s to a long random string, or leave it unset to have one made)", EnvConsoleToken)
	}
	c := &Console{
		in: in, token: sha256.Sum256([]byte(cfg.Token.Reveal())), secure: cfg.Secure,
		ttl: cfg.SessionTTL, log: cfg.Logger, sessions: map[string]*session{},
	}
	if c.ttl <= 0 {
		c.ttl = DefaultSessionTTL
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	c.pages = pages
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	mux.HandleFunc("GET /login", c.loginPage)
	mux.HandleFunc("POST /login", c.login)
	mux.HandleFunc("POST /logout", c.authed(c.logout))
	mux.HandleFunc("GET /{$}", c.authed(c.overview))
	mux.HandleFunc("GET /queues/{queue}", c.authed(c.queuePage))
	mux.HandleFunc("GET /tasks/{id...}", c.authed(c.taskPage))
	mux.HandleFunc("GET /dead/{queue}/{entry}", c.authed(c.deadPage))
	mux.HandleFunc("POST /actions/{action}", c.authed(c.action))
	mux.HandleFunc("/", c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		c.fail(w, r, s, http.StatusNotFound, "no such page")
	}))
	c.handler = http.NewCrossOriginProtection().Handler(mux)
	return c, nil
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	c.handler.ServeHTTP(w, r)
}

// authed wraps a handler that needs a session: without one, a page answers 401 with the
// login form, and a POST 403.
func (c *Console) authed(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				w.WriteHeader(http.StatusUnauthorized)
				c.render(w, r, nil, "login", loginData{Message: "Log in with the console's token."})
				return
			}
			http.Error(w, "forbidden: log in first", http.StatusForbidden)
			return
		}
		h(w, r, s)
	}
}

// session returns the live session of r's cookie, or nil.
func (c *Console) session(r *http.Request) *session {
	ck, err := r.Cookie(sessionCookie)
	if err != nil || ck.Value == "" {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[sessionKey(ck.Value)]
	if s == nil {
		return nil
	}
	if time.Now().After(s.expires) {
		delete(c.sessions, sessionKey(ck.Value))
		return nil
	}
	return s
}

// sessionKey is what the session map is keyed by: a hash of the cookie, so that the map
// holds nothing a memory dump could replay.
func sessionKey(cookie string) string {
	sum := sha256.Sum256([]byte(cookie))
	return string(sum[:])
}

func (c *Console) checkToken(given string) bool {
	sum := sha256.Sum256([]byte(given))
	return subtle.ConstantTimeCompare(sum[:], c.token[:]) == 1
}

func (c *Console) newSession() (cookie string) {
	cookie = rand.Text() + rand.Text()
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.sessions {
		if now.After(s.expires) {
			delete(c.sessions, k)
		}
	}
	if len(c.sessions) >= maxSessions {
		var oldest string
		var at time.Time
		for k, s := range c.sessions {
			if oldest == "" || s.expires.Before(at) {
				oldest, at = k, s.expires
			}
		}
		delete(c.sessions, oldest)
	}
	c.sessions[sessionKey(cookie)] = &session{csrf: rand.Text(), expires: now.Add(c.ttl)}
	return cookie
}

func (c *Console) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: c.secure, SameSite: http.SameSiteStrictMode,
	})
}

type loginData struct{ Message string }

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if c.session(r) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, r, nil, "login", loginData{})
}

func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 4096)
	if err := r.ParseForm(); err != nil || !c.checkToken(r.PostForm.Get("token")) {
		c.log.Warn("taskctl console: refused login", "remote", r.RemoteAddr)
		w.WriteHeader(http.StatusUnauthorized)
		c.render(w, r, nil, "login", loginData{Message: "That is not the console's token."})
		return
	}
	c.setCookie(w, c.newSession(), int(c.ttl.Seconds()))
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, s *session) {
	if !c.checkCSRF(r, s) {
		http.Error(w, "forbidden: the form's CSRF token does not match the session (reload the page)", http.StatusForbidden)
		return
	}
	if ck, err := r.Cookie(sessionCookie); err == nil {
		c.mu.Lock()
		delete(c.sessions, sessionKey(ck.Value))
		c.mu.Unlock()
	}
	c.setCookie(w, "", -1)
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// checkCSRF parses r's form and reports whether its csrf field is the session's.
func (c *Console) checkCSRF(r *http.Request, s *session) bool {
	if err := r.ParseForm(); err != nil {
		return false
	}
	c.mu.Lock()
	want := s.csrf
	c.mu.Unlock()
	return subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(want)) == 1
}

func (c *Console) setFlash(s *session, msg string) {
	c.mu.Lock()
	s.flash = msg
	c.mu.Unlock()
}

func (c *Console) takeFlash(s *session) (msg, csrf string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	msg, s.flash = s.flash, ""
	return msg, s.csrf
}

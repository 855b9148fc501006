package welcome

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

type callerKey struct{}

// Identity is what the token store knows about a token.
type Identity struct {
	UserID    string
	ExpiresAt time.Time
	Scopes    []string
}

// Authenticate is an ordinary auth middleware: it resolves the bearer token and puts
// the caller on the request context, as Go servers usually do. That context value is
// exactly what a background task does not get; see Server.Signup.
func Authenticate(next http.Handler, tokens map[string]Identity) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		id, known := tokens[tok]
		if !ok || !known {
			http.Error(w, "unauthenticated", http.StatusUnauthorized)
			return
		}
		c := task.Caller{UserID: id.UserID, Token: task.NewSecret(tok), ExpiresAt: id.ExpiresAt, Scopes: id.Scopes}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
	})
}

// CallerFrom returns the caller Authenticate put on ctx.
func CallerFrom(ctx context.Context) (task.Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(task.Caller)
	return c, ok
}

// Server serves the sign-up API.
type Server struct {
	Tasks *task.Client

	// owners records who submitted each task, so that a caller reads only the status of
	// their own tasks: a task id is no secret (it sits in logs and URLs), and a result
	// may hold personal data. With several API instances, keep this in your database.
	owners sync.Map // task.ID -> user id
}

// Routes returns the API behind the auth middleware.
func (s *Server) Routes(tokens map[string]Identity) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /signup", s.Signup)
	mux.HandleFunc("GET /tasks/{queue}/{id}", s.Status)
	return Authenticate(mux, tokens)
}

type signupRequest struct {
	Email string `json:"email"`
	Name  string `json:"name"`
	// DelayMS delays the welcome mail, to show what happens when the caller's token
	// expires before the task runs.
	DelayMS int `json:"delay_ms"`
}

// Signup takes the caller out of the request, explicitly, and hands it to the task.
func (s *Server) Signup(w http.ResponseWriter, r *http.Request) {
	var req signupRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Email == "" {
		http.Error(w, "want {\"email\": ..., \"name\": ...}", http.StatusBadRequest)
		return
	}
	caller, ok := CallerFrom(r.Context())
	if !ok {
		http.Error(w, "no caller", http.StatusUnauthorized)
		return
	}
	var opts []task.SubmitOption
	if req.DelayMS > 0 {
		opts = append(opts, task.Delay(time.Duration(req.DelayMS)*time.Millisecond))
	}
	id, err := SubmitSendWelcome(r.Context(), s.Tasks, caller, req.Email, req.Name, opts...)
	switch {
	case errors.Is(err, task.ErrCallerExpired):
		// The token expires before the mail is due: the worker would refuse it hours from
		// now. Say so now, while the user is still there to sign in again.
		http.Error(w, err.Error(), http.StatusUnprocessableEntity)
		return
	case err != nil:
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.owners.Store(id, caller.UserID)
	writeJSON(w, http.StatusAccepted, map[string]string{"task": string(id)})
}

// Status waits up to 10 seconds for one of the caller's welcome tasks and reports its
// outcome. Another user's task is answered as not found: its existence is not theirs to
// learn either.
func (s *Server) Status(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	id := task.ID(r.PathValue("queue") + "/" + r.PathValue("id"))
	caller, ok := CallerFrom(r.Context())
	if owner, known := s.owners.Load(id); !ok || !known || owner != caller.UserID {
		http.Error(w, "no such task", http.StatusNotFound)
		return
	}
	receipt, err := ResultSendWelcome(ctx, s.Tasks, id)
	var failed *task.FailedError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"state": "succeeded", "receipt": receipt})
	case errors.As(err, &failed):
		writeJSON(w, http.StatusOK, map[string]any{
			"state": "failed", "reason": failed.Reason, "error": failed.Message,
			"caller_expired": errors.Is(err, task.ErrCallerExpired),
		})
	case errors.Is(err, task.ErrNotFound):
		http.Error(w, err.Error(), http.StatusNotFound)
	default:
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

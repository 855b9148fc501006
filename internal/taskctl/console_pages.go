package taskctl

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// pageNames are the console's pages, each templates/<name>.html within layout.html.
var pageNames = []string{"login", "overview", "queue", "task", "error"}

func parsePages() (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"when":      when,
		"age":       age,
		"orDash":    orDash,
		"short":     func(s string) string { return oneLine(s, 80) },
		"caller":    func(ci *task.CallerInfo) string { return callerText(ci, time.Now()) },
		"signature": signatureText,
		"raw":       func(b []byte) string { return indentJSON(b) },
		"taskURL":   taskURL,
		"queueURL":  queueURL,
		"paused":    pausedWord,
		"attempts":  attemptsText,
		"retention": retention,
	}
	pages := map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		pages[name] = t
	}
	return pages, nil
}

// indentJSON shows JSON indented, or as it is when it is not JSON.
func indentJSON(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	var out bytes.Buffer
	if err := jsonIndent(&out, b); err != nil {
		return string(b)
	}
	return out.String()
}

// taskURL is the page of a listed task: by id, or for a dead letter without a verified id
// by its entry.
func taskURL(s task.TaskSummary) string {
	if s.ID != "" {
		return "/tasks/" + escapeID(s.ID)
	}
	return "/dead/" + url.PathEscape(s.Queue) + "/" + url.PathEscape(s.DeadEntry)
}

func escapeID(id task.ID) string {
	q, rest, _ := strings.Cut(string(id), "/")
	return url.PathEscape(q) + "/" + url.PathEscape(rest)
}

func queueURL(queue string, state task.TaskState) string {
	return "/queues/" + url.PathEscape(queue) + "?state=" + url.QueryEscape(string(state))
}

// view is what every page's template gets.
type view struct {
	Title    string
	LoggedIn bool
	CSRF     string
	Flash    string
	Refresh  int // seconds, for a page that shows a task still moving; 0 none
	Page     any
}

func (c *Console) render(w http.ResponseWriter, r *http.Request, s *session, name string, data any) {
	v := view{Title: "taskctl", Page: data}
	if s != nil {
		v.LoggedIn = true
		v.Flash, v.CSRF = c.takeFlash(s)
	}
	switch p := data.(type) {
	case overviewData:
		v.Title = "Queues · taskctl"
	case queueData:
		v.Title = p.Queue + " · taskctl"
	case taskData:
		v.Title = p.Task.Kind + " · taskctl"
		if !finished(p.Task.State) {
			v.Refresh = 2
		}
	case errorData:
		v.Title = "Error · taskctl"
	case loginData:
		v.Title = "Log in · taskctl"
	}
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, v); err != nil {
		c.log.Error("taskctl console: render", "page", name, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(buf.Bytes())
}

func finished(s task.TaskState) bool {
	return s == task.StateSucceeded || s == task.StateDead || s == task.StateCanceled
}

type errorData struct {
	Status  int
	Message string
}

func (c *Console) fail(w http.ResponseWriter, r *http.Request, s *session, status int, msg string) {
	w.WriteHeader(status)
	c.render(w, r, s, "error", errorData{Status: status, Message: msg})
}

// failErr answers an inspector error: 404 for ErrNotFound, else 502 with the error.
func (c *Console) failErr(w http.ResponseWriter, r *http.Request, s *session, err error) {
	if errors.Is(err, task.ErrNotFound) {
		c.fail(w, r, s, http.StatusNotFound, err.Error())
		return
	}
	c.fail(w, r, s, http.StatusBadGateway, err.Error())
}

type overviewData struct {
	Queues    []task.QueueInfo
	Schedules []task.ScheduleInfo
}

func (c *Console) overview(w http.ResponseWriter, r *http.Request, s *session) {
	qs, err := c.in.Queues(r.Context())
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	ss, err := c.in.Schedules(r.Context())
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	c.render(w, r, s, "overview", overviewData{Queues: qs, Schedules: ss})
}

type queueData struct {
	Queue  string
	Info   task.QueueInfo
	State  task.TaskState
	States []task.TaskState
	Kind   string
	Tasks  []task.TaskSummary
	Next   string // URL of the next page, "" at the end
}

func (c *Console) queuePage(w http.ResponseWriter, r *http.Request, s *session) {
	queue := r.PathValue("queue")
	q := r.URL.Query()
	state := task.StatePending
	if v := q.Get("state"); v != "" {
		st, err := parseState(v)
		if err != nil {
			c.fail(w, r, s, http.StatusBadRequest, err.Error())
			return
		}
		state = st
	}
	info, err := c.in.Queue(r.Context(), queue)
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	kind := q.Get("kind")
	page, err := c.in.List(r.Context(), queue, task.ListOptions{State: state, Cursor: q.Get("cursor"), Kind: kind})
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	d := queueData{Queue: queue, Info: info, State: state, States: listableStates, Kind: kind, Tasks: page.Tasks}
	if page.Next != "" {
		next := url.Values{"state": {string(state)}, "cursor": {page.Next}}
		if kind != "" {
			next.Set("kind", kind)
		}
		d.Next = "/queues/" + url.PathEscape(queue) + "?" + next.Encode()
	}
	c.render(w, r, s, "queue", d)
}

type taskData struct {
	Task task.TaskDetail
	// Actions is what the task's state allows.
	CanRequeue, CanCancel, CanDelete bool
}

func (c *Console) taskPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.in.Task(r.Context(), task.ID(r.PathValue("id")))
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	c.render(w, r, s, "task", taskActions(d))
}

func (c *Console) deadPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := c.in.DeadTask(r.Context(), r.PathValue("queue"), r.PathValue("entry"))
	if err != nil {
		c.failErr(w, r, s, err)
		return
	}
	c.render(w, r, s, "task", taskActions(d))
}

func taskActions(d task.TaskDetail) taskData {
	t := taskData{Task: d}
	switch d.State {
	case task.StateDead:
		t.CanRequeue, t.CanDelete = d.DeadEntry != "", d.DeadEntry != ""
	case task.StatePending, task.StateScheduled, task.StateRetrying:
		t.CanCancel, t.CanDelete = true, true
	case task.StateRunning:
		t.CanCancel = true
	case task.StateSucceeded, task.StateCanceled:
		t.CanDelete = true
	}
	return t
}

// action runs one POSTed action and redirects (303) to the page it came from, with what
// happened as the session's flash message.
func (c *Console) action(w http.ResponseWriter, r *http.Request, s *session) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if !c.checkCSRF(r, s) {
		http.Error(w, "forbidden: the form's CSRF token does not match the session (reload the page)", http.StatusForbidden)
		return
	}
	f := r.PostForm
	queue, entry, id := f.Get("queue"), f.Get("entry"), task.ID(f.Get("id"))
	ctx := r.Context()
	name := r.PathValue("action")
	var msg string
	var err error
	switch name {
	case "requeue":
		err = c.in.Requeue(ctx, queue, entry)
		msg = "Requeued " + describe(id, queue, entry) + "."
	case "requeue-all":
		var res task.BulkResult
		res, err = c.in.RequeueMatching(ctx, queue, f.Get("kind"), f.Get("reason"), nil)
		msg = fmt.Sprintf("Requeued %d dead letters of %s; %d skipped.", res.Done, queue, res.Skipped)
	case "delete":
		if entry != "" {
			err = c.in.DeleteDead(ctx, queue, entry)
		} else {
			err = c.in.Delete(ctx, id)
		}
		msg = "Deleted " + describe(id, queue, entry) + "."
	case "cancel":
		err = c.in.Cancel(ctx, id)
		msg = "Canceled " + string(id) + "."
	case "pause":
		err = c.in.Pause(ctx, queue)
		msg = "Paused " + queue + "."
	case "resume":
		err = c.in.Resume(ctx, queue)
		msg = "Resumed " + queue + "."
	case "purge":
		if f.Get("confirm") != "yes" {
			err = errors.New("tick the box to confirm: purged dead letters are gone for good")
			break
		}
		var n int64
		n, err = c.in.PurgeDead(ctx, queue)
		msg = fmt.Sprintf("Purged %d dead letters of %s.", n, queue)
	default:
		c.fail(w, r, s, http.StatusNotFound, "no such action: "+name)
		return
	}
	if err != nil {
		msg = fmt.Sprintf("%s failed: %v", name, err)
		c.log.Warn("taskctl console: action failed", "action", name, "queue", queue, "entry", entry, "id", string(id), "err", err)
	} else {
		c.log.Info("taskctl console: action", "action", name, "queue", queue, "entry", entry, "id", string(id))
	}
	c.setFlash(s, msg)
	http.Redirect(w, r, localPath(f.Get("back")), http.StatusSeeOther)
}

func describe(id task.ID, queue, entry string) string {
	if id != "" {
		return string(id)
	}
	return "dead letter " + entry + " of " + queue
}

// localPath returns back when it is a path of this console, else "/": a form cannot send
// the browser elsewhere.
func localPath(back string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") || strings.ContainsAny(back, "\\\r\n") {
		return "/"
	}
	return back
}

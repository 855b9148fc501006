package taskctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/taskgen/taskgen/runtime/task"
)

// The JSON shapes below are taskctl's interface to scripts: field names are snake_case
// and stable, times are RFC 3339 and absent when unset, durations are seconds.

type queueJSON struct {
	Name                 string        `json:"name"`
	Paused               bool          `json:"paused"`
	Pending              int64         `json:"pending"`
	Running              int64         `json:"running"`
	Scheduled            int64         `json:"scheduled"`
	Retrying             int64         `json:"retrying"`
	Dead                 int64         `json:"dead"`
	OldestPendingSeconds float64       `json:"oldest_pending_seconds"`
	DeadRetention        retentionJSON `json:"dead_retention"`
}

type retentionJSON struct {
	MaxCount      int64   `json:"max_count"`
	MaxAgeSeconds float64 `json:"max_age_seconds"`
}

type summaryJSON struct {
	ID         task.ID    `json:"id,omitempty"`
	Queue      string     `json:"queue"`
	Kind       string     `json:"kind"`
	State      string     `json:"state"`
	Attempts   int        `json:"attempts"`
	Error      string     `json:"error,omitempty"`
	Reason     string     `json:"reason,omitempty"`
	UserID     string     `json:"user_id,omitempty"`
	DueAt      *time.Time `json:"due_at,omitempty"`
	EnqueuedAt *time.Time `json:"enqueued_at,omitempty"`
	DeadEntry  string     `json:"dead_entry,omitempty"`
	FailedAt   *time.Time `json:"failed_at,omitempty"`
}

type pageJSON struct {
	Tasks []summaryJSON `json:"tasks"`
	Next  string        `json:"next"`
}

type detailJSON struct {
	summaryJSON
	MaxRetries  int             `json:"max_retries"`
	SubmittedAt *time.Time      `json:"submitted_at,omitempty"`
	StartedAt   *time.Time      `json:"started_at,omitempty"`
	FinishedAt  *time.Time      `json:"finished_at,omitempty"`
	History     []attemptJSON   `json:"attempt_history"`
	Args        json.RawMessage `json:"args,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	Caller      *callerJSON     `json:"caller,omitempty"`
	Signature   signatureJSON   `json:"signature"`
	Schedule    string          `json:"schedule,omitempty"`
	// CancelRequested: Cancel asked the running task to stop; its worker has not settled it.
	CancelRequested bool `json:"cancel_requested,omitempty"`
}

type attemptJSON struct {
	N     int        `json:"n"`
	Error string     `json:"error,omitempty"`
	At    *time.Time `json:"at,omitempty"`
}

type callerJSON struct {
	UserID    string     `json:"user_id,omitempty"`
	Scopes    []string   `json:"scopes,omitempty"`
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	Sealed    bool       `json:"sealed"`
	Readable  bool       `json:"readable"`
}

type signatureJSON struct {
	KeyID    string `json:"key_id,omitempty"`
	Verified bool   `json:"verified"`
	Problem  string `json:"problem,omitempty"`
}

type actionJSON struct {
	Action string   `json:"action"`
	Done   []string `json:"done"`
	Failed []string `json:"failed"`
}

type bulkJSON struct {
	Action  string `json:"action"`
	Queue   string `json:"queue"`
	Done    int    `json:"done"`
	Skipped int    `json:"skipped"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toQueueJSON(q task.QueueInfo) queueJSON {
	return queueJSON{
		Name: q.Name, Paused: q.Paused, Pending: q.Pending, Running: q.Running, Scheduled: q.Delayed,
		Retrying: q.Retrying, Dead: q.Dead, OldestPendingSeconds: q.OldestPending.Round(time.Millisecond).Seconds(),
		DeadRetention: retentionJSON{MaxCount: q.Retention.MaxCount, MaxAgeSeconds: q.Retention.MaxAge.Seconds()},
	}
}

func toSummaryJSON(s task.TaskSummary) summaryJSON {
	return summaryJSON{
		ID: s.ID, Queue: s.Queue, Kind: s.Kind, State: string(s.State), Attempts: s.Attempts,
		Error: s.Error, Reason: s.Reason, UserID: s.UserID, DueAt: timePtr(s.DueAt),
		EnqueuedAt: timePtr(s.EnqueuedAt), DeadEntry: s.DeadEntry, FailedAt: timePtr(s.FailedAt),
	}
}

func toDetailJSON(d task.TaskDetail) detailJSON {
	out := detailJSON{
		summaryJSON: toSummaryJSON(d.TaskSummary), MaxRetries: d.MaxRetries,
		SubmittedAt: timePtr(d.SubmittedAt), StartedAt: timePtr(d.StartedAt), FinishedAt: timePtr(d.FinishedAt),
		History: []attemptJSON{}, Args: d.Args, Result: d.Result, Schedule: d.Schedule, CancelRequested: d.CancelRequested,
		Signature: signatureJSON{KeyID: d.Signature.KeyID, Verified: d.Signature.Verified, Problem: d.Signature.Problem},
	}
	for _, a := range d.Attempts {
		out.History = append(out.History, attemptJSON{N: a.N, Error: a.Error, At: timePtr(a.At)})
	}
	if c := d.Caller; c != nil {
		out.Caller = &callerJSON{UserID: c.UserID, Scopes: c.Scopes, ExpiresAt: timePtr(c.ExpiresAt), Sealed: c.Sealed, Readable: c.Readable}
	}
	return out
}

func (e *env) writeJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (e *env) table(header string, rows func(w io.Writer)) error {
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, header)
	rows(w)
	return w.Flush()
}

func (e *env) printQueues(qs []task.QueueInfo) error {
	if e.json {
		out := make([]queueJSON, 0, len(qs))
		for _, q := range qs {
			out = append(out, toQueueJSON(q))
		}
		return e.writeJSON(out)
	}
	if len(qs) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no queues (none has been submitted to or served under this prefix)")
		return err
	}
	return e.table("QUEUE\tSTATE\tPENDING\tRUNNING\tSCHEDULED\tRETRYING\tDEAD\tOLDEST PENDING\tDEAD CAP", func(w io.Writer) {
		for _, q := range qs {
			fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", q.Name, pausedWord(q.Paused), q.Pending, q.Running, q.Delayed, q.Retrying, q.Dead, age(q.OldestPending), retention(q.Retention))
		}
	})
}

// retention formats a dead-letter cap: "100000 / 720h0m0s", "none" for a cap turned off,
// "-" when no worker of the queue has recorded one.
func retention(r task.DeadRetention) string {
	if r == (task.DeadRetention{}) {
		return "-"
	}
	count, age := "no count cap", "no age cap"
	if r.MaxCount > 0 {
		count = fmt.Sprintf("%d entries", r.MaxCount)
	}
	if r.MaxAge > 0 {
		age = r.MaxAge.String()
	}
	return count + " / " + age
}

type scheduleJSON struct {
	Kind   string     `json:"kind"`
	Queue  string     `json:"queue"`
	Spec   string     `json:"spec"`
	Next   *time.Time `json:"next,omitempty"`
	Last   *time.Time `json:"last,omitempty"`
	LastID string     `json:"last_id,omitempty"`
	Leader string     `json:"leader,omitempty"`
}

func (e *env) printSchedules(ss []task.ScheduleInfo) error {
	if e.json {
		out := make([]scheduleJSON, 0, len(ss))
		for _, s := range ss {
			out = append(out, scheduleJSON{Kind: s.Kind, Queue: s.Queue, Spec: s.Spec, Next: timePtr(s.Next), Last: timePtr(s.Last), LastID: string(s.LastID), Leader: s.Leader})
		}
		return e.writeJSON(out)
	}
	if len(ss) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no schedules (no worker with a periodic task has led one under this prefix)")
		return err
	}
	return e.table("KIND\tQUEUE\tSCHEDULE\tNEXT\tLAST\tLEADER", func(w io.Writer) {
		for _, s := range ss {
			leader := s.Leader
			if leader == "" {
				leader = "none"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", s.Kind, s.Queue, s.Spec, when(s.Next), when(s.Last), leader)
		}
	})
}

func pausedWord(p bool) string {
	if p {
		return "paused"
	}
	return "active"
}

// age formats a duration for a person: "-" for none, else to the second, or to the
// minute past an hour.
func age(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return d.Round(time.Minute).String()
	}
}

// when formats a time for a table: "-" when unset.
func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine shortens an error for a table cell.
func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return orDash(s)
}

func (e *env) printPage(p task.Page) error {
	if e.json {
		out := pageJSON{Tasks: []summaryJSON{}, Next: p.Next}
		for _, s := range p.Tasks {
			out.Tasks = append(out.Tasks, toSummaryJSON(s))
		}
		return e.writeJSON(out)
	}
	if len(p.Tasks) == 0 {
		_, err := fmt.Fprintln(e.stdout, "no tasks")
		return err
	}
	// One page holds one state: dead letters have a failure time where the others are due.
	whenHeader, whenOf := "DUE", func(s task.TaskSummary) time.Time { return s.DueAt }
	if p.Tasks[0].State == task.StateDead {
		whenHeader, whenOf = "FAILED", func(s task.TaskSummary) time.Time { return s.FailedAt }
	}
	err := e.table("ID\tKIND\tSTATE\tATTEMPTS\tUSER\t"+whenHeader+"\tERROR", func(w io.Writer) {
		for _, s := range p.Tasks {
			id := string(s.ID)
			if id == "" {
				id = "(entry " + s.DeadEntry + ")"
			}
			errText := s.Error
			if s.Reason != "" {
				errText = s.Reason + ": " + s.Error
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", id, s.Kind, s.State, s.Attempts, orDash(s.UserID), when(whenOf(s)), oneLine(errText, 60))
		}
	})
	if err == nil && p.Next != "" {
		fmt.Fprintf(e.stderr, "more: add --cursor %s\n", p.Next)
	}
	return err
}

func (e *env) printDetail(d task.TaskDetail) error {
	if e.json {
		return e.writeJSON(toDetailJSON(d))
	}
	w := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	line := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	line("id:", orDash(string(d.ID)))
	line("queue:", d.Queue)
	line("kind:", d.Kind)
	line("state:", string(d.State))
	if d.Reason != "" {
		line("reason:", d.Reason)
	}
	if d.DeadEntry != "" {
		line("dead entry:", d.DeadEntry)
	}
	line("attempts:", attemptsText(d))
	if d.Schedule != "" {
		line("schedule:", d.Schedule)
	}
	line("submitted:", when(d.SubmittedAt))
	if !d.DueAt.IsZero() {
		line("due:", when(d.DueAt))
	}
	line("started:", when(d.StartedAt))
	line("finished:", when(d.FinishedAt))
	if !d.FailedAt.IsZero() {
		line("failed:", when(d.FailedAt))
	}
	if d.CancelRequested {
		line("cancel:", "requested; the worker has not settled the task yet")
	}
	line("caller:", callerText(d.Caller, time.Now()))
	line("signature:", signatureText(d.Signature))
	if d.Error != "" {
		line("error:", oneLine(d.Error, 200))
	}
	line("args:", rawText(d.Args))
	if len(d.Result) > 0 {
		line("result:", rawText(d.Result))
	}
	for _, a := range d.Attempts {
		line(fmt.Sprintf("attempt %d:", a.N), when(a.At)+"  "+oneLine(a.Error, 160))
	}
	return w.Flush()
}

// attemptsText is the attempts made, and the most allowed when the envelope that says so
// is at hand (a finished task's record may not keep it).
func attemptsText(d task.TaskDetail) string {
	if len(d.Args) == 0 {
		return fmt.Sprint(d.TaskSummary.Attempts)
	}
	return fmt.Sprintf("%d of at most %d", d.TaskSummary.Attempts, d.MaxRetries+1)
}

func callerText(c *task.CallerInfo, now time.Time) string {
	if c == nil {
		return "none"
	}
	var parts []string
	switch {
	case c.UserID != "":
		parts = append(parts, c.UserID)
	case c.Sealed && !c.Readable:
		parts = append(parts, "sealed (no seal key opens it)")
	default:
		parts = append(parts, "(no user id)")
	}
	if len(c.Scopes) > 0 {
		parts = append(parts, "scopes "+strings.Join(c.Scopes, " "))
	}
	if c.Readable || !c.Sealed {
		parts = append(parts, c.ExpiresIn(now))
	}
	if c.Sealed {
		parts = append(parts, "sealed")
	} else {
		parts = append(parts, "plain")
	}
	return strings.Join(parts, ", ")
}

func signatureText(s task.SignatureInfo) string {
	if s.KeyID == "" && !s.Verified && s.Problem == "" {
		return "-" // nothing signed is kept (a finished task's record)
	}
	key := orDash(s.KeyID)
	if s.Verified {
		return "verified, key " + key
	}
	if s.Problem != "" {
		return "NOT verified, key " + key + ": " + s.Problem
	}
	return "NOT verified, key " + key
}

func rawText(r json.RawMessage) string {
	if len(r) == 0 {
		return "-"
	}
	return oneLine(string(r), 400)
}

func (e *env) printDone(action string, done []string, failures []error) error {
	if e.json {
		out := actionJSON{Action: action, Done: append([]string{}, done...), Failed: []string{}}
		for _, f := range failures {
			out.Failed = append(out.Failed, f.Error())
		}
		return e.writeJSON(out)
	}
	for _, d := range done {
		if _, err := fmt.Fprintf(e.stdout, "%s: %s\n", pastTense(action), d); err != nil {
			return err
		}
	}
	return nil
}

func pastTense(action string) string {
	switch action {
	case "pause", "resume", "purge", "delete", "requeue":
		return action + "d"
	case "cancel":
		return "canceled"
	}
	return action
}

func (e *env) printBulk(action, queue string, r task.BulkResult) error {
	if e.json {
		return e.writeJSON(bulkJSON{Action: action, Queue: queue, Done: r.Done, Skipped: r.Skipped})
	}
	msg := fmt.Sprintf("%s %s: %d dead letters", pastTense(action), queue, r.Done)
	if r.Skipped > 0 {
		msg += fmt.Sprintf(", %d skipped", r.Skipped)
	}
	_, err := fmt.Fprintln(e.stdout, msg)
	return err
}

func jsonIndent(w *bytes.Buffer, b []byte) error { return json.Indent(w, b, "", "  ") }

package task

import (
	"context"
	"sync"

	"github.com/taskgen/taskgen/internal/redisq"
)

// run is one delivery this worker holds, from the fetch that handed it over until its
// outcome is written (or refused): the heartbeat renews its lease all that time, also
// after the task function returned and its slot was freed.
type run struct {
	msg redisq.Message
	// ctx is the parent of the task's context; cancel stops it with a cause the task can
	// read with context.Cause (errLeaseLost, errShutdown).
	ctx    context.Context
	cancel context.CancelCauseFunc

	// taskID and token are set when the delivery begins (token 0 until then).
	mu     sync.Mutex
	taskID string
	token  int64
}

func (r *run) lease() redisq.Lease {
	r.mu.Lock()
	defer r.mu.Unlock()
	return redisq.Lease{EntryID: r.msg.EntryID, TaskID: r.taskID, Token: r.token}
}

func (r *run) begin(taskID string, token int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.taskID, r.token = taskID, token
}

// leases is the set of deliveries this worker holds, per queue and entry id. A worker
// never holds one entry twice: its reclaim skips the entries it holds.
type leases struct {
	mu      sync.Mutex
	byQueue map[string]map[string]*run
}

func newLeases() *leases { return &leases{byQueue: map[string]map[string]*run{}} }

// add records that m is held here, with a run context derived from base.
func (l *leases) add(base context.Context, m redisq.Message) *run {
	ctx, cancel := context.WithCancelCause(base)
	r := &run{msg: m, ctx: ctx, cancel: cancel}
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.byQueue[m.Queue]
	if q == nil {
		q = map[string]*run{}
		l.byQueue[m.Queue] = q
	}
	q[m.EntryID] = r
	return r
}

// remove records that r is no longer held: its outcome is written, or it was dropped.
func (l *leases) remove(r *run) {
	r.cancel(nil)
	l.mu.Lock()
	defer l.mu.Unlock()
	if q := l.byQueue[r.msg.Queue]; q[r.msg.EntryID] == r {
		delete(q, r.msg.EntryID)
	}
}

// holds reports whether r is still held.
func (l *leases) holds(r *run) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.byQueue[r.msg.Queue][r.msg.EntryID] == r
}

// entries returns the entry ids held on queue.
func (l *leases) entries(queue string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	ids := make([]string, 0, len(l.byQueue[queue]))
	for id := range l.byQueue[queue] {
		ids = append(ids, id)
	}
	return ids
}

// snapshot returns the runs held, per queue.
func (l *leases) snapshot() map[string][]*run {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]*run, len(l.byQueue))
	for q, runs := range l.byQueue {
		for _, r := range runs {
			out[q] = append(out[q], r)
		}
	}
	return out
}

// count returns how many deliveries are held.
func (l *leases) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, runs := range l.byQueue {
		n += len(runs)
	}
	return n
}

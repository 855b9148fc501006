package task

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// Settling: how outcome writes are made.
const (
	// settleWriteTimeout bounds one round trip of outcome writes. Its context is made
	// when the write starts, never before the task ran.
	settleWriteTimeout = 5 * time.Second
	// settleBatch is the most outcome writes sent in one round trip.
	settleBatch = 64
	// settleRetryMax caps the pause between tries of a write that failed.
	settleRetryMax = 2 * time.Second
	// settleLinger is how long a write of fewer than settleFill outcomes waits for more
	// to join it: at a few thousand tasks a second, each outcome would otherwise pay a
	// round trip of its own. A Result learns of an outcome that much later, at most.
	settleLinger = 2 * time.Millisecond
	// settleFill is how many outcomes make a write go without lingering ("a few dozen"),
	// or the worker's concurrency when lower: no more can come soon.
	settleFill = 32
)

// settleRequest is one outcome to write, with the delivery whose lease it settles.
type settleRequest struct {
	s     redisq.Settlement
	run   *run
	tries int
	// done is called once, with nil when the write was made, or with why it was not.
	done func(error)
}

// settler owns every outcome write of a worker. Runs hand it their outcome and are done;
// it writes queued outcomes in batches of up to settleBatch in one round trip each, and
// tries a write that failed on Redis again, with backoff, for as long as the worker runs:
// the delivery's lease is renewed meanwhile, so the task is neither lost nor run twice.
// A write the scripts refuse (fenced off: another worker owns the task now) is final.
// A write of fewer than fill outcomes lingers up to linger for more, except once the
// worker stops: then each is written at once.
type settler struct {
	store  store
	leases *leases
	log    *slog.Logger
	linger time.Duration
	fill   int

	mu       sync.Mutex
	queue    []*settleRequest
	sleeping map[*settleRequest]*time.Timer // requests waiting to be tried again
	closed   bool
	wake     chan struct{}
}

// newSettler returns the settler of a worker that runs up to concurrency tasks at once.
func newSettler(s store, l *leases, log *slog.Logger, concurrency int) *settler {
	return &settler{store: s, leases: l, log: log, linger: settleLinger, fill: max(min(settleFill, concurrency), 1),
		wake: make(chan struct{}, 1), sleeping: map[*settleRequest]*time.Timer{}}
}

// submit queues an outcome write.
func (s *settler) submit(req *settleRequest) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.finish(req, errSettlerClosed)
		return
	}
	s.queue = append(s.queue, req)
	// run needs waking for the first outcome (it may sleep) and for the one that fills a
	// write (it may linger); the ones between would only wake it to linger on.
	wake := len(s.queue) == 1 || len(s.queue) == s.fill
	s.mu.Unlock()
	if wake {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// errSettlerClosed: the worker stopped before the outcome could be written.
var errSettlerClosed = errors.New("the worker stopped before the outcome was written; the lease runs out and another worker runs the task again")

// backlog returns how many outcomes wait to be written.
func (s *settler) backlog() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) + len(s.sleeping)
}

// run writes outcomes until stop is closed and, after that, until every outcome is
// written or abandon is closed.
func (s *settler) run(stop, abandon <-chan struct{}) {
	stopping := false
	for {
		if !stopping && s.queued() > 0 {
			stopping = s.wait(stop, abandon)
		}
		s.mu.Lock()
		n := min(len(s.queue), settleBatch)
		batch := append([]*settleRequest(nil), s.queue[:n]...)
		s.queue = s.queue[n:]
		empty := n == 0 && len(s.sleeping) == 0
		s.mu.Unlock()
		if n > 0 {
			s.write(batch)
			continue
		}
		if empty && stopping {
			s.close()
			return
		}
		select {
		case <-s.wake:
		case <-stop:
			stopping, stop = true, nil
		case <-abandon:
			s.close()
			return
		}
	}
}

// queued returns how many outcomes wait to be written now.
func (s *settler) queued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue)
}

// wait lingers until fill outcomes are queued, linger has passed, or the worker stops
// (stop closed: it reports true) or abandons its outcomes.
func (s *settler) wait(stop, abandon <-chan struct{}) (stopped bool) {
	if s.queued() >= s.fill {
		return false
	}
	t := time.NewTimer(s.linger)
	defer t.Stop()
	for s.queued() < s.fill {
		select {
		case <-s.wake:
		case <-t.C:
			return false
		case <-stop:
			return true
		case <-abandon:
			return false
		}
	}
	return false
}

// close refuses new outcomes and gives up the queued and sleeping ones.
func (s *settler) close() {
	s.mu.Lock()
	s.closed = true
	left := s.queue
	s.queue = nil
	for req, t := range s.sleeping {
		if t.Stop() {
			left = append(left, req)
		}
		delete(s.sleeping, req)
	}
	s.mu.Unlock()
	for _, req := range left {
		s.finish(req, errSettlerClosed)
	}
}

// write makes the writes of batch: one round trip per queue, the queues side by side,
// each bounded by its own context, so that a queue whose Redis node hangs holds back the
// outcomes of no other (go-redis keeps a context's deadline on the socket only for a
// client built with ContextTimeoutEnabled).
func (s *settler) write(batch []*settleRequest) {
	byQueue := map[string][]*settleRequest{}
	for _, req := range batch {
		q := req.s.Message.Queue
		byQueue[q] = append(byQueue[q], req)
	}
	if len(byQueue) == 1 { // the usual case: no goroutine for it
		for _, reqs := range byQueue {
			s.writeQueue(reqs)
		}
		return
	}
	var wg sync.WaitGroup
	for _, reqs := range byQueue {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.writeQueue(reqs)
		}()
	}
	wg.Wait()
}

// writeQueue makes the writes of reqs, all of one queue, in one round trip.
func (s *settler) writeQueue(reqs []*settleRequest) {
	ss := make([]redisq.Settlement, len(reqs))
	for i, req := range reqs {
		ss[i] = req.s
	}
	ctx, cancel := context.WithTimeout(context.Background(), settleWriteTimeout)
	errs, err := bounded(ctx, func(ctx context.Context) ([]error, error) { return s.store.Settle(ctx, ss), nil })
	cancel()
	for i, req := range reqs {
		e := err // the round trip's, when it did not come back in time
		if e == nil {
			e = errs[i]
		}
		if e == nil || final(e) {
			s.finish(req, e)
		} else {
			s.retry(req, e)
		}
	}
}

// final reports whether a write that failed with err must not be tried again: a script
// refused it and changed nothing, and would refuse it again.
func final(err error) bool {
	return errors.Is(err, redisq.ErrFenced) || errors.Is(err, redisq.ErrNoRecord) ||
		errors.Is(err, redisq.ErrEntryTaken) || errors.Is(err, redisq.ErrCorrupt)
}

// retry tries req again after a pause that grows with its tries.
func (s *settler) retry(req *settleRequest, err error) {
	req.tries++
	pause := min(50*time.Millisecond<<min(req.tries, 6), settleRetryMax)
	level := slog.LevelDebug
	if req.tries == 1 || req.tries%20 == 0 {
		level = slog.LevelWarn
	}
	s.log.Log(context.Background(), level, "cannot write a task's outcome; trying again while the lease is renewed",
		"queue", req.s.Message.Queue, "entry", req.s.Message.EntryID, "write", req.s.Kind, "tries", req.tries, "retry_in", pause, "err", err)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		go s.finish(req, errSettlerClosed)
		return
	}
	s.sleeping[req] = time.AfterFunc(pause, func() {
		s.mu.Lock()
		_, mine := s.sleeping[req]
		delete(s.sleeping, req)
		s.mu.Unlock()
		if mine { // else close took it
			s.submit(req)
		}
	})
}

// finish ends req: its lease is no longer renewed.
func (s *settler) finish(req *settleRequest, err error) {
	if req.run != nil {
		s.leases.remove(req.run)
	}
	if req.done != nil {
		req.done(err)
	}
}

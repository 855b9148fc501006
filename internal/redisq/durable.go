package redisq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Wait is what a durable enqueue waits for after its write. WAIT and WAITAOF count the
// writes of the connection they run on, so both run on the connection of the write.
type Wait struct {
	Replicas    int           // replicas that must have received the write (WAIT)
	LocalAOF    bool          // the master must have fsynced it to its AOF (WAITAOF)
	ReplicasAOF int           // replicas that must have fsynced it to their AOF (WAITAOF)
	Timeout     time.Duration // bounds each of WAIT and WAITAOF; at least 1ms is sent
}

// AOF reports whether w needs WAITAOF.
func (w Wait) AOF() bool { return w.LocalAOF || w.ReplicasAOF > 0 }

// Acks is what WAIT and WAITAOF reported.
type Acks struct {
	Replicas    int // replicas that acknowledged the write (WAIT); 0 when not asked
	LocalAOF    int // 1 when the master fsynced it to its AOF (WAITAOF)
	ReplicasAOF int // replicas that fsynced it to their AOF (WAITAOF)
}

// Short describes what of w the acks lack, in words for an error, or "" when they meet
// it all.
func (a Acks) Short(w Wait) string {
	var short []string
	if a.Replicas < w.Replicas {
		short = append(short, fmt.Sprintf("%d of %d replicas acknowledged it", a.Replicas, w.Replicas))
	}
	if w.LocalAOF && a.LocalAOF < 1 {
		short = append(short, "the primary did not fsync it to its append-only file")
	}
	if a.ReplicasAOF < w.ReplicasAOF {
		short = append(short, fmt.Sprintf("%d of %d replicas fsynced it to their append-only file", a.ReplicasAOF, w.ReplicasAOF))
	}
	return strings.Join(short, ", and ")
}

// ErrNoPin reports a Redis client of a type on which a durable enqueue cannot run WAIT
// on the connection of its write.
var ErrNoPin = errors.New("durable submits need a *redis.Client (one server, or Sentinel through redis.NewFailoverClient) or a *redis.ClusterClient")

// CanPin returns an error wrapping ErrNoPin unless Pin works on rdb: a *redis.Client or
// a *redis.ClusterClient. A Ring, or a wrapper of a client, gives no way to run two
// commands on one connection to the master of a key.
func CanPin(rdb redis.UniversalClient) error {
	switch rdb.(type) {
	case *redis.Client, *redis.ClusterClient:
		return nil
	}
	return fmt.Errorf("got a %T: %w", rdb, ErrNoPin)
}

// Pinned is one connection to the master that holds a queue's keys, for an enqueue and
// the WAIT or WAITAOF that confirms it. Close it when done.
type Pinned struct {
	b    *Broker
	conn *redis.Conn
	rdb  redis.UniversalClient // what to tell of a moved slot
}

// Pin takes a connection to the master of queue's keys: of the client itself for a
// *redis.Client, of the node that serves the queue's slot for a *redis.ClusterClient.
func (b *Broker) Pin(ctx context.Context, queue string) (*Pinned, error) {
	switch c := b.rdb.(type) {
	case *redis.Client:
		return &Pinned{b: b, conn: c.Conn(), rdb: c}, nil
	case *redis.ClusterClient:
		key := b.Keys(queue).Stream()
		m, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, fmt.Errorf("find the master of %s: %w", key, err)
		}
		return &Pinned{b: b, conn: m.Conn(), rdb: c}, nil
	}
	return nil, CanPin(b.rdb)
}

// Close hands the connection back to its pool.
func (p *Pinned) Close() error { return p.conn.Close() }

// Enqueue adds t like Broker.Enqueue, on the pinned connection. On a cluster whose slot
// moved it fails with nothing written and has the client reload the slot map, so that
// the next Pin finds the new master.
func (p *Pinned) Enqueue(ctx context.Context, t Task) (string, error) {
	id, err := p.b.enqueue(ctx, p.conn, t, true)
	if moved(err) {
		p.reload(ctx)
		return "", movedError(err)
	}
	return id, err
}

// moved reports whether err is a Cluster's redirection: the pinned node no longer
// serves the queue's slot.
func moved(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "MOVED ") || strings.Contains(err.Error(), "ASK "))
}

// movedError says what a moved slot means for an enqueue.
func movedError(err error) error {
	return fmt.Errorf("%w (the queue's slot moved; nothing was enqueued: submit again)", err)
}

// reload has a Cluster client reload its slot map, so that the next Pin finds the
// queue's new master.
func (p *Pinned) reload(ctx context.Context) {
	if c, ok := p.rdb.(*redis.ClusterClient); ok {
		c.ReloadState(ctx)
	}
}

// EnqueueMany adds ts, all of the pinned queue, like Broker.EnqueueMany, in one round
// trip on the pinned connection, so that one Wait confirms them all: WAIT and WAITAOF
// wait for the connection's last write, and the ones before it reached the replicas
// first. A task whose slot moved fails as Enqueue's does, with nothing of it written.
func (p *Pinned) EnqueueMany(ctx context.Context, ts []Task) []EnqueueResult {
	out := p.b.enqueueMany(ctx, p.conn, ts, true)
	reloaded := false
	for i, r := range out {
		if moved(r.Err) {
			if !reloaded {
				p.reload(ctx)
				reloaded = true
			}
			out[i].Err = movedError(r.Err)
		}
	}
	return out
}

// Wait runs WAIT and then WAITAOF, each only when w asks for it, on the pinned connection
// after its writes, and returns what they reported. Each waits up to w.Timeout.
func (p *Pinned) Wait(ctx context.Context, w Wait) (Acks, error) {
	timeout := max(w.Timeout, time.Millisecond) // WAIT 0 would block for ever
	var a Acks
	if w.Replicas > 0 {
		n, err := p.conn.Wait(ctx, w.Replicas, timeout).Result()
		if err != nil {
			return a, fmt.Errorf("WAIT %d: %w", w.Replicas, err)
		}
		a.Replicas = int(n)
	}
	if w.AOF() {
		local := 0
		if w.LocalAOF {
			local = 1
		}
		r, err := p.conn.WaitAOF(ctx, local, w.ReplicasAOF, timeout).Result()
		if err != nil {
			return a, fmt.Errorf("WAITAOF %d %d: %w", local, w.ReplicasAOF, err)
		}
		if len(r) != 2 {
			return a, fmt.Errorf("WAITAOF %d %d: unexpected reply %v", local, w.ReplicasAOF, r)
		}
		a.LocalAOF, a.ReplicasAOF = int(r[0]), int(r[1])
	}
	return a, nil
}

// WaitAOFVersion is the first Redis version with WAITAOF.
const WaitAOFVersion = "7.2"

// CheckWaitAOF returns an error unless every master runs Redis WaitAOFVersion or later
// and, when local, has its append-only file on: WAITAOF fails on any other. It reads
// INFO on each master.
func (b *Broker) CheckWaitAOF(ctx context.Context, local bool) error {
	check := func(ctx context.Context, c *redis.Client) error {
		addr := c.Options().Addr
		info, err := c.Info(ctx, "server").Result()
		if err != nil {
			return fmt.Errorf("read the Redis version of %s (INFO server): %w", addr, err)
		}
		version := infoField(info, "redis_version")
		if !versionAtLeast(version, WaitAOFVersion) {
			return fmt.Errorf("WAITAOF needs Redis %s or later, and %s runs Redis %q: upgrade it, or confirm submits by replicas alone (WAIT works on every version)",
				WaitAOFVersion, addr, version)
		}
		if !local {
			return nil
		}
		info, err = c.Info(ctx, "persistence").Result()
		if err != nil {
			return fmt.Errorf("read the persistence settings of %s (INFO persistence): %w", addr, err)
		}
		if infoField(info, "aof_enabled") != "1" {
			return fmt.Errorf("waiting for the local append-only file needs it on, and %s has appendonly no: set appendonly yes, or do not ask for it", addr)
		}
		return nil
	}
	switch c := b.rdb.(type) {
	case *redis.Client:
		return check(ctx, c)
	case *redis.ClusterClient:
		return c.ForEachMaster(ctx, check)
	}
	return CanPin(b.rdb)
}

// infoField returns the value of field in an INFO reply, or "".
func infoField(info, field string) string {
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			return v
		}
	}
	return ""
}

// versionAtLeast reports whether version ("7.0.15") is min ("7.2") or later, comparing
// the numbers min names; a version it cannot read is not.
func versionAtLeast(version, min string) bool {
	have, want := strings.Split(version, "."), strings.Split(min, ".")
	for i, w := range want {
		wn, _ := strconv.Atoi(w)
		if i >= len(have) {
			return wn == 0
		}
		hn, err := strconv.Atoi(have[i])
		if err != nil {
			return false
		}
		if hn != wn {
			return hn > wn
		}
	}
	return true
}

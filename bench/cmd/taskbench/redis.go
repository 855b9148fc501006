package main

import (
	"bufio"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// snapshot is what one INFO call tells of redis-server at a moment: its CPU time, its
// memory, how many commands of each name it ran and how many keys it holds.
type snapshot struct {
	cpu    time.Duration // used_cpu_sys + used_cpu_user
	memory int64         // used_memory, bytes
	// overhead is what used_memory holds that grows with the systems' connections and
	// scripts, not with their tasks: the buffers of the connected clients
	// (mem_clients_normal) and the cache of Lua scripts (used_memory_scripts), which
	// FLUSHALL keeps, so that only the first system of a run would pay for it.
	overhead int64
	calls    map[string]int64
	keys     int64
	takenAt  time.Time
	rusageAt time.Duration // this process's CPU time (user + system) when it was taken
}

// takeSnapshot reads INFO cpu, memory, commandstats and keyspace in one command, so that
// between two snapshots the harness itself ran exactly one command on the server: the
// INFO of the first one (Redis counts a command after it ran, so the INFO that reads the
// statistics is not in them). delta subtracts it.
func takeSnapshot(ctx context.Context, rdb *redis.Client) (snapshot, error) {
	text, err := rdb.Info(ctx, "cpu", "memory", "commandstats", "keyspace").Result()
	if err != nil {
		return snapshot{}, fmt.Errorf("read INFO of redis-server: %w", err)
	}
	s := snapshot{calls: map[string]int64{}, takenAt: time.Now(), rusageAt: processCPU()}
	var sys, user float64
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		key, value, ok := strings.Cut(strings.TrimSpace(sc.Text()), ":")
		if !ok {
			continue
		}
		switch {
		case key == "used_cpu_sys":
			sys, err = strconv.ParseFloat(value, 64)
		case key == "used_cpu_user":
			user, err = strconv.ParseFloat(value, 64)
		case key == "used_memory":
			s.memory, err = strconv.ParseInt(value, 10, 64)
		case key == "mem_clients_normal" || key == "used_memory_scripts":
			var n int64
			n, err = strconv.ParseInt(value, 10, 64)
			s.overhead += n
		case strings.HasPrefix(key, "cmdstat_"):
			var calls int64
			calls, err = statField(value, "calls")
			s.calls[strings.TrimPrefix(key, "cmdstat_")] = calls
		case strings.HasPrefix(key, "db"):
			var keys int64
			keys, err = statField(value, "keys")
			s.keys += keys
		}
		if err != nil {
			return snapshot{}, fmt.Errorf("parse INFO line %q: %w", sc.Text(), err)
		}
	}
	s.cpu = time.Duration((sys + user) * float64(time.Second))
	return s, nil
}

// statField returns the integer field name of an INFO value such as
// "calls=10,usec=52,usec_per_call=5.20" or "keys=3,expires=0,avg_ttl=0".
func statField(value, name string) (int64, error) {
	for part := range strings.SplitSeq(value, ",") {
		k, v, ok := strings.Cut(part, "=")
		if ok && k == name {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("no field %q", name)
}

// interval is what redis-server and this process did between two snapshots.
type interval struct {
	elapsed    time.Duration
	redisCPU   time.Duration
	processCPU time.Duration
	memory     int64 // growth of used_memory, bytes (negative when it shrank)
	keys       int64 // growth of the number of keys
	calls      map[string]int64
}

// delta returns what happened from a to b, without the INFO command of a and without
// the commands that set new connections up (see handshakeCommand).
func delta(a, b snapshot) interval {
	d := interval{
		elapsed: b.takenAt.Sub(a.takenAt), redisCPU: b.cpu - a.cpu, processCPU: b.rusageAt - a.rusageAt,
		memory: b.memory - a.memory, keys: b.keys - a.keys, calls: map[string]int64{},
	}
	for name, n := range b.calls {
		if n -= a.calls[name]; name == "info" {
			n--
		}
		if n > 0 && !handshakeCommand(name) {
			d.calls[name] = n
		}
	}
	return d
}

// commands returns how many commands Redis ran in the interval, those run by Lua scripts
// included (commandstats counts each redis.call as well as the EVALSHA that made it).
func (d interval) commands() int64 {
	var n int64
	for _, c := range d.calls {
		n += c
	}
	return n
}

// processCPU returns the CPU time, user and system, this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		// Getrusage(RUSAGE_SELF) cannot fail on Linux with a valid pointer; a zero here
		// would show as an absurd figure in the table rather than pass unnoticed.
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// roundTrips is a go-redis hook that counts the round trips a client makes: one per
// command sent alone, one per pipeline or transaction, whatever it holds. A connection's
// handshake, which go-redis sends through the same hooks when its pool opens a
// connection, is not counted (see handshakeCommand).
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }

func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !handshake(cmd) {
			r.n.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if slices.ContainsFunc(cmds, func(c redis.Cmder) bool { return !handshake(c) }) {
			r.n.Add(1)
		}
		return next(ctx, cmds)
	}
}

// handshake tells the commands go-redis sends to set a new connection up.
func handshake(cmd redis.Cmder) bool { return handshakeCommand(cmd.Name()) }

// handshakeCommand tells the names, as go-redis or INFO commandstats give them ("client"
// or "client|setinfo"), of the commands that set a connection up: HELLO, AUTH, SELECT,
// READONLY, CLIENT SETNAME/SETINFO. A pool opens its connections once, so counting them
// would add noise that only shrinks with the number of tasks.
func handshakeCommand(name string) bool {
	switch name {
	case "hello", "auth", "select", "readonly", "client":
		return true
	}
	return strings.HasPrefix(name, "client|")
}

// countingClient returns a client of addr whose round trips are counted, with a
// connection pool large enough that concurrency goroutines never wait for a connection.
func countingClient(addr string, concurrency int) (*redis.Client, *roundTrips) {
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: concurrency + 10})
	rt := &roundTrips{}
	rdb.AddHook(rt)
	return rdb, rt
}

// keptKeys returns the keys redis-server holds, grouped by pattern: a key's last
// ":"-separated part becomes "*" when more than collapseAt keys share the rest (a task
// id), so that 20,000 task state hashes read as one line and a queue's few keys each
// read as themselves. Each pattern also says how many of its
// keys expire.
func keptKeys(ctx context.Context, rdb *redis.Client) (map[string]keptPattern, error) {
	byPrefix := map[string][]string{}
	iter := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		i := strings.LastIndexByte(key, ':')
		byPrefix[key[:i+1]] = append(byPrefix[key[:i+1]], key)
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("scan the keys of redis-server: %w", err)
	}
	out := map[string]keptPattern{}
	for prefix, keys := range byPrefix {
		ttls := make([]*redis.DurationCmd, len(keys))
		types := make([]*redis.StatusCmd, len(keys))
		pipe := rdb.Pipeline()
		for i, k := range keys {
			ttls[i], types[i] = pipe.PTTL(ctx, k), pipe.Type(ctx, k)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("read the TTLs and types of %s*: %w", prefix, err)
		}
		for i, k := range keys {
			pattern := k
			if len(keys) > collapseAt {
				pattern = prefix + "*"
			}
			p := out[pattern]
			p.Keys++
			if ttls[i].Val() > 0 { // -1: no TTL
				p.Expiring++
			}
			if types[i].Val() == "stream" {
				// A stream whose entries were deleted is a key of a few hundred bytes; one
				// that keeps them is what grows with the tasks.
				n, err := rdb.XLen(ctx, k).Result()
				if err != nil {
					return nil, fmt.Errorf("read the length of stream %s: %w", k, err)
				}
				p.StreamEntries += n
			}
			out[pattern] = p
		}
	}
	return out, nil
}

// collapseAt is the most keys of one prefix that keptKeys lists one by one.
const collapseAt = 8

// keptPattern counts the keys of one pattern, those of them with a TTL, and the entries
// of those that are streams.
type keptPattern struct {
	Keys          int   `json:"keys"`
	Expiring      int   `json:"expiring"`
	StreamEntries int64 `json:"stream_entries,omitempty"`
}

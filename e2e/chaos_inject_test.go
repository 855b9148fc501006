package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/internal/redisq"
	"github.com/taskgen/taskgen/runtime/task"
)

// What the chaos test writes into the streams past the client: poison entries, which a
// worker must dead-letter as malformed without touching the task they name, forgeries of
// genuine envelopes, which it must dead-letter as bad_signature without ending the
// genuine task, and byte-identical replays of finished tasks, which it must drop unrun.

// chaosInjected is the prefix of the keys that make each injection happen once.
const chaosInjected = "chaos-injected:"

// injectScript adds one entry to a stream once, however often a lost reply makes the test
// send it again: the first call records the entry id under a key of the injection's own,
// later calls return it.
//
//	KEYS[1] the injection's key   KEYS[2] stream
//	ARGV the entry's fields and values
var injectScript = redis.NewScript(`
local id = redis.call('GET', KEYS[1])
if id then return id end
id = redis.call('XADD', KEYS[2], '*', unpack(ARGV))
redis.call('SET', KEYS[1], id)
return id
`)

// injection is one entry the test wrote into a stream.
type injection struct {
	queue, entry string
	what         string // for the report: "garbage", "forged", ...
}

// injector writes entries into the queues' streams and keeps what it wrote.
type injector struct {
	t    *testing.T
	rdb  *redis.Client
	done []injection
	// poisoned counts the entries that must be dead-lettered malformed, forged those that
	// must be dead-lettered bad_signature, replayed the copies that must be dropped.
	poisoned, forged, replayed int
}

// add writes the fields into queue's stream, trying again while Redis is away, and
// returns the entry id.
func (in *injector) add(queue, what string, fields ...string) string {
	in.t.Helper()
	keys := []string{chaosInjected + fmt.Sprint(len(in.done)), redisq.QueueKeys(chaosPrefix, queue).Stream()}
	args := make([]any, len(fields))
	for i, f := range fields {
		args[i] = f
	}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		id, err := injectScript.Run(ctx, in.rdb, keys, args...).Text()
		cancel()
		if err == nil {
			in.done = append(in.done, injection{queue: queue, entry: id, what: what})
			return id
		}
		if attempt > 200 {
			in.t.Fatalf("inject %s into %s: %v", what, queue, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// genuine is an envelope as the client wrote it into a stream.
type genuine struct {
	queue string
	id    task.ID
	n     int
	env   string
}

// newest returns the newest genuine envelope of queue's stream, if it holds one.
func newest(ctx context.Context, rdb *redis.Client, queue string) (genuine, bool) {
	xs, err := rdb.XRevRangeN(ctx, redisq.QueueKeys(chaosPrefix, queue).Stream(), "+", "-", 1).Result()
	if err != nil || len(xs) == 0 {
		return genuine{}, false
	}
	return parseGenuine(queue, xs[0])
}

// queued returns every genuine envelope of queue's stream.
func queued(ctx context.Context, rdb *redis.Client, queue string) ([]genuine, error) {
	xs, err := rdb.XRange(ctx, redisq.QueueKeys(chaosPrefix, queue).Stream(), "-", "+").Result()
	if err != nil {
		return nil, err
	}
	var out []genuine
	for _, x := range xs {
		if g, ok := parseGenuine(queue, x); ok {
			out = append(out, g)
		}
	}
	return out, nil
}

func parseGenuine(queue string, x redis.XMessage) (genuine, bool) {
	env, _ := x.Values[redisq.EnvelopeField].(string)
	var e struct {
		ID   task.ID `json:"id"`
		Args struct {
			N int `json:"n"`
		} `json:"args"`
	}
	if !strings.Contains(env, `"args":{"n":`) || json.Unmarshal([]byte(env), &e) != nil || e.ID == "" {
		return genuine{}, false
	}
	return genuine{queue: queue, id: e.ID, n: e.Args.N, env: env}, true
}

// forge writes g with the last digit of its task number changed: valid JSON, the same
// claimed id, a signature that no longer matches.
func (in *injector) forge(g genuine) {
	in.t.Helper()
	i := strings.Index(g.env, `"args":{"n":`) + len(`"args":{"n":`)
	for i+1 < len(g.env) && g.env[i+1] >= '0' && g.env[i+1] <= '9' {
		i++
	}
	b := []byte(g.env)
	b[i] = '0' + (b[i]-'0'+1)%10
	in.add(g.queue, "forged", redisq.EnvelopeField, string(b))
	in.forged++
}

// poisonKinds are the poison entries made of a genuine envelope, in the order the test
// injects them.
var poisonKinds = []string{"garbage", "no envelope field", "truncated", "oversized"}

// oversize is the size of an oversized poison entry: past the workers' default limit
// (WithMaxEnvelopeSize, 1 MiB), within the size a dead letter keeps whole.
const oversize = 4 << 20

// hugeSize is the size of the one entry past even that: its dead letter keeps its size
// only. Redis writes it to the append-only file and fsyncs it before anything else, a
// stall of hundreds of milliseconds: it is injected once the long tasks finished.
const hugeSize = 64 << 20

// poison writes a poison entry of kind, made of g.
func (in *injector) poison(kind string, g genuine) {
	in.t.Helper()
	switch kind {
	case "garbage":
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(rand.UintN(256))
		}
		in.add(g.queue, kind, redisq.EnvelopeField, string(b))
	case "no envelope field":
		in.add(g.queue, kind, "payload", g.env)
	case "truncated":
		in.add(g.queue, kind, redisq.EnvelopeField, g.env[:len(g.env)/2])
	case "oversized":
		in.add(g.queue, kind, redisq.EnvelopeField, padded(g.env, oversize))
	case "huge":
		in.add(g.queue, kind, redisq.EnvelopeField, padded(g.env, hugeSize))
	default:
		panic("unknown poison " + kind)
	}
	in.poisoned++
}

// padded is env grown to size bytes inside its args: it still claims env's task id.
func padded(env string, size int) string {
	return strings.Replace(env, `"args":{`, `"args":{"pad":"`+strings.Repeat("x", max(size-len(env), 0))+`",`, 1)
}

// replay writes g back byte for byte.
func (in *injector) replay(g genuine) {
	in.t.Helper()
	in.add(g.queue, "replayed", redisq.EnvelopeField, g.env)
	in.replayed++
}

// waitGone waits until every injected entry has left its stream (dead-lettered, or
// dropped as a duplicate) and returns those still there when timeout passed.
func (in *injector) waitGone(ctx context.Context, timeout time.Duration) []injection {
	deadline := time.Now().Add(timeout)
	left := in.done
	for {
		var still []injection
		for _, x := range left {
			n, err := in.rdb.XRange(ctx, redisq.QueueKeys(chaosPrefix, x.queue).Stream(), x.entry, x.entry).Result()
			if err != nil || len(n) > 0 {
				still = append(still, x)
			}
		}
		if left = still; len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(100 * time.Millisecond)
	}
}

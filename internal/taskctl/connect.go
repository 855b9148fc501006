package taskctl

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/task"
)

// connect opens Redis and the inspector, once, for the commands that need them.
func (e *env) connect(ctx context.Context) (*task.Inspector, error) {
	if e.in != nil {
		return e.in, nil
	}
	keys, err := e.loadKeys()
	if err != nil {
		return nil, err
	}
	rdb, err := openRedis(e.redisURL)
	if err != nil {
		return nil, err
	}
	e.rdb = rdb
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := rdb.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("redis at %s: %w (set --redis or %s)", redactURL(e.redisURL), err, EnvRedisURL)
	}
	opts := append([]task.Option{task.WithPrefix(e.prefix), task.WithLogger(nil)}, keys.Options()...)
	in, err := task.NewInspector(rdb, opts...)
	if err != nil {
		return nil, usagef("%v", err)
	}
	e.in = in
	return in, nil
}

// openRedis opens the Redis of rawURL: a single server (redis://, rediss://, unix://), or a
// cluster when the URL lists more nodes with addr= parameters (go-redis ParseClusterURL).
func openRedis(rawURL string) (redis.UniversalClient, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, usagef("redis URL %s is not a URL (redis://[user:password@]host:port/db)", redactURL(rawURL))
	}
	if u.Query().Has("addr") {
		opt, err := redis.ParseClusterURL(rawURL)
		if err != nil {
			return nil, usagef("redis cluster URL %s: %v", redactURL(rawURL), err)
		}
		return redis.NewClusterClient(opt), nil
	}
	opt, err := redis.ParseURL(rawURL)
	if err != nil {
		return nil, usagef("redis URL %s: %v", redactURL(rawURL), err)
	}
	return redis.NewClient(opt), nil
}

// redactURL returns rawURL with its password, if any, replaced by "xxxxx", for messages.
func redactURL(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

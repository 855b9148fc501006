package task

import (
	"context"
	"time"

	"github.com/taskgen/taskgen/internal/redisq"
)

// store is what the worker needs of Redis. *redisq.Broker implements it against a real
// server; the worker's tests implement it with a fake that fails on purpose, to test the
// worker's decisions about failures ("Redis down during settle", "heartbeat fails",
// "lease taken over mid-run") without a server.
type store interface {
	EnsureGroup(ctx context.Context, queue string) error
	FetchAfter(ctx context.Context, queue, consumer string, count int, block time.Duration, maxSize int, after string) ([]redisq.Message, string, error)
	Reclaim(ctx context.Context, queue, consumer string, lease time.Duration, count int, cursor string, running []string) ([]redisq.Message, []redisq.Lost, string, error)
	EndLost(ctx context.Context, e redisq.EndLost) (bool, error)
	PruneConsumers(ctx context.Context, queue, self string, idle time.Duration) (int, error)
	Promote(ctx context.Context, queue string, limit int) (moved int, next time.Duration, err error)
	Heartbeat(ctx context.Context, queue, consumer string, lease time.Duration, leases []redisq.Lease) ([]redisq.LeaseStatus, error)
	StartDeliveries(ctx context.Context, rs []redisq.StartRequest) ([]redisq.Start, []error)
	SkewSince(ctx context.Context, queue, id string) (time.Time, error)
	Schema(ctx context.Context, queue, fingerprint string) (string, bool, error)
	Settle(ctx context.Context, ss []redisq.Settlement) []error
}

var _ store = (*redisq.Broker)(nil)

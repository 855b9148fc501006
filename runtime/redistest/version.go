package redistest

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// Version returns the redis_version that rdb's server reports in INFO server.
func Version(tb testing.TB, rdb redis.UniversalClient) string {
	tb.Helper()
	info, err := rdb.Info(context.Background(), "server").Result()
	if err != nil {
		tb.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	tb.Fatal("no redis_version in INFO server")
	return ""
}

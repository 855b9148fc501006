package redistest

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// Backend is a kind of Redis deployment that tests run against, shared by the test
// package: Client returns a client of it, closed when the test ends.
type Backend struct {
	Name   string
	Client func(testing.TB) redis.UniversalClient
}

// Backends returns the deployments every broker and worker test runs on: the package's
// shared server (Client) and its shared three-master cluster (ClusterClient).
func Backends() []Backend {
	return []Backend{
		{"server", func(tb testing.TB) redis.UniversalClient { return Client(tb) }},
		{"cluster", func(tb testing.TB) redis.UniversalClient { return ClusterClient(tb) }},
	}
}

// ForEachBackend runs test once per backend, as a subtest named after it, with a client
// of it. Subtests share each backend, so each keeps apart under a Prefix of its own.
func ForEachBackend(t *testing.T, test func(t *testing.T, rdb redis.UniversalClient)) {
	t.Helper()
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) { test(t, b.Client(t)) })
	}
}

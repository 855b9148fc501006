package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a local Redis Cluster of three masters (no replicas) on loopback ports.
type Cluster struct {
	Nodes []*Server
}

// Addrs returns the address of every node.
func (c *Cluster) Addrs() []string {
	addrs := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		addrs[i] = n.Addr
	}
	return addrs
}

// NewClient returns a cluster client of c. Close it when done.
func (c *Cluster) NewClient() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
}

// Stop stops every node.
func (c *Cluster) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

// StartCluster starts three cluster-enabled redis-servers, joins them with
// `redis-cli --cluster create` and waits until the cluster reports ok on every node.
func StartCluster() (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found (%w): install redis-server, which brings it", err)
	}
	c := &Cluster{}
	for range 3 {
		n, err := StartServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		rdb := n.NewClient()
		for {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3") {
				break
			}
			if time.Now().After(deadline) {
				rdb.Close()
				c.Stop()
				return nil, fmt.Errorf("cluster did not become ok on %s: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		rdb.Close()
	}
	return c, nil
}

// SharedCluster returns the test package's cluster, starting it on first use; Main
// stops it after the tests.
func SharedCluster(tb testing.TB) *Cluster {
	tb.Helper()
	return sharedCluster.get(tb, StartCluster)
}

// ClusterClient returns a client of the package's shared cluster, closed when the test
// ends. Tests sharing the cluster keep apart with a Prefix of their own.
func ClusterClient(tb testing.TB) *redis.ClusterClient {
	tb.Helper()
	rdb := SharedCluster(tb).NewClient()
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

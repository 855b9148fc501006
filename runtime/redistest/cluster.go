package redistest

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Cluster is a local Redis Cluster of three masters on loopback ports, with no replicas
// (StartCluster) or one replica each (StartReplicatedCluster).
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
func StartCluster() (*Cluster, error) { return startCluster(0) }

// StartReplicatedCluster starts a cluster like StartCluster whose three masters have one
// replica each (six servers), and waits until every replica is in sync. Replica finds
// a master's replica.
func StartReplicatedCluster() (*Cluster, error) { return startCluster(1) }

// Replica returns the replica of the master at addr.
func (c *Cluster) Replica(addr string) (*Server, error) {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	for _, n := range c.Nodes {
		rdb := n.NewClient()
		info, err := rdb.Info(context.Background(), "replication").Result()
		rdb.Close()
		if err != nil {
			return nil, err
		}
		if strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+port+"\r\n") {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no replica of %s in the cluster", addr)
}

func startCluster(replicas int) (*Cluster, error) {
	cli, err := exec.LookPath("redis-cli")
	if err != nil {
		return nil, fmt.Errorf("redis-cli not found (%w): install redis-server, which brings it", err)
	}
	c := &Cluster{}
	for range 3 * (1 + replicas) {
		n, err := StartServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
			"--repl-diskless-sync-delay", "0")
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, n)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(replicas), "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		c.Stop()
		return nil, fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	known := "cluster_known_nodes:" + strconv.Itoa(len(c.Nodes))
	deadline := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		rdb := n.NewClient()
		for {
			info, err := rdb.ClusterInfo(context.Background()).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, known) && replicating(rdb, replicas) {
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

// replicating reports whether the node is a master that counts replicas of its own
// online, or a replica whose link to its master is up.
func replicating(rdb *redis.Client, replicas int) bool {
	info, err := rdb.Info(context.Background(), "replication").Result()
	switch {
	case err != nil:
		return false
	case strings.Contains(info, "role:master"):
		return strings.Count(info, ",state=online,") >= replicas
	}
	return strings.Contains(info, "master_link_status:up")
}

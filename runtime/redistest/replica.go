package redistest

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// StartReplicaServer starts a redis-server that replicates primary ("--replicaof") with
// extra configuration arguments, and waits until its link to primary is up and primary
// counts it as an online replica, so that WAIT on primary counts it from then on. It sets
// repl-diskless-sync-delay 0 on primary, so the first sync starts at once. The caller
// must Stop it.
func StartReplicaServer(primary *Server, extra ...string) (*Server, error) {
	host, port, err := net.SplitHostPort(primary.Addr)
	if err != nil {
		return nil, err
	}
	// Without this the primary waits 5s for more replicas before its first full sync.
	p := primary.NewClient()
	err = p.ConfigSet(context.Background(), "repl-diskless-sync-delay", "0").Err()
	p.Close()
	if err != nil {
		return nil, fmt.Errorf("set repl-diskless-sync-delay 0 on %s: %w", primary.Addr, err)
	}
	r, err := StartServer(append([]string{"--replicaof", host, port}, extra...)...)
	if err != nil {
		return nil, err
	}
	if err := waitReplicating(primary, r); err != nil {
		r.Stop()
		return nil, err
	}
	return r, nil
}

// StartReplica starts a replica of primary for one test (StartReplicaServer) and stops
// it when the test ends.
func StartReplica(tb testing.TB, primary *Server, extra ...string) *Server {
	tb.Helper()
	r, err := StartReplicaServer(primary, extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Stop)
	return r
}

// waitReplicating waits up to 10s until replica's link to primary is up and primary
// lists it as online.
func waitReplicating(primary, replica *Server) error {
	_, port, _ := net.SplitHostPort(replica.Addr)
	p, r := primary.NewClient(), replica.NewClient()
	defer p.Close()
	defer r.Close()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ri, err1 := r.Info(ctx, "replication").Result()
		pi, err2 := p.Info(ctx, "replication").Result()
		if err1 == nil && err2 == nil && strings.Contains(ri, "master_link_status:up") &&
			strings.Contains(pi, "port="+port+",state=online") {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replica %s of %s did not come in sync in 10s: %v %v\nreplica: %s\nprimary: %s", replica.Addr, primary.Addr, err1, err2, ri, pi)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

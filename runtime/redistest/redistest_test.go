package redistest_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/taskgen/taskgen/runtime/redistest"
)

func TestMain(m *testing.M) { os.Exit(redistest.Main(m)) }

func TestServerListensOnLoopbackAndKeepsAppendOnlyDataAcrossARestart(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	if !strings.HasPrefix(srv.Addr, "127.0.0.1:") {
		t.Errorf("address %s is not on loopback", srv.Addr)
	}
	ctx := context.Background()
	rdb := srv.NewClient()
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("after restart: %q, %v", v, err)
	}
}

func TestSharedServersPersistNothing(t *testing.T) {
	info, err := redistest.Client(t).ConfigGet(context.Background(), "save").Result()
	if err != nil || info["save"] != "" {
		t.Errorf("save = %q, %v; want snapshots off", info["save"], err)
	}
}

func TestClusterHasThreeMastersCoveringEverySlot(t *testing.T) {
	rdb := redistest.ClusterClient(t)
	slots, err := rdb.ClusterSlots(context.Background()).Result()
	if err != nil {
		t.Fatal(err)
	}
	covered := 0
	for _, s := range slots {
		covered += s.End - s.Start + 1
	}
	if len(slots) != 3 || covered != 16384 {
		t.Errorf("%d slot ranges covering %d slots, want 3 covering 16384", len(slots), covered)
	}
}

func TestForEachBackendRunsOnTheSharedServerAndCluster(t *testing.T) {
	var ran []string
	redistest.ForEachBackend(t, func(t *testing.T, rdb redis.UniversalClient) {
		ran = append(ran, t.Name())
		_, cluster := rdb.(*redis.ClusterClient)
		if want := strings.HasSuffix(t.Name(), "/cluster"); cluster != want {
			t.Errorf("a %T in subtest %s", rdb, t.Name())
		}
		if err := rdb.Ping(context.Background()).Err(); err != nil {
			t.Error(err)
		}
	})
	if want := []string{t.Name() + "/server", t.Name() + "/cluster"}; !slices.Equal(ran, want) {
		t.Errorf("ran %v, want %v", ran, want)
	}
}

func TestAReplicaIsInSyncWhenStartReplicaReturns(t *testing.T) {
	primary := redistest.Start(t)
	replica := redistest.StartReplica(t, primary)
	ctx := context.Background()
	p, r := primary.NewClient(), replica.NewClient()
	defer p.Close()
	defer r.Close()
	if err := p.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := p.Wait(ctx, 1, 5*time.Second).Result(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v: the primary does not count its replica", n, err)
	}
	if v, err := r.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Errorf("on the replica: %q, %v", v, err)
	}
	if err := r.Set(ctx, "k", "w", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
		t.Errorf("a write on the replica: %v, want READONLY", err)
	}
}

func TestVersionIsTheServersRedisVersion(t *testing.T) {
	v := redistest.Version(t, redistest.Client(t))
	if parts := strings.Split(v, "."); len(parts) != 3 || parts[0] == "" {
		t.Errorf("Version = %q, want major.minor.patch", v)
	}
}

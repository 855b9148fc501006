// Package redistest starts real redis-server processes for tests: one per test package
// (Main and Client), or one per test (Start) where a test needs a server of its own, for
// example to restart it or to configure ACL users. Servers listen on a free loopback port,
// keep their files in a temporary directory and persist nothing.
//
// There is deliberately no fake: a broker test that passes here passed against Redis.
package redistest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is one running redis-server.
type Server struct {
	Addr string // host:port on loopback
	dir  string
	cmd  *exec.Cmd
	args []string
	done chan struct{}
}

// Binary is the redis-server executable; REDIS_SERVER overrides it.
func Binary() string {
	if p := os.Getenv("REDIS_SERVER"); p != "" {
		return p
	}
	return "redis-server"
}

// StartServer starts a redis-server with extra configuration arguments (for example
// "--appendonly", "yes") and waits until it answers PING. The caller must Stop it.
func StartServer(extra ...string) (*Server, error) {
	bin, err := exec.LookPath(Binary())
	if err != nil {
		return nil, fmt.Errorf("redis-server not found (%w): install it (apt-get install redis-server; `make test` does) or set REDIS_SERVER", err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for range 5 { // the free port can be taken between probing and binding it
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		s := &Server{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, args: append([]string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", filepath.Join(dir, "redis.log"),
		}, extra...)}
		if err := s.start(bin); err != nil {
			lastErr = err
			continue
		}
		return s, nil
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (s *Server) start(bin string) error {
	s.cmd = exec.Command(bin, s.args...)
	s.done = make(chan struct{})
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	go func() { _ = s.cmd.Wait(); close(s.done) }()
	rdb := redis.NewClient(&redis.Options{Addr: s.Addr, MaxRetries: -1})
	defer rdb.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-s.done:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr, tail(log))
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			s.kill()
			return fmt.Errorf("redis-server on %s did not answer: %w", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Restart stops the server and starts it again on the same port and directory, so it
// keeps whatever it persisted (with "--appendonly yes").
func (s *Server) Restart() error {
	s.kill()
	bin, err := exec.LookPath(Binary())
	if err != nil {
		return err
	}
	return s.start(bin)
}

// Kill stops the server at once (SIGKILL), leaving its directory for Restart.
func (s *Server) Kill() { s.kill() }

func (s *Server) kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// Pause stops the server's process (SIGSTOP) without closing its connections: clients see
// a server that accepts commands and never answers, as when it hangs or the network drops
// packets, not one that refuses connections. Resume continues it; Stop works either way.
func (s *Server) Pause() error { return s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() error { return s.cmd.Process.Signal(syscall.SIGCONT) }

// Stop kills the server and removes its directory.
func (s *Server) Stop() {
	s.kill()
	os.RemoveAll(s.dir)
}

// NewClient returns a client of the server. Close it when done.
func (s *Server) NewClient() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: s.Addr})
}

// Start starts a server for one test and stops it when the test ends.
func Start(tb testing.TB, extra ...string) *Server {
	tb.Helper()
	s, err := StartServer(extra...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Stop)
	return s
}

// once starts a shared resource on first use and stops it in Main.
type once[T interface{ Stop() }] struct {
	mu  sync.Mutex
	v   T
	set bool
	err error
}

func (o *once[T]) get(tb testing.TB, start func() (T, error)) T {
	tb.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.set && o.err == nil {
		o.v, o.err = start()
		o.set = o.err == nil
	}
	if o.err != nil {
		tb.Fatal(o.err)
	}
	return o.v
}

func (o *once[T]) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.set {
		o.v.Stop()
		var zero T
		o.v, o.set = zero, false
	}
}

var (
	sharedServer  once[*Server]
	sharedCluster once[*Cluster]
)

// Main runs a test package's tests with a shared server (and cluster) that Client (and
// ClusterClient) start on first use, and stops them afterwards. Call it from TestMain:
// os.Exit(redistest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	sharedServer.stop()
	sharedCluster.stop()
	return code
}

// Shared returns the package's shared server, starting it on first use.
func Shared(tb testing.TB) *Server {
	tb.Helper()
	return sharedServer.get(tb, func() (*Server, error) { return StartServer() })
}

// Client returns a client of the package's shared server, closed when the test ends.
// Tests sharing the server keep apart with a Prefix of their own.
func Client(tb testing.TB) *redis.Client {
	tb.Helper()
	rdb := Shared(tb).NewClient()
	tb.Cleanup(func() { rdb.Close() })
	return rdb
}

// Prefix returns a key prefix no other test uses, for tests that share a server.
func Prefix(tb testing.TB) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "taskgen-test-" + hex.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte) string {
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisServer is a redis-server process of the test's own, so that a test
// can kill and restart it.
type redisServer struct {
	t    *testing.T
	path string
	port int
	cmd  *exec.Cmd
	Addr string
}

// redisBinary returns the path of a redis-server program. Without one on
// PATH the test is skipped, except in CI, where it fails: CI installs it.
func redisBinary(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not on PATH; .ci/run installs it (apt-get install redis-server)", name)
		}
		t.Skipf("%s is not on PATH", name)
	}
	return path
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitPing returns once the Redis at addr answers PING.
func waitPing(t *testing.T, addr string) {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redis on %s did not answer: %v", addr, err)
		}
		time.Sleep(10 * time.Millisecond) // waiting on another process: no channel to wait on
	}
}

// startRedis starts a redis-server on a free loopback port.
func startRedis(t *testing.T) *redisServer {
	t.Helper()
	port := freePort(t)
	r := &redisServer{t: t, path: redisBinary(t, "redis-server"), port: port, Addr: "127.0.0.1:" + strconv.Itoa(port)}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start runs the server and returns once it answers PING.
func (r *redisServer) Start() {
	r.t.Helper()
	r.cmd = exec.Command(r.path, "--port", strconv.Itoa(r.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--protected-mode", "no")
	require.NoError(r.t, r.cmd.Start())
	waitPing(r.t, r.Addr)
}

// Stop kills the server, as a crash would.
func (r *redisServer) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

func (r *redisServer) Client() *redis.Client { return newClient(r.t, r.Addr) }

func newClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// sharedRedis is the Redis that .ci/run started (VPAY_TEST_REDIS_ADDR), for
// tests that do not kill it; elsewhere the test starts its own.
type sharedRedis struct {
	t    *testing.T
	addr string
}

func useRedis(t *testing.T) sharedRedis {
	t.Helper()
	if addr := os.Getenv("VPAY_TEST_REDIS_ADDR"); addr != "" {
		return sharedRedis{t, addr}
	}
	return sharedRedis{t, startRedis(t).Addr}
}

// Client is a client of the shared Redis for tests of sharing, not of
// outages: its dial time-out is the store's own bound (500 ms per call),
// not 200 ms, so that a loaded CI machine does not turn a slow dial into a
// fallback and a second token fetch (TestTokenStoreOneFetchAcrossReplicas
// failed that way at load average 20). Outage tests use their own Redis.
func (r sharedRedis) Client() *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr, DialTimeout: 5 * time.Second, MaxRetries: -1})
	r.t.Cleanup(func() { _ = c.Close() })
	return c
}

var nsSeq int

// ns gives each test its own namespace.
func ns(t *testing.T) Option {
	nsSeq++
	return WithNamespace(fmt.Sprintf("%s-%d", t.Name(), nsSeq))
}

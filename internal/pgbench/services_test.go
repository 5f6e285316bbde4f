package pgbench

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go/internal/testutil/pgtest"
)

// postgres is the database a test runs on: a fresh one on the server of
// VPAY_TEST_POSTGRES_DSN when set, otherwise a cluster of the test's own.
func postgres(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("VPAY_TEST_POSTGRES_DSN"); dsn != "" {
		return pgtest.FreshDatabase(t, dsn, func(ctx context.Context, dsn, stmt string) error {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				return err
			}
			defer conn.Close(ctx)
			_, err = conn.Exec(ctx, stmt)
			return err
		})
	}
	s := pgtest.New(t)
	t.Cleanup(s.Close)
	return s.DSN
}

// redisAddr is the Redis that .ci/run started (VPAY_TEST_REDIS_ADDR), or a
// redis-server of the test's own. Without one the test is skipped, except
// under CI=true, where it fails: CI installs it.
func redisAddr(t testing.TB) string {
	t.Helper()
	if addr := os.Getenv("VPAY_TEST_REDIS_ADDR"); addr != "" {
		return addr
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("redis-server is not on PATH; .ci/run installs it (apt-get install redis-server)")
		}
		t.Skip("redis-server is not on PATH: apt-get install redis-server")
	}
	addr := "127.0.0.1:" + strconv.Itoa(pgtest.FreePort(t))
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(path, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); c.Ping(context.Background()).Err() != nil; {
		if time.Now().After(deadline) {
			t.Fatalf("redis-server on %s did not answer", addr)
		}
		time.Sleep(10 * time.Millisecond) // another process: nothing to wait on
	}
	return addr
}

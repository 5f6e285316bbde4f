package pgstore

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go/internal/testutil/pgtest"
)

// postgres is the database a test runs on, a fresh one of its own: on the
// server of VPAY_TEST_POSTGRES_DSN when set, otherwise on a cluster the
// package's tests share (TestMain stops it). A test that stops its server
// uses startPostgres instead. Without PostgreSQL the test is skipped,
// except under CI=true, where it fails: CI installs it.
func postgres(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("VPAY_TEST_POSTGRES_DSN"); dsn != "" {
		return pgtest.FreshDatabase(t, dsn, execOn)
	}
	sharedPG.mu.Lock()
	defer sharedPG.mu.Unlock()
	if sharedPG.srv == nil {
		sharedPG.srv = pgtest.New(t)
	}
	return pgtest.FreshDatabase(t, sharedPG.srv.DSN, execOn)
}

// execOn runs one statement on the database of dsn.
func execOn(ctx context.Context, dsn, stmt string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, stmt)
	return err
}

// sharedPG is the cluster postgres hands databases out of.
var sharedPG struct {
	mu  sync.Mutex
	srv *pgtest.Server
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPG.srv != nil {
		sharedPG.srv.Close()
	}
	os.Exit(code)
}

// startPostgres starts a cluster of the test's own, which it may stop and
// start again; it is removed when the test ends.
func startPostgres(t testing.TB) *pgtest.Server {
	t.Helper()
	s := pgtest.New(t)
	t.Cleanup(s.Close)
	return s
}

// newPool opens a pool on dsn, closed when the test ends, with a short
// connect timeout so that a stopped server is seen at once.
func newPool(t testing.TB, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrated is a pool on a migrated database of its own.
func migrated(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := newPool(t, postgres(t), 0)
	if err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

var nsSeq atomic.Int64

// ns gives each test its own namespace.
func ns(t testing.TB) Option {
	return WithNamespace(fmt.Sprintf("%s-%d", t.Name(), nsSeq.Add(1)))
}

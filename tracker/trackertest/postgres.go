// Package trackertest starts throwaway PostgreSQL servers for tests of the
// tracker and of code built on it (an OnUpdate, an operator's tool): a
// real server, never a mock of what a merchant runs.
//
//	pg := trackertest.NewPostgres(t)
//	pool, err := pgxpool.New(ctx, pg.DSN)
//
// With VPAY_TEST_POSTGRES_DSN set, each test gets a fresh database on that
// server instead. Without either (no initdb from Debian's postgresql
// package), the test is skipped, except under CI=true, where it fails.
package trackertest

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/vonsung/vpay-go/internal/testutil/pgtest"
)

// Postgres is one test's PostgreSQL. Its DSN stays valid across Kill and
// Start.
type Postgres struct {
	// DSN is the connection string of the test's database.
	DSN string

	srv *pgtest.Server // nil for a server the test did not start
}

// NewPostgres returns a PostgreSQL of the test's own: a cluster started
// in a temporary directory on a free loopback port (initdb and pg_ctl of
// the newest server under /usr/lib/postgresql, run through runuser as the
// postgres user when the test runs as root), stopped at the test's end.
// The cluster itself is the repository's one helper for that
// (internal/testutil/pgtest), which pgstore's tests use too.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	if dsn := os.Getenv("VPAY_TEST_POSTGRES_DSN"); dsn != "" {
		return &Postgres{DSN: pgtest.FreshDatabase(t, dsn, execPgx)}
	}
	srv := pgtest.New(t)
	t.Cleanup(srv.Close)
	return &Postgres{DSN: srv.DSN, srv: srv}
}

// CanKill reports whether Kill and Start work: false on a server the test
// did not start (VPAY_TEST_POSTGRES_DSN).
func (pg *Postgres) CanKill() bool { return pg.srv != nil }

// Kill stops the server as a crash would (pg_ctl -m immediate): every
// connection drops, open transactions are lost.
func (pg *Postgres) Kill(t testing.TB) {
	t.Helper()
	if !pg.CanKill() {
		t.Fatal("trackertest: Kill on a server the test did not start")
	}
	pg.srv.Stop()
}

// Start starts the server again after Kill (NewPostgres starts it), and
// waits until it accepts connections.
func (pg *Postgres) Start(t testing.TB) {
	t.Helper()
	if !pg.CanKill() {
		t.Fatal("trackertest: Start on a server the test did not start")
	}
	pg.srv.Start()
}

// execPgx runs one statement on the database of dsn, for
// pgtest.FreshDatabase.
func execPgx(ctx context.Context, dsn, stmt string) error {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	_, err = pool.Exec(ctx, stmt)
	return err
}

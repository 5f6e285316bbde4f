package pgstore

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

// Migrate is idempotent and safe to run from several processes at once;
// it creates its tables in the schema the pool's search_path names, with
// the persistence each needs, and a rerun keeps the data.
func TestMigrate(t *testing.T) {
	dsn := postgres(t)
	// A Migrate that hangs fails here, not at the suite's time-out.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := newPool(t, dsn, 2)
	_, err := admin.Exec(ctx, `CREATE SCHEMA payments`)
	require.NoError(t, err)
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.ConnConfig.RuntimeParams["search_path"] = "payments"
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)

	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() { defer wg.Done(); errs <- Migrate(ctx, pool) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "concurrent migrations take turns")
	}

	rows, err := admin.Query(ctx, `SELECT c.relname, n.nspname, c.relpersistence FROM pg_class c
		JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relname LIKE 'vpay_pgstore_%' AND c.relkind = 'r'`)
	require.NoError(t, err)
	persistence := map[string]string{}
	for rows.Next() {
		var name, schema, p string
		require.NoError(t, rows.Scan(&name, &schema, &p))
		assert.Equal(t, "payments", schema, "%s is in the search_path's schema", name)
		persistence[name] = p
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, map[string]string{
		"vpay_pgstore_tokens":   "u", // losing it costs one /auth/
		"vpay_pgstore_limits":   "u", // losing it makes the fleet start cold
		"vpay_pgstore_webhooks": "p", // losing it processes an event twice
	}, persistence)

	// The functions find their tables whatever the caller's search_path.
	l := NewLimiter(admin, vpay.PlanGrowth, ns(t))
	_, err = l.Reserve(ctx, time.Minute)
	require.Error(t, err, "the public schema has no pgstore functions")
	withPath := NewLimiter(pool, vpay.PlanGrowth, ns(t))
	w, err := withPath.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Zero(t, w.For)
	_, err = admin.Exec(ctx, `SET search_path = pg_catalog; SELECT payments.vpay_pgstore_unanswered('x')`)
	require.NoError(t, err, "a function called from another search_path still finds its table")

	// Every function, not only the one called above, is pinned to the
	// schema Migrate ran in (SET search_path FROM CURRENT).
	var fns, unpinned []string
	rows, err = admin.Query(ctx, `SELECT p.proname, coalesce(array_to_string(p.proconfig, ','), '')
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = 'payments' AND p.proname LIKE 'vpay_pgstore_%' ORDER BY p.proname`)
	require.NoError(t, err)
	for rows.Next() {
		var name, config string
		require.NoError(t, rows.Scan(&name, &config))
		fns = append(fns, name)
		if !strings.Contains(config, `search_path=payments`) && !strings.Contains(config, `search_path="payments"`) {
			unpinned = append(unpinned, name+" ("+config+")")
		}
	}
	require.NoError(t, rows.Err())
	assert.Contains(t, fns, "vpay_pgstore_observe")
	assert.Contains(t, fns, "vpay_pgstore_reserve")
	assert.Empty(t, unpinned, "functions without search_path = payments")

	d := NewDeduper(pool, time.Hour, ns(t))
	_, err = d.Claim(ctx, "VP1:successful", "a", time.Minute)
	require.NoError(t, err)
	require.NoError(t, d.Complete(ctx, "VP1:successful", "a"))
	require.NoError(t, Migrate(ctx, pool), "a rerun")
	st, err := d.Claim(ctx, "VP1:successful", "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, "done", st.String(), "a rerun keeps the data")
}

// A Migrate waiting for another process's turn gives up when its ctx ends,
// without holding a connection meanwhile.
func TestMigrateWaitsWithoutAConnection(t *testing.T) {
	pool := newPool(t, postgres(t), 1)
	ctx := context.Background()
	other := newPool(t, pool.Config().ConnString(), 1)
	conn, err := other.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock) // another process migrating
	require.NoError(t, err)

	mctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- Migrate(mctx, pool) }()
	// While it waits, the pool's only connection is free for others.
	require.Eventually(t, func() bool {
		c, err := pool.Acquire(ctx)
		if err != nil {
			return false
		}
		c.Release()
		return true
	}, 5*time.Second, 5*time.Millisecond)
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
	case <-time.After(10 * time.Second):
		t.Fatal("Migrate did not give up when its ctx ended")
	}
	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrateLock)
	require.NoError(t, err)
	require.NoError(t, Migrate(ctx, pool), "its turn once the other is done")
}

// A Migrate waiting for its turn polls the lock with pg_try_advisory_lock
// and gives its connection back between tries: a blocking
// pg_advisory_lock would hold a pool connection for as long as the other
// process migrates, and on a pool of one stop every other store.
func TestMigrateWaiterLeavesThePoolUsable(t *testing.T) {
	pool, tracer := tracedPool(t, postgres(t), 1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := newPool(t, pool.Config().ConnString(), 1)
	conn, err := other.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock) // another process migrating
	require.NoError(t, err)

	done := make(chan error, 1)
	go func() { done <- Migrate(ctx, pool) }()
	require.Eventually(t, func() bool { return tracer.n.Load() >= 1 }, 10*time.Second, time.Millisecond,
		"Migrate never asked for the lock")
	for i := range 3 {
		qctx, qcancel := context.WithTimeout(ctx, 2*time.Second)
		var one int
		err := pool.QueryRow(qctx, `SELECT 1`).Scan(&one)
		qcancel()
		require.NoError(t, err, "query %d: the waiting Migrate holds the pool's only connection", i)
	}
	var waiting int
	require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting))
	assert.Zero(t, waiting, "no session blocks in the lock queue for pgstore's migration")
	select {
	case err := <-done:
		t.Fatalf("Migrate returned %v while another process held the lock", err)
	default:
	}

	_, err = conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, migrateLock)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err, "its turn once the other is done")
	case <-ctx.Done():
		t.Fatal("Migrate did not run once the lock was free")
	}
	assert.Zero(t, pool.Stat().AcquiredConns(), "Migrate gave its connection back")
}

// trackerMigrateLock is the tracker module's advisory-lock key ("vpay",
// tracker/migrate.go): pgstore's must differ, so that one module's
// migration never waits for the other's, as they share a database.
const trackerMigrateLock = 0x76706179

func TestMigrateIgnoresTheTrackersLock(t *testing.T) {
	pool := newPool(t, postgres(t), 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer conn.Release()
	_, err = conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, trackerMigrateLock) // the tracker migrating
	require.NoError(t, err)
	mctx, mcancel := context.WithTimeout(ctx, 5*time.Second)
	defer mcancel()
	require.NoError(t, Migrate(mctx, pool), "pgstore's Migrate waited for the tracker's lock")
	assert.NotEqual(t, trackerMigrateLock, migrateLock)
}

package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// migrateLock is the advisory lock key Migrate holds: "vpgs" in ASCII,
// not the tracker's ("vpay"), so that the two migrations never wait on
// each other.
const migrateLock = 0x76706773

// Every name starts with vpay_pgstore_: the tracker's tables start with
// vpay_tracker_ and River's with river_, so the three share a schema
// without colliding.
//
// Which tables may be UNLOGGED (not written to the WAL: faster, but
// emptied by the crash recovery of the server and absent on its standbys):
//
//   - tokens: UNLOGGED. Losing the token costs one /auth/ call.
//   - limits: UNLOGGED. Losing the rate-limit state makes the fleet start
//     cold, paced at the plan's rate until the next answer says where the
//     window stands; the server still enforces the limit.
//   - webhooks: LOGGED. A lost "done" lets V-Pay's next redelivery of an
//     event reach the handler a second time: an order fulfilled twice.
var schema = []string{
	`CREATE UNLOGGED TABLE IF NOT EXISTS vpay_pgstore_tokens (
		namespace  text PRIMARY KEY,
		access     text,
		refresh    text,
		mode       text,
		expiry     timestamptz,
		issued     timestamptz,
		lock_owner text,
		lock_until timestamptz
	)`,
	// One row per API key: the default limiter's state (package vpay,
	// limiter.go), all times in unix milliseconds of the callers' clocks.
	`CREATE UNLOGGED TABLE IF NOT EXISTS vpay_pgstore_limits (
		namespace text PRIMARY KEY,
		lim       integer NOT NULL DEFAULT 0,
		remaining integer NOT NULL DEFAULT 0,
		wend      bigint NOT NULL DEFAULT 0,
		est       boolean NOT NULL DEFAULT false,
		wlen      bigint NOT NULL DEFAULT 60000,
		blind     integer NOT NULL DEFAULT 0,
		tat       double precision NOT NULL DEFAULT 0,
		last      bigint NOT NULL DEFAULT 0,
		pat       bigint NOT NULL DEFAULT 0,
		pev       bigint NOT NULL DEFAULT 0,
		infl      integer NOT NULL DEFAULT 0,
		grants    integer NOT NULL DEFAULT 0,
		strag     integer NOT NULL DEFAULT 0
	)`,
	`CREATE TABLE IF NOT EXISTS vpay_pgstore_webhooks (
		namespace  text NOT NULL,
		key        text NOT NULL,
		owner      text,
		done       boolean NOT NULL DEFAULT false,
		expires_at timestamptz NOT NULL,
		PRIMARY KEY (namespace, key)
	)`,
	`CREATE INDEX IF NOT EXISTS vpay_pgstore_webhooks_expiry ON vpay_pgstore_webhooks (expires_at)`,
	limiterFunctions,
	deduperFunctions,
}

// Migrate creates or upgrades pgstore's tables and functions in the schema
// that pool's search_path names first. It is idempotent and safe to run
// from several processes at once: they take turns under a PostgreSQL
// advisory lock. A process waiting for its turn holds no connection.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	for {
		done, err := migrateOnce(ctx, pool)
		if done || err != nil {
			return err
		}
		select {
		case <-time.After(50 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("pgstore: migrate: waiting for another process's migration: %w", ctx.Err())
		}
	}
}

// migrateOnce runs the migration if it gets the lock, and reports whether
// it did.
func migrateOnce(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return false, fmt.Errorf("pgstore: migrate: %w", err)
	}
	defer conn.Release()
	var locked bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, migrateLock).Scan(&locked); err != nil {
		return false, fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	if !locked {
		return false, nil
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock) }()
	for _, stmt := range schema {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("pgstore: migrate: %w", err)
		}
	}
	return true, nil
}

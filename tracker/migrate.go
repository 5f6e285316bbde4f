package tracker

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// migrateLock is the advisory lock key Migrate holds: "vpay" in ASCII.
const migrateLock = 0x76706179

// schema is the tracker's own tables. Each statement is idempotent.
var schema = []string{
	`CREATE TABLE IF NOT EXISTS vpay_tracker_payments (
		reference       text PRIMARY KEY,
		transaction_id  text,
		status          text NOT NULL DEFAULT 'pending',
		transaction     jsonb,
		outcome_unknown boolean NOT NULL DEFAULT false,
		unresolved      boolean NOT NULL DEFAULT false,
		note            text NOT NULL DEFAULT '',
		created_at      timestamptz NOT NULL DEFAULT now(),
		updated_at      timestamptz NOT NULL DEFAULT now()
	)`,
	`CREATE INDEX IF NOT EXISTS vpay_tracker_payments_open ON vpay_tracker_payments (created_at)
		WHERE status = 'pending'`,
	// Not unique: a transaction id that names two references (a test
	// emulator restarted, a bug upstream) must not wedge the tracker.
	`CREATE INDEX IF NOT EXISTS vpay_tracker_payments_transaction ON vpay_tracker_payments (transaction_id)`,
	`CREATE TABLE IF NOT EXISTS vpay_tracker_deliveries (
		reference    text NOT NULL REFERENCES vpay_tracker_payments (reference) ON DELETE CASCADE,
		status       text NOT NULL,
		source       text NOT NULL,
		delivered_at timestamptz NOT NULL DEFAULT now(),
		PRIMARY KEY (reference, status)
	)`,
}

// Migrate creates or upgrades the tracker's tables and River's schema in
// pool's database. It is idempotent and safe to run from several processes
// at once: they take turns under a PostgreSQL advisory lock.
func Migrate(ctx context.Context, pool *pgxpool.Pool) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("tracker: migrate: %w", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrateLock); err != nil {
		return fmt.Errorf("tracker: migrate: lock: %w", err)
	}
	defer func() { _, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrateLock) }()

	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("tracker: migrate: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("tracker: migrate River: %w", err)
	}
	for _, stmt := range schema {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("tracker: migrate: %w", err)
		}
	}
	return nil
}

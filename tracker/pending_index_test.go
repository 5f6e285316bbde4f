package tracker_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/tracker/trackertest"
)

// TestPendingCountIsOneIndexedCount: with 200,000 settled payments and a
// few open ones, PendingCount is served by the partial index of payments
// without a final status (built from the same list as the query, so the
// planner can match them), not by a scan of the table; and a payment in a
// status V-Pay may add later, kept as it is, counts as pending.
func TestPendingCountIsOneIndexedCount(t *testing.T) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, trackertest.NewPostgres(t).DSN)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, tracker.Migrate(ctx, pool))
	_, err = pool.Exec(ctx, `INSERT INTO vpay_tracker_payments (reference, status, unresolved)
		SELECT 'order-' || i,
			CASE WHEN i <= 300 THEN 'pending' WHEN i <= 310 THEN 'processing'
				ELSE (ARRAY['successful', 'failed', 'cancelled', 'refunded', 'disputed'])[1 + i % 5] END,
			i <= 7
		FROM generate_series(1, 200000) AS i`)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `VACUUM ANALYZE vpay_tracker_payments`)
	require.NoError(t, err)

	admin, err := tracker.NewAdmin(pool)
	require.NoError(t, err)
	pending, unresolved, err := admin.PendingCount(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 310, pending, "pending and the unknown 'processing' have no final status")
	assert.EqualValues(t, 7, unresolved)

	rows, err := pool.Query(ctx, `EXPLAIN `+tracker.PendingCountQuery())
	require.NoError(t, err)
	var lines []string
	for rows.Next() {
		var l string
		require.NoError(t, rows.Scan(&l))
		lines = append(lines, l)
	}
	require.NoError(t, rows.Err())
	text := strings.Join(lines, "\n")
	assert.Contains(t, text, "vpay_tracker_payments_not_final", "served by the partial index:\n%s", text)
	assert.NotContains(t, text, "Seq Scan", "no scan of the table:\n%s", text)
}

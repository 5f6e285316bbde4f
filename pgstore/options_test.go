package pgstore

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

// TestInvalidOptionsAreRefused: a constructor panics on an invalid option,
// naming it, as redisstore's do. No database is needed: the pool connects
// lazily and the constructors do not query.
func TestInvalidOptionsAreRefused(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for _, tc := range []struct {
		name string
		make func()
		says string
	}{
		{"empty namespace", func() { NewTokenStore(pool, WithNamespace("")) }, `WithNamespace("")`},
		{"nil logger", func() { NewDeduper(pool, time.Hour, WithLogger(nil)) }, "WithLogger(nil)"},
		{"zero lock TTL", func() { NewTokenStore(pool, WithLockTTL(0)) }, "WithLockTTL(0s)"},
		{"nil pool", func() { NewLimiter(nil, vpay.PlanStarter) }, "nil pool"},
		{"zero plan", func() { NewLimiter(pool, vpay.Plan{}) }, "invalid plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "the constructor accepted it")
				assert.Contains(t, fmt.Sprint(r), tc.says)
			}()
			tc.make()
		})
	}
	assert.NotPanics(t, func() { NewLimiter(pool, vpay.PlanGrowth, WithNamespace("merchant-1"), WithLockTTL(time.Second)) })
}

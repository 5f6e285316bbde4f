package pgstore

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// The constructors' defaults: a Deduper without a TTL remembers an event
// for webhook.DefaultDedupeTTL; a Limiter on Starter paces at its rate
// before any answer (a Limiter without a plan is refused:
// TestInvalidOptionsAreRefused).
func TestConstructorDefaults(t *testing.T) {
	pool := migrated(t)
	ctx := context.Background()
	d := NewDeduper(pool, 0, ns(t))
	require.NoError(t, d.Complete(ctx, "VP1:successful", "a"))
	var left time.Duration
	require.NoError(t, pool.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - clock_timestamp()) * interval '1 second'
		FROM vpay_pgstore_webhooks WHERE namespace = $1`, d.ns).Scan(&left))
	assert.InDelta(t, webhook.DefaultDedupeTTL.Seconds(), left.Seconds(), 60)

	l := NewLimiter(pool, vpay.PlanStarter, ns(t))
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Zero(t, w.For, "Starter's burst: one request")
	w, err = l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 3, w.For.Seconds(), 0.1, "then one every 3 s")

	// After an outage every store skips PostgreSQL for a second (the
	// package doc's promise): long enough not to wait on a dead database
	// call after call, short enough to share again soon after it returns.
	for name, h := range map[string]*health{
		"token":   NewTokenStore(pool, ns(t)).h,
		"limiter": l.h,
		"webhook": d.h,
	} {
		assert.Equal(t, time.Second, h.retryDown, name)
	}
}

// countingTracer counts the statements a pool runs.
type countingTracer struct{ n atomic.Int64 }

func (c *countingTracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	return ctx
}

func (c *countingTracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// A replica waiting for another's token reads the row every poll (25 ms),
// not in a busy loop that would load the database for everyone.
func TestTokenWaitPollsTheDatabaseGently(t *testing.T) {
	pool, tracer := tracedPool(t, postgres(t), 0)
	require.NoError(t, Migrate(context.Background(), pool))
	opt := ns(t)
	ctx := context.Background()
	dead := NewTokenStore(pool, opt, WithLockTTL(300*time.Millisecond))
	won, err := dead.lock(ctx, "dead-replica")
	require.NoError(t, err)
	require.True(t, won)
	before := tracer.n.Load()
	start := time.Now()
	_, err = NewTokenStore(pool, opt).Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("t", time.Minute), nil })
	require.NoError(t, err)
	waited, queries := time.Since(start), tracer.n.Load()-before
	t.Logf("waited %s for the lease: %d statements", waited, queries)
	// Two statements a poll, and the fetch's own few.
	assert.LessOrEqual(t, queries, 2*int64(waited/(25*time.Millisecond))+10)
}

// A valid token is read while another replica holds the lease: a replica
// refreshing ahead of expiry must not make the others wait for it.
func TestTokenReadWhileAnotherHoldsTheLease(t *testing.T) {
	pool := migrated(t)
	opt := ns(t)
	ctx := context.Background()
	a, b := NewTokenStore(pool, opt), NewTokenStore(pool, opt)
	_, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("a", time.Minute), nil })
	require.NoError(t, err)
	won, err := a.lock(ctx, "refreshing-ahead")
	require.NoError(t, err)
	require.True(t, won)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the lease lasts 30 s
	defer cancel()
	tok, err := b.Refresh(rctx, nil, func(context.Context) (*vpay.Token, error) {
		t.Error("fetched although a valid token was stored")
		return nil, vpay.ErrInvalidKey
	})
	require.NoError(t, err)
	assert.Equal(t, "a", tok.AccessToken)
}

// A replica waiting for another's token holds no connection meanwhile:
// on a pool of one, the pool stays usable while it waits.
func TestTokenWaitHoldsNoConnection(t *testing.T) {
	pool, tracer := tracedPool(t, postgres(t), 1)
	require.NoError(t, Migrate(context.Background(), pool))
	opt := ns(t)
	ctx := context.Background()
	holder := NewTokenStore(pool, opt)
	won, err := holder.lock(ctx, "fetching-elsewhere")
	require.NoError(t, err)
	require.True(t, won)
	before := tracer.n.Load()
	done := make(chan error, 1)
	go func() {
		s := NewTokenStore(pool, opt)
		_, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) {
			return nil, errors.New("the lease is held: this replica must not fetch")
		})
		done <- err
	}()
	require.Eventually(t, func() bool { return tracer.n.Load()-before >= 6 }, 10*time.Second, time.Millisecond,
		"the waiter polls the row (three rounds of two statements) on the pool's one connection")
	actx, cancel := context.WithTimeout(ctx, time.Second)
	c, err := pool.Acquire(actx)
	cancel()
	require.NoError(t, err, "the waiting refresh holds the pool's only connection")
	c.Release()
	_, err = pool.Exec(ctx, `UPDATE vpay_pgstore_tokens SET access = 'other', refresh = 'r', mode = 'sandbox',
		expiry = now() + interval '1 minute', issued = now(), lock_owner = NULL, lock_until = NULL WHERE namespace = $1`, holder.ns)
	require.NoError(t, err)
	select {
	case err := <-done:
		require.NoError(t, err, "the waiter read the other's token")
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting refresh never read the stored token")
	}
}

// tracedPool is a pool on dsn whose statements tracer counts.
func tracedPool(t *testing.T, dsn string, maxConns int32) (*pgxpool.Pool, *countingTracer) {
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	tracer := &countingTracer{}
	cfg.ConnConfig.Tracer = tracer
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool, tracer
}

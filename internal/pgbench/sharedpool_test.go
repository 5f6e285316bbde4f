package pgbench

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/pgstore"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// syncBuffer is a log's output, safe to read while it is written.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTrackerAndPgstoreOnOnePool: a merchant's process with the tracker
// (River's workers) and pgstore's three stores on one pool of four
// connections, pgxpool's default on a small machine. Payments wait for
// the rate-limit window and for token refreshes the whole time; no pgstore
// call may hold a connection while it waits, or the pool runs dry and the
// stores fall back (which they log). Both migrations share the database.
func TestTrackerAndPgstoreOnOnePool(t *testing.T) {
	dsn := postgres(t)
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(dsn)
	require.NoError(t, err)
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	for range 2 { // each migration twice, after the other: no collision
		require.NoError(t, tracker.Migrate(ctx, pool))
		require.NoError(t, pgstore.Migrate(ctx, pool))
	}
	_, err = pool.Exec(ctx, `CREATE TABLE shop_updates (reference text NOT NULL, status text NOT NULL)`)
	require.NoError(t, err)

	// Ten requests a one-second window and a token that lasts 1.5 s: the
	// 40 payments wait for windows and cross several refreshes. (Fewer
	// workers than a window's requests: see pgstore's fleet test for why.)
	const payments, workers = 40, 8
	emu := vpaytest.NewServer(vpaytest.WithPlan(vpay.Plan{PerMinute: 10}), vpaytest.WithRateWindow(time.Second),
		vpaytest.WithTokenLifetime(1500*time.Millisecond), vpaytest.WithPaymentDelay(20*time.Millisecond))
	defer emu.Close()
	logs := &syncBuffer{}
	opts := []pgstore.Option{pgstore.WithNamespace(emu.APIUser), pgstore.WithLogger(slog.New(slog.NewTextHandler(logs, nil)))}
	plan := vpay.Plan{PerMinute: 10 * 60}
	c := emu.Client(vpay.WithPlan(plan), vpay.WithTokenStore(pgstore.NewTokenStore(pool, opts...)),
		vpay.WithLimiter(pgstore.NewLimiter(pool, plan, opts...)))
	tr, err := tracker.New(tracker.Config{Client: c, Pool: pool,
		OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			_, err := tx.Exec(ctx, `INSERT INTO shop_updates (reference, status) VALUES ($1, $2)`, u.Reference, string(u.Status))
			return err
		}})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	hook := httptest.NewServer(tr.Handler(emu.WebhookSecret, webhook.WithDeduper(pgstore.NewDeduper(pool, time.Hour, opts...))))
	defer hook.Close()

	refs := make(chan string, payments)
	for i := range payments {
		refs <- fmt.Sprintf("order-%d", i)
	}
	close(refs)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range refs {
				_, err := tr.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess, Reference: ref, CallbackURL: hook.URL})
				assert.NoError(t, err, ref)
			}
		}()
	}
	wg.Wait()

	delivered := func() (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM shop_updates WHERE status = 'successful'`).Scan(&n))
		return n
	}
	require.Eventually(t, func() bool { return delivered() == payments }, 30*time.Second, 20*time.Millisecond,
		"every payment's webhook reached the shop")
	for _, tx := range emu.Transactions() { // V-Pay redelivers each event
		body := []byte(fmt.Sprintf(`{"event":"payment.successful","transaction_id":%q,"external_id":%q,"status":"successful","amount":1000,"currency":"RWF"}`,
			tx.TransactionID, tx.Reference))
		req, err := http.NewRequest(http.MethodPost, hook.URL, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("X-VPay-Signature", webhook.Sign(body, emu.WebhookSecret))
		res, err := hook.Client().Do(req)
		require.NoError(t, err)
		_ = res.Body.Close()
		require.Equal(t, http.StatusOK, res.StatusCode, "a redelivery of a processed event is acknowledged")
	}
	assert.Equal(t, payments, delivered(), "each event reached the shop once")
	assert.Greater(t, emu.AuthCalls(), 1, "the run crossed token refreshes")
	assert.Zero(t, emu.Throttled(), "no 429: the shared limiter paced the process")
	assert.NotContains(t, logs.String(), "unreachable", "no pgstore call fell back for want of a connection")
}

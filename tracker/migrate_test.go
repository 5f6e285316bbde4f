package tracker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/tracker/trackertest"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// v02Schema is the schema v0.2's Migrate made.
var v02Schema = []string{
	`CREATE TABLE vpay_tracker_payments (reference text PRIMARY KEY, transaction_id text, status text NOT NULL DEFAULT 'pending',
		transaction jsonb, outcome_unknown boolean NOT NULL DEFAULT false, unresolved boolean NOT NULL DEFAULT false,
		note text NOT NULL DEFAULT '', created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())`,
	`CREATE INDEX vpay_tracker_payments_open ON vpay_tracker_payments (created_at) WHERE status = 'pending'`,
	`CREATE INDEX vpay_tracker_payments_transaction ON vpay_tracker_payments (transaction_id)`,
	`CREATE TABLE vpay_tracker_deliveries (reference text NOT NULL REFERENCES vpay_tracker_payments (reference) ON DELETE CASCADE,
		status text NOT NULL, source text NOT NULL, delivered_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (reference, status))`,
}

// Jobs as v0.2 enqueued them.
type v02Check struct {
	Reference string `json:"reference"`
	Step      int    `json:"step"`
}

func (v02Check) Kind() string { return "vpay_tracker_check" }

type v02Deliver struct {
	Reference string `json:"reference"`
	Status    string `json:"status"`
	Source    string `json:"source"`
}

func (v02Deliver) Kind() string { return "vpay_tracker_deliver" }

// TestMigrateUpgradesV02InPlace: a v0.2 database with a delivered payment,
// one waiting for its check, one waiting for its delivery and one filed
// under "vpay:" + transaction id is upgraded (twice: idempotent); what was
// delivered is not delivered again, and what waited is finished.
func TestMigrateUpgradesV02InPlace(t *testing.T) {
	ctx := context.Background()
	dsn := trackertest.NewPostgres(t).DSN
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	emulator := vpaytest.NewServer(vpaytest.WithPaymentDelay(10 * time.Millisecond))
	t.Cleanup(emulator.Close)
	emulator.LoseWebhooks(1)
	open, err := emulator.Client().Pay(ctx, &vpay.PayRequest{Amount: 900, Phone: vpaytest.PhoneSuccess, Reference: "old-open"})
	require.NoError(t, err)

	// v0.2's tables and River's, with v0.2's rows and jobs.
	require.NoError(t, tracker.Migrate(ctx, pool)) // River's schema; the tracker's is dropped and made as v0.2 had it
	for _, stmt := range []string{`DROP TABLE vpay_tracker_schema, vpay_tracker_updates, vpay_tracker_tombstones, vpay_tracker_payments CASCADE`} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	for _, stmt := range v02Schema {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	for _, stmt := range []string{
		`INSERT INTO vpay_tracker_payments (reference, transaction_id, status, transaction) VALUES
			('old-done', 'VPOLD1', 'successful', '{"transaction_id":"VPOLD1","status":"successful"}'),
			('old-open', '` + open.TransactionID + `', 'pending', NULL),
			('old-undelivered', 'VPOLD3', 'failed', '{"transaction_id":"VPOLD3","status":"failed"}'),
			('vpay:VPOLD4', 'VPOLD4', 'successful', NULL)`,
		`INSERT INTO vpay_tracker_deliveries (reference, status, source) VALUES ('old-done', 'successful', 'webhook'), ('vpay:VPOLD4', 'successful', 'webhook')`,
	} {
		_, err := pool.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, v02Check{Reference: "old-open", Step: 0}, &river.InsertOpts{Queue: "vpay_tracker"})
	require.NoError(t, err)
	_, err = rc.Insert(ctx, v02Deliver{Reference: "old-undelivered", Status: "failed", Source: "poll"}, &river.InsertOpts{Queue: "vpay_tracker"})
	require.NoError(t, err)

	require.NoError(t, tracker.Migrate(ctx, pool))
	require.NoError(t, tracker.Migrate(ctx, pool), "idempotent")

	got := make(chan tracker.Update, 10)
	tr, err := tracker.New(tracker.Config{Client: emulator.Client(), Pool: pool, PollInterval: 50 * time.Millisecond,
		OnUpdate: func(_ context.Context, _ pgx.Tx, u tracker.Update) error { got <- u; return nil }})
	require.NoError(t, err)
	require.NoError(t, tr.Start(ctx))
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	seen := map[string]vpay.Status{}
	for range 2 {
		select {
		case u := <-got:
			seen[u.Reference] = u.Status
		case <-time.After(30 * time.Second):
			t.Fatalf("the waiting payments were not finished; got %v", seen)
		}
	}
	assert.Equal(t, map[string]vpay.Status{"old-open": vpay.StatusSuccessful, "old-undelivered": vpay.StatusFailed}, seen)

	// What v0.2 delivered stays delivered, and the "vpay:" row is now a
	// payment without a reference, found by its transaction id.
	h := tr.Handler(emulator.WebhookSecret)
	for _, body := range []string{`{"transaction_id":"VPOLD1","external_id":"old-done","status":"successful"}`, `{"transaction_id":"VPOLD4","status":"successful"}`} {
		assert.Equal(t, 200, post(t, h, emulator.WebhookSecret, body))
	}
	assert.Equal(t, 200, post(t, h, emulator.WebhookSecret, `{"transaction_id":"VPOLD4","status":"refunded"}`))
	u := testutil.Recv(t, got, "the refund")
	assert.Equal(t, tracker.Update{Reference: "", TransactionID: "VPOLD4", Status: vpay.StatusRefunded, Source: tracker.SourceWebhook},
		tracker.Update{Reference: u.Reference, TransactionID: u.TransactionID, Status: u.Status, Source: u.Source},
		"the refund is the next update: nothing delivered before came again")
	var version int
	require.NoError(t, pool.QueryRow(ctx, `SELECT version FROM vpay_tracker_schema`).Scan(&version))
	assert.Equal(t, 3, version, "every migration ran")
}

// post delivers a signed webhook to h and returns its answer's status.
func post(t *testing.T, h http.Handler, secret, body string) int {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
	r.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), secret))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

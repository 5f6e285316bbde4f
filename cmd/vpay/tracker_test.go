package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/tracker/trackertest"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// payments runs a tracker listing with --json.
func payments(t *testing.T, env []string, what string) []trackedPayment {
	t.Helper()
	r := vpayRun(t, env, "tracker", what, "--json")
	require.Equal(t, 0, r.code, r.stderr)
	var ps []trackedPayment
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ps), r.stdout)
	return ps
}

// TestTrackerCommands: an operator migrates, lists what is pending, held
// back and unresolved, and resolves payments by reference and by
// transaction id, without writing Go. The command delivers nothing itself:
// the merchant's running tracker does, once.
func TestTrackerCommands(t *testing.T) {
	ctx := context.Background()
	dsn := trackertest.NewPostgres(t).DSN
	env := []string{"DATABASE_URL=" + dsn}

	r := vpayRun(t, nil, "tracker", "pending")
	assert.Equal(t, exitUsage, r.code)
	assert.Contains(t, r.stderr, "DATABASE_URL")
	r = vpayRun(t, env, "tracker", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, "migrated\n", r.stdout)
	assert.Empty(t, payments(t, env, "pending"))

	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	emulator := vpaytest.NewServer(vpaytest.WithManualPayer())
	t.Cleanup(emulator.Close)
	got := make(chan tracker.Update, 10)
	tr, err := tracker.New(tracker.Config{Client: emulator.Client(), Pool: pool, PollInterval: 50 * time.Millisecond,
		Schedule: []time.Duration{100 * time.Millisecond}, GiveUp: time.Second,
		OnUpdate: func(_ context.Context, _ pgx.Tx, u tracker.Update) error {
			if u.Reference == "order-held" && u.Status == vpay.StatusSuccessful {
				return errors.New("the shop's table is locked")
			}
			got <- u
			return nil
		}})
	require.NoError(t, err)
	h := tr.Handler(emulator.WebhookSecret)
	send := func(body string) {
		t.Helper()
		req := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), emulator.WebhookSecret))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Equal(t, http.StatusOK, w.Code, body)
	}
	send(`{"transaction_id":"VPNOREF","status":"pending"}`)
	pending := payments(t, env, "pending")
	require.Len(t, pending, 1)
	assert.Equal(t, "", pending[0].Reference)
	assert.Equal(t, "VPNOREF", pending[0].TransactionID)
	r = vpayRun(t, env, "tracker", "pending")
	assert.Contains(t, r.stdout, "VPNOREF")

	for _, bad := range [][]string{
		{"tracker", "resolve", "--status", "successful", "--note", "n"},
		{"tracker", "resolve", "ref", "--transaction-id", "VPNOREF", "--status", "successful", "--note", "n"},
		{"tracker", "resolve", "--transaction-id", "VPNOREF", "--status", "pending", "--note", "n"},
		{"tracker", "resolve", "--transaction-id", "VPNOREF", "--status", "successful"},
	} {
		assert.Equal(t, exitUsage, vpayRun(t, env, bad...).code, bad)
	}
	r = vpayRun(t, env, "tracker", "resolve", "no-such-order", "--status", "successful", "--note", "n")
	assert.Equal(t, exitNotPaid, r.code, r.stderr)
	r = vpayRun(t, env, "tracker", "resolve", "--transaction-id", "VPNOREF", "--status", "successful", "--note", "seen on the dashboard")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Empty(t, payments(t, env, "pending"))
	select {
	case u := <-got:
		t.Fatalf("delivered before any tracker ran: %+v", u)
	default:
	}

	// The merchant's tracker delivers the resolution, once.
	require.NoError(t, tr.Start(ctx))
	t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	u := testutil.Recv(t, got, "the resolution")
	assert.Equal(t, tracker.Update{TransactionID: "VPNOREF", Status: vpay.StatusSuccessful, Source: tracker.SourceManual},
		tracker.Update{Reference: u.Reference, TransactionID: u.TransactionID, Status: u.Status, Source: u.Source})

	// Held back: successful keeps failing in OnUpdate, the refund waits.
	send(`{"transaction_id":"VPHELD","external_id":"order-held","status":"successful"}`)
	send(`{"transaction_id":"VPHELD","external_id":"order-held","status":"refunded"}`)
	require.Eventually(t, func() bool { return len(payments(t, env, "held")) == 1 }, 20*time.Second, 50*time.Millisecond)
	held := payments(t, env, "held")[0]
	assert.Equal(t, "order-held", held.Reference)
	assert.Equal(t, []string{"successful", "refunded"}, held.Undelivered)
	assert.Contains(t, held.LastError, "locked")
	assert.Contains(t, vpayRun(t, env, "tracker", "held").stdout, "order-held")

	// Unresolved: the payer never answers; after GiveUp, resolved by hand.
	_, err = tr.Pay(ctx, &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess, Reference: "order-limbo"})
	require.NoError(t, err)
	u = testutil.Recv(t, got, "the unresolved report")
	assert.True(t, u.Unresolved)
	unresolved := payments(t, env, "unresolved")
	require.Len(t, unresolved, 1)
	assert.Equal(t, "order-limbo", unresolved[0].Reference)
	r = vpayRun(t, env, "--json", "tracker", "resolve", "order-limbo", "--status", "failed", "--note", "payer declined on the phone")
	require.Equal(t, 0, r.code, r.stderr)
	assert.JSONEq(t, `{"resolved":"order-limbo","status":"failed"}`, r.stdout)
	u = testutil.Recv(t, got, "the manual resolution")
	assert.Equal(t, vpay.StatusFailed, u.Status)
	assert.Equal(t, tracker.SourceManual, u.Source)
	assert.Empty(t, payments(t, env, "unresolved"))
}

// TestTrackerListingsShowManyByDefault: without --limit a listing shows
// every one of a few payments, not just the first.
func TestTrackerListingsShowManyByDefault(t *testing.T) {
	ctx := context.Background()
	dsn := trackertest.NewPostgres(t).DSN
	env := []string{"DATABASE_URL=" + dsn}
	r := vpayRun(t, env, "tracker", "migrate")
	require.Equal(t, 0, r.code, r.stderr)
	pool, err := pgxpool.New(ctx, dsn)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	emulator := vpaytest.NewServer()
	t.Cleanup(emulator.Close)
	tr, err := tracker.New(tracker.Config{Client: emulator.Client(), Pool: pool,
		OnUpdate: func(context.Context, pgx.Tx, tracker.Update) error { return nil }})
	require.NoError(t, err)
	h := tr.Handler(emulator.WebhookSecret)
	for _, body := range []string{`{"transaction_id":"VPL1","status":"pending"}`, `{"transaction_id":"VPL2","status":"pending"}`} {
		req := httptest.NewRequest(http.MethodPost, "/webhooks/vpay", strings.NewReader(body))
		req.Header.Set(webhook.SignatureHeader, webhook.Sign([]byte(body), emulator.WebhookSecret))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		require.Equal(t, http.StatusOK, w.Code, body)
	}
	assert.Len(t, payments(t, env, "pending"), 2)
}

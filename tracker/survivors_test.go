package tracker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// post sends a signed webhook from any goroutine (no require: it may run
// outside the test's goroutine) and returns the answer's status or error.
func (s *shop) post(event map[string]any) (int, error) {
	body, err := json.Marshal(event)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequest(http.MethodPost, s.hookURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, s.emulator.WebhookSecret))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// TestDeliveryHoldsThePaymentAgainstAWebhook: while OnUpdate runs, the
// payment's row is locked; a webhook of the same payment waits for the
// delivery's commit instead of recording a new Update beside it (the
// lock is what serialises a payment's changes and deliveries across
// processes). Deterministic: OnUpdate returns only once PostgreSQL shows
// the webhook's transaction waiting on a lock, or fails when the webhook
// was answered first.
func TestDeliveryHoldsThePaymentAgainstAWebhook(t *testing.T) {
	s := newShop(t)
	outcome := make(chan string, 1)
	var first atomic.Bool
	s.process(func(c *tracker.Config) {
		c.OnUpdate = func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			if u.Status == vpay.StatusSuccessful && first.CompareAndSwap(false, true) {
				answered := make(chan error, 1)
				go func() {
					code, err := s.post(map[string]any{"transaction_id": "VPLOCK", "external_id": "order-lock", "status": "refunded"})
					if err == nil && code != http.StatusOK {
						err = errors.New(http.StatusText(code))
					}
					answered <- err
				}()
				outcome <- waitForLockWaiter(ctx, s, answered)
			}
			_, err := tx.Exec(ctx, `INSERT INTO shop_updates (reference, status, source, unresolved, transaction_id) VALUES ($1, $2, $3, $4, $5)`,
				u.Reference, string(u.Status), string(u.Source), u.Unresolved, u.TransactionID)
			return err
		}
	})
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPLOCK", "external_id": "order-lock", "status": "successful"}))
	assert.Equal(t, "waiting", testutil.Recv(t, outcome, "the delivery's view of the concurrent webhook"),
		"the webhook of a payment being delivered waits for the delivery's commit")
	u := s.waitFor("both updates", func(u map[string][]delivery) bool { return len(u["order-lock"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-lock"])
}

// waitForLockWaiter reports "waiting" once a transaction waits on a lock
// over the tracker's payments, "answered" when the webhook got through
// first, "neither" after 10 s.
func waitForLockWaiter(ctx context.Context, s *shop, answered <-chan error) string {
	deadline := time.After(10 * time.Second)
	for {
		select {
		case err := <-answered:
			if err != nil {
				return "webhook failed: " + err.Error()
			}
			return "answered while the payment was being delivered"
		case <-deadline:
			return "neither waited nor answered within 10 s"
		case <-time.After(10 * time.Millisecond):
		}
		var n int
		if err := s.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%vpay_tracker_payments%'`).Scan(&n); err != nil {
			return "pg_stat_activity: " + err.Error()
		}
		if n > 0 {
			return "waiting"
		}
	}
}

// TestPanickingOnUpdateIsRecordedRetriedAndDeliveredOnce: a panic in
// OnUpdate is a failed delivery like an error: recorded (attempts, last
// error, a log naming nothing held back behind a lone Update), retried,
// then delivered once; the Observer is told after the commit, so the
// shop's row is visible to another connection when it is.
func TestPanickingOnUpdateIsRecordedRetriedAndDeliveredOnce(t *testing.T) {
	s := newShop(t)
	var logs testutil.LogBuffer
	var panicked atomic.Bool
	visible := make(chan int, 2)
	s.process(func(c *tracker.Config) {
		c.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		next := c.OnUpdate
		c.OnUpdate = func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			if panicked.CompareAndSwap(false, true) {
				panic("the shop's code has a bug")
			}
			return next(ctx, tx, u)
		}
		c.Observer = &tracker.Observer{Delivered: func(ctx context.Context, u tracker.Update, _ time.Duration) {
			var n int
			if err := s.db.QueryRow(ctx, `SELECT count(*) FROM shop_updates WHERE reference = $1`, u.Reference).Scan(&n); err != nil {
				n = -1
			}
			visible <- n
		}}
	})
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPPANIC", "external_id": "order-panic", "status": "successful"}))
	assert.Equal(t, 1, testutil.Recv(t, visible, "the Observer told of the delivery"), "the shop's row is committed when the Observer is told")
	assert.Len(t, s.updates()["order-panic"], 1)
	var (
		attempts int
		lastErr  *string
	)
	require.NoError(t, s.db.QueryRow(context.Background(), `SELECT u.attempts, u.last_error FROM vpay_tracker_updates u
		JOIN vpay_tracker_payments p ON p.id = u.payment_id WHERE p.reference = 'order-panic'`).Scan(&attempts, &lastErr))
	assert.Equal(t, 2, attempts, "the panicking try was counted")
	require.NotNil(t, lastErr, "the panic was recorded")
	assert.Contains(t, *lastErr, "panicked")
	assert.Contains(t, logs.String(), "held_back=0", "a lone failing Update holds nothing back")
	assert.NotContains(t, logs.String(), "held_back=1")
	select {
	case extra := <-visible:
		t.Fatalf("told twice (%d)", extra)
	default:
	}
}

// TestPruneKeepsAPaymentWithAnUndeliveredUpdate: a settled payment whose
// later Update (a refund) fails in OnUpdate is not pruned; the refund is
// delivered once OnUpdate works again.
func TestPruneKeepsAPaymentWithAnUndeliveredUpdate(t *testing.T) {
	s := newShop(t)
	s.failing.Store("refunded")
	tr := s.process()
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPPRUNE", "external_id": "order-keep", "status": "successful"}))
	s.waitFor("the successful update", func(u map[string][]delivery) bool { return len(u["order-keep"]) == 1 })
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPPRUNE", "external_id": "order-keep", "status": "refunded"}))
	assert.Equal(t, "refunded", testutil.Recv(t, s.failed, "OnUpdate failing for the refund"))
	n, err := tr.Prune(context.Background(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.Zero(t, n, "a payment with an undelivered Update stays")
	s.failing.Store("")
	u := s.waitFor("the refund", func(u map[string][]delivery) bool { return len(u["order-keep"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-keep"])
}

// TestNewReferenceNamingAnotherOrdersTransactionIDTakesNothing: only a
// payment without a reference takes the one an event names; an event with
// an unknown reference and another order's transaction id gets a payment
// of its own, and the other order keeps its reference.
func TestNewReferenceNamingAnotherOrdersTransactionIDTakesNothing(t *testing.T) {
	s := newShop(t)
	s.process()
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPTAKEN", "external_id": "order-first", "status": "pending"}))
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPTAKEN", "external_id": "order-other", "status": "failed"}))
	s.waitFor("order-other's update", func(u map[string][]delivery) bool { return len(u["order-other"]) == 1 })
	rows, err := s.db.Query(context.Background(), `SELECT reference, status FROM vpay_tracker_payments WHERE transaction_id = 'VPTAKEN' ORDER BY id`)
	require.NoError(t, err)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var ref, status string
		err := r.Scan(&ref, &status)
		return ref + ":" + status, err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"order-first:pending", "order-other:failed"}, got)
}

// cancelOnClose cancels a context once the body of the Pay answer is
// closed: the caller's ctx ends right after Client.Pay returned.
type cancelOnClose struct{ cancel context.CancelFunc }

func (c cancelOnClose) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasSuffix(r.URL.Path, "/pay/") {
		resp.Body = &closeHook{ReadCloser: resp.Body, fn: c.cancel}
	}
	return resp, err
}

type closeHook struct {
	io.ReadCloser
	fn func()
}

func (h *closeHook) Close() error { err := h.ReadCloser.Close(); h.fn(); return err }

// TestPayAnswerIsWrittenWhenTheCallerGivesUpRightAfter: the caller's ctx
// ends as soon as V-Pay answered; the answer is still recorded and Pay
// returns no error.
func TestPayAnswerIsWrittenWhenTheCallerGivesUpRightAfter(t *testing.T) {
	s := newShop(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := s.process(func(c *tracker.Config) {
		c.Client = s.emulator.Client(vpay.WithMaxRetries(0), vpay.WithHTTPClient(&http.Client{Transport: cancelOnClose{cancel}}))
	})
	t.Cleanup(func() { // bounded: an answer never written would keep Stop waiting
		sctx, stop := context.WithTimeout(context.Background(), 5*time.Second)
		defer stop()
		_ = tr.Stop(sctx)
	})
	p, err := tr.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess, Reference: "order-gone", CallbackURL: s.hookURL})
	require.NoError(t, err)
	require.Error(t, ctx.Err(), "the caller's ctx ended before the write")
	var id *string
	require.NoError(t, s.db.QueryRow(context.Background(), `SELECT transaction_id FROM vpay_tracker_payments WHERE reference = 'order-gone'`).Scan(&id))
	require.NotNil(t, id, "the answer was written")
	assert.Equal(t, p.TransactionID, *id)
}

// TestDeliveriesAreNeverDroppedByRiversAttemptLimit: a delivery failing
// through a long outage is retried for ever, not dropped after River's
// default 25 attempts.
func TestDeliveriesAreNeverDroppedByRiversAttemptLimit(t *testing.T) {
	s := newShop(t)
	s.process()
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPMAX", "external_id": "order-max", "status": "successful"}))
	s.waitFor("the update", func(u map[string][]delivery) bool { return len(u["order-max"]) == 1 })
	var maxAttempts int
	require.NoError(t, s.db.QueryRow(context.Background(),
		`SELECT min(max_attempts) FROM river_job WHERE kind = 'vpay_tracker_deliver'`).Scan(&maxAttempts))
	// River stores max_attempts in a smallint: Config's 1<<30 lands as
	// its largest value, years of backoff.
	assert.Equal(t, math.MaxInt16, maxAttempts)
}

// TestResolveKeepsTheLastSeenTransaction: a manual resolution changes the
// status; the Transaction V-Pay last sent stays in the Update.
func TestResolveKeepsTheLastSeenTransaction(t *testing.T) {
	s := newShop(t)
	got := make(chan tracker.Update, 1)
	tr := s.process(func(c *tracker.Config) {
		c.Schedule = []time.Duration{time.Hour}
		c.GiveUp = 2 * time.Hour
		c.Observer = &tracker.Observer{Delivered: func(_ context.Context, u tracker.Update, _ time.Duration) { got <- u }}
	})
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPRES", "external_id": "order-res", "status": "pending", "amount": "700.00"}))
	require.NoError(t, tr.Resolve(context.Background(), "order-res", vpay.StatusSuccessful, "seen on the dashboard"))
	u := testutil.Recv(t, got, "the manual resolution")
	assert.Equal(t, vpay.StatusSuccessful, u.Status)
	require.NotNil(t, u.Transaction)
	assert.Equal(t, "VPRES", u.Transaction.TransactionID)
	assert.EqualValues(t, 700, u.Transaction.Amount)
}

package tracker_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestWebhookReadsThePaymentOnlyOnceLocked: the webhook's lookup of its
// payment is also its lock, so what it reads is what another process
// committed while it waited. Here another process holds the payment and
// settles it while a late "pending" webhook waits: the webhook keeps the
// final status. A lookup that read before locking would write "pending"
// over it. Both lookups: by reference, and by transaction id for a payment
// known by that alone.
func TestWebhookReadsThePaymentOnlyOnceLocked(t *testing.T) {
	for _, tt := range []struct {
		name, ref string // ref "": a payment known by transaction id alone
	}{{"by reference", "order-race"}, {"by transaction id", ""}} {
		t.Run(tt.name, func(t *testing.T) {
			s := newShop(t)
			s.process(func(c *tracker.Config) { c.Schedule, c.GiveUp = []time.Duration{time.Hour}, 2*time.Hour })
			ctx := context.Background()
			// The payment as Pay, or an earlier webhook, left it (sending
			// that webhook would make the late one a duplicate the handler
			// drops).
			var id int64
			require.NoError(t, s.db.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (reference, transaction_id) VALUES (NULLIF($1, ''), 'VPRACE')
				RETURNING id`, tt.ref).Scan(&id))

			other, err := s.db.Begin(ctx)
			require.NoError(t, err)
			defer func() { _ = other.Rollback(ctx) }()
			_, err = other.Exec(ctx, `SELECT 1 FROM vpay_tracker_payments WHERE id = $1 FOR UPDATE`, id)
			require.NoError(t, err)
			answered := make(chan int, 1)
			go func() {
				answered <- s.send(map[string]any{"transaction_id": "VPRACE", "external_id": tt.ref, "status": "pending", "amount": "700.00"})
			}()
			deadline := time.Now().Add(10 * time.Second)
			for waiting := 0; waiting == 0; time.Sleep(5 * time.Millisecond) {
				require.NoError(t, s.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&waiting))
				require.True(t, time.Now().Before(deadline), "the webhook never waited for the payment's lock")
			}
			_, err = other.Exec(ctx, `UPDATE vpay_tracker_payments SET status = 'successful' WHERE id = $1`, id)
			require.NoError(t, err)
			require.NoError(t, other.Commit(ctx))
			assert.Equal(t, http.StatusOK, testutil.Recv(t, answered, "the webhook's answer"))

			var status string
			require.NoError(t, s.db.QueryRow(ctx, `SELECT status FROM vpay_tracker_payments WHERE id = $1`, id).Scan(&status))
			assert.Equal(t, "successful", status, "a webhook that waited read the status committed meanwhile")
		})
	}
}

// TestPendingAnswerForAPaymentGoneIsNotRecorded: the payment's row is gone
// (deleted by hand, say) while V-Pay answers Pay: the one-statement write
// of the pending answer finds no row, and Pay says so with ErrNotRecorded
// rather than report an answer recorded that is not.
func TestPendingAnswerForAPaymentGoneIsNotRecorded(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	tr := s.process()
	s.emulator.Inject("/pay/", vpaytest.Fault{Delay: 2 * time.Second})
	paid := make(chan error, 1)
	go func() {
		_, err := s.pay(tr, "order-gone", vpaytest.PhoneSuccess)
		paid <- err
	}()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for deleted := int64(0); deleted == 0; time.Sleep(5 * time.Millisecond) {
		tag, err := s.db.Exec(ctx, `DELETE FROM vpay_tracker_payments WHERE reference = 'order-gone'`)
		require.NoError(t, err)
		deleted = tag.RowsAffected()
		require.True(t, time.Now().Before(deadline), "Pay never recorded the payment")
	}
	err := testutil.Recv(t, paid, "Pay's answer")
	require.ErrorIs(t, err, tracker.ErrNotRecorded)
	// Its write is retried in the background until Stop, which ends it.
	stop, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	_ = tr.Stop(stop)
}

// TestPendingAnswerKeepsATransactionIDKnownBefore: a transaction id once
// known is never replaced, by the one-statement write of a pending Pay
// answer either (here one was recorded while Pay waited for V-Pay).
func TestPendingAnswerKeepsATransactionIDKnownBefore(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	tr := s.process(func(c *tracker.Config) { c.Schedule, c.GiveUp = []time.Duration{time.Hour}, 2*time.Hour })
	s.emulator.Inject("/pay/", vpaytest.Fault{Delay: 2 * time.Second})
	paid := make(chan error, 1)
	go func() {
		_, err := s.pay(tr, "order-known", vpaytest.PhoneSuccess)
		paid <- err
	}()
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for set := int64(0); set == 0; time.Sleep(5 * time.Millisecond) {
		tag, err := s.db.Exec(ctx, `UPDATE vpay_tracker_payments SET transaction_id = 'VP-KNOWN' WHERE reference = 'order-known'`)
		require.NoError(t, err)
		set = tag.RowsAffected()
		require.True(t, time.Now().Before(deadline), "Pay never recorded the payment")
	}
	require.NoError(t, testutil.Recv(t, paid, "Pay's answer"))
	var txnID string
	var answered bool
	require.NoError(t, s.db.QueryRow(ctx, `SELECT transaction_id, txn IS NOT NULL FROM vpay_tracker_payments WHERE reference = 'order-known'`).
		Scan(&txnID, &answered))
	assert.Equal(t, "VP-KNOWN", txnID)
	assert.True(t, answered, "the rest of the answer was recorded")
}

package tracker_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestEveryDeliveryWakesTheProcesses: each delivery the tracker enqueues
// wakes the processes when its transaction commits, even where River sends
// no notification of its own (at most one per fetch cooldown and process).
// One process takes the payments and their webhooks and works no job, its
// cooldown an hour long: River notifies for its first delivery only. The
// other works the jobs and polls once an hour: only a wake-up makes it
// fetch. Every payment is delivered, one after the other.
func TestEveryDeliveryWakesTheProcesses(t *testing.T) {
	s := newShop(t)
	cfg := func() tracker.Config {
		return tracker.Config{
			Client:       s.emulator.Client(vpay.WithMaxRetries(0)),
			Pool:         s.pool(),
			OnUpdate:     record,
			PollInterval: time.Hour,
		}
	}
	recorder, err := tracker.NewWithFetchCooldown(cfg(), time.Hour)
	require.NoError(t, err)
	h := recorder.Handler(s.emulator.WebhookSecret)
	s.handler.Store(&h)
	worker, err := tracker.New(cfg())
	require.NoError(t, err)
	require.NoError(t, worker.Start(context.Background()))
	t.Cleanup(func() { _ = worker.Stop(context.Background()) })

	for i := range 4 {
		ref := fmt.Sprintf("order-%d", i)
		_, err := s.pay(recorder, ref, vpaytest.PhoneSuccess)
		require.NoError(t, err)
		s.waitFor(ref+" delivered", func(u map[string][]delivery) bool { return len(u[ref]) == 1 })
	}
}

// TestLatePendingPayAnswerKeepsTheWebhooksFinalStatus: Pay's answer
// ("pending") comes back after the payment's webhook settled it; the
// answer's one-statement write records the transaction id but leaves the
// final status, so the payment is not pending again (no poll, not in
// PendingCount).
func TestLatePendingPayAnswerKeepsTheWebhooksFinalStatus(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	s.emulator.Inject("/pay/", vpaytest.Fault{Delay: 2 * time.Second})
	paid := make(chan *vpay.Payment, 1)
	go func() {
		p, err := s.pay(tr, "order-late-answer", vpaytest.PhoneSuccess)
		assert.NoError(t, err)
		paid <- p
	}()
	s.waitFor("the webhook's delivery", func(u map[string][]delivery) bool { return len(u["order-late-answer"]) == 1 })
	p := testutil.Recv(t, paid, "Pay's late answer")
	var status, txnID string
	require.NoError(t, s.db.QueryRow(context.Background(), `SELECT status, transaction_id FROM vpay_tracker_payments WHERE reference = $1`,
		"order-late-answer").Scan(&status, &txnID))
	assert.Equal(t, "successful", status, "a late pending answer changes no final status")
	assert.Equal(t, p.TransactionID, txnID)
	pending, _, err := tr.PendingCount(context.Background())
	require.NoError(t, err)
	assert.Zero(t, pending)
	assert.Equal(t, []delivery{{"successful", "webhook"}}, s.updates()["order-late-answer"], "delivered once")
}

// TestFinalPayAnswerIsDeliveredFromPay: a Pay answered with a final status
// (V-Pay settling synchronously), its webhook lost, is delivered once, from
// the answer itself, not left to a poll.
func TestFinalPayAnswerIsDeliveredFromPay(t *testing.T) {
	s := newShop(t, vpaytest.WithSynchronousPay())
	s.emulator.LoseWebhooks(1)
	tr := s.process()
	p, err := s.pay(tr, "order-synchronous", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	require.True(t, p.Status.Final(), "the emulator answered with a final status: %q", p.Status)
	u := s.waitFor("the answer's delivery", func(u map[string][]delivery) bool { return len(u["order-synchronous"]) == 1 })
	assert.Equal(t, []delivery{{"successful", "pay"}}, u["order-synchronous"])
}

// TestDeliveryWakesTheProcessesForTheUpdateItHeldBack: an Update held back
// behind an earlier one of its payment is enqueued again when the earlier
// one's delivery commits, and that too wakes the processes. The first
// process delivers the earlier Update, its cooldown an hour long (River
// notified for its first insert already, and it fetches no more after its
// first fetch); the second polls once an hour: only the wake makes it fetch
// the later Update.
func TestDeliveryWakesTheProcessesForTheUpdateItHeldBack(t *testing.T) {
	s := newShop(t)
	ctx := context.Background()
	entered, release := make(chan struct{}, 1), make(chan struct{})
	cfg := func(hold bool) tracker.Config {
		return tracker.Config{
			Client: s.emulator.Client(vpay.WithMaxRetries(0)),
			Pool:   s.pool(),
			OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
				if hold && u.Reference == "order-held" {
					entered <- struct{}{}
					select {
					case <-release:
					case <-time.After(10 * time.Second):
						return errors.New("never released")
					}
				}
				return record(ctx, tx, u)
			},
			PollInterval: time.Hour,
		}
	}
	first, err := tracker.NewWithFetchCooldown(cfg(true), time.Hour)
	require.NoError(t, err)
	t.Cleanup(func() { _ = first.Stop(ctx) })
	h := first.Handler(s.emulator.WebhookSecret)
	s.handler.Store(&h)
	event := func(ref, status string) map[string]any {
		return map[string]any{"transaction_id": "VP-" + ref, "external_id": ref, "status": status, "amount": "700.00"}
	}
	// River's one notification of the hour goes to this one.
	require.Equal(t, http.StatusOK, s.send(event("order-other", "successful")))
	require.Equal(t, http.StatusOK, s.send(event("order-held", "successful")))
	require.Equal(t, http.StatusOK, s.send(event("order-held", "refunded")))
	// The refund's job ran while the success was undelivered: held back.
	tag, err := s.db.Exec(ctx, `DELETE FROM river_job WHERE kind = 'vpay_tracker_deliver' AND (args->>'seq')::int = 2`)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected())

	require.NoError(t, first.Start(ctx))
	testutil.Recv(t, entered, "the first process delivering the success")
	second, err := tracker.New(cfg(false))
	require.NoError(t, err)
	require.NoError(t, second.Start(ctx))
	t.Cleanup(func() { _ = second.Stop(ctx) })
	// The second process has fetched once it delivers this one.
	require.Equal(t, http.StatusOK, s.send(event("order-canary", "successful")))
	s.waitFor("the canary", func(u map[string][]delivery) bool { return len(u["order-canary"]) == 1 })

	close(release)
	u := s.waitFor("the refund", func(u map[string][]delivery) bool { return len(u["order-held"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-held"])
}

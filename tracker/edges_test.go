package tracker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
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

// send posts a webhook signed with the emulator's secret to the current
// tracker, as V-Pay would for a payment made anywhere, and returns the
// answer's status.
func (s *shop) send(event map[string]any) int {
	s.t.Helper()
	body, err := json.Marshal(event)
	require.NoError(s.t, err)
	req, err := http.NewRequest(http.MethodPost, s.hookURL, bytes.NewReader(body))
	require.NoError(s.t, err)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(body, s.emulator.WebhookSecret))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// update is one row of the shop's table, in full.
type update struct {
	reference, status, source, transactionID string
	unresolved                               bool
}

func (s *shop) rows() []update {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT reference, status, source, transaction_id, unresolved FROM shop_updates ORDER BY at`)
	require.NoError(s.t, err)
	var out []update
	for rows.Next() {
		var u update
		require.NoError(s.t, rows.Scan(&u.reference, &u.status, &u.source, &u.transactionID, &u.unresolved))
		out = append(out, u)
	}
	require.NoError(s.t, rows.Err())
	return out
}

// TestLaterStatusWaitsForAFailingEarlierOne (issue 19, point 1): OnUpdate
// fails for "successful"; the refund learnt meanwhile waits behind it,
// visibly (the log, Held), and the two reach the shop in the order
// learnt, so `UPDATE orders SET status = $1` ends at refunded.
func TestLaterStatusWaitsForAFailingEarlierOne(t *testing.T) {
	s := newShop(t)
	s.failing.Store("successful")
	var logs testutil.LogBuffer
	tr := s.process(func(c *tracker.Config) { c.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	p, err := s.pay(tr, "order-held", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	assert.Equal(t, "successful", testutil.Recv(t, s.failed, "OnUpdate failing for successful"))
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusRefunded))

	var held []tracker.Payment
	require.Eventually(t, func() bool {
		held, err = tr.Held(context.Background(), 0)
		require.NoError(t, err)
		return len(held) == 1
	}, 10*time.Second, 20*time.Millisecond, "the payment is listed as held back")
	assert.Equal(t, "order-held", held[0].Reference)
	assert.Equal(t, []string{"successful", "refunded"}, held[0].Undelivered)
	assert.Positive(t, held[0].Attempts)
	assert.Contains(t, held[0].LastError, "busy")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "held_back=1") }, 10*time.Second, 20*time.Millisecond,
		"the log says an update is held back")
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `level=WARN msg="vpay tracker: an update is held back until an earlier one of its payment is delivered"`)
	}, 10*time.Second, 20*time.Millisecond, "the refund's delivery says, as a warning, what holds it back")
	assert.Empty(t, s.updates()["order-held"], "the refund did not overtake")

	s.failing.Store("")
	u := s.waitFor("both updates", func(u map[string][]delivery) bool { return len(u["order-held"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-held"], "in the order learnt")
	held, err = tr.Held(context.Background(), 0)
	require.NoError(t, err)
	assert.Empty(t, held)
}

// TestPayAnswerWriteFailsThenIsRetried (issue 19, point 2): the write of
// Pay's answer fails (a failover); Pay retries it, and the payment, its
// webhook lost, is found by polling its transaction id.
func TestPayAnswerWriteFailsThenIsRetried(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	s.failWrites(t, 2)
	tr := s.process()
	p, err := s.pay(tr, "order-failover", vpaytest.PhoneSuccess)
	require.NoError(t, err, "the write succeeded on a later try")
	u := s.waitFor("the poll", func(u map[string][]delivery) bool { return len(u["order-failover"]) == 1 })
	assert.Equal(t, []delivery{{"successful", "poll"}}, u["order-failover"])
	assert.Equal(t, p.TransactionID, s.rows()[0].transactionID)
}

// TestPayAnswerNeverWrittenReturnsErrNotRecorded: every write of the
// answer fails while Pay waits. Pay returns the Payment with
// ErrNotRecorded (never a bare error that invites a second Pay); the
// write goes on in the background, and the payment is still found by poll.
func TestPayAnswerNeverWrittenReturnsErrNotRecorded(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	s.failWrites(t, 7) // more than Pay's tries: the 7th is the background's first
	tr := s.process(func(c *tracker.Config) {
		c.Schedule = []time.Duration{300 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second}
		c.GiveUp = time.Hour // found by a scheduled check, long before
	})
	p, err := s.pay(tr, "order-unwritten", vpaytest.PhoneSuccess)
	require.ErrorIs(t, err, tracker.ErrNotRecorded)
	require.NotNil(t, p, "the payment comes with the error")
	assert.NotEmpty(t, p.TransactionID)
	assert.Contains(t, err.Error(), p.TransactionID)
	assert.NotErrorIs(t, err, vpay.ErrOutcomeUnknown)
	assert.Equal(t, 1, s.emulator.PaymentsFor("order-unwritten"))
	u := s.waitFor("the poll after the background write", func(u map[string][]delivery) bool { return len(u["order-unwritten"]) == 1 })
	assert.Equal(t, []delivery{{"successful", "poll"}}, u["order-unwritten"])
}

// failWrites makes the next n writes of a transaction to the tracker's
// payments fail in PostgreSQL itself, as a failover would.
func (s *shop) failWrites(t *testing.T, n int) {
	ctx := context.Background()
	for _, stmt := range []string{
		`CREATE SEQUENCE chaos_writes`,
		`CREATE FUNCTION chaos_fail() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN
			IF NEW.txn IS DISTINCT FROM OLD.txn AND nextval('chaos_writes') <= ` + itoa(n) + ` THEN
				RAISE EXCEPTION 'injected failover';
			END IF;
			RETURN NEW;
		END $$`,
		`CREATE TRIGGER chaos_fail BEFORE UPDATE ON vpay_tracker_payments FOR EACH ROW EXECUTE FUNCTION chaos_fail()`,
	} {
		_, err := s.db.Exec(ctx, stmt)
		require.NoError(t, err)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

// nulTransport turns \u0001 into \u0000 in Pay bodies: a payment made by
// another system with a NUL in its metadata and payer's name, which V-Pay
// echoes (the SDK refuses to send one).
type nulTransport struct{}

func (nulTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil && strings.HasSuffix(r.URL.Path, "/pay/") {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		b = bytes.ReplaceAll(b, []byte(`\u0001`), []byte(`\u0000`))
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
	}
	return http.DefaultTransport.RoundTrip(r)
}

func (s *shop) payElsewhereWithNUL(ref string) *vpay.Payment {
	s.t.Helper()
	c := s.emulator.Client(vpay.WithHTTPClient(&http.Client{Transport: nulTransport{}}))
	p, err := c.Pay(context.Background(), &vpay.PayRequest{Amount: 700, Phone: vpaytest.PhoneSuccess, Reference: ref,
		Method: vpay.MethodMTN, CallbackURL: s.hookURL, Metadata: map[string]string{"note": "a\x01b"}})
	require.NoError(s.t, err)
	return p
}

// TestNULInATransactionIsStoredAndDelivered (issue 19, point 3): a
// payment made elsewhere whose fields hold a NUL reaches OnUpdate by its
// webhook, with the NUL, instead of 500 for ever.
func TestNULInATransactionIsStoredAndDelivered(t *testing.T) {
	s := newShop(t)
	got := make(chan tracker.Update, 1)
	s.process(func(c *tracker.Config) {
		c.Observer = &tracker.Observer{Delivered: func(_ context.Context, u tracker.Update, _ time.Duration) { got <- u }}
	})
	s.payElsewhereWithNUL("elsewhere-nul")
	u := testutil.Recv(t, got, "the NUL payment's update")
	assert.Equal(t, vpay.StatusSuccessful, u.Status)
	require.NotNil(t, u.Transaction)
	assert.Equal(t, "a\x00b", u.Transaction.Metadata["note"], "stored as V-Pay sent it")
}

// TestPendingWebhookOfAForeignPaymentIsFollowedEvenWithNUL (issue 22: a
// pending webhook for a payment the tracker did not start is followed;
// issue 19, point 3: its poll answer holds a NUL and is stored, so the
// check does not retry one step for ever).
func TestPendingWebhookOfAForeignPaymentIsFollowedEvenWithNUL(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	s.process()
	p := s.payElsewhereWithNUL("elsewhere-pending")
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"event": "payment.pending", "transaction_id": p.TransactionID,
		"external_id": "elsewhere-pending", "status": "pending", "amount": "700.00"}))
	u := s.waitFor("the poll of the foreign payment", func(u map[string][]delivery) bool { return len(u["elsewhere-pending"]) == 1 })
	assert.Equal(t, []delivery{{"successful", "poll"}}, u["elsewhere-pending"])
}

// TestWhatCannotBeStoredIsRefusedNotRetried (issue 19, point 3): an id
// past MaxIDLen, or holding a NUL, gets a 4xx that V-Pay need not retry,
// not 500 for ever; the other payments go on.
func TestWhatCannotBeStoredIsRefusedNotRetried(t *testing.T) {
	s := newShop(t)
	s.process()
	long := strings.Repeat("9", 8000)
	for name, ev := range map[string]map[string]any{
		"long transaction id": {"transaction_id": "VP" + long, "external_id": "ok-ref", "status": "successful"},
		"long reference":      {"transaction_id": "VP1", "external_id": long, "status": "successful"},
		"NUL in reference":    {"transaction_id": "VP2", "external_id": "a\x00b", "status": "successful"},
		"NUL in id":           {"transaction_id": "VP\x003", "status": "successful"},
	} {
		assert.Equal(t, webhook.RefusedStatus, s.send(ev), name)
	}
	assert.Equal(t, http.StatusBadRequest, s.send(map[string]any{"status": "successful"}), "no id at all: unparsable")
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VP" + strings.Repeat("9", tracker.MaxIDLen-2),
		"external_id": "at-the-limit", "status": "successful"}), "an id of MaxIDLen bytes is stored")
	s.waitFor("the payment at the limit", func(u map[string][]delivery) bool { return len(u["at-the-limit"]) == 1 })
}

// TestFailingChecksStillGiveUp (issue 19, point 3; issue 22: Unresolved
// set): every status check fails; the payment still reaches GiveUp and
// its one Unresolved Update, with Unresolved set.
func TestFailingChecksStillGiveUp(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	s.emulator.Inject("/transaction/status/", vpaytest.Fault{Status: 400, Count: 1 << 20})
	tr := s.process()
	p, err := s.pay(tr, "order-unanswered", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	s.waitFor("the unresolved report", func(u map[string][]delivery) bool { return len(u["order-unanswered"]) == 1 })
	assert.Equal(t, []update{{"order-unanswered", "pending", "give_up", p.TransactionID, true}}, s.rows())
}

// TestChecksStopAtTheLastStepThenGiveUp (issue 22: the step past the last
// scheduled check): a payment that stays pending is polled once per
// scheduled check, no more, then reported Unresolved at GiveUp.
func TestChecksStopAtTheLastStepThenGiveUp(t *testing.T) {
	s := newShop(t, vpaytest.WithManualPayer())
	tr := s.process()
	p, err := s.pay(tr, "order-waiting", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	s.waitFor("the unresolved report", func(u map[string][]delivery) bool { return len(u["order-waiting"]) == 1 })
	assert.Equal(t, []update{{"order-waiting", "pending", "give_up", p.TransactionID, true}}, s.rows())
	assert.Equal(t, 3, s.emulator.Requests("/transaction/status/"), "one status call per scheduled check")
	unresolved, err := tr.Unresolved(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, unresolved, 1)
	assert.True(t, unresolved[0].Unresolved)
}

// TestSettledByWebhookIsNeverPolled (issue 22): once a webhook settled a
// payment, its checks ask V-Pay nothing.
func TestSettledByWebhookIsNeverPolled(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	for _, ref := range []string{"order-a", "order-b"} {
		_, err := s.pay(tr, ref, vpaytest.PhoneSuccess)
		require.NoError(t, err)
	}
	s.waitFor("both webhooks", func(u map[string][]delivery) bool { return len(u) == 2 })
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, s.db.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = 'vpay_tracker_check' AND state = 'completed'`).Scan(&n))
		return n == 2
	}, 10*time.Second, 20*time.Millisecond, "both first checks ran")
	assert.Zero(t, s.emulator.Requests("/transaction/status/"), "no status call for a settled payment")
}

// TestPaymentWithoutReferenceHasItsOwnKeySpace (issue 19, point 5): a
// payment that came without a reference is never merged with one whose
// reference looks like a name the tracker might give it.
func TestPaymentWithoutReferenceHasItsOwnKeySpace(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPX1", "status": "successful"}))
	s.waitFor("the payment without reference", func(u map[string][]delivery) bool { return len(u[""]) == 1 })
	for _, ref := range []string{"vpay:VPX1", "VPX1"} {
		assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VP-" + ref, "external_id": ref, "status": "successful"}))
	}
	s.waitFor("the look-alikes", func(u map[string][]delivery) bool { return len(u["vpay:VPX1"]) == 1 && len(u["VPX1"]) == 1 })
	assert.ElementsMatch(t, []update{
		{"", "successful", "webhook", "VPX1", false},
		{"vpay:VPX1", "successful", "webhook", "VP-vpay:VPX1", false},
		{"VPX1", "successful", "webhook", "VP-VPX1", false},
	}, s.rows())

	// Known by its transaction id alone: a refund finds it, and so does a
	// person resolving it.
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPX1", "status": "refunded"}))
	s.waitFor("the refund", func(u map[string][]delivery) bool { return len(u[""]) == 2 })
	// An event that names its reference at last: the same payment, which
	// takes the reference (nothing delivered again).
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPX1", "external_id": "order-x1", "status": "disputed"}))
	s.waitFor("the dispute", func(u map[string][]delivery) bool { return len(u["order-x1"]) == 1 })
	assert.Equal(t, update{"order-x1", "disputed", "webhook", "VPX1", false}, s.rows()[4])
	rows, err := s.db.Query(context.Background(), `SELECT coalesce(reference, '') FROM vpay_tracker_payments WHERE transaction_id = 'VPX1'`)
	require.NoError(t, err)
	refs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	assert.Equal(t, []string{"order-x1"}, refs, "the payment took the reference: no second payment of VPX1")
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPX2", "status": "pending"}))
	pending, err := tr.Pending(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, tracker.Payment{TransactionID: "VPX2", Status: vpay.StatusPending}, tracker.Payment{TransactionID: pending[0].TransactionID, Reference: pending[0].Reference, Status: pending[0].Status})
	require.Error(t, tr.Resolve(context.Background(), "VPX2", vpay.StatusSuccessful, ""), "not a reference")
	require.NoError(t, tr.ResolveTransaction(context.Background(), "VPX2", vpay.StatusFailed, "checked on the dashboard"))
	s.waitFor("the resolution", func(u map[string][]delivery) bool { return len(u[""]) == 3 })
	assert.Equal(t, update{"", "failed", "manual", "VPX2", false}, s.rows()[5])
	assert.ErrorIs(t, tr.ResolveTransaction(context.Background(), "VPNONE", vpay.StatusFailed, ""), tracker.ErrNoPayment)
}

// TestReferenceIsLookedUpBeforeTransactionID (issue 22: the lookup order):
// an event is filed by its reference first; by its transaction id only
// when it names no reference.
func TestReferenceIsLookedUpBeforeTransactionID(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	tr := s.process(func(c *tracker.Config) { c.Schedule = []time.Duration{time.Hour}; c.GiveUp = 2 * time.Hour })
	a, err := s.pay(tr, "order-a", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	_, err = s.pay(tr, "order-b", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	// order-b's event that also names order-a's transaction id: order-b's.
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": a.TransactionID, "external_id": "order-b", "status": "failed"}))
	s.waitFor("order-b's update", func(u map[string][]delivery) bool { return len(u["order-b"]) == 1 })
	// An event without reference: found by its transaction id.
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": a.TransactionID, "status": "successful"}))
	u := s.waitFor("order-a's update", func(u map[string][]delivery) bool { return len(u["order-a"]) == 1 })
	assert.Equal(t, map[string][]delivery{"order-a": {{"successful", "webhook"}}, "order-b": {{"failed", "webhook"}}}, u)
}

// TestPruneLeavesTombstones (issue 19, point 4): after Prune, and after
// River forgot its jobs, a redelivered webhook delivers nothing again,
// for a payment with a reference and for one without.
func TestPruneLeavesTombstones(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	p, err := s.pay(tr, "order-pruned", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPNOREF", "status": "successful"}))
	s.waitFor("both deliveries", func(u map[string][]delivery) bool { return len(u["order-pruned"]) == 1 && len(u[""]) == 1 })
	n, err := tr.Prune(context.Background(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.EqualValues(t, 2, n)
	_, err = s.db.Exec(context.Background(), `DELETE FROM river_job`) // River's cleaner, a day later
	require.NoError(t, err)

	s.process() // a replica whose webhook de-duplication has not seen the events
	require.NoError(t, s.emulator.Resend(p.TransactionID))
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPNOREF", "status": "successful"}))
	// Updates of a payment come in order: once the refunds are delivered,
	// a second "successful" would have come before them.
	require.Eventually(t, func() bool { _, ok := s.emulator.Webhook(p.TransactionID); return ok }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusRefunded))
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPNOREF", "status": "refunded"}))
	u := s.waitFor("the refunds", func(u map[string][]delivery) bool { return len(u["order-pruned"]) == 2 && len(u[""]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-pruned"])
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u[""])
}

// TestHeldListsOnlyPaymentsBehindAFailure: updates that merely wait for
// their turn (no tracker has run them yet) are not "held back"; Held is
// for a failing OnUpdate, which a person must look at.
func TestHeldListsOnlyPaymentsBehindAFailure(t *testing.T) {
	s := newShop(t)
	idle := s.idle()
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPW", "external_id": "order-w", "status": "successful"}))
	assert.Equal(t, http.StatusOK, s.send(map[string]any{"transaction_id": "VPW", "external_id": "order-w", "status": "refunded"}))
	held, err := idle.Held(context.Background(), 0)
	require.NoError(t, err)
	assert.Empty(t, held)
}

package tracker_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
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
)

// shop is a merchant on a real PostgreSQL: its orders' updates land in
// shop_updates through OnUpdate, one row per delivery, so counting rows
// counts deliveries.
type shop struct {
	t        testing.TB
	pg       *trackertest.Postgres
	dsn      string
	emulator *vpaytest.Server
	hookURL  string // where the emulator sends webhooks: the current tracker's handler
	handler  atomic.Pointer[http.Handler]
	failNext atomic.Int64  // OnUpdate fails this many more times
	failing  atomic.Value  // string: OnUpdate fails every Update of this status
	failed   chan string   // the status of each failed OnUpdate, when there is room
	db       *pgxpool.Pool // the shop's own queries
}

func newShop(t testing.TB, opts ...vpaytest.Option) *shop {
	t.Helper()
	pg := trackertest.NewPostgres(t)
	s := &shop{t: t, pg: pg, dsn: pg.DSN, failed: make(chan string, 100)}
	s.failing.Store("")
	pool := s.pool()
	s.db = pool
	ctx := context.Background()
	require.NoError(t, tracker.Migrate(ctx, pool))
	_, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS shop_updates (
		reference text NOT NULL, status text NOT NULL, source text NOT NULL, unresolved boolean NOT NULL,
		transaction_id text NOT NULL, at timestamptz NOT NULL DEFAULT now())`)
	require.NoError(t, err)
	s.emulator = vpaytest.NewServer(append([]vpaytest.Option{
		vpaytest.WithPaymentDelay(50 * time.Millisecond), vpaytest.WithWebhookRetries(3, 20*time.Millisecond),
	}, opts...)...)
	t.Cleanup(s.emulator.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{ReadHeaderTimeout: time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := s.handler.Load()
		if h == nil {
			http.Error(w, "no tracker running", http.StatusServiceUnavailable)
			return
		}
		(*h).ServeHTTP(w, r)
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	s.hookURL = "http://" + ln.Addr().String() + "/webhooks/vpay"
	return s
}

func (s *shop) pool() *pgxpool.Pool {
	s.t.Helper()
	pool, err := pgxpool.New(context.Background(), s.dsn)
	require.NoError(s.t, err)
	s.t.Cleanup(pool.Close)
	return pool
}

// process starts one tracker process: its own pool, client and River
// workers on the shared database; its handler serves the webhooks.
func (s *shop) process(opts ...func(*tracker.Config)) *tracker.Tracker {
	s.t.Helper()
	cfg := tracker.Config{
		Client: s.emulator.Client(vpay.WithMaxRetries(0)),
		Pool:   s.pool(),
		OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			if s.failNext.Add(-1) >= 0 || string(u.Status) == s.failing.Load().(string) {
				select {
				case s.failed <- string(u.Status):
				default:
				}
				return errors.New("the shop's database is busy")
			}
			return record(ctx, tx, u)
		},
		Schedule:     []time.Duration{300 * time.Millisecond, 600 * time.Millisecond, 1200 * time.Millisecond},
		GiveUp:       3 * time.Second,
		PollInterval: 50 * time.Millisecond,
		RescueAfter:  5 * time.Second,
	}
	for _, o := range opts {
		o(&cfg)
	}
	tr, err := tracker.New(cfg)
	require.NoError(s.t, err)
	require.NoError(s.t, tr.Start(context.Background()))
	s.t.Cleanup(func() { _ = tr.Stop(context.Background()) })
	h := tr.Handler(s.emulator.WebhookSecret)
	s.handler.Store(&h)
	return tr
}

// record is the shop's OnUpdate at its simplest: one row per delivery.
func record(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
	_, err := tx.Exec(ctx, `INSERT INTO shop_updates (reference, status, source, unresolved, transaction_id) VALUES ($1, $2, $3, $4, $5)`,
		u.Reference, string(u.Status), string(u.Source), u.Unresolved, u.TransactionID)
	return err
}

// idle returns a tracker that records (its handler serves the webhooks)
// but is not started: what it records waits for another process.
func (s *shop) idle() *tracker.Tracker {
	s.t.Helper()
	idle, err := tracker.New(tracker.Config{Client: s.emulator.Client(), Pool: s.pool(),
		OnUpdate: func(context.Context, pgx.Tx, tracker.Update) error { return nil }})
	require.NoError(s.t, err)
	h := idle.Handler(s.emulator.WebhookSecret)
	s.handler.Store(&h)
	return idle
}

func (s *shop) pay(tr *tracker.Tracker, ref, phone string) (*vpay.Payment, error) {
	return tr.Pay(context.Background(), &vpay.PayRequest{Amount: 1000, Phone: phone, Reference: ref, CallbackURL: s.hookURL})
}

type delivery struct{ status, source string }

// updates returns each reference's deliveries, in order.
func (s *shop) updates() map[string][]delivery {
	s.t.Helper()
	rows, err := s.db.Query(context.Background(), `SELECT reference, status, source FROM shop_updates ORDER BY at`)
	require.NoError(s.t, err)
	out := map[string][]delivery{}
	for rows.Next() {
		var ref string
		var d delivery
		require.NoError(s.t, rows.Scan(&ref, &d.status, &d.source))
		out[ref] = append(out[ref], d)
	}
	require.NoError(s.t, rows.Err())
	return out
}

// learntAt is when the tracker last recorded something of the payment of
// reference: a webhook it took, a poll's answer.
func (s *shop) learntAt(ref string) time.Time {
	s.t.Helper()
	var at time.Time
	require.NoError(s.t, s.db.QueryRow(context.Background(), `SELECT updated_at FROM vpay_tracker_payments WHERE reference = $1`, ref).Scan(&at))
	return at
}

// waitFor polls the shop's table until cond holds (another process's
// transaction: nothing to wait on but the table), or fails after 30 s.
func (s *shop) waitFor(what string, cond func(map[string][]delivery) bool) map[string][]delivery {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		u := s.updates()
		if cond(u) {
			return u
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("timed out waiting for %s; updates: %v", what, u)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	s := newShop(t)
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for range 3 {
		wg.Add(1)
		pool := s.pool()
		go func() { defer wg.Done(); errs <- tracker.Migrate(context.Background(), pool) }()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func TestWebhookDeliveredOnceAndRefundAsSecondUpdate(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	p, err := s.pay(tr, "order-1", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	s.waitFor("the successful update", func(u map[string][]delivery) bool { return len(u["order-1"]) == 1 })

	// A late "pending" (a webhook that overtook nothing, a stale poll)
	// changes nothing: a final status is never replaced by pending.
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusPending))
	require.Eventually(t, func() bool { _, delivered := s.emulator.Webhook(p.TransactionID); return delivered }, 10*time.Second, 10*time.Millisecond)
	pending, err := tr.Pending(context.Background(), 0)
	require.NoError(t, err)
	assert.Empty(t, pending, "the payment stays settled")

	// V-Pay delivers the same event again: nothing new for the shop.
	require.NoError(t, s.emulator.Resend(p.TransactionID))
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusRefunded))
	u := s.waitFor("the refund", func(u map[string][]delivery) bool { return len(u["order-1"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}}, u["order-1"])
	require.NoError(t, s.emulator.Resend(p.TransactionID))
	time.Sleep(300 * time.Millisecond) // a duplicate has time to arrive; none must
	assert.Len(t, s.updates()["order-1"], 2, "a status already delivered is never delivered again")

	// A day later River has pruned its completed jobs (and their
	// uniqueness); V-Pay redelivers once more: the delivery row still
	// makes the shop's side exactly once.
	_, err = s.db.Exec(context.Background(), `DELETE FROM river_job`)
	require.NoError(t, err)
	s.process() // another replica: its webhook de-duplication has not seen the event
	before := s.learntAt("order-1")
	require.NoError(t, s.emulator.Resend(p.TransactionID))
	require.Eventually(t, func() bool { return s.learntAt("order-1").After(before) }, 10*time.Second, 20*time.Millisecond,
		"the redelivery was recorded")
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusDisputed))
	u = s.waitFor("the dispute", func(u map[string][]delivery) bool { return len(u["order-1"]) == 3 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"refunded", "webhook"}, {"disputed", "webhook"}}, u["order-1"],
		"the (payment, status) row holds after River forgot the job: nothing came before the dispute, which comes in order")
}

func TestLostWebhooksFoundByPolling(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	tr := s.process()
	for i, phone := range []string{vpaytest.PhoneSuccess, vpaytest.PhoneInsufficientFunds} {
		_, err := s.pay(tr, fmt.Sprintf("order-%d", i), phone)
		require.NoError(t, err)
	}
	u := s.waitFor("both payments polled", func(u map[string][]delivery) bool { return len(u) == 2 })
	assert.Equal(t, []delivery{{"successful", "poll"}}, u["order-0"])
	assert.Equal(t, []delivery{{"failed", "poll"}}, u["order-1"])
}

func TestUnknownOutcomeResolvedByItsWebhook(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	s.emulator.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter})
	_, err := s.pay(tr, "order-lost-answer", vpaytest.PhoneSuccess)
	require.ErrorIs(t, err, vpay.ErrOutcomeUnknown)
	assert.Equal(t, 1, s.emulator.PaymentsFor("order-lost-answer"), "the payment exists; the tracker did not send it again")
	u := s.waitFor("the webhook naming the reference", func(u map[string][]delivery) bool { return len(u["order-lost-answer"]) == 1 })
	assert.Equal(t, []delivery{{"successful", "webhook"}}, u["order-lost-answer"])
	assert.Equal(t, 1, s.emulator.PaymentsFor("order-lost-answer"))
}

func TestUnknownOutcomeWithoutWebhookIsReportedUnresolved(t *testing.T) {
	s := newShop(t)
	s.emulator.LoseWebhooks(1)
	tr := s.process()
	s.emulator.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter})
	_, err := s.pay(tr, "order-in-limbo", vpaytest.PhoneSuccess)
	require.ErrorIs(t, err, vpay.ErrOutcomeUnknown)
	pending, err := tr.Pending(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.True(t, pending[0].OutcomeUnknown)

	u := s.waitFor("the unresolved report", func(u map[string][]delivery) bool { return len(u["order-in-limbo"]) == 1 })
	assert.Equal(t, "give_up", u["order-in-limbo"][0].source)
	unresolved, err := tr.Unresolved(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, unresolved, 1)

	// A person checked with V-Pay: resolve it by hand, delivered once more.
	require.NoError(t, tr.Resolve(context.Background(), "order-in-limbo", vpay.StatusSuccessful, "confirmed on the dashboard"))
	u = s.waitFor("the manual resolution", func(u map[string][]delivery) bool { return len(u["order-in-limbo"]) == 2 })
	assert.Equal(t, delivery{"successful", "manual"}, u["order-in-limbo"][1])
	unresolved, err = tr.Unresolved(context.Background(), 0)
	require.NoError(t, err)
	assert.Empty(t, unresolved)
	assert.Error(t, tr.Resolve(context.Background(), "order-in-limbo", vpay.StatusPending, ""), "only a final status resolves")
}

func TestFailingOnUpdateIsRetriedAndDeliversOnce(t *testing.T) {
	s := newShop(t)
	s.failNext.Store(2)
	tr := s.process()
	_, err := s.pay(tr, "order-retry", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	u := s.waitFor("the delivery after two failures", func(u map[string][]delivery) bool { return len(u["order-retry"]) == 1 })
	assert.Len(t, u["order-retry"], 1)
	assert.LessOrEqual(t, s.failNext.Load(), int64(-1), "OnUpdate failed twice before it committed")
}

func TestRefusedPayLeavesNoRecord(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	_, err := tr.Pay(context.Background(), &vpay.PayRequest{Amount: 1, Phone: vpaytest.PhoneSuccess})
	require.ErrorIs(t, err, vpay.ErrInvalidAmount)
	s.emulator.Inject("/pay/", vpaytest.Fault{Status: 400})
	_, err = s.pay(tr, "order-refused", vpaytest.PhoneSuccess)
	require.Error(t, err)
	pending, err := tr.Pending(context.Background(), 0)
	require.NoError(t, err)
	assert.Empty(t, pending)
	_, err = s.pay(tr, "order-refused", vpaytest.PhoneSuccess)
	require.NoError(t, err, "the reference is free again")
	_, err = s.pay(tr, "order-refused", vpaytest.PhoneSuccess)
	assert.ErrorIs(t, err, vpay.ErrDuplicateReference, "a tracked reference is refused before anything is sent")
}

func TestPaymentTheTrackerDidNotStartIsTrackedFromItsWebhook(t *testing.T) {
	s := newShop(t)
	s.process()
	// Paid elsewhere (a payment link, another service) with the tracker's
	// endpoint as callback.
	p, err := s.emulator.Client().Pay(context.Background(), &vpay.PayRequest{Amount: 500, Phone: vpaytest.PhoneSuccess, Reference: "link-7", CallbackURL: s.hookURL})
	require.NoError(t, err)
	s.waitFor("the foreign payment's update", func(u map[string][]delivery) bool { return len(u["link-7"]) == 1 })
	require.NoError(t, s.emulator.SetStatus(p.TransactionID, vpay.StatusDisputed))
	u := s.waitFor("its dispute", func(u map[string][]delivery) bool { return len(u["link-7"]) == 2 })
	assert.Equal(t, []delivery{{"successful", "webhook"}, {"disputed", "webhook"}}, u["link-7"])
}

// TestPollsStayInTheirShareOfTheRateLimit: every webhook lost and a tight
// plan: the status checks use at most half of each window, are snoozed past
// it, and never earn a 429 or delay a Pay.
func TestPollsStayInTheirShareOfTheRateLimit(t *testing.T) {
	s := newShop(t, vpaytest.WithPlan(vpay.Plan{PerMinute: 8}), vpaytest.WithRateWindow(time.Second))
	s.emulator.LoseWebhooks(1)
	tr := s.process(func(c *tracker.Config) {
		c.Client = s.emulator.Client(vpay.WithMaxRetries(0), vpay.WithPlan(vpay.Plan{PerMinute: 8 * 60}))
		c.Schedule = []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
		c.GiveUp = 20 * time.Second
	})
	const n = 8
	for i := range n {
		start := time.Now()
		_, err := s.pay(tr, fmt.Sprintf("order-%d", i), vpaytest.PhoneSuccess)
		require.NoError(t, err)
		assert.Less(t, time.Since(start), 2*time.Second, "a Pay is never kept waiting by background polls")
	}
	s.waitFor("every payment polled", func(u map[string][]delivery) bool { return len(u) == n })
	assert.Zero(t, s.emulator.Throttled(), "the polls never earned a 429")
	var snoozed int
	require.NoError(t, s.db.QueryRow(context.Background(),
		`SELECT count(*) FROM river_job WHERE kind = 'vpay_tracker_check' AND (metadata->>'snoozes')::int > 0`).Scan(&snoozed))
	assert.Positive(t, snoozed, "checks past their share were put off to the next window, not kept waiting")
}

func TestPruneKeepsWhatIsNotSettled(t *testing.T) {
	s := newShop(t)
	tr := s.process()
	_, err := s.pay(tr, "order-done", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	s.waitFor("the delivery", func(u map[string][]delivery) bool { return len(u["order-done"]) == 1 })
	s.emulator.LoseWebhooks(1)
	_, err = s.pay(tr, "order-open", vpaytest.PhoneTimeout)
	require.NoError(t, err)
	n, err := tr.Prune(context.Background(), time.Now().Add(time.Hour))
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "only the settled and delivered payment goes")
	pending, err := tr.Pending(context.Background(), 0)
	require.NoError(t, err)
	require.Len(t, pending, 1)
	assert.Equal(t, "order-open", pending[0].Reference)
}

// TestObserverToldOfEachDeliveryAndPendingCounted: the metrics hook sees
// each Update once, after its commit, with the time since the payment
// began; PendingCount counts what is not settled.
func TestObserverToldOfEachDeliveryAndPendingCounted(t *testing.T) {
	s := newShop(t, vpaytest.WithPaymentDelay(400*time.Millisecond))
	type seen struct {
		u     tracker.Update
		after time.Duration
	}
	got := make(chan seen, 4)
	tr := s.process(func(c *tracker.Config) {
		c.Observer = &tracker.Observer{Delivered: func(_ context.Context, u tracker.Update, after time.Duration) {
			got <- seen{u, after}
		}}
	})
	start := time.Now()
	_, err := s.pay(tr, "order-obs", vpaytest.PhoneSuccess)
	require.NoError(t, err)
	pending, unresolved, err := tr.PendingCount(context.Background())
	require.NoError(t, err)
	assert.Equal(t, [2]int64{1, 0}, [2]int64{pending, unresolved}, "the payment waits for its payer")

	d := testutil.Recv(t, got, "the delivery")
	assert.Equal(t, "order-obs", d.u.Reference)
	assert.Equal(t, vpay.StatusSuccessful, d.u.Status)
	assert.GreaterOrEqual(t, d.after, 400*time.Millisecond, "the payer took the payment delay")
	assert.LessOrEqual(t, d.after, time.Since(start))
	assert.Len(t, s.updates()["order-obs"], 1, "told after the commit")
	pending, _, err = tr.PendingCount(context.Background())
	require.NoError(t, err)
	assert.Zero(t, pending)
	select {
	case extra := <-got:
		t.Fatalf("told twice: %+v", extra)
	case <-time.After(200 * time.Millisecond):
	}
}

package pgstore

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/vpaytest/limitertest"
	"github.com/vonsung/vpay-go/webhook"
)

func newToken(access string, life time.Duration) *vpay.Token {
	now := time.Now()
	return &vpay.Token{AccessToken: access, RefreshToken: "r-" + access, Mode: vpay.ModeSandbox, IssuedAt: now, Expiry: now.Add(life)}
}

// The stores' tests share one database: each uses a namespace of its own.
func TestStores(t *testing.T) {
	pool := migrated(t)
	for name, test := range map[string]func(*testing.T, *pgxpool.Pool){
		"token: one fetch across replicas":         testTokenStoreOneFetchAcrossReplicas,
		"token: invalidate is compare-and-clear":   testTokenStoreInvalidateIsCompareAndClear,
		"token: an expired token is not loaded":    testTokenStoreExpiredIsNotLoaded,
		"token: a dead lease holder":               testTokenStoreDeadLockHolder,
		"token: a failed fetch frees the lease":    testTokenStoreFailedFetchFreesLease,
		"limiter: shared":                          testLimiterShared,
		"limiter: probes once per fleet":           testLimiterProbesAnAnnouncedWindowOncePerFleet,
		"limiter: paces a cold fleet":              testLimiterPacesColdFleet,
		"limiter: an answer wakes the waiters":     testLimiterAnswerWakesWaiters,
		"limiter: holds only the ended window's":   testLimiterHoldsOnlyTheEndedWindowsRequests,
		"token: the lease winner reads first":      testTokenStoreLeaseWinnerReadsFirst,
		"deduper: shared":                          testDeduperShared,
		"deduper: a crashed replica's lease":       testDeduperLeaseOfACrashedReplicaExpires,
		"deduper: expired rows are cleaned up":     testDeduperCleansExpiredRows,
		"deduper: two replicas, one delivery each": testWebhookToTwoReplicasAtOnce,
	} {
		t.Run(name, func(t *testing.T) { test(t, pool) })
	}
}

func testTokenStoreOneFetchAcrossReplicas(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	var fetches atomic.Int64
	release := make(chan struct{})
	fetch := func(context.Context) (*vpay.Token, error) {
		fetches.Add(1)
		<-release // every replica is waiting by now
		return newToken("shared-1", time.Minute), nil
	}
	const replicas, perReplica = 8, 4
	var wg sync.WaitGroup
	got := make(chan string, replicas*perReplica)
	for range replicas {
		s := NewTokenStore(pool, opt)
		for range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := s.Refresh(context.Background(), nil, fetch)
				if assert.NoError(t, err) {
					got <- tok.AccessToken
				}
			}()
		}
	}
	require.Eventually(t, func() bool { return fetches.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	close(got)
	for a := range got {
		assert.Equal(t, "shared-1", a)
	}
	assert.EqualValues(t, 1, fetches.Load())

	other := NewTokenStore(pool, opt)
	tok, err := other.Load(context.Background())
	require.NoError(t, err)
	require.NotNil(t, tok)
	assert.Equal(t, "shared-1", tok.AccessToken)
	assert.Equal(t, "r-shared-1", tok.RefreshToken)
	assert.Equal(t, vpay.ModeSandbox, tok.Mode)
	assert.WithinDuration(t, time.Now().Add(time.Minute), tok.Expiry, 2*time.Second)
	assert.WithinDuration(t, time.Now(), tok.IssuedAt, 2*time.Second)
}

func testTokenStoreInvalidateIsCompareAndClear(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	a, b := NewTokenStore(pool, opt), NewTokenStore(pool, opt)
	ctx := context.Background()
	old, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("old", time.Minute), nil })
	require.NoError(t, err)
	newer, err := b.Refresh(ctx, old, func(context.Context) (*vpay.Token, error) { return newToken("new", time.Minute), nil })
	require.NoError(t, err)
	require.NoError(t, a.Invalidate(ctx, old)) // a late 401 on the old token
	cur, err := b.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, cur)
	assert.Equal(t, newer.AccessToken, cur.AccessToken, "the replacement survives")
	require.NoError(t, a.Invalidate(ctx, newer))
	cur, err = b.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, cur, "a 401 on one replica drops the token for all")
	var fetched bool
	tok, err := b.Refresh(ctx, newer, func(context.Context) (*vpay.Token, error) { fetched = true; return newToken("third", time.Minute), nil })
	require.NoError(t, err)
	assert.True(t, fetched, "the next refresh fetches")
	assert.Equal(t, "third", tok.AccessToken)
}

func testTokenStoreExpiredIsNotLoaded(t *testing.T, pool *pgxpool.Pool) {
	s := NewTokenStore(pool, ns(t))
	ctx := context.Background()
	_, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("short", 50*time.Millisecond), nil })
	require.NoError(t, err)
	tok, err := s.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, tok, "stored while valid")
	require.Eventually(t, func() bool {
		tok, err := s.Load(ctx)
		return err == nil && tok == nil
	}, 5*time.Second, 10*time.Millisecond, "gone at its expiry")
}

func testTokenStoreDeadLockHolder(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	s := NewTokenStore(pool, opt, WithLockTTL(100*time.Millisecond))
	// A replica took the lease and died.
	dead := NewTokenStore(pool, opt, WithLockTTL(100*time.Millisecond))
	won, err := dead.lock(context.Background(), "dead-replica")
	require.NoError(t, err)
	require.True(t, won)
	won, err = s.lock(context.Background(), "live-replica")
	require.NoError(t, err)
	require.False(t, won, "a live lease is not taken")
	start := time.Now()
	tok, err := s.Refresh(context.Background(), nil, func(context.Context) (*vpay.Token, error) { return newToken("after", time.Minute), nil })
	require.NoError(t, err)
	assert.Equal(t, "after", tok.AccessToken)
	assert.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "it waited for the lease to lapse")
}

// A replica that wins the lease just after another stored its token (the
// other looked, fetched, stored and released between this one's look and
// its lease) uses that token: no second /auth/.
func testTokenStoreLeaseWinnerReadsFirst(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	a, b := NewTokenStore(pool, opt), NewTokenStore(pool, opt)
	ctx := context.Background()
	_, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("a", time.Minute), nil })
	require.NoError(t, err)
	won, err := b.lock(ctx, "b")
	require.NoError(t, err)
	require.True(t, won)
	tok, err := b.fetchAndStore(ctx, nil, "b", func(context.Context) (*vpay.Token, error) {
		t.Error("fetched although a valid token was stored")
		return newToken("b", time.Minute), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "a", tok.AccessToken)
	won, err = a.lock(ctx, "c")
	require.NoError(t, err)
	assert.True(t, won, "and it gave the lease back")
}

func testTokenStoreFailedFetchFreesLease(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	s := NewTokenStore(pool, opt) // a 30 s lease
	ctx := context.Background()
	_, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return nil, vpay.ErrInvalidKey })
	require.ErrorIs(t, err, vpay.ErrInvalidKey)
	won, err := s.lock(ctx, "next")
	require.NoError(t, err)
	assert.True(t, won, "the failed fetch gave the lease back at once")
}

func testLimiterShared(t *testing.T, pool *pgxpool.Pool) {
	plan := vpay.Plan{PerMinute: 6000}
	opt := ns(t)
	a, b := NewLimiter(pool, plan, opt), NewLimiter(pool, plan, opt)
	ctx := context.Background()

	// A sees the window spent; B, another replica, holds its next request.
	reset := time.Now().Add(30 * time.Second)
	a.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 0, Reset: reset}, false)
	w, err := b.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, time.Until(reset).Seconds(), w.For.Seconds(), 1)
	_, err = b.Reserve(ctx, time.Second)
	assert.ErrorIs(t, err, vpay.ErrRateLimited, "past MaxWait it fails fast")
	var ve *vpay.Error
	require.ErrorAs(t, err, &ve)
	assert.WithinDuration(t, reset, ve.RateLimit.Reset, time.Second, "the error says when the window resets")

	// The window rolls: D counts what remains, C sees D's count.
	opt2 := ns(t)
	c, d := NewLimiter(pool, plan, opt2), NewLimiter(pool, plan, opt2)
	c.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 3, Reset: time.Now().Add(time.Minute)}, false)
	for range 3 {
		w, err := d.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		assert.Zero(t, w.For)
	}
	w, err = c.Reserve(ctx, 2*time.Minute)
	require.NoError(t, err)
	assert.Greater(t, w.For, 50*time.Second, "the three remaining were spent by the other replica")

	// A 429 on one replica pauses the others until its Reset.
	opt3 := ns(t)
	e, f := NewLimiter(pool, plan, opt3), NewLimiter(pool, plan, opt3)
	e.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 50, Reset: time.Now().Add(time.Minute)}, false)
	e.Answered(ctx, vpay.RateLimit{Limit: 100, Reset: time.Now().Add(5 * time.Second)}, true)
	w, err = f.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 5, w.For.Seconds(), 1)

	// A 429 is a spent window whatever its Remaining header says (a
	// proxy's 429, the daily quota).
	opt4 := ns(t)
	g, h := NewLimiter(pool, plan, opt4), NewLimiter(pool, plan, opt4)
	g.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 50, Reset: time.Now().Add(5 * time.Second)}, true)
	w, err = h.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 5, w.For.Seconds(), 1, "paused until the 429's Reset")
}

func testLimiterProbesAnAnnouncedWindowOncePerFleet(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a, b := NewLimiter(pool, vpay.PlanGrowth, opt), NewLimiter(pool, vpay.PlanGrowth, opt)
	a.now, b.now = clock, clock
	ctx := context.Background()
	a.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(24 * time.Hour)}, true)

	granted := func() (n int) {
		for _, l := range []*Limiter{a, b, a, b} {
			if w, err := l.Reserve(ctx, time.Minute); err == nil && w.For == 0 {
				n++
			}
		}
		return n
	}
	assert.Zero(t, granted(), "refused at once")
	now = now.Add(59 * time.Second)
	assert.Zero(t, granted())
	now = now.Add(2 * time.Second)
	assert.Equal(t, 1, granted(), "after a minute, one probe for the whole fleet")
	a.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(24 * time.Hour)}, true)
	now = now.Add(time.Minute)
	assert.Zero(t, granted(), "the probe's interval doubled")
	now = now.Add(time.Minute + time.Second)
	assert.Equal(t, 1, granted())

	b.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 50, Reset: now.Add(30 * time.Second)}, false)
	assert.Equal(t, 4, granted(), "calls flow again")
}

func testLimiterPacesColdFleet(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	plan := vpay.Plan{PerMinute: 600} // 10 a second, burst of 10
	var granted int
	for i := range 4 {
		l := NewLimiter(pool, plan, opt)
		for range 5 {
			w, err := l.Reserve(context.Background(), time.Minute)
			require.NoError(t, err, "replica %d", i)
			if w.For == 0 {
				granted++
			}
		}
	}
	assert.Equal(t, 10, granted, "the fleet shares one burst, not one each")
}

// Only the requests the ended window let through are held for in the
// next: one let through while no window was known (paced, not counted in
// any window) is not, though it is still in flight.
func testLimiterHoldsOnlyTheEndedWindowsRequests(t *testing.T, pool *pgxpool.Pool) {
	now := time.Date(2026, 5, 30, 18, 0, 0, 0, time.UTC)
	l := NewLimiter(pool, vpay.Plan{PerMinute: 180}, ns(t))
	l.now = func() time.Time { return now }
	ctx := context.Background()
	for range 3 { // the cold burst; one answer comes, two are in flight
		w, err := l.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		require.Zero(t, w.For)
	}
	l.Answered(ctx, vpay.RateLimit{Limit: 4, Remaining: 3, Reset: now.Add(10 * time.Second)}, false)
	now = now.Add(10 * time.Second)
	for i := range 4 {
		w, err := l.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		assert.Zero(t, w.For, "request %d of the new window's 4", i+1)
	}
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Greater(t, w.For, time.Duration(0), "the window is spent")
}

func testLimiterAnswerWakesWaiters(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	a, b := NewLimiter(pool, vpay.PlanGrowth, opt), NewLimiter(pool, vpay.PlanGrowth, opt)
	b.poll = 50 * time.Millisecond
	ctx := context.Background()
	a.Answered(ctx, vpay.RateLimit{Limit: 10, Remaining: 0, Reset: time.Now().Add(40 * time.Second)}, false)
	wa, err := a.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	require.Greater(t, wa.For, 30*time.Second)
	wb, err := b.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	require.Greater(t, wb.For, 30*time.Second)

	// A 429, or an answer that says the window is spent, frees nothing:
	// nobody is woken.
	a.Answered(ctx, vpay.RateLimit{Limit: 10, Reset: time.Now().Add(40 * time.Second)}, true)
	a.Answered(ctx, vpay.RateLimit{Limit: 10, Remaining: 0, Reset: time.Now().Add(40 * time.Second)}, false)
	select {
	case <-wa.Wake:
		t.Fatal("an answer that frees nothing woke the waiters")
	default:
	}
	// The server says the window has room after all (another key's reset,
	// a plan upgrade): this process's waiters ask again at once.
	a.Answered(ctx, vpay.RateLimit{Limit: 10, Remaining: 5, Reset: time.Now().Add(50 * time.Second)}, false)
	select {
	case <-wa.Wake:
	default:
		t.Fatal("the answer did not wake this process's waiters")
	}
	w, err := a.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Zero(t, w.For, "asked again, it goes")
	// Another replica's waiters hear of it within the poll.
	select {
	case <-wb.Wake:
	case <-time.After(5 * time.Second):
		t.Fatal("another replica's waiter was never woken to ask again")
	}
	w, err = b.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Zero(t, w.For)
}

func testDeduperShared(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	a, b := NewDeduper(pool, time.Hour, opt), NewDeduper(pool, time.Hour, opt)
	ctx := context.Background()
	const key = "VP1:successful"
	st, err := a.Claim(ctx, key, "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.Claimed, st)
	st, err = b.Claim(ctx, key, "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.InProgress, st, "the other replica must not acknowledge it yet")
	assert.ErrorIs(t, b.Extend(ctx, key, "b", time.Minute), webhook.ErrLeaseLost)
	require.NoError(t, a.Extend(ctx, key, "a", time.Minute))

	require.NoError(t, b.Release(ctx, key, "b"), "a Release by a non-owner is a no-op")
	st, _ = b.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, webhook.InProgress, st)
	require.NoError(t, a.Release(ctx, key, "a"))
	st, _ = b.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, webhook.Claimed, st, "released after a failure: the redelivery is processed")
	require.NoError(t, b.Complete(ctx, key, "b"))
	st, _ = a.Claim(ctx, key, "a", time.Minute)
	assert.Equal(t, webhook.Done, st)
	assert.ErrorIs(t, b.Extend(ctx, key, "b", time.Minute), webhook.ErrLeaseLost, "a done event has no lease")
	require.NoError(t, b.Release(ctx, key, "b"))
	st, _ = a.Claim(ctx, key, "a", time.Minute)
	assert.Equal(t, webhook.Done, st, "a Release after Complete does not forget it")
	var left time.Duration
	require.NoError(t, pool.QueryRow(ctx, `SELECT extract(epoch FROM expires_at - clock_timestamp()) * interval '1 second'
		FROM vpay_pgstore_webhooks WHERE namespace = $1 AND key = $2`, a.ns, key).Scan(&left))
	assert.Greater(t, left, 59*time.Minute, "done lives for the TTL, not the lease")

	other := NewDeduper(pool, time.Hour, ns(t))
	st, _ = other.Claim(ctx, key, "c", time.Minute)
	assert.Equal(t, webhook.Claimed, st, "another namespace (API key) has its own events")
	st, _ = other.Claim(ctx, key, "d", time.Minute)
	assert.Equal(t, webhook.InProgress, st, "in progress there, though done in the first namespace")
}

func testDeduperLeaseOfACrashedReplicaExpires(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	a, b := NewDeduper(pool, time.Hour, opt), NewDeduper(pool, time.Hour, opt)
	ctx := context.Background()
	st, err := a.Claim(ctx, "VP2:successful", "a", 50*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, webhook.Claimed, st)
	st, err = b.Claim(ctx, "VP2:successful", "b", time.Minute)
	require.NoError(t, err)
	require.Equal(t, webhook.InProgress, st, "a live lease holds")
	// a crashed: it never renews, and its lease lapses.
	require.Eventually(t, func() bool {
		st, err := b.Claim(ctx, "VP2:successful", "b", time.Minute)
		return err == nil && st == webhook.Claimed
	}, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, a.Extend(ctx, "VP2:successful", "a", time.Minute), webhook.ErrLeaseLost, "the crashed replica's lease is gone")

	// A lease that lapsed is lost even before anyone takes the event over.
	st, err = a.Claim(ctx, "VP3:successful", "a", 20*time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, webhook.Claimed, st)
	require.Eventually(t, func() bool {
		var lapsed bool
		err := pool.QueryRow(ctx, `SELECT expires_at <= clock_timestamp() FROM vpay_pgstore_webhooks
			WHERE namespace = $1 AND key = 'VP3:successful'`, a.ns).Scan(&lapsed)
		return err == nil && lapsed
	}, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, a.Extend(ctx, "VP3:successful", "a", time.Minute), webhook.ErrLeaseLost, "a lapsed lease is not renewed")
	require.NoError(t, a.Release(ctx, "VP2:successful", "a"))
	st, _ = a.Claim(ctx, "VP2:successful", "a", time.Minute)
	assert.Equal(t, webhook.InProgress, st, "its late Release does not free the new owner's claim")
}

func testDeduperCleansExpiredRows(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	d := NewDeduper(pool, 10*time.Millisecond, opt)
	ctx := context.Background()
	count := func() (n int) {
		require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM vpay_pgstore_webhooks WHERE namespace = $1`, d.ns).Scan(&n))
		return n
	}
	for _, k := range []string{"VP1:successful", "VP2:failed", "VP3:successful"} {
		st, err := d.Claim(ctx, k, "a", time.Minute)
		require.NoError(t, err)
		require.Equal(t, webhook.Claimed, st)
		require.NoError(t, d.Complete(ctx, k, "a"))
	}
	_, err := d.Claim(ctx, "VP4:successful", "a", time.Minute) // live
	require.NoError(t, err)
	require.Equal(t, 4, count())
	require.Eventually(t, func() bool {
		d.cleanMu.Lock()
		d.cleaned = time.Time{} // the next Claim cleans
		d.cleanMu.Unlock()
		_, err := d.Claim(ctx, "VP5:successful", "a", time.Minute)
		return err == nil && count() == 2
	}, 5*time.Second, 20*time.Millisecond, "the three done rows past their TTL are deleted; the live ones stay")
	d.cleanEvery = time.Hour
	_, err = pool.Exec(ctx, `UPDATE vpay_pgstore_webhooks SET expires_at = clock_timestamp() - interval '1 second' WHERE namespace = $1`, d.ns)
	require.NoError(t, err)
	_, err = d.Claim(ctx, "VP6:successful", "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 3, count(), "at most one clean-up per cleanEvery")
}

// A webhook delivered to two replicas at once reaches fn once; the other
// delivery is not acknowledged until the first is done, then is.
func testWebhookToTwoReplicasAtOnce(t *testing.T, pool *pgxpool.Pool) {
	opt := ns(t)
	s := vpaytest.NewServer()
	defer s.Close()
	var calls atomic.Int64
	started, finish := make(chan struct{}), make(chan struct{})
	fn := func(context.Context, *vpay.Event) error {
		if calls.Add(1) == 1 {
			close(started)
			<-finish
		}
		return nil
	}
	replicas := []http.Handler{
		webhook.Handler(s.WebhookSecret, fn, webhook.WithDeduper(NewDeduper(pool, time.Hour, opt))),
		webhook.Handler(s.WebhookSecret, fn, webhook.WithDeduper(NewDeduper(pool, time.Hour, opt))),
	}
	body := []byte(`{"event":"payment.successful","transaction_id":"VP77","status":"successful","amount":100,"currency":"RWF"}`)
	deliver := func(h http.Handler) int {
		req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
		req.Header.Set("X-VPay-Signature", webhook.Sign(body, s.WebhookSecret))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	first := make(chan int, 1)
	go func() { first <- deliver(replicas[0]) }()
	testutil.Recv(t, started, "the first delivery reaching fn")
	assert.NotEqual(t, http.StatusOK, deliver(replicas[1]), "in progress on the other replica: not acknowledged")
	close(finish)
	assert.Equal(t, http.StatusOK, testutil.Recv(t, first, "the first delivery's answer"))
	assert.Equal(t, http.StatusOK, deliver(replicas[1]), "done: acknowledged")
	assert.Equal(t, http.StatusOK, deliver(replicas[0]))
	assert.EqualValues(t, 1, calls.Load(), "fn ran once for the event")
}

// TestLimiterConformance: the PostgreSQL limiter makes the default
// limiter's decisions, step for step (limitertest.TestLimiter).
func TestLimiterConformance(t *testing.T) {
	pool := migrated(t)
	limitertest.TestLimiter(t, func(plan vpay.Plan, now func() time.Time) vpay.Limiter {
		l := NewLimiter(pool, plan, ns(t))
		l.now = now
		return l
	})
}

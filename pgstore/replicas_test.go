package pgstore

import (
	"context"
	"math"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// windowCounter counts the requests the emulator served (every answer but
// a 429) per rate-limit window, the window named by the X-RateLimit-Reset
// it announced, as seen by every replica's transport.
type windowCounter struct {
	mu     sync.Mutex
	served map[string]int
}

func (w *windowCounter) transport() http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		res, err := http.DefaultTransport.RoundTrip(r)
		if err == nil && res.StatusCode != http.StatusTooManyRequests {
			if reset := res.Header.Get("X-RateLimit-Reset"); reset != "" {
				w.mu.Lock()
				w.served[reset]++
				w.mu.Unlock()
			}
		}
		return res, err
	})
}

// whole is the count of each window, in order, without the first and the
// last: the run starts and ends inside them.
func (w *windowCounter) whole() []int {
	w.mu.Lock()
	defer w.mu.Unlock()
	resets := make([]string, 0, len(w.served))
	for r := range w.served {
		resets = append(resets, r)
	}
	sort.Strings(resets) // unix seconds of one length: text order is time order
	var out []int
	for i := 1; i < len(resets)-1; i++ {
		out = append(out, w.served[resets[i]])
	}
	return out
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type fleetResult struct {
	paid, failed int64
}

// runFleet has every client pay from workers goroutines until d has
// passed, calling midRun (if any) once the run is under way.
func runFleet(t *testing.T, clients []*vpay.Client, workers int, d time.Duration, midRun func()) fleetResult {
	t.Helper()
	deadline := time.Now().Add(d)
	var res fleetResult
	var wg sync.WaitGroup
	for _, c := range clients {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					// Longer than MaxWait: the limiter's first guess of a
					// window's end is the documented minute, and an answer
					// wakes the waiter long before.
					ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
					_, err := c.Pay(ctx, &vpay.PayRequest{Amount: 100, Phone: vpaytest.PhoneSuccess})
					cancel()
					if err != nil {
						atomic.AddInt64(&res.failed, 1)
						t.Logf("pay failed: %v", err)
						continue
					}
					atomic.AddInt64(&res.paid, 1)
				}
			}()
		}
	}
	if midRun != nil {
		midRun()
	}
	wg.Wait()
	return res
}

// TestReplicasShareTokenAndQuota: 8 replicas, each with its own pool and
// stores on one database, hammer the emulator on Starter (20 requests a
// window) with one-second windows, across several token lifetimes. One
// /auth/ call per lifetime in all, no 429, and at least 95% of each window
// used.
//
// Two choices keep the core client's own limits out of the figure: 16
// workers in all, fewer than a window's 20 requests, so that the token
// refresh's /auth/ always finds a slot in the window after a spent one
// (with more callers than that, a caller whose token expired while it
// waited for the window holds its slot while it waits for the refresh,
// and the refresh's /auth/ waits a whole window); and a lifetime that ends
// mid-window, when no request is sent, so that no request leaves in a
// token's last milliseconds and arrives after it.
func TestReplicasShareTokenAndQuota(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10-second fleet run; -short skips it")
	}
	dsn := postgres(t)
	const (
		replicas = 8
		workers  = 2
		lifetime = 2500 * time.Millisecond
		window   = time.Second
		windows  = 8
	)
	perWindow := vpay.PlanStarter.PerMinute
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(lifetime), vpaytest.WithPlan(vpay.Plan{PerMinute: perWindow}),
		vpaytest.WithRateWindow(window), vpaytest.WithPaymentDelay(time.Hour))
	defer s.Close()
	opt := ns(t)
	require.NoError(t, Migrate(context.Background(), newPool(t, dsn, 4)))
	plan := vpay.Plan{PerMinute: perWindow * int(time.Minute/window)}
	counter := &windowCounter{served: map[string]int{}}
	clients := make([]*vpay.Client, replicas)
	for i := range clients {
		pool := newPool(t, dsn, 4)
		clients[i] = s.Client(vpay.WithPlan(plan), vpay.WithHTTPClient(&http.Client{Transport: counter.transport(), Timeout: 10 * time.Second}),
			vpay.WithTokenStore(NewTokenStore(pool, opt)), vpay.WithLimiter(NewLimiter(pool, plan, opt)))
	}
	// Start on a window boundary so the run covers whole windows.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window)))
	res := runFleet(t, clients, workers, windows*window, nil)

	lifetimes := int(math.Ceil(float64(windows*window) / float64(lifetime)))
	used := counter.whole()
	t.Logf("replicas %d: %d payments, %d /auth/ calls over %d token lifetimes, %d 429s, requests served per whole window %v (of %d)",
		replicas, res.paid, s.AuthCalls(), lifetimes, s.Throttled(), used, perWindow)
	assert.Zero(t, res.failed)
	assert.Zero(t, s.Throttled(), "no replica earned a 429")
	// Tokens are replaced a tenth of their lifetime early, so a run of n
	// lifetimes may see one more token than n.
	assert.LessOrEqual(t, s.AuthCalls(), lifetimes+1, "one /auth/ per lifetime for the whole fleet")
	require.GreaterOrEqual(t, len(used), windows-2, "every whole window of the run was used")
	for i, n := range used {
		assert.GreaterOrEqual(t, float64(n), 0.95*float64(perWindow), "window %d: %d of %d requests used", i+1, n, perWindow)
	}
	assert.Len(t, s.Transactions(), int(res.paid))
}

// TestReplicasSurvivePostgresRestart kills PostgreSQL a third of the way
// through the run and restarts it at two thirds: every replica falls back,
// then shares again; no payment is lost and no goroutine is left behind.
func TestReplicasSurvivePostgresRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("a 5-second fleet run; -short skips it")
	}
	pg := startPostgres(t)
	const replicas, workers = 8, 2
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(time.Second), vpaytest.WithPlan(vpay.Plan{PerMinute: 60}),
		vpaytest.WithRateWindow(time.Second), vpaytest.WithPaymentDelay(time.Hour))
	opt := ns(t)
	plan := vpay.Plan{PerMinute: 3600}
	pools := make([]*poolWithStores, replicas)
	for i := range pools {
		pools[i] = newPoolWithStores(t, pg.DSN, plan, opt)
	}
	require.NoError(t, Migrate(context.Background(), pools[0].pool))
	before := runtime.NumGoroutine()
	clients := make([]*vpay.Client, replicas)
	for i, p := range pools {
		clients[i] = s.Client(vpay.WithPlan(plan), vpay.WithMaxRetries(6), vpay.WithTokenStore(p.tokens), vpay.WithLimiter(p.limiter))
	}
	res := runFleet(t, clients, workers, 4500*time.Millisecond, func() {
		time.Sleep(1500 * time.Millisecond)
		pg.Stop()
		time.Sleep(1500 * time.Millisecond)
		pg.Start()
	})
	t.Logf("PostgreSQL killed and restarted mid-run: %d payments returned, %d held by the emulator, %d failed, %d /auth/ calls, %d 429s",
		res.paid, len(s.Transactions()), res.failed, s.AuthCalls(), s.Throttled())
	require.Zero(t, res.failed, "no payment failed while PostgreSQL was away")
	assert.Greater(t, res.paid, int64(0))
	assert.Len(t, s.Transactions(), int(res.paid), "every payment returned exists, and no other")
	for i, p := range pools {
		assert.Equal(t, 1, p.logs.count("unreachable", "store=limiter"), "replica %d said once that it fell back", i)
		assert.LessOrEqual(t, p.logs.count("unreachable", "store=token"), 1, "replica %d: %s", i, p.logs.String())
	}
	// Back to sharing: the replicas read one token again.
	ctx := context.Background()
	require.Eventually(t, func() bool {
		tok, err := pools[0].tokens.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("after-restart", time.Minute), nil })
		if err != nil {
			return false
		}
		cur, err := pools[1].tokens.Load(ctx)
		return err == nil && cur != nil && cur.AccessToken == tok.AccessToken && !pools[0].tokens.h.down.Load() && !pools[1].tokens.h.down.Load()
	}, 10*time.Second, 50*time.Millisecond, "the replicas share the token again")

	s.Close() // its connections, and the clients' goroutines reading them, end
	if !assert.Eventually(t, func() bool { return runtime.NumGoroutine() <= before }, 10*time.Second, 20*time.Millisecond,
		"goroutines left behind: %d, %d before the run", runtime.NumGoroutine(), before) {
		buf := make([]byte, 1<<20)
		t.Logf("%s", buf[:runtime.Stack(buf, true)])
	}
}

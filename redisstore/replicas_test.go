package redisstore

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// runFleet has every client pay from workers goroutines until d has
// passed, calling midRun (if any) once the run is under way. snapshot is
// called at the deadline, before the calls still in flight finish.
type fleetResult struct {
	paid, failed int64
	elapsed      time.Duration
}

func runFleet(t *testing.T, clients []*vpay.Client, workers int, d time.Duration, midRun, snapshot func()) fleetResult {
	t.Helper()
	start := time.Now()
	deadline := start.Add(d)
	var res fleetResult
	var wg sync.WaitGroup
	for _, c := range clients {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(deadline) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
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
	if snapshot != nil {
		time.Sleep(time.Until(deadline))
		snapshot()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// TestReplicasShareTokenAndQuota: 8 replicas hammer the emulator across
// several token lifetimes. One /auth/ call per lifetime in all, no 429, and
// at least 90% of the quota used.
func TestReplicasShareTokenAndQuota(t *testing.T) {
	r := useRedis(t)
	const (
		replicas  = 8
		workers   = 4
		lifetime  = 2 * time.Second
		window    = time.Second
		perWindow = 40
		windows   = 7
	)
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(lifetime), vpaytest.WithPlan(vpay.Plan{PerMinute: perWindow}),
		vpaytest.WithRateWindow(window), vpaytest.WithPaymentDelay(time.Hour))
	defer s.Close()
	opt := ns(t)
	plan := vpay.Plan{PerMinute: perWindow * int(time.Minute/window)}
	clients := make([]*vpay.Client, replicas)
	for i := range clients {
		rdb := r.Client()
		clients[i] = s.Client(vpay.WithPlan(plan), vpay.WithTokenStore(NewTokenStore(rdb, opt)), vpay.WithLimiter(NewLimiter(rdb, plan, opt)))
	}
	// Start on a window boundary so the run covers whole windows.
	time.Sleep(time.Until(time.Now().Truncate(window).Add(window)))
	var served, auth int
	res := runFleet(t, clients, workers, windows*window, nil, func() {
		served = s.Requests("/pay/") + s.Requests("/auth/") - s.Throttled()
		auth = s.AuthCalls()
	})

	lifetimes := int(math.Ceil(float64(windows*window) / float64(lifetime)))
	quota := float64(served) / float64(perWindow*windows)
	t.Logf("replicas %d: %d payments, %d /auth/ calls over %d token lifetimes, %d 429s, %.1f%% of the quota used (%d of %d requests)",
		replicas, res.paid, auth, lifetimes, s.Throttled(), 100*quota, served, perWindow*windows)
	assert.Zero(t, res.failed)
	assert.Zero(t, s.Throttled(), "no replica earned a 429")
	// Tokens are replaced a tenth of their lifetime early, so a run of n
	// lifetimes may see one more token than n.
	assert.LessOrEqual(t, auth, lifetimes+1, "one /auth/ per lifetime for the whole fleet")
	assert.GreaterOrEqual(t, quota, 0.90)
	assert.Len(t, s.Transactions(), int(res.paid))
}

// TestReplicasSurviveRedisRestart kills Redis a third of the way through
// the run and restarts it at two thirds: no payment is lost.
func TestReplicasSurviveRedisRestart(t *testing.T) {
	r := startRedis(t)
	const replicas, workers = 8, 2
	s := vpaytest.NewServer(vpaytest.WithTokenLifetime(time.Second), vpaytest.WithPlan(vpay.Plan{PerMinute: 60}),
		vpaytest.WithRateWindow(time.Second), vpaytest.WithPaymentDelay(time.Hour))
	defer s.Close()
	opt := ns(t)
	plan := vpay.Plan{PerMinute: 3600}
	clients := make([]*vpay.Client, replicas)
	for i := range clients {
		rdb := r.Client()
		clients[i] = s.Client(vpay.WithPlan(plan), vpay.WithMaxRetries(6),
			vpay.WithTokenStore(NewTokenStore(rdb, opt)), vpay.WithLimiter(NewLimiter(rdb, plan, opt)))
	}
	res := runFleet(t, clients, workers, 4500*time.Millisecond, func() {
		time.Sleep(1500 * time.Millisecond)
		r.Stop()
		time.Sleep(1500 * time.Millisecond)
		r.Start()
	}, nil)
	t.Logf("Redis killed and restarted mid-run: %d payments returned, %d held by the emulator, %d failed, %d /auth/ calls, %d 429s",
		res.paid, len(s.Transactions()), res.failed, s.AuthCalls(), s.Throttled())
	require.Zero(t, res.failed, "no payment failed while Redis was away")
	assert.Greater(t, res.paid, int64(0))
	assert.Len(t, s.Transactions(), int(res.paid), "every payment returned exists, and no other")
}

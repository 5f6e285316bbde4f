package pgstore

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

// grantedAtOnce counts the requests l lets go without waiting, up to 50.
func grantedAtOnce(t *testing.T, l vpay.Limiter) int {
	t.Helper()
	for n := range 50 {
		w, err := l.Reserve(context.Background(), 0)
		if err != nil || w.For > 0 {
			return n
		}
	}
	return 50
}

// Requests let go before any answer showed the window (the "blind" ones)
// are counted against the first window learned: the server has counted,
// or will count, the ones still in flight, whatever the first answer's
// Remaining says. The default limiter decides the same.
func TestLimiterCountsColdStartRequests(t *testing.T) {
	pool := migrated(t)
	plan := vpay.Plan{PerMinute: 600} // a burst of ten before any answer
	for name, l := range map[string]vpay.Limiter{
		"pgstore": NewLimiter(pool, plan, ns(t)),
		"default": vpay.NewLimiter(plan),
	} {
		ctx := context.Background()
		for i := range 3 {
			w, err := l.Reserve(ctx, 0)
			require.NoError(t, err, "%s: cold request %d", name, i)
			require.Zero(t, w.For, "%s: cold request %d is within the burst", name, i)
		}
		// The first answer: the server counted one of the three so far.
		l.Answered(ctx, vpay.RateLimit{Limit: 10, Remaining: 9, Reset: time.Now().Add(time.Minute)}, false)
		assert.Equal(t, 7, grantedAtOnce(t, l), "%s: 9 remaining less the two other cold requests in flight", name)
	}
}

// A 429 is a spent window even when the window was known to have room
// and the 429 carries a Remaining above zero (a proxy's 429, the daily
// quota): every replica waits for its Reset. The default limiter decides
// the same.
func TestLimiterThrottledSpendsAKnownWindow(t *testing.T) {
	pool := migrated(t)
	plan := vpay.Plan{PerMinute: 6000}
	for name, l := range map[string]vpay.Limiter{
		"pgstore": NewLimiter(pool, plan, ns(t)),
		"default": vpay.NewLimiter(plan),
	} {
		ctx := context.Background()
		l.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 50, Reset: time.Now().Add(time.Minute)}, false)
		reset := time.Now().Add(5 * time.Second)
		l.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 40, Reset: reset}, true)
		w, err := l.Reserve(ctx, time.Minute)
		require.NoError(t, err, name)
		assert.InDelta(t, time.Until(reset).Seconds(), w.For.Seconds(), 1, "%s: paused until the 429's Reset", name)
	}
}

// The window's length is learned from two answers whose Resets differ by
// less than the assumed minute: once a window has rolled over unanswered,
// the next one is guessed to end one learned length later.
func TestLimiterLearnsAShorterWindow(t *testing.T) {
	pool := migrated(t)
	l := NewLimiter(pool, vpay.Plan{PerMinute: 6000}, ns(t))
	start := time.Now()
	now := start
	l.now = func() time.Time { return now }
	ctx := context.Background()
	l.Answered(ctx, vpay.RateLimit{Limit: 2, Remaining: 1, Reset: start.Add(10 * time.Second)}, false)
	now = start.Add(11 * time.Second)
	l.Answered(ctx, vpay.RateLimit{Limit: 2, Remaining: 1, Reset: start.Add(40 * time.Second)}, false)
	var wlen int64
	require.NoError(t, pool.QueryRow(ctx, `SELECT wlen FROM vpay_pgstore_limits WHERE namespace = $1`, l.ns).Scan(&wlen))
	assert.Equal(t, int64(30000), wlen, "the Resets were 30 s apart")

	// The window ending at +40 s rolls over unanswered: the next is
	// guessed to end at +70 s, not a minute later.
	now = start.Add(41 * time.Second)
	assert.Equal(t, 2, grantedAtOnce(t, l), "the new window starts full")
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 29*time.Second, w.For, "the guessed window ends one learned length after the last")

	// A gap longer than the window learned is not a window: wlen stays.
	now = start.Add(45 * time.Second)
	l.Answered(ctx, vpay.RateLimit{Limit: 2, Remaining: 1, Reset: start.Add(130 * time.Second)}, false)
	require.NoError(t, pool.QueryRow(ctx, `SELECT wlen FROM vpay_pgstore_limits WHERE namespace = $1`, l.ns).Scan(&wlen))
	assert.Equal(t, int64(30000), wlen, "a 90 s gap does not lengthen the window")
}

package redisstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// While Redis is down the Limiter falls back to the in-process one: it
// still limits, it never lets everything through. Both ways into the
// fallback are checked: the call that meets the outage, and the calls
// made while Redis is skipped.
func TestLimiterKeepsLimitingWhileRedisIsDown(t *testing.T) {
	for name, retryDown := range map[string]time.Duration{"every call meets the outage": 0, "Redis skipped": time.Hour} {
		t.Run(name, func(t *testing.T) {
			r := startRedis(t)
			l := NewLimiter(r.Client(), vpay.PlanStarter, ns(t))
			l.h.retryDown = retryDown
			ctx := context.Background()
			r.Stop()

			// Cold: Starter's burst is one request, then one per 3 s.
			granted := 0
			for range 5 {
				w, err := l.Reserve(ctx, 0)
				switch {
				case err == nil && w.For <= 0:
					granted++
				case err != nil:
					require.ErrorIs(t, err, vpay.ErrRateLimited)
				}
			}
			assert.Equal(t, 1, granted, "paced at the plan's rate while Redis is down")

			// A known window: its remaining requests, then a wait.
			l.Answered(ctx, vpay.RateLimit{Limit: 20, Remaining: 2, Reset: time.Now().Add(30 * time.Second)}, false)
			for i := range 2 {
				w, err := l.Reserve(ctx, time.Minute)
				require.NoError(t, err)
				assert.Zero(t, w.For, "request %d of the window's last two", i+1)
			}
			w, err := l.Reserve(ctx, time.Minute)
			require.NoError(t, err)
			assert.Greater(t, w.For, 20*time.Second, "the window is spent: wait for its reset")
		})
	}
}

// A Redis outage while fn runs is not a lost lease: the in-process
// fallback never held the event, and its "lost" would stop fn and refuse
// the delivery for an outage.
func TestDeduperOutageMidLeaseIsNotALostLease(t *testing.T) {
	for name, retryDown := range map[string]time.Duration{"the renewal meets the outage": 0, "Redis skipped": time.Hour} {
		t.Run(name, func(t *testing.T) {
			r := startRedis(t)
			d := NewDeduper(r.Client(), time.Hour, ns(t))
			d.h.retryDown = retryDown
			ctx := context.Background()
			st, err := d.Claim(ctx, "VP1:successful", "a", time.Minute)
			require.NoError(t, err)
			require.Equal(t, webhook.Claimed, st)
			r.Stop()
			_, _ = d.Claim(ctx, "VP2:successful", "x", time.Minute) // mark Redis down
			err = d.Extend(ctx, "VP1:successful", "a", time.Minute)
			require.Error(t, err, "the lease was not renewed")
			assert.False(t, errors.Is(err, webhook.ErrLeaseLost), "an outage is not a lost lease: %v", err)

			// An event claimed in the fallback is renewed there, and lost there.
			st, err = d.Claim(ctx, "VP3:successful", "b", time.Minute)
			require.NoError(t, err)
			require.Equal(t, webhook.Claimed, st)
			assert.NoError(t, d.Extend(ctx, "VP3:successful", "b", time.Minute))
		})
	}
}

// endsCounter is an in-process limiter that counts what it is told of the
// requests it let go.
type endsCounter struct {
	vpay.Limiter
	granted, answered, unanswered int
}

func (c *endsCounter) Reserve(ctx context.Context, maxWait time.Duration) (vpay.Reservation, error) {
	w, err := c.Limiter.Reserve(ctx, maxWait)
	if err == nil && w.For <= 0 {
		c.granted++
	}
	return w, err
}

func (c *endsCounter) Answered(ctx context.Context, rl vpay.RateLimit, throttled bool) {
	c.answered++
	c.Limiter.Answered(ctx, rl, throttled)
}

func (c *endsCounter) Unanswered(ctx context.Context) {
	c.unanswered++
	c.Limiter.Unanswered(ctx)
}

// While Redis is down, the in-process fallback hears how every request it
// let go ended, unanswered ones too: one it never heard of again would stay
// in flight, and every later window of the fallback would hold a slot back
// for it.
func TestFallbackLimiterHearsUnansweredRequests(t *testing.T) {
	r := startRedis(t)
	l := NewLimiter(r.Client(), vpay.Plan{PerMinute: 6000}, ns(t))
	l.h.retryDown = time.Hour
	local := &endsCounter{Limiter: l.local}
	l.local = local
	ctx := context.Background()
	r.Stop()

	l.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 100, Reset: time.Now().Add(30 * time.Second)}, false)
	for range 5 {
		w, err := l.Reserve(ctx, 0)
		require.NoError(t, err)
		require.Zero(t, w.For)
		l.Unanswered(ctx)
	}
	assert.Equal(t, 5, local.granted, "the fallback let the requests go")
	assert.Equal(t, 1, local.answered)
	assert.Equal(t, 5, local.unanswered, "every unanswered request reached the fallback")
}

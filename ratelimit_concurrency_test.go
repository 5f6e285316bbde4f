package vpay

import (
	"context"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// The rate gate's state is read by RateLimit while answers write it: with
// -race, a write outside its lock fails here, not only in the fault
// matrix. Every state read is one an answer announced, never a mix.
func TestRateGateStateUnderConcurrentAnswers(t *testing.T) {
	c, _ := setup(t)
	base := time.Now().Truncate(time.Second).Add(time.Hour)
	ctx := context.Background()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				limit := 100 + g*1000 + i
				h := http.Header{}
				h.Set("X-RateLimit-Limit", strconv.Itoa(limit))
				h.Set("X-RateLimit-Remaining", strconv.Itoa(limit-1))
				h.Set("X-RateLimit-Reset", strconv.FormatInt(base.Add(time.Duration(limit)*time.Second).Unix(), 10))
				c.rate.answered(ctx, h, http.StatusOK)
			}
		})
		wg.Go(func() {
			for range 200 {
				rl := c.RateLimit()
				if rl.IsZero() {
					continue
				}
				if rl.Remaining != rl.Limit-1 || !rl.Reset.Equal(base.Add(time.Duration(rl.Limit)*time.Second)) {
					t.Errorf("RateLimit() = %+v: a mix of two answers", rl)
					return
				}
			}
		})
	}
	wg.Wait()
	assert.False(t, c.RateLimit().IsZero())
}

// The default limiter lets through exactly what the window holds however
// many goroutines ask at once.
func TestLimiterGrantsTheWindowOnceUnderConcurrency(t *testing.T) {
	clk := newFakeClock()
	l := newLocalLimiter(Plan{PerMinute: 120}, true, clk)
	ctx := context.Background()
	l.Answered(ctx, RateLimit{Limit: 60, Remaining: 50, Reset: clk.Now().Add(30 * time.Second)}, false)
	var granted atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 20 {
				if w, err := l.Reserve(ctx, 0); err == nil && w.For <= 0 {
					granted.Add(1)
				}
				l.Answered(ctx, RateLimit{Limit: 60, Remaining: 50, Reset: clk.Now().Add(30 * time.Second)}, false)
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(50), granted.Load(), "granted beyond the window's 50")
}

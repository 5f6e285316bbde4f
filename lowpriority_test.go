package vpay

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// windowOf10 answers Status with a 10-request window that the server
// counts down, and 429 past it.
func windowOf10(s *server, clk *fakeClock) *atomic.Int64 {
	var used atomic.Int64
	reset := clk.Now().Add(40 * time.Second)
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		n := used.Add(1)
		if n > 10 {
			rateHeaders(w, 10, 0, reset)
			writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED"}`)
			return
		}
		rateHeaders(w, 10, int(10-n), reset)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	return &used
}

func TestLowPriorityUsesItsShareAndNeverWaits(t *testing.T) {
	for _, tt := range []struct {
		opts []Option
		want int64
	}{
		{nil, 3}, // the default share, half: 5 of 10, less the token fetch and the first call
		{[]Option{WithLowPriorityShare(0.3)}, 1},
	} {
		c, s, clk := setupClock(t, tt.opts...)
		used := windowOf10(s, clk)
		bg := WithLowPriority(context.Background())
		assert.True(t, IsLowPriority(bg))
		assert.False(t, IsLowPriority(context.Background()))
		_, err := c.Status(context.Background(), "VP1") // a normal call learns the window
		require.NoError(t, err)
		var ok int64
		for range 10 {
			if _, err := c.Status(bg, "VP1"); err == nil {
				ok++
			} else {
				assert.ErrorIs(t, err, ErrRateLimited)
				var e *Error
				require.ErrorAs(t, err, &e)
				assert.False(t, e.RateLimit.Reset.IsZero(), "the error says when to try again")
			}
		}
		assert.Equal(t, tt.want, ok, "background work stops at its share of the window")
		assert.Empty(t, clk.Sleeps(), "a low-priority call never waits")
		for used.Load() < 10 {
			_, err := c.Status(context.Background(), "VP1")
			require.NoError(t, err, "the rest of the window is the customers'")
		}
		assert.EqualValues(t, 10, used.Load(), "and no request earned a 429")
	}
	_, err := NewClient(testUser, testKey, WithLowPriorityShare(0))
	assert.Error(t, err)
	_, err = NewClient(testUser, testKey, WithLowPriorityShare(1.5))
	assert.Error(t, err)
}

func TestLowPriorityDoesNotWaitAfterA429(t *testing.T) {
	c, s, clk := setupClock(t)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("Retry-After", "20")
		writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED"}`)
	})
	_, err := c.Status(WithLowPriority(context.Background()), "VP1")
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.EqualValues(t, 1, calls.Load())
	assert.Empty(t, clk.Sleeps())
}

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
	"github.com/stretchr/testify/require"
)

// A request that gets no answer (a dropped connection, a timeout, a ctx
// cancelled before it left) must not hold a slot of the rate budget for
// ever: after 15 of them on Starter (20 a window), every later window lets
// the whole budget through, and the server throttles nothing.
func TestUnansweredRequestsDoNotLeakTheRateBudget(t *testing.T) {
	c, s, clk := setupClock(t, WithPlan(PlanStarter), WithMaxRetries(0), WithMaxWait(10*time.Second))
	var (
		mu      sync.Mutex
		counted = map[int64]int{} // requests the server counted, by window (unix minute)
		mode    atomic.Value      // "ok", "drop" or "hang"
	)
	mode.Store("ok")
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		now := clk.Now()
		win := now.Unix() / 60
		mu.Lock()
		counted[win]++
		n := counted[win]
		mu.Unlock()
		switch mode.Load() {
		case "drop":
			panic(http.ErrAbortHandler) // the connection closes, no answer
		case "hang":
			await(t, r.Context().Done(), "the client to give up") // answers only then
			return
		}
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(max(20-n, 0)))
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt((win+1)*60, 10))
		if n > 20 {
			writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED","message":"slow down"}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	status := func() error {
		_, err := c.Status(ctx, "VP1")
		return err
	}

	// Window 1: one answer says where the window stands (the token fetch
	// took a slot too), then 15 requests get no answer, 5 of each kind.
	require.NoError(t, status())
	mode.Store("drop")
	for range 5 {
		assert.Error(t, status(), "dropped connection")
	}
	mode.Store("hang")
	for range 5 {
		tctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		_, err := c.Status(tctx, "VP1")
		cancel()
		assert.ErrorIs(t, err, context.DeadlineExceeded, "timed out")
	}
	mode.Store("ok")
	for range 5 {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		_, err := c.Status(cctx, "VP1")
		assert.ErrorIs(t, err, context.Canceled, "cancelled before it left")
	}

	// Every later window: the whole budget, no wait, no 429.
	for w := 1; w <= 3; w++ {
		clk.Advance(time.Minute)
		for i := range 20 {
			require.NoError(t, status(), "window %d, request %d: the client's own limiter refused it", w+1, i+1)
		}
		assert.ErrorIs(t, status(), ErrRateLimited, "window %d: the 21st request waits for the next window", w+1)
	}
	mu.Lock()
	defer mu.Unlock()
	for win, n := range counted {
		assert.LessOrEqual(t, n, 20, "window %d: the server was sent more than its limit", win)
	}
}

// accountingLimiter counts what the client tells a Limiter: every request
// let go must be followed by exactly one Observe or Unanswered.
type accountingLimiter struct {
	Limiter
	granted, observed, unanswered atomic.Int64
	// deadCtx counts the times the limiter was told with a ctx that had
	// ended: a shared limiter could not reach its store with it.
	deadCtx atomic.Int64
}

func (l *accountingLimiter) Reserve(ctx context.Context, maxWait time.Duration) (Reservation, error) {
	w, err := l.Limiter.Reserve(ctx, maxWait)
	if err == nil && w.For <= 0 {
		l.granted.Add(1)
	}
	return w, err
}

func (l *accountingLimiter) Answered(ctx context.Context, rl RateLimit, throttled bool) {
	l.observed.Add(1)
	l.Limiter.Answered(ctx, rl, throttled)
}

func (l *accountingLimiter) Unanswered(ctx context.Context) {
	l.unanswered.Add(1)
	if ctx.Err() != nil {
		l.deadCtx.Add(1)
	}
	l.Limiter.Unanswered(ctx)
}

func TestEveryRequestLetGoIsAccountedOnce(t *testing.T) {
	lim := &accountingLimiter{Limiter: NewLimiter(Plan{PerMinute: 6000})}
	c, s := setup(t, WithLimiter(lim), WithMaxRetries(1))
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		switch calls.Add(1) % 4 {
		case 0:
			panic(http.ErrAbortHandler)
		case 1:
			writeJSON(w, 500, `{"status":"error","message":"boom"}`)
		default:
			writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
		}
	})
	ctx := context.Background()
	for range 12 {
		_, _ = c.Status(ctx, "VP1")
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, _ = c.Status(cctx, "VP1")

	assert.Positive(t, lim.unanswered.Load(), "the dropped and cancelled requests")
	assert.Zero(t, lim.deadCtx.Load(), "the limiter is told with a ctx that can still reach a store")
	assert.Positive(t, lim.observed.Load())
	assert.Equal(t, lim.granted.Load(), lim.observed.Load()+lim.unanswered.Load(),
		"granted %d, observed %d, unanswered %d", lim.granted.Load(), lim.observed.Load(), lim.unanswered.Load())
}

// A token that expires while the call waits for the window is fetched
// again; when that fetch fails, the slot the wait was granted is never
// used, and the limiter is told.
func TestSlotGrantedBeforeAFailedTokenRefetchIsAccounted(t *testing.T) {
	clk := newFakeClock()
	lim := &accountingLimiter{Limiter: newLocalLimiter(PlanStarter, true, clk)}
	c, s := setup(t, withClock(clk), WithLimiter(lim), WithMaxRetries(0), WithMaxWait(time.Minute))
	s.now = clk.Now
	s.lifetime = "20"
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(clk.Now().Add(30*time.Second).Unix(), 10))
		s.authDown.Store(true)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	_, err := c.Status(ctx, "VP1")
	require.NoError(t, err)
	_, err = c.Status(ctx, "VP1") // waits 30 s for the window: the 20 s token expires
	require.Error(t, err, "the token could not be fetched again")
	assert.Equal(t, lim.granted.Load(), lim.observed.Load()+lim.unanswered.Load(),
		"granted %d, observed %d, unanswered %d", lim.granted.Load(), lim.observed.Load(), lim.unanswered.Load())
	assert.Positive(t, lim.unanswered.Load())
}

// A retry that gets no answer is reported as unanswered like a first
// attempt: the first attempt's answer (a 503) does not stand for it, or a
// shared limiter would count the retry's slot as used for ever.
func TestAnUnansweredRetryIsReportedUnanswered(t *testing.T) {
	clk := newFakeClock()
	lim := &accountingLimiter{Limiter: newLocalLimiter(Plan{PerMinute: 6000}, true, clk)}
	c, s := setup(t, withClock(clk), WithLimiter(lim), WithMaxRetries(1))
	s.now = clk.Now
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 503, `{"status":"error","message":"busy"}`)
			return
		}
		panic(http.ErrAbortHandler) // the retry: the connection closes, no answer
	})
	_, err := c.Token(context.Background())
	require.NoError(t, err, "the token fetch is accounted before the call")
	observed, unanswered := lim.observed.Load(), lim.unanswered.Load()

	_, err = c.Status(context.Background(), "VP1")
	require.Error(t, err)
	// net/http may itself resend a GET whose reused connection closed
	// with no answer: that is still the one retry the limiter let go.
	require.GreaterOrEqual(t, calls.Load(), int64(2), "the 503 was retried")
	assert.Equal(t, int64(1), lim.observed.Load()-observed, "the 503 was answered")
	assert.Equal(t, int64(1), lim.unanswered.Load()-unanswered, "the retry was not")
}

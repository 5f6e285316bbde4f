package vpay

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vonsung/vpay-go/internal/testutil"
)

// The default limiter's rules, one by one, on a fake clock: each test
// pins a rule that a one-operator slip would break.

func newEdgeLimiter(plan Plan) (*localLimiter, *fakeClock) {
	clk := newFakeClock() // 18:00:00 UTC
	return newLocalLimiter(plan, true, clk), clk
}

func mustGo(t *testing.T, l *localLimiter, maxWait time.Duration, what string) {
	t.Helper()
	w, err := l.Reserve(context.Background(), maxWait)
	require.NoError(t, err, what)
	require.Zero(t, w.For, what)
}

func TestDailyQuotaCountsEveryRequestAndResetsAtUTCMidnight(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120, PerDay: 3})
	ctx := context.Background()
	l.Answered(ctx, RateLimit{Limit: 10, Remaining: 10, Reset: clk.Now().Add(30 * time.Second)}, false)
	for i := range 3 {
		mustGo(t, l, time.Minute, "request "+strconv.Itoa(i+1)+" of the day")
	}
	_, err := l.Reserve(ctx, time.Minute)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.Contains(t, e.Message, "daily quota of 3")
	assert.Equal(t, time.Date(2026, 5, 31, 0, 0, 0, 0, time.UTC), e.RateLimit.Reset.UTC(), "the quota resets at the next UTC midnight")
}

func TestProbesCountAgainstTheDailyQuota(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120, PerDay: 2})
	ctx := context.Background()
	mustGo(t, l, time.Minute, "the first request of the day")
	l.Answered(ctx, RateLimit{Reset: clk.Now().Add(24 * time.Hour)}, true)
	clk.Advance(61 * time.Second)
	mustGo(t, l, time.Minute, "the probe") // the second of the day
	l.Answered(ctx, RateLimit{Reset: clk.Now().Add(24 * time.Hour)}, true)
	clk.Advance(2*time.Minute + time.Second)
	_, err := l.Reserve(ctx, time.Minute)
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Contains(t, err.Error(), "daily quota", "the probe counted")
}

func TestPacingWaitOfExactlyMaxWaitWaits(t *testing.T) {
	l, _ := newEdgeLimiter(Plan{PerMinute: 60}) // a burst of one, then one a second
	mustGo(t, l, time.Second, "the burst")
	w, err := l.Reserve(context.Background(), time.Second)
	require.NoError(t, err, "a wait of exactly maxWait is allowed")
	assert.Equal(t, time.Second, w.For)
}

func TestLowPriorityShareMessage(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	l.Answered(context.Background(), RateLimit{Limit: 10, Remaining: 5, Reset: clk.Now().Add(30 * time.Second)}, false)
	_, err := l.Reserve(withShare(WithLowPriority(context.Background()), 0.5), 0)
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Contains(t, err.Error(), "low-priority share (50%) of the window of 10 spent")
}

// A slot held for a straggler comes back once, for a straggler only.
func TestStragglerSlotsComeBackOnceEach(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	ctx := context.Background()
	end := clk.Now().Add(10 * time.Second)
	l.Answered(ctx, RateLimit{Limit: 4, Remaining: 4, Reset: end}, false)
	for range 4 {
		mustGo(t, l, time.Minute, "the old window")
	}
	for rem := 2; rem >= 0; rem-- {
		l.Answered(ctx, RateLimit{Limit: 4, Remaining: rem, Reset: end}, false) // then one in flight
	}
	clk.Advance(10 * time.Second)
	for range 3 {
		mustGo(t, l, time.Minute, "the new window, one slot held")
	}
	w, _ := l.Reserve(ctx, time.Minute)
	require.Positive(t, w.For, "one slot held for the straggler")
	// Its answer shows it counted in the old window: its slot comes back,
	// once; a second late answer gives nothing.
	l.Answered(ctx, RateLimit{Limit: 4, Remaining: 0, Reset: end}, false)
	mustGo(t, l, time.Minute, "the straggler's slot")
	l.Answered(ctx, RateLimit{Limit: 4, Remaining: 0, Reset: end}, false)
	w, _ = l.Reserve(ctx, time.Minute)
	assert.Positive(t, w.For, "no second slot for one straggler")
}

func TestThrottleWithoutALimitKeepsTheKnownLimit(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	ctx := context.Background()
	l.Answered(ctx, RateLimit{Limit: 10, Remaining: 5, Reset: clk.Now().Add(60 * time.Second)}, false)
	l.Answered(ctx, RateLimit{Reset: clk.Now().Add(5 * time.Second)}, true) // a 429 with Retry-After only
	clk.Advance(5 * time.Second)
	for i := range 10 {
		mustGo(t, l, time.Minute, "request "+strconv.Itoa(i+1)+" of the window after the 429")
	}
}

// While probing, a probe answered "still spent" keeps the doubled interval.
func TestProbeAnsweredSpentKeepsItsInterval(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	ctx := context.Background()
	l.Answered(ctx, RateLimit{Limit: 10, Remaining: 5, Reset: clk.Now().Add(time.Minute)}, false)
	l.Answered(ctx, RateLimit{Reset: clk.Now().Add(24 * time.Hour)}, true)
	clk.Advance(61 * time.Second)
	mustGo(t, l, time.Minute, "the first probe")
	l.Answered(ctx, RateLimit{Limit: 10, Remaining: 0, Reset: clk.Now().Add(23 * time.Hour)}, false)
	clk.Advance(61 * time.Second)
	_, err := l.Reserve(ctx, time.Minute)
	assert.ErrorIs(t, err, ErrRateLimited, "the next probe is two minutes on, not one")
	clk.Advance(60 * time.Second)
	mustGo(t, l, time.Minute, "the second probe")
}

func TestWindowLengthIsLearntFromSuccessiveResets(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	ctx := context.Background()
	start := clk.Now()
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 2, Reset: start.Add(30 * time.Second)}, false)
	clk.Advance(30 * time.Second)
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 2, Reset: start.Add(60 * time.Second)}, false)
	mustGo(t, l, time.Minute, "1")
	mustGo(t, l, time.Minute, "2")
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 1, Reset: start.Add(60 * time.Second)}, false)
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 0, Reset: start.Add(60 * time.Second)}, false)
	clk.Advance(30 * time.Second) // the window ends
	mustGo(t, l, time.Minute, "3")
	mustGo(t, l, time.Minute, "4")
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, w.For, "the next window is guessed 30 s long, as the Resets showed")
}

func TestAnAnswerThatFreesTheWindowWakesTheWaiters(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	ctx := context.Background()
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 0, Reset: clk.Now().Add(30 * time.Second)}, false)
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	require.NotNil(t, w.Wake)
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 0, Reset: clk.Now().Add(30 * time.Second)}, false)
	select {
	case <-w.Wake:
		t.Fatal("woken by an answer that leaves the window spent")
	default:
	}
	l.Answered(ctx, RateLimit{Limit: 2, Remaining: 2, Reset: clk.Now().Add(90 * time.Second)}, false)
	select {
	case <-w.Wake:
	default:
		t.Fatal("not woken by an answer that frees the window")
	}
}

// waitingLimiter asks every normal call to wait once for wait.
type waitingLimiter struct {
	wait  time.Duration
	asked int
}

func (l *waitingLimiter) Reserve(context.Context, time.Duration) (Reservation, error) {
	l.asked++
	if l.asked == 1 {
		return Reservation{For: l.wait}, nil
	}
	return Reservation{}, nil
}
func (l *waitingLimiter) Answered(context.Context, RateLimit, bool) {}
func (l *waitingLimiter) Unanswered(context.Context)                {}

func TestLowPriorityCallIsRefusedWhenTheLimiterSaysWait(t *testing.T) {
	lim := &waitingLimiter{wait: 10 * time.Millisecond}
	c, s, clk := setupClock(t, WithLimiter(lim))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, _ = c.Token(context.Background())
	lim.asked = 0 // the next call is asked to wait
	before := len(clk.Sleeps())
	_, err := c.Status(WithLowPriority(context.Background()), "VP1")
	assert.ErrorIs(t, err, ErrRateLimited, "background work never waits")
	assert.Len(t, clk.Sleeps(), before, "not even 10 ms")
}

func TestARateLimitWaitOfASecondIsLogged(t *testing.T) {
	lim := &waitingLimiter{wait: time.Second}
	var logs testutil.LogBuffer
	c, s, _ := setupClock(t, WithLimiter(lim), WithLogger(logs.Logger()))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "waiting for the window to reset")
}

func TestA429WaitOfExactlyTheBudgetIsWaited(t *testing.T) {
	var logs testutil.LogBuffer
	c, s, clk := setupClock(t, WithMaxWait(2*time.Second), WithLogger(logs.Logger()))
	calls := 0
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		calls++
		if calls == 1 {
			w.Header().Set("Retry-After", "2")
			writeJSON(w, 429, `{"status":"error","message":"slow down"}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err, "a 2 s wait fits a 2 s budget")
	assert.Contains(t, clk.Sleeps(), 2*time.Second)
	assert.Contains(t, logs.String(), "429: waiting", "a wait of a second or more is logged")
}

func TestRetryAfterZeroIsValid(t *testing.T) {
	now := time.Now()
	d, ok, issue := retryAfter(http.Header{"Retry-After": {"0"}}, now, http.ParseTime)
	assert.True(t, ok)
	assert.Zero(t, d)
	assert.Zero(t, issue)
	rl, ok, issues := parseRateLimit(http.Header{"X-Ratelimit-Remaining": {"0.0"}, "X-Ratelimit-Limit": {"20"}}, now, http.ParseTime)
	assert.True(t, ok)
	assert.Zero(t, issues, "0.0 is a valid Remaining")
	assert.Equal(t, 20, rl.Limit)
}

// The Date header's parse is remembered for the same text only.
func TestEachDateHeaderIsReadForItself(t *testing.T) {
	c, _ := setup(t)
	now := time.Now().Truncate(time.Second)
	reset := strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	h := func(date time.Time) http.Header {
		return http.Header{"X-Ratelimit-Limit": {"20"}, "X-Ratelimit-Remaining": {"5"}, "X-Ratelimit-Reset": {reset},
			"Date": {date.UTC().Format(http.TimeFormat)}}
	}
	a := c.rate.answered(context.Background(), h(now.Add(-10*time.Minute)), 200) // the server's clock 10 min behind
	b := c.rate.answered(context.Background(), h(now), 200)                      // in step
	assert.InDelta(t, (10 * time.Minute).Seconds(), a.Reset.Sub(b.Reset).Seconds(), 2, "the second Date was read, not the first reused")
}

// The errors a call returns say which call, even when they come from a
// limiter or the context rather than an answer.
func TestErrorsNameTheirCall(t *testing.T) {
	lim := &switchLimiter{Limiter: NewLimiter(Plan{PerMinute: 6000})}
	c, _ := setup(t, WithLimiter(lim))
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	lim.refuse.Store(true)
	_, err = c.Status(context.Background(), "VP1")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "GET", e.Method)
	assert.Equal(t, "/transaction/status/", e.Path)

	c2, s := setup(t, WithMaxRetries(0))
	s.authDown.Store(true)
	_, err = c2.Status(context.Background(), "VP1")
	require.ErrorAs(t, err, &e)
	assert.Equal(t, "/auth/", e.Path, "a failed token fetch names /auth/, not the call that needed it")
}

func TestAFailureAfterTheCtxEndedMatchesTheCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	c, s := setup(t, WithMaxRetries(3))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		cancel() // the caller gives up while the server fails
		writeJSON(w, 500, `{"status":"error","message":"boom"}`)
	})
	_, err := c.Status(ctx, "VP1")
	assert.ErrorIs(t, err, context.Canceled)

	c2, s2 := setup(t, WithMaxRetries(0))
	s2.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 500, `{"status":"error","message":"boom"}`)
	})
	_, err = c2.Status(context.Background(), "VP1")
	assert.False(t, errors.Is(err, context.Canceled), "a live ctx is no cause")
}

func TestAnswerCodesAndStatuses(t *testing.T) {
	for _, tt := range []struct {
		status  int
		body    string
		code    ErrorCode
		unknown bool // a Pay meeting it may have been made
	}{
		{300, `{"status":"pending","transaction_id":"VP1"}`, "", false},
		{429, `{"status":"error","message":"slow"}`, CodeRateLimited, false},
		{500, `{"status":"error","message":"boom"}`, "", true},
		{400, `{"status":"error","error_code":"NETWORK_ERROR","message":"momo down"}`, CodeNetworkError, true},
		{400, `{"status":"error","error_code":"INVALID_PHONE","message":"bad phone"}`, CodeInvalidPhone, false},
	} {
		c, s := setup(t, WithMaxRetries(0), WithMaxWait(0))
		s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, tt.status, tt.body) })
		_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0790000000", Reference: "R1"})
		var e *Error
		require.ErrorAs(t, err, &e, "%d %s is an error", tt.status, tt.body)
		assert.Equal(t, tt.code, e.Code, "%d %s", tt.status, tt.body)
		assert.Equal(t, tt.unknown, errors.Is(err, ErrOutcomeUnknown), "%d %s", tt.status, tt.body)
	}
}

// switchLimiter refuses every request once refuse is set.
type switchLimiter struct {
	Limiter
	refuse atomic.Bool
}

func (l *switchLimiter) Reserve(ctx context.Context, maxWait time.Duration) (Reservation, error) {
	if l.refuse.Load() {
		return Reservation{}, errors.New("limiter store unreachable")
	}
	return l.Limiter.Reserve(ctx, maxWait)
}

// Only a failure to connect proves a request never left; a reset or a cut
// after the connection was made does not.
func TestNotSentOnlyWhenTheConnectionWasNeverMade(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Err: errors.New("no route to host")}, true},
		{&net.OpError{Op: "read", Err: syscall.ECONNREFUSED}, true},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, false},
		{&net.OpError{Op: "write", Err: syscall.EPIPE}, false},
		{io.ErrUnexpectedEOF, false},
		{context.DeadlineExceeded, false},
	} {
		assert.Equal(t, tt.want, notSent(tt.err), "%v", tt.err)
	}
}

// An answer with Remaining and Reset but no Limit says how many requests
// are left, not the share background work has used: it is not refused.
func TestLowPriorityWithoutAKnownLimit(t *testing.T) {
	l, clk := newEdgeLimiter(Plan{PerMinute: 120})
	l.Answered(context.Background(), RateLimit{Remaining: 5, Reset: clk.Now().Add(30 * time.Second)}, false)
	w, err := l.Reserve(withShare(WithLowPriority(context.Background()), 0.5), 0)
	require.NoError(t, err)
	assert.Zero(t, w.For)
}

package vpay

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rateHeaders(w http.ResponseWriter, limit, remaining int, reset time.Time) {
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
}

func TestRateLimitParsedOnSuccessAndError(t *testing.T) {
	c, s, clk := setupClock(t, WithMaxRetries(0))
	reset := clk.Now().Add(40 * time.Second)
	fail := false
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		if fail {
			rateHeaders(w, 120, 117, reset)
			writeJSON(w, 400, `{"status":"error","message":"bad id"}`)
			return
		}
		rateHeaders(w, 120, 118, reset)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	assert.True(t, c.RateLimit().IsZero())
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	rl := c.RateLimit()
	assert.Equal(t, 118, rl.Remaining)
	assert.Equal(t, 120, rl.Limit)
	assert.WithinDuration(t, reset, rl.Reset, 0)
	fail = true
	_, err = c.Status(context.Background(), "VP1")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 117, e.RateLimit.Remaining)
	assert.Equal(t, 117, c.RateLimit().Remaining)
}

func TestSpentWindowWaitsInsteadOf429(t *testing.T) {
	c, s, clk := setupClock(t)
	reset := clk.Now().Add(20 * time.Second)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		if n > 1 && clk.Now().Before(reset) {
			writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED"}`)
			return
		}
		rateHeaders(w, 20, 0, reset)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	_, err := c.Status(ctx, "VP1")
	require.NoError(t, err)
	_, err = c.Status(ctx, "VP1")
	require.NoError(t, err, "the second call waited for the reset instead of earning a 429")
	assert.Contains(t, clk.Sleeps(), 20*time.Second)
	assert.EqualValues(t, 2, calls.Load())
}

func TestSpentWindowBeyondMaxWaitFailsFast(t *testing.T) {
	c, s, clk := setupClock(t, WithMaxWait(10*time.Second))
	reset := clk.Now().Add(45 * time.Second)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rateHeaders(w, 20, 0, reset)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "VP1")
	assert.ErrorIs(t, err, ErrRateLimited)
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.WithinDuration(t, reset, e.RateLimit.Reset, 0, "the error says when to come back")
	assert.EqualValues(t, 1, calls.Load(), "no request sent that would get a 429")
	assert.Empty(t, clk.Sleeps(), "it failed without waiting")

	// A ctx deadline shorter than the wait fails fast the same way.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c2, s2, clk2 := setupClock(t)
	s2.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 20, 0, clk2.Now().Add(45*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, _ = c2.Status(context.Background(), "VP1")
	_, err = c2.Status(ctx, "VP1")
	assert.ErrorIs(t, err, ErrRateLimited)
}

func Test429ThenSuccess(t *testing.T) {
	for name, header := range map[string]func(now time.Time) (string, string){
		"reset header": func(now time.Time) (string, string) {
			return "X-RateLimit-Reset", strconv.FormatInt(now.Add(7*time.Second).Unix(), 10)
		},
		"retry-after seconds": func(time.Time) (string, string) { return "Retry-After", "7" },
		"retry-after date": func(now time.Time) (string, string) {
			return "Retry-After", now.Add(7 * time.Second).UTC().Format(http.TimeFormat)
		},
	} {
		t.Run(name, func(t *testing.T) {
			c, s, clk := setupClock(t)
			var calls atomic.Int64
			s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					k, v := header(clk.Now())
					w.Header().Set(k, v)
					w.Header().Set("Date", clk.Now().UTC().Format(http.TimeFormat))
					writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED","message":"slow down"}`)
					return
				}
				writeJSON(w, 200, `{"status":"successful","transaction_id":"VP1"}`)
			})
			tx, err := c.Status(context.Background(), "VP1")
			require.NoError(t, err)
			assert.Equal(t, StatusSuccessful, tx.Status)
			assert.Contains(t, clk.Sleeps(), 7*time.Second)
		})
	}
}

func Test429WithResetHoursAwayFailsFast(t *testing.T) {
	c, s, clk := setupClock(t)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		rateHeaders(w, 1000, 0, clk.Now().Add(5*time.Hour))
		writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED","message":"daily quota"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.EqualValues(t, 1, calls.Load())
	assert.Empty(t, clk.Sleeps())
	_, err = c.Status(context.Background(), "VP1")
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.EqualValues(t, 1, calls.Load(), "later calls fail without asking the server")
}

func TestSkewedClockReadsResetAgainstDate(t *testing.T) {
	c, s, clk := setupClock(t)
	serverNow := clk.Now().Add(-time.Hour) // the local clock is an hour ahead
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Date", serverNow.UTC().Format(http.TimeFormat))
		rateHeaders(w, 20, 0, serverNow.Add(12*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	assert.WithinDuration(t, clk.Now().Add(12*time.Second), c.RateLimit().Reset, 0)
	_, err = c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	assert.Contains(t, clk.Sleeps(), 12*time.Second, "waited 12 s, not an hour less or more")
}

func TestCancelEndsRateLimitWaitAtOnce(t *testing.T) {
	waiting := make(chan struct{}, 1)
	logger := slog.New(signalHandler{msg: "vpay: waiting", ch: waiting})
	c, s := setup(t, WithLogger(logger))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 20, 0, time.Now().Add(50*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.Status(ctx, "VP1"); done <- err }()
	recv(t, waiting, "the client to log that it waits for the window")
	cancel()
	assert.ErrorIs(t, recv(t, done, "the cancelled call to return"), context.Canceled)
}

// signalHandler is a slog.Handler that signals when a record with msg is
// logged.
type signalHandler struct {
	msg string
	ch  chan struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.ch <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// take asks l until it grants a request, moving clk by each wait, and
// returns the total wait.
func take(t *testing.T, l Limiter, clk *fakeClock, maxWait time.Duration) (time.Duration, error) {
	t.Helper()
	var total time.Duration
	for {
		w, err := l.Reserve(context.Background(), maxWait-total)
		if err != nil || w.For == 0 {
			return total, err
		}
		total += w.For
		clk.Advance(w.For)
	}
}

func TestLimiterAdaptsToHeaders(t *testing.T) {
	clk := newFakeClock()
	l := newLocalLimiter(Plan{PerMinute: 60}, true, clk)
	ctx := context.Background()
	now := clk.Now()
	l.Answered(ctx, RateLimit{Limit: 60, Remaining: 2, Reset: now.Add(30 * time.Second)}, false)
	for range 2 {
		_, err := take(t, l, clk, time.Minute)
		require.NoError(t, err)
		clk.Advance(time.Second)
	}
	d, err := take(t, l, clk, time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 28*time.Second, d, "Remaining 2 spent: the third waits for the reset")

	// Another process used the key: Remaining lower than our count drains it.
	now = clk.Now()
	l.Answered(ctx, RateLimit{Limit: 60, Remaining: 50, Reset: now.Add(60 * time.Second)}, false)
	l.Answered(ctx, RateLimit{Limit: 60, Remaining: 0, Reset: now.Add(60 * time.Second)}, false)
	_, err = l.Reserve(ctx, time.Second)
	assert.ErrorIs(t, err, ErrRateLimited)

	// A plan upgrade scales the pace.
	before := l.bucket.Limit()
	l.Answered(ctx, RateLimit{Limit: 120, Remaining: 100, Reset: now.Add(60 * time.Second)}, false)
	assert.InDelta(t, float64(before)*2, float64(l.bucket.Limit()), 1e-9)
}

func TestColdRequestsCountedAgainstFirstWindow(t *testing.T) {
	clk := newFakeClock()
	l := newLocalLimiter(Plan{PerMinute: 600}, true, clk) // burst of 10
	for range 10 {
		d, err := l.Reserve(context.Background(), time.Minute)
		require.NoError(t, err)
		require.Zero(t, d)
	}
	// The first answer says 19 left; the 9 others in flight are not in it.
	l.Answered(context.Background(), RateLimit{Limit: 20, Remaining: 19, Reset: clk.Now().Add(2 * time.Second)}, false)
	assert.Equal(t, 10, l.remaining)

	// Had the server counted all ten before answering, nothing is in flight.
	l2 := newLocalLimiter(Plan{PerMinute: 600}, true, clk)
	for range 10 {
		_, _ = l2.Reserve(context.Background(), time.Minute)
	}
	l2.Answered(context.Background(), RateLimit{Limit: 20, Remaining: 10, Reset: clk.Now().Add(2 * time.Second)}, false)
	assert.Equal(t, 10, l2.remaining)
}

func TestDailyQuotaFailsFast(t *testing.T) {
	clk := newFakeClock()
	l := newLocalLimiter(Plan{PerMinute: 600, PerDay: 3}, true, clk)
	for range 3 {
		_, err := take(t, l, clk, time.Minute)
		require.NoError(t, err)
	}
	_, err := l.Reserve(context.Background(), time.Minute)
	assert.ErrorIs(t, err, ErrRateLimited)
	assert.Contains(t, err.Error(), "daily quota")
}

func TestLongWaitLoggedAtInfo(t *testing.T) {
	var logs bytes.Buffer
	c, s, clk := setupClock(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 20, 0, clk.Now().Add(3*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, _ = c.Status(context.Background(), "VP1")
	_, _ = c.Status(context.Background(), "VP1")
	assert.Contains(t, logs.String(), "level=INFO msg=\"vpay: waiting\" wait=3s")
}

// recordingLimiter notes how many tokens the server had issued each time
// the client asked to send.
type recordingLimiter struct {
	mu     sync.Mutex
	issued func() int64
	seen   []int64
}

func (r *recordingLimiter) Reserve(context.Context, time.Duration) (Reservation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen = append(r.seen, r.issued())
	return Reservation{}, nil
}
func (r *recordingLimiter) Answered(context.Context, RateLimit, bool) {}
func (r *recordingLimiter) Unanswered(context.Context)                {}

func TestReservationIsTakenAfterTheToken(t *testing.T) {
	rec := &recordingLimiter{}
	c, s := setup(t, WithLimiter(rec))
	rec.issued = s.authCalls.Load
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000"})
	require.NoError(t, err)
	// /auth/ reserved with no token issued; /pay/ only once the token was
	// there, so a refresh cannot delay a counted request into the next window.
	assert.Equal(t, []int64{0, 1}, rec.seen)
}

func TestHeaderInt(t *testing.T) {
	for v, want := range map[string]int64{"118": 118, " 7 ": 7, "118.0": 118, "4102444800": 4102444800 /* 2100 */} {
		var issues headerIssue
		got, ok := headerInt(http.Header{"X-Ratelimit-Reset": {v}}, "X-Ratelimit-Reset", &issues)
		assert.True(t, ok, v)
		assert.Equal(t, want, got, v)
		assert.Zero(t, issues, v)
	}
	for v, want := range map[string]headerIssue{"": 0, "-1": issueBadValue, "soon": issueBadValue, "1e300": issueBadValue, "NaN": issueBadValue, "-Inf": issueBadValue} {
		var issues headerIssue
		_, ok := headerInt(http.Header{"X-Ratelimit-Reset": {v}}, "X-Ratelimit-Reset", &issues)
		assert.False(t, ok, v)
		assert.Equal(t, want, issues, v)
	}
}

func TestParseRateLimitNeverFreezes(t *testing.T) {
	now := time.Date(2026, 5, 30, 18, 0, 15, 0, time.UTC)
	hdr := func(kv ...string) http.Header {
		h := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	unix := func(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }
	tests := []struct {
		name   string
		h      http.Header
		want   RateLimit
		ok     bool
		issues headerIssue
	}{
		{"documented", hdr("X-RateLimit-Limit", "120", "X-RateLimit-Remaining", "7", "X-RateLimit-Reset", unix(now.Add(45*time.Second))),
			RateLimit{120, 7, now.Add(45 * time.Second).Truncate(time.Second)}, true, 0},
		{"reset in milliseconds", hdr("X-RateLimit-Remaining", "7", "X-RateLimit-Reset", strconv.FormatInt(now.Add(45*time.Second).UnixMilli(), 10)),
			RateLimit{0, 7, now.Add(45 * time.Second)}, true, 0},
		{"reset ten days ahead clamped to a day", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", unix(now.Add(240*time.Hour))),
			RateLimit{0, 0, now.Add(24 * time.Hour)}, true, issueResetTooFar},
		{"reset in the year 4000 clamped", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "64060588800"),
			RateLimit{0, 0, now.Add(24 * time.Hour)}, true, issueResetTooFar},
		{"date three days off ignored", hdr("X-RateLimit-Remaining", "3", "X-RateLimit-Reset", unix(now.Add(30*time.Second)), "Date", now.Add(-72*time.Hour).Format(http.TimeFormat)),
			RateLimit{0, 3, now.Add(30 * time.Second).Truncate(time.Second)}, true, issueDateTooFar},
		{"no reset: the clock minute", hdr("X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "3"),
			RateLimit{20, 3, time.Date(2026, 5, 30, 18, 1, 0, 0, time.UTC)}, true, 0},
		{"negative remaining ignored", hdr("X-RateLimit-Limit", "20", "X-RateLimit-Remaining", "-5"),
			RateLimit{20, 0, time.Time{}}, true, issueBadValue},
		{"NaN reset ignored", hdr("X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "NaN"),
			RateLimit{0, 0, time.Date(2026, 5, 30, 18, 1, 0, 0, time.UTC)}, true, issueBadValue},
		{"none", hdr("Content-Type", "application/json"), RateLimit{}, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok, issues := parseRateLimit(tt.h, now, http.ParseTime)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.want.Limit, got.Limit)
			assert.Equal(t, tt.want.Remaining, got.Remaining)
			assert.True(t, tt.want.Reset.Equal(got.Reset), "reset %s, want %s", got.Reset, tt.want.Reset)
			assert.Equal(t, tt.issues, issues)
		})
	}
}

func TestRetryAfterNeverFreezes(t *testing.T) {
	now := time.Date(2026, 5, 30, 18, 0, 0, 0, time.UTC)
	tests := []struct {
		v      string
		want   time.Duration
		ok     bool
		issues headerIssue
	}{
		{"30", 30 * time.Second, true, 0},
		{"1.5", 1500 * time.Millisecond, true, 0},
		{"864000", 24 * time.Hour, true, issueRetryAfterTooFar},
		{"1e300", 24 * time.Hour, true, issueRetryAfterTooFar},
		{now.Add(10 * time.Second).Format(http.TimeFormat), 10 * time.Second, true, 0},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 24 * time.Hour, true, issueRetryAfterTooFar},
		{"-5", 0, false, issueBadValue},
		{"NaN", 0, false, issueBadValue},
		{"later", 0, false, issueBadValue},
	}
	for _, tt := range tests {
		d, ok, issues := retryAfter(http.Header{"Retry-After": {tt.v}}, now, http.ParseTime)
		assert.Equal(t, tt.want, d, tt.v)
		assert.Equal(t, tt.ok, ok, tt.v)
		assert.Equal(t, tt.issues, issues, tt.v)
	}
}

func TestAnnouncedWindowIsProbedAtDoublingIntervals(t *testing.T) {
	var logs bytes.Buffer
	c, s, clk := setupClock(t, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	s.lifetime = "86400" // one token for the whole test: every request counted is a status call
	var calls atomic.Int64
	var lying atomic.Bool
	lying.Store(true)
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if lying.Load() {
			// A proxy's bug: the window is spent for ten years.
			rateHeaders(w, 120, 0, clk.Now().Add(10*365*24*time.Hour))
			writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED"}`)
			return
		}
		rateHeaders(w, 120, 100, clk.Now().Add(30*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	status := func() error { _, err := c.Status(ctx, "VP1"); return err }

	assert.ErrorIs(t, status(), ErrRateLimited)
	assert.EqualValues(t, 1, calls.Load())
	assert.WithinDuration(t, clk.Now().Add(24*time.Hour), c.RateLimit().Reset, time.Second, "clamped to a day")
	assert.Equal(t, 1, strings.Count(logs.String(), "more than a day ahead"), "logged once")

	// Refused locally until a minute has passed, then one probe at
	// 1, 1+2, 1+2+4 ... minutes, each answered with the same lie.
	var sentAt []time.Duration
	start := clk.Now()
	for range 40 * 60 / 10 { // 40 minutes, a call every 10 s
		clk.Advance(10 * time.Second)
		before := calls.Load()
		assert.ErrorIs(t, status(), ErrRateLimited)
		if calls.Load() > before {
			sentAt = append(sentAt, clk.Now().Sub(start).Truncate(10*time.Second))
		}
	}
	assert.Equal(t, []time.Duration{time.Minute, 3 * time.Minute, 7 * time.Minute, 15 * time.Minute, 31 * time.Minute}, sentAt)
	assert.Equal(t, 1, strings.Count(logs.String(), "more than a day ahead"), "still logged once")

	// The announcement was wrong: the next probe's normal answer replaces it.
	lying.Store(false)
	clk.Advance(time.Hour)
	require.NoError(t, status(), "the probe goes and succeeds")
	for range 5 {
		require.NoError(t, status(), "and calls flow again without waiting")
	}
	assert.Empty(t, clk.Sleeps())
}

func TestPlanDailyCapIsNotProbed(t *testing.T) {
	c, s, clk := setupClock(t, WithPlan(Plan{PerMinute: 6000, PerDay: 2}))
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	for range 3 {
		_, _ = c.Status(context.Background(), "VP1")
	}
	for range 30 {
		clk.Advance(5 * time.Minute)
		if clk.Now().Day() != newFakeClock().Now().Day() {
			break
		}
		_, err := c.Status(context.Background(), "VP1")
		assert.ErrorIs(t, err, ErrRateLimited)
	}
	assert.EqualValues(t, 1, calls.Load(), "the plan's cap is the merchant's word: no probe (the token took one)")
}

func TestRemainingWithoutResetStillCounts(t *testing.T) {
	c, s, clk := setupClock(t)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", "0")
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	// The fake clock stands at 18:00:00 sharp: the minute ends in 60 s.
	assert.Contains(t, clk.Sleeps(), time.Minute, "Remaining 0 waits for the end of the minute")
}

// newBareClient is a client on clk with no WithPlan, against h.
func newBareClient(t *testing.T, clk *fakeClock, h http.HandlerFunc, opts ...Option) *Client {
	t.Helper()
	srv := newRawServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/auth/" {
			writeJSON(w, 200, `{"access":"access-1","mode":"sandbox","expires_in":300}`)
			return
		}
		h(w, r)
	})
	c, err := NewClient(testUser, testKey, append([]Option{WithBaseURL(srv), withClock(clk)}, opts...)...)
	require.NoError(t, err)
	return c
}

func TestNoHeadersAndNoPlanStopsPacing(t *testing.T) {
	noHeaders := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	for name, tt := range map[string]struct {
		opts   []Option
		paced  bool
		warned bool
	}{
		"no plan: pace only until the first answer": {opts: []Option{WithLogger(logger)}, paced: false, warned: true},
		"WithPlan: the plan's pace holds":           {opts: []Option{WithPlan(PlanStarter)}, paced: true},
	} {
		t.Run(name, func(t *testing.T) {
			logs.Reset()
			clk := newFakeClock()
			c := newBareClient(t, clk, noHeaders, tt.opts...)
			for range 60 {
				_, err := c.Status(context.Background(), "VP1")
				require.NoError(t, err)
			}
			var waited time.Duration
			for _, d := range clk.Sleeps() {
				waited += d
			}
			if tt.paced {
				assert.Greater(t, waited, time.Minute, "60 calls at 20/min take minutes")
			} else {
				assert.Zero(t, waited, "no 20/min pace for a key whose plan is unknown")
			}
			if tt.warned {
				assert.Equal(t, 1, strings.Count(logs.String(), "sends no X-RateLimit"), "warned once")
			}
		})
	}
}

func TestErrorKeepsRateLimitOnTransportFailure(t *testing.T) {
	c, s, clk := setupClock(t, WithMaxRetries(0))
	reset := clk.Now().Add(40 * time.Second)
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			rateHeaders(w, 120, 99, reset)
			writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
			return
		}
		// The connection dies before any answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		require.NoError(t, err)
		_ = conn.Close()
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	_, err = c.Status(context.Background(), "VP1")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Zero(t, e.HTTPStatus, "no answer arrived")
	assert.Equal(t, 99, e.RateLimit.Remaining, "the error carries the latest state the client knew")
	assert.WithinDuration(t, reset, e.RateLimit.Reset, time.Second)
}

// waiting reports whether someone waits on l's wake channel.
func (l *localLimiter) waiting() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.wake != nil
}

func TestWaitersWakeWhenAnAnswerFreesTheWindow(t *testing.T) {
	for name, spend := range map[string]func(l *localLimiter){
		"window spent": func(l *localLimiter) {
			l.Answered(context.Background(), RateLimit{Limit: 10, Remaining: 0, Reset: time.Now().Add(40 * time.Second)}, false)
		},
		"cold pacing": func(l *localLimiter) {
			_, _ = l.Reserve(context.Background(), time.Minute) // the one request a minute's bucket holds
		},
	} {
		t.Run(name, func(t *testing.T) {
			l := newLocalLimiter(Plan{PerMinute: 1}, true, realClock{})
			spend(l)
			g := newRateGate(l, realClock{}, 5*time.Minute, 0, slog.New(slog.DiscardHandler))
			done := make(chan error, 1)
			go func() { _, _, err := g.reserve(context.Background(), time.Now()); done <- err }()
			for !l.waiting() {
				runtime.Gosched() // until the waiter has been told to wait
			}
			// An answer shows a new window with requests left: the waiter
			// goes now, not after the 40 s (or the minute) it was told.
			l.Answered(context.Background(), RateLimit{Limit: 10, Remaining: 5, Reset: time.Now().Add(90 * time.Second)}, false)
			require.NoError(t, recv(t, done, "the waiter to wake"))
		})
	}
}

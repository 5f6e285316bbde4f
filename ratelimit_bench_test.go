package vpay

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// windowServer enforces a fixed-window limit the way V-Pay does, scaled
// down: limit requests per window, windows aligned to whole seconds so that
// X-RateLimit-Reset (unix seconds) is exact.
type windowServer struct {
	limit  int
	window time.Duration

	mu      sync.Mutex
	current int64
	used    int
	from    time.Time // requests served in [from, until) are counted
	until   time.Time
	served  atomic.Int64
	refused atomic.Int64
}

func (s *windowServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/auth/" {
		writeJSON(w, 200, `{"access":"tok","mode":"sandbox","expires_in":3600}`)
		return
	}
	now := time.Now()
	idx := now.UnixNano() / int64(s.window)
	s.mu.Lock()
	if idx != s.current {
		s.current, s.used = idx, 0
	}
	ok := s.used < s.limit
	if ok {
		s.used++
	}
	remaining := s.limit - s.used
	s.mu.Unlock()
	reset := time.Unix(0, (idx+1)*int64(s.window))
	w.Header().Set("X-RateLimit-Limit", strconv.Itoa(s.limit))
	w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(remaining))
	w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset.Unix(), 10))
	if !ok {
		s.refused.Add(1)
		writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED","message":"Too many requests"}`)
		return
	}
	if !now.Before(s.from) && now.Before(s.until) {
		s.served.Add(1)
	}
	writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
}

// noLimiter lets every request through at once: the baseline of an SDK that
// ignores rate limits.
type noLimiter struct{}

func (noLimiter) Reserve(context.Context, time.Duration) (Reservation, error) {
	return Reservation{}, nil
}
func (noLimiter) Answered(context.Context, RateLimit, bool) {}
func (noLimiter) Unanswered(context.Context)                {}

// BenchmarkRateLimitQuota drives a server that allows 600 requests a minute,
// scaled to 20 per 2-second window, with 32 goroutines for 5 windows, with
// the default limiter and with none. It reports requests served, 429s and
// the fraction of the quota used. Run it with -benchtime=1x.
func BenchmarkRateLimitQuota(b *testing.B) {
	const (
		limit      = 20
		window     = 2 * time.Second
		windows    = 5
		goroutines = 32
	)
	for _, variant := range []struct {
		name string
		opt  []Option
	}{
		{"default-limiter", []Option{WithPlan(Plan{PerMinute: limit * int(time.Minute/window)})}},
		{"no-limiter", []Option{WithLimiter(noLimiter{})}},
	} {
		b.Run(variant.name, func(b *testing.B) {
			for b.Loop() {
				// Start on a window boundary so the run covers whole windows.
				start := time.Now().Truncate(window).Add(window)
				srv := &windowServer{limit: limit, window: window, from: start, until: start.Add(windows * window)}
				ts := httptest.NewServer(srv)
				c, err := NewClient(testUser, testKey, append([]Option{WithBaseURL(ts.URL), WithMaxRetries(0)}, variant.opt...)...)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Token(context.Background()); err != nil {
					b.Fatal(err)
				}
				time.Sleep(time.Until(start))
				ctx, cancel := context.WithDeadline(context.Background(), start.Add(windows*window))
				var wg sync.WaitGroup
				for range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for ctx.Err() == nil {
							_, err := c.Status(ctx, "VP1")
							var e *Error
							if errors.As(err, &e) && e.HTTPStatus == 0 && errors.Is(err, ErrRateLimited) {
								// Refused by the limiter: come back at the reset,
								// as a merchant's worker would.
								select {
								case <-time.After(time.Until(e.RateLimit.Reset)):
								case <-ctx.Done():
								}
							}
						}
					}()
				}
				wg.Wait()
				cancel()
				ts.Close()
				b.ReportMetric(float64(srv.served.Load()), "served")
				b.ReportMetric(float64(srv.refused.Load()), "429s")
				b.ReportMetric(100*float64(srv.served.Load())/float64(limit*windows), "%quota")
			}
		})
	}
}

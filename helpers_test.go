package vpay

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vonsung/vpay-go/internal/testutil"
)

const (
	testUser = "vpay_sandbox_merchant"
	testKey  = "sk_sandbox_s3cr3tKEYvalue"
)

// fakeClock is a clock whose Sleep returns at once after moving time
// forward, and records what it was asked to wait.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 5, 30, 18, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

// Sleep moves the fake time by d at once. It ends early only on a ctx
// that is already done: a ctx deadline is wall-clock time, which the fake
// clock never compares itself with.
func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	if d > 0 {
		f.now = f.now.Add(d)
	}
	f.mu.Unlock()
	return nil
}

// SleepOrWake is Sleep: fake time passes at once, before any wake could.
func (f *fakeClock) SleepOrWake(ctx context.Context, d time.Duration, _ <-chan struct{}) error {
	return f.Sleep(ctx, d)
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// server is a test V-Pay mounted under /api/, so that a client that drops
// the base URL's path fails every test.
type server struct {
	*httptest.Server
	mux       *http.ServeMux
	authCalls atomic.Int64
	tokenSeq  atomic.Int64
	lifetime  string      // expires_in in the auth response
	authDown  atomic.Bool // /auth/ answers 503
	now       func() time.Time
}

func setup(t *testing.T, opts ...Option) (*Client, *server) {
	t.Helper()
	s := &server{mux: http.NewServeMux(), lifetime: `"300.0 seconds"`, now: time.Now}
	api := http.NewServeMux()
	api.HandleFunc("POST /auth/", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("apiUser") != testUser || r.Header.Get("apiKey") != testKey {
			writeJSON(w, 401, `{"status":"error","error_code":"INVALID_KEY","message":"bad key"}`)
			return
		}
		if s.authDown.Load() {
			writeJSON(w, 503, `{"status":"error","message":"auth is down"}`)
			return
		}
		s.authCalls.Add(1)
		n := s.tokenSeq.Add(1)
		writeJSON(w, 200, `{"access":"access-`+itoa(n)+`","refresh":"refresh-`+itoa(n)+`","mode":"sandbox","expires_in":`+s.lifetime+`}`)
	})
	api.Handle("/", s.mux)
	root := http.NewServeMux()
	root.Handle("/api/", http.StripPrefix("/api", api))
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server's Date follows the client's clock, fake or not, so
		// that only a test that means to skew the clocks does.
		w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
		root.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	c, err := NewClient(testUser, testKey, append([]Option{WithBaseURL(s.URL + "/api/"), WithPlan(Plan{PerMinute: 6000, PerDay: 0})}, opts...)...)
	require.NoError(t, err)
	return c, s
}

func itoa(n int64) string { b, _ := json.Marshal(n); return string(b) }

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// testMethod, testHeader and testJSONBody make a handler read like the
// request it expects.
func testMethod(t *testing.T, r *http.Request, want string) {
	t.Helper()
	assert.Equal(t, want, r.Method)
}

func testHeader(t *testing.T, r *http.Request, key, want string) {
	t.Helper()
	assert.Equal(t, want, r.Header.Get(key), "header %s", key)
}

func testJSONBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	assert.JSONEq(t, want, string(b))
}

// newRawServer serves h on loopback and returns its URL.
func newRawServer(t *testing.T, h http.HandlerFunc) string {
	t.Helper()
	s := httptest.NewServer(h)
	t.Cleanup(s.Close)
	return s.URL
}

func jsonDecode(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

// setupClock is setup with a fake clock shared by the client and the
// server's Date header.
func setupClock(t *testing.T, opts ...Option) (*Client, *server, *fakeClock) {
	t.Helper()
	clk := newFakeClock()
	c, s := setup(t, append([]Option{withClock(clk)}, opts...)...)
	s.now = clk.Now
	return c, s, clk
}

// await is testutil.Wait: for handlers and functions the client calls.
func await[T any](t *testing.T, ch <-chan T, what string) bool {
	t.Helper()
	return testutil.Wait(t, ch, what)
}

// recv is testutil.Recv.
func recv[T any](t *testing.T, ch <-chan T, what string) T {
	t.Helper()
	return testutil.Recv(t, ch, what)
}

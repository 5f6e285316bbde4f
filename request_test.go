package vpay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failingStore is a MemoryTokenStore whose Load fails from the nth call on,
// like a Redis that turns read-only or away in a failover.
type failingStore struct {
	*MemoryTokenStore
	loads  atomic.Int64
	failAt int64
	err    error
}

func (s *failingStore) Load(ctx context.Context) (*Token, error) {
	if s.loads.Add(1) >= s.failAt {
		return nil, s.err
	}
	return s.MemoryTokenStore.Load(ctx)
}

// failingLimiter lets the first n reservations through, then fails.
type failingLimiter struct {
	allow int64
	used  atomic.Int64
	err   error
}

func (l *failingLimiter) Reserve(context.Context, time.Duration) (Reservation, error) {
	if l.used.Add(1) > l.allow {
		return Reservation{}, l.err
	}
	return Reservation{}, nil
}
func (l *failingLimiter) Answered(context.Context, RateLimit, bool) {}
func (l *failingLimiter) Unanswered(context.Context)                {}

// assertOutcomeUnknown checks what a merchant needs after a Pay that may
// have reached V-Pay: an *Error that names the reference and says so.
func assertOutcomeUnknown(t *testing.T, err error, ref string) *Error {
	t.Helper()
	require.Error(t, err)
	var e *Error
	require.ErrorAs(t, err, &e, "every failure after a possible send is a *vpay.Error")
	assert.Equal(t, ref, e.Reference)
	assert.True(t, e.OutcomeUnknown)
	assert.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), ref)
	return e
}

func TestOutcomeUnknownSurvivesEveryLaterFailure(t *testing.T) {
	storeDown := errors.New("redis: READONLY You can't write against a read only replica")
	limiterDown := errors.New("limiter backend down")
	tests := []struct {
		name string
		// opts builds the client's options for this case; cancel ends the
		// call's context when the first attempt is answered.
		opts     func() []Option
		cancel   bool
		retryAns func(w http.ResponseWriter)
		wantIs   error
	}{
		{
			name: "token store fails on the retry",
			opts: func() []Option {
				// Load 1: first attempt; load 2: the retry.
				return []Option{WithTokenStore(&failingStore{MemoryTokenStore: NewMemoryTokenStore(), failAt: 2, err: storeDown})}
			},
			wantIs: storeDown,
		},
		{
			name:   "limiter fails on the retry",
			opts:   func() []Option { return []Option{WithLimiter(&failingLimiter{allow: 2, err: limiterDown})} },
			wantIs: limiterDown,
		},
		{
			name:   "ctx ends during the backoff",
			opts:   func() []Option { return nil },
			cancel: true,
			wantIs: context.Canceled,
		},
		{
			name: "retry refused with a 4xx",
			opts: func() []Option { return nil },
			retryAns: func(w http.ResponseWriter) {
				writeJSON(w, 400, `{"status":"error","error_code":"INVALID_AMOUNT","message":"no"}`)
			},
			wantIs: ErrInvalidAmount,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, s := setup(t, append([]Option{withClock(newFakeClock())}, tt.opts()...)...)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var calls atomic.Int64
			s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) == 1 {
					if tt.cancel {
						cancel()
					}
					writeJSON(w, 502, `{"status":"error","message":"bad gateway"}`)
					return
				}
				if tt.retryAns != nil {
					tt.retryAns(w)
					return
				}
				writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
			})
			_, err := c.Pay(ctx, &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-5"})
			assertOutcomeUnknown(t, err, "order-5")
			assert.ErrorIs(t, err, tt.wantIs, "the cause stays reachable")
		})
	}
}

func TestStoreErrorBeforeAnySendIsAnErrorNotUnknown(t *testing.T) {
	storeDown := errors.New("store down")
	c, s := setup(t, WithTokenStore(&failingStore{MemoryTokenStore: NewMemoryTokenStore(), failAt: 1, err: storeDown}))
	var calls atomic.Int64
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-6"})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.ErrorIs(t, err, storeDown)
	assert.Equal(t, "order-6", e.Reference)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "nothing was sent")
	assert.Zero(t, calls.Load())
}

func TestCancelledContextSendsNothingAndIsNotUnknown(t *testing.T) {
	c, s := setup(t)
	var calls atomic.Int64
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	_, err := c.Token(context.Background()) // a valid token: nothing else stops the send
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = c.Pay(ctx, &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-7"})
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "a cancelled ctx sends nothing")
	assert.Zero(t, calls.Load())
}

func TestNetworkErrorAt200ThenDuplicateIsUnknown(t *testing.T) {
	for _, first := range []int{200, 502} {
		c, s := setup(t, withClock(newFakeClock()))
		var calls atomic.Int64
		s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
			if calls.Add(1) == 1 {
				writeJSON(w, first, `{"status":"error","error_code":"NETWORK_ERROR","message":"MoMo unreachable"}`)
				return
			}
			writeJSON(w, 409, `{"status":"error","error_code":"DUPLICATE_REFERENCE","message":"reference used"}`)
		})
		_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-8"})
		assertOutcomeUnknown(t, err, "order-8")
		assert.ErrorIs(t, err, ErrDuplicateReference, "first answer HTTP %d", first)
		assert.Contains(t, err.Error(), "may have created the payment")
	}
}

func TestPayAnswerWithoutTransactionIsUnknown(t *testing.T) {
	for _, body := range []string{`{}`, `null`, `{"status":"PENDING"}`, `{"status":"success","transaction_id":""}`} {
		t.Run(body, func(t *testing.T) {
			c, s := setup(t)
			s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, 200, body) })
			p, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-9"})
			assert.Nil(t, p)
			assertOutcomeUnknown(t, err, "order-9")
		})
	}
}

// A request net/http must replay (an HTTP/2 connection lost before it was
// written) is replayed byte for byte: GetBody gives the body sent.
func TestRequestBodyCanBeReplayedExactly(t *testing.T) {
	_, s := setup(t)
	var sent, replayed []byte
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Path == "/api/pay/" {
			require.NotNil(t, r.GetBody, "a body net/http cannot replay")
			sent, _ = io.ReadAll(r.Body)
			rc, err := r.GetBody()
			require.NoError(t, err)
			replayed, _ = io.ReadAll(rc)
			r.Body = io.NopCloser(bytes.NewReader(sent))
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	c, err := NewClient(testUser, testKey, WithBaseURL(s.URL+"/api/"), WithHTTPClient(hc))
	require.NoError(t, err)
	_, err = c.Pay(context.Background(), &PayRequest{Amount: 500, Phone: "0780000000", Reference: "order-1"})
	require.NoError(t, err)
	require.NotEmpty(t, sent)
	assert.Equal(t, string(sent), string(replayed))
}

// countingClock is the real clock, counting its readings.
type countingClock struct {
	realClock
	reads atomic.Int64
}

func (c *countingClock) Now() time.Time { c.reads.Add(1); return time.Now() }

// A call that waits for nothing reads the clock twice: once before it is
// sent (the token's validity, the limiter, the attempt's start) and once
// when the answer comes (the rate-limit headers). Each reading costs tens
// of nanoseconds on the path every payment takes. An observer adds one
// reading for the operation's start, one for its end and one for the
// attempt's end; the attempt's start is the call's own reading.
func TestACallThatWaitsForNothingReadsTheClockTwice(t *testing.T) {
	full := &Observer{
		OperationStart: func(ctx context.Context, _ Operation) context.Context { return ctx },
		OperationEnd:   func(context.Context, OperationResult) {},
		AttemptStart:   func(ctx context.Context, _ Attempt) context.Context { return ctx },
		AttemptEnd:     func(context.Context, AttemptResult) {},
	}
	for _, tt := range []struct {
		name  string
		opts  []Option
		reads int64
	}{
		{"no observer", nil, 2},
		{"observer", []Option{WithObserver(full)}, 5},
	} {
		t.Run(tt.name, func(t *testing.T) {
			clk := &countingClock{}
			c, s := setup(t, append([]Option{withClock(clk)}, tt.opts...)...)
			s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
			})
			s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
				writeJSON(w, 200, `{"status":"successful","transaction_id":"VP1"}`)
			})
			ctx := context.Background()
			_, err := c.Token(ctx) // the token fetch is not what is counted
			require.NoError(t, err)
			for _, call := range []struct {
				name string
				do   func() error
			}{
				{"Pay", func() error {
					_, err := c.Pay(ctx, &PayRequest{Amount: 500, Phone: "0780000000", Reference: "order-1"})
					return err
				}},
				{"Status", func() error { _, err := c.Status(ctx, "VP1"); return err }},
			} {
				before := clk.reads.Load()
				require.NoError(t, call.do(), call.name)
				assert.Equal(t, tt.reads, clk.reads.Load()-before, "%s: clock readings", call.name)
			}
		})
	}
}

// An attempt starts when it leaves: after the token it waited for, and it
// lasts until its answer. The one reading of the clock a call makes must
// not date the request before a refresh it waited on.
func TestAttemptStartsAfterTheTokenItWaitedFor(t *testing.T) {
	type span struct {
		start time.Time
		took  time.Duration
	}
	var mu sync.Mutex
	spans := map[Op]span{}
	var clk *fakeClock
	obs := &Observer{AttemptEnd: func(_ context.Context, r AttemptResult) {
		mu.Lock()
		spans[r.Op] = span{r.Start, r.Duration}
		mu.Unlock()
		if r.Op == OpToken {
			clk.Advance(2 * time.Second) // the refresh took 2 s after its answer
		}
	}}
	c, s, fc := setupClock(t, WithObserver(obs))
	clk = fc
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		clk.Advance(3 * time.Second)
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	t0 := clk.Now()
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 500, Phone: "0780000000", Reference: "order-1"})
	require.NoError(t, err)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, t0, spans[OpToken].start, "the token fetch starts at once")
	assert.Equal(t, t0.Add(2*time.Second), spans[OpPay].start, "Pay leaves after the token came")
	assert.Equal(t, 3*time.Second, spans[OpPay].took)
}

// A ctx whose deadline comes before the window resets is refused at once
// with ErrRateLimited, on the real clock too: waiting until the deadline
// would only end in a time-out.
func TestDeadlineBeforeResetIsRefusedAtOnce(t *testing.T) {
	c, s := setup(t)
	reset := time.Now().Add(45 * time.Second).Unix()
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(reset, 10))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1") // learns the spent window
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = c.Status(ctx, "VP1")
	require.ErrorIs(t, err, ErrRateLimited)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "refused, not timed out")
	assert.NoError(t, ctx.Err(), "refused before the deadline")
}

// oversleepingClock is the fake clock whose waits overrun by a second, as
// a real timer's can on a busy machine.
type oversleepingClock struct{ *fakeClock }

func (o oversleepingClock) SleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	err := o.fakeClock.SleepOrWake(ctx, d, wake)
	o.Advance(time.Second)
	return err
}

// After a wait for the window, the call reads the clock again: the wait
// may have been cut short by an answer or overrun, so "before + the wait
// it was told" is not when the request leaves.
func TestAttemptAfterAWaitStartsWhenItLeaves(t *testing.T) {
	clk := oversleepingClock{newFakeClock()}
	var starts []time.Time
	obs := &Observer{AttemptStart: func(ctx context.Context, a Attempt) context.Context {
		if a.Op == OpStatus {
			starts = append(starts, a.Start)
		}
		return ctx
	}}
	c, s := setup(t, withClock(clk), WithObserver(obs))
	s.now = clk.Now
	var arrivals []time.Time
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		arrivals = append(arrivals, clk.Now())
		w.Header().Set("X-RateLimit-Limit", "20")
		w.Header().Set("X-RateLimit-Remaining", "0")
		w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(clk.Now().Add(5*time.Second).Unix(), 10))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	for range 2 { // the second waits for the window the first announced spent
		_, err := c.Status(context.Background(), "VP1")
		require.NoError(t, err)
	}
	require.Len(t, starts, 2)
	assert.Equal(t, arrivals, starts, "each attempt starts when it leaves")
	assert.Greater(t, starts[1].Sub(starts[0]), 5*time.Second, "the second waited, and overslept")
}

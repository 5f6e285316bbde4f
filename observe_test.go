package vpay

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type ctxTag struct{}

// tagOf is the chain of operations and attempts a context went through.
func tagOf(ctx context.Context) string {
	s, _ := ctx.Value(ctxTag{}).(string)
	return s
}

// eventLog records what an Observer is told, one line per event, each
// with the tag of the context it was given.
type eventLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *eventLog) add(ctx context.Context, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...)+" @"+tagOf(ctx))
}

func (l *eventLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

func (l *eventLog) observer() *Observer {
	return &Observer{
		OperationStart: func(ctx context.Context, op Operation) context.Context {
			l.add(ctx, "start %s ref=%s tx=%s low=%t", op.Op, op.Reference, op.TransactionID, op.LowPriority)
			return context.WithValue(ctx, ctxTag{}, tagOf(ctx)+"/"+string(op.Op))
		},
		OperationEnd: func(ctx context.Context, r OperationResult) {
			l.add(ctx, "end %s %s attempts=%d status=%s ref=%s tx=%s", r.Op, r.Outcome(), r.Attempts, r.Status, r.Reference, r.TransactionID)
		},
		AttemptStart: func(ctx context.Context, a Attempt) context.Context {
			l.add(ctx, "send %s %s %s resend=%d", a.Op, a.Method, a.Path, a.Resend)
			return context.WithValue(ctx, ctxTag{}, fmt.Sprintf("%s#%d", tagOf(ctx), a.Resend))
		},
		AttemptEnd: func(ctx context.Context, r AttemptResult) {
			l.add(ctx, "answer %s %d %s id=%s remaining=%d err=%t", r.Op, r.HTTPStatus, r.Code, r.RequestID, r.RateLimit.Remaining, r.Err != nil)
		},
		Retry: func(ctx context.Context, r RetryDecision) {
			l.add(ctx, "retry %s again=%t %s wait=%s retries=%d status=%d", r.Op, r.Again, r.Reason, r.Wait, r.Retries, r.HTTPStatus)
		},
		RateLimitWait: func(ctx context.Context, w RateLimitWait) {
			l.add(ctx, "ratewait %s %s %s", w.Op, w.Reason, w.Duration)
		},
		Refused: func(ctx context.Context, r Refusal) {
			l.add(ctx, "refused %s field=%s", r.Op, r.Field)
		},
		TokenRefresh: func(ctx context.Context, t TokenRefresh) {
			l.add(ctx, "token lifetime=%s err=%t", t.Lifetime, t.Err != nil)
		},
	}
}

// TestObserverSeesAPayWithARetryA429AndATokenFetch follows one Pay from a
// fresh client: the token fetch nested in it, a 502 retried, a 429 waited
// out, then the answer; each event in order, each in the context of the
// operation or attempt it belongs to.
func TestObserverSeesAPayWithARetryA429AndATokenFetch(t *testing.T) {
	var log eventLog
	// The transport sees the context the attempt's observer returned.
	var sentWith []string
	var mu sync.Mutex
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		sentWith = append(sentWith, tagOf(r.Context()))
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	c, s, clk := setupClock(t, WithObserver(log.observer()), WithHTTPClient(hc))
	var calls atomic.Int64
	s.mux.HandleFunc("POST /pay/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req-"+itoa(calls.Add(1)))
		switch calls.Load() {
		case 1:
			writeJSON(w, 502, `{"status":"error","message":"bad gateway"}`)
		case 2:
			w.Header().Set("Retry-After", "7")
			writeJSON(w, 429, `{"status":"error","error_code":"RATE_LIMITED"}`)
		default:
			rateHeaders(w, 60, 41, clk.Now().Add(30*time.Second))
			writeJSON(w, 200, `{"status":"PENNDING","transaction_id":"VP7","external_id":"order-7"}`)
		}
	})
	p, err := c.Pay(context.Background(), &PayRequest{Amount: 500, Phone: "0781234567", Reference: "order-7"})
	require.NoError(t, err)
	require.Equal(t, "VP7", p.TransactionID)

	lines := log.Lines()
	// The first backoff is random: read it from the log, then check it.
	var backoff time.Duration
	for _, l := range lines {
		if strings.HasPrefix(l, "retry pay again=true server_error") {
			var err error
			backoff, err = time.ParseDuration(strings.TrimPrefix(strings.Fields(l)[4], "wait="))
			require.NoError(t, err)
		}
	}
	assert.Equal(t, []string{
		"start pay ref=order-7 tx= low=false @",
		"start token ref= tx= low=false @/pay",
		"send token POST /auth/ resend=0 @/pay/token",
		"answer token 200  id= remaining=0 err=false @/pay/token#0",
		"token lifetime=5m0s err=false @/pay/token",
		"end token success attempts=1 status= ref= tx= @/pay/token",
		"send pay POST /pay/ resend=0 @/pay",
		"answer pay 502  id=req-1 remaining=0 err=true @/pay#0",
		"retry pay again=true server_error wait=" + backoff.String() + " retries=0 status=502 @/pay",
		"send pay POST /pay/ resend=1 @/pay",
		"answer pay 429 RATE_LIMITED id=req-2 remaining=0 err=true @/pay#1",
		"retry pay again=true rate_limited wait=7s retries=1 status=429 @/pay",
		"ratewait pay throttled 7s @/pay",
		"send pay POST /pay/ resend=2 @/pay",
		"answer pay 200  id=req-3 remaining=41 err=false @/pay#2",
		"end pay success attempts=3 status=pending ref=order-7 tx=VP7 @/pay",
	}, lines)
	assert.Equal(t, []string{"/pay/token#0", "/pay#0", "/pay#1", "/pay#2"}, sentWith, "each request carries its attempt's context")
}

func TestObserverSeesRefusalsAndDeclinedRetries(t *testing.T) {
	var log eventLog
	c, s, _ := setupClock(t, WithObserver(log.observer()))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 404, `{"status":"error","error_code":"NOT_FOUND","message":"no such transaction"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 5, Phone: "0781234567"})
	require.Error(t, err)
	assert.Equal(t, []string{
		"start pay ref= tx= low=false @",
		"refused pay field=PayRequest.Amount @/pay",
		"end pay refused attempts=0 status= ref= tx= @/pay",
	}, log.Lines(), "an invalid Pay is refused and sends nothing")

	log = eventLog{}
	_, err = c.Status(context.Background(), "VP404")
	require.Error(t, err)
	lines := log.Lines()
	require.NotEmpty(t, lines)
	assert.Equal(t, []string{
		"send status GET /transaction/status/ resend=0 @/status",
		"answer status 404 NOT_FOUND id= remaining=0 err=true @/status#0",
		"retry status again=false not_retryable wait=0s retries=0 status=404 @/status",
		"end status error attempts=1 status= ref= tx=VP404 @/status",
	}, lines[len(lines)-4:], "a 404 is not retried, and the observer is told why")
}

func TestObserverSeesARateLimitWaitAndARefusal(t *testing.T) {
	var log eventLog
	c, s, clk := setupClock(t, WithObserver(log.observer()), WithMaxWait(time.Minute))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		rateHeaders(w, 60, 0, clk.Now().Add(20*time.Second))
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	ctx := context.Background()
	_, err := c.Status(ctx, "VP1") // spends the window
	require.NoError(t, err)
	log = eventLog{}
	_, err = c.Status(ctx, "VP1")
	require.NoError(t, err)
	assert.Contains(t, log.Lines(), "ratewait status window 20s @/status", "the wait for the window is reported with its length")

	log = eventLog{}
	_, err = c.Status(WithLowPriority(ctx), "VP1")
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Equal(t, []string{
		"start status ref= tx=VP1 low=true @",
		"refused status field= @/status",
		"end status refused attempts=0 status= ref= tx=VP1 @/status",
	}, log.Lines(), "a low-priority call past its share is refused without sending")
}

func TestObserverWaitNestsItsPolls(t *testing.T) {
	var log eventLog
	c, s, _ := setupClock(t, WithObserver(log.observer()))
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) < 3 {
			writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
			return
		}
		writeJSON(w, 200, `{"status":"successful","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1") // the token, out of the way
	require.NoError(t, err)
	log = eventLog{}
	tx, err := c.Wait(context.Background(), "VP1")
	require.NoError(t, err)
	require.Equal(t, StatusSuccessful, tx.Status)
	var starts []string
	for _, l := range log.Lines() {
		if strings.HasPrefix(l, "start ") || strings.HasPrefix(l, "end ") {
			starts = append(starts, l)
		}
	}
	assert.Equal(t, []string{
		"start wait ref= tx=VP1 low=false @",
		"start status ref= tx=VP1 low=false @/wait",
		"end status success attempts=1 status=pending ref= tx=VP1 @/wait/status",
		"start status ref= tx=VP1 low=false @/wait",
		"end status success attempts=1 status=successful ref= tx=VP1 @/wait/status",
		"end wait success attempts=2 status=successful ref= tx=VP1 @/wait",
	}, starts)
}

func TestObserverOutcomes(t *testing.T) {
	unknown := &Error{OutcomeUnknown: true, Code: CodeDuplicateReference}
	for _, tt := range []struct {
		r    OperationResult
		want Outcome
	}{
		{OperationResult{}, OutcomeSuccess},
		{OperationResult{Err: invalid("PayRequest.Phone", ErrInvalidPhone, "bad")}, OutcomeRefused},
		{OperationResult{Err: &Error{Code: CodeRateLimited}}, OutcomeRefused},
		{OperationResult{Attempts: 1, Err: &Error{Code: CodeRateLimited}}, OutcomeError},
		{OperationResult{Attempts: 2, Err: unknown}, OutcomeUnknown},
		{OperationResult{Attempts: 1, Err: &Error{Err: context.Canceled}}, OutcomeCanceled},
		{OperationResult{Attempts: 1, Err: &Error{HTTPStatus: 400}}, OutcomeError},
	} {
		assert.Equal(t, tt.want, tt.r.Outcome(), "%v", tt.r.Err)
	}
}

// TestObserversAreJoined: two observers are both told, contexts passed
// along, ends in the reverse order of starts.
func TestObserversAreJoined(t *testing.T) {
	var order []string
	mk := func(name string) *Observer {
		return &Observer{
			OperationStart: func(ctx context.Context, op Operation) context.Context {
				order = append(order, name+" start after "+tagOf(ctx))
				return context.WithValue(ctx, ctxTag{}, tagOf(ctx)+name)
			},
			OperationEnd: func(ctx context.Context, r OperationResult) {
				order = append(order, name+" end in "+tagOf(ctx))
			},
		}
	}
	c, s, _ := setupClock(t, WithObserver(mk("a")), WithObserver(nil), WithObserver(mk("b")))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(WithLowPriority(context.Background()), "VP1")
	require.NoError(t, err)
	assert.Equal(t, []string{
		"a start after ", "b start after a", // Status
		"a start after ab", "b start after aba", // its token fetch
		"b end in abab", "a end in abab",
		"b end in ab", "a end in ab",
	}, order)
}

// An Observer's values carry no secret: the key, the tokens and the
// payer's details appear in none of them. (Err is the caller's own error,
// which may quote invalid input: vpayotel records its kind, never its text.)
func TestObserverValuesHoldNoSecret(t *testing.T) {
	var seen []string
	rec := func(v any) { seen = append(seen, fmt.Sprintf("%+v", v)) }
	obs := &Observer{
		OperationStart: func(ctx context.Context, op Operation) context.Context { rec(op); return ctx },
		OperationEnd:   func(_ context.Context, r OperationResult) { rec(r) },
		AttemptStart:   func(ctx context.Context, a Attempt) context.Context { rec(a); return ctx },
		AttemptEnd:     func(_ context.Context, r AttemptResult) { rec(r) },
		Retry:          func(_ context.Context, r RetryDecision) { rec(r) },
		RateLimitWait:  func(_ context.Context, w RateLimitWait) { rec(w) },
		Refused:        func(_ context.Context, r Refusal) { rec(r) },
		TokenRefresh:   func(_ context.Context, t TokenRefresh) { rec(t) },
	}
	c, s, _ := setupClock(t, WithObserver(obs))
	var calls atomic.Int64
	s.mux.HandleFunc("POST /pay/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 401, `{"status":"error","error_code":"UNAUTHORIZED"}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP9"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 500, Phone: "0781234567", PayerName: "Aline Uwase", PayerEmail: "aline@example.rw"})
	require.NoError(t, err)
	require.NotEmpty(t, seen)
	all := strings.Join(seen, "\n")
	for _, secret := range []string{testKey, "access-1", "access-2", "refresh-1", "0781234567", "781234567", "Aline", "aline@example.rw"} {
		assert.NotContains(t, all, secret)
	}
}

// TestEveryJoinedObserverIsToldOfEveryEvent: the events with no context to
// pass on reach every observer too.
func TestEveryJoinedObserverIsToldOfEveryEvent(t *testing.T) {
	var a, b eventLog
	c, s, _ := setupClock(t, WithObserver(a.observer()), WithObserver(b.observer()))
	var calls atomic.Int64
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			writeJSON(w, 503, `{"status":"error"}`)
			return
		}
		writeJSON(w, 200, `{"status":"pending","transaction_id":"VP1"}`)
	})
	_, err := c.Status(context.Background(), "VP1")
	require.NoError(t, err)
	_, err = c.Pay(context.Background(), &PayRequest{Amount: 1})
	require.Error(t, err)
	kinds := func(l *eventLog) (out []string) {
		for _, line := range l.Lines() {
			out = append(out, strings.Fields(line)[0])
		}
		return out
	}
	want := []string{"start", "start", "send", "answer", "token", "end", "send", "answer", "retry", "send", "answer", "end", "start", "refused", "end"}
	assert.Equal(t, want, kinds(&a))
	assert.Equal(t, want, kinds(&b))
}

// refusingLimiter refuses every request, as a limiter whose window will
// not reset in time does.
type refusingLimiter struct{}

func (refusingLimiter) Reserve(context.Context, time.Duration) (Reservation, error) {
	return Reservation{}, &Error{Code: CodeRateLimited, Message: "window spent"}
}
func (refusingLimiter) Answered(context.Context, RateLimit, bool) {}
func (refusingLimiter) Unanswered(context.Context)                {}

// TestObserverSeesATokenFetchRefusedByTheRateLimit: the token fetch waits
// for the rate limit like any call, and its refusal is told the same way.
func TestObserverSeesATokenFetchRefusedByTheRateLimit(t *testing.T) {
	var log eventLog
	c, _, _ := setupClock(t, WithObserver(log.observer()), WithLimiter(refusingLimiter{}))
	_, err := c.Status(context.Background(), "VP1")
	require.ErrorIs(t, err, ErrRateLimited)
	assert.Equal(t, []string{
		"start status ref= tx=VP1 low=false @",
		"start token ref= tx= low=false @/status",
		"refused token field= @/status/token",
		"token lifetime=0s err=true @/status/token",
		"end token refused attempts=0 status= ref= tx= @/status/token",
		"end status refused attempts=0 status= ref= tx=VP1 @/status",
	}, log.Lines())
}

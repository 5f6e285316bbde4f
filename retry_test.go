package vpay

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRetriesReplaySameBodyAndReference(t *testing.T) {
	c, s, clk := setupClock(t, WithMaxRetries(3))
	var bodies [][]byte
	var mu sync.Mutex
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, b)
		n := len(bodies)
		mu.Unlock()
		switch n {
		case 1:
			writeJSON(w, 502, `{"status":"error","error_code":"NETWORK_ERROR","message":"MoMo unreachable"}`)
		case 2:
			writeJSON(w, 503, `{"status":"error","message":"maintenance"}`)
		case 3:
			writeJSON(w, 504, ``)
		default:
			writeJSON(w, 200, `{"status":"pending","transaction_id":"VP9"}`)
		}
	})
	p, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000"})
	require.NoError(t, err)
	require.Len(t, bodies, 4)
	for _, b := range bodies[1:] {
		assert.True(t, bytes.Equal(bodies[0], b), "retries replay the body byte for byte")
	}
	assert.Contains(t, string(bodies[3]), `"external_id":"`+p.Reference+`"`)
	backoffs := clk.Sleeps()
	require.Len(t, backoffs, 3)
	for i, d := range backoffs {
		assert.LessOrEqual(t, d, 250*time.Millisecond<<i, "full jitter stays under the exponential ceiling")
	}
}

func TestDuplicateOnRetryReportedAsPossiblyCreated(t *testing.T) {
	c, s := setup(t, withClock(newFakeClock()))
	var calls atomic.Int64
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// The payment was created, then the answer was lost.
			writeJSON(w, 503, `{"status":"error","message":"upstream reset"}`)
			return
		}
		writeJSON(w, 409, `{"status":"error","error_code":"DUPLICATE_REFERENCE","message":"reference used"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-9"})
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrDuplicateReference)
	assert.ErrorIs(t, err, ErrOutcomeUnknown)
	assert.Contains(t, err.Error(), "may have created the payment")
	assert.Contains(t, err.Error(), "order-9")
}

func TestFirstAttemptDuplicateIsPlain(t *testing.T) {
	c, s := setup(t)
	s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 409, `{"status":"error","error_code":"DUPLICATE_REFERENCE","message":"reference used"}`)
	})
	_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "order-9"})
	assert.ErrorIs(t, err, ErrDuplicateReference)
	assert.NotErrorIs(t, err, ErrOutcomeUnknown, "nothing this call sent can have created it")
}

func TestClientErrorsNotRetried(t *testing.T) {
	for _, status := range []int{400, 403, 404, 409, 422} {
		c, s := setup(t, withClock(newFakeClock()))
		var calls atomic.Int64
		s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			writeJSON(w, status, `{"status":"error","message":"no"}`)
		})
		_, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000"})
		require.Error(t, err)
		assert.EqualValues(t, 1, calls.Load(), "HTTP %d is not retried", status)
	}
}

func TestBackoffHasFullJitterUnderACappedCeiling(t *testing.T) {
	c, _ := setup(t)
	for n := range 12 {
		ceiling := min(250*time.Millisecond<<n, 8*time.Second)
		seen := map[time.Duration]bool{}
		var top time.Duration
		for range 200 {
			d := c.backoff(n)
			require.GreaterOrEqual(t, d, time.Duration(0))
			require.LessOrEqual(t, d, ceiling, "attempt %d", n)
			seen[d] = true
			top = max(top, d)
		}
		assert.Greater(t, len(seen), 150, "attempt %d: jittered, not one fixed wait", n)
		assert.Greater(t, top, ceiling/2, "attempt %d: the jitter spans the range up to the ceiling", n)
	}
}

// TestRetryableIsWhatTheLoopDoes: the public Error.Retryable and the
// client's own retries follow one rule, and a declined retry is logged
// with its reason.
func TestRetryableIsWhatTheLoopDoes(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   bool
	}{
		{500, `{"status":"error","message":"boom"}`, true},
		{502, `{"status":"error","message":"bad gateway"}`, true},
		{503, ``, true},
		{504, ``, true},
		{200, `{"status":"error","error_code":"NETWORK_ERROR","message":"MoMo down"}`, true},
		{501, `{"status":"error","message":"not implemented"}`, false},
		{400, `{"status":"error","error_code":"INVALID_PHONE","message":"no"}`, false},
		{404, `{"status":"error","message":"no such transaction"}`, false},
		{200, `{"status":"error","error_code":"INSUFFICIENT_FUNDS","message":"broke"}`, false},
	} {
		var logs bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		c, s := setup(t, withClock(newFakeClock()), WithMaxRetries(2), WithLogger(logger))
		var calls atomic.Int64
		s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
			calls.Add(1)
			writeJSON(w, tt.status, tt.body)
		})
		_, err := c.Status(context.Background(), "VP1")
		var e *Error
		require.ErrorAs(t, err, &e, "HTTP %d %s", tt.status, tt.body)
		assert.Equal(t, tt.want, e.Retryable(), "HTTP %d %s", tt.status, tt.body)
		want := int64(1)
		if tt.want {
			want = 3
		}
		assert.Equal(t, want, calls.Load(), "HTTP %d %s: the loop retries what Retryable says", tt.status, tt.body)
		assert.Contains(t, logs.String(), "vpay: not retrying", "HTTP %d: the declined retry is logged", tt.status)
		assert.Contains(t, logs.String(), "reason=", "with its reason")
	}
}

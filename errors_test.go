package vpay

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestErrorBodiesMatchSentinels(t *testing.T) {
	tests := []struct {
		status int
		code   ErrorCode
		is     error
	}{
		{401, CodeInvalidKey, ErrInvalidKey},
		{400, CodeInvalidPhone, ErrInvalidPhone},
		{400, CodeInvalidAmount, ErrInvalidAmount},
		{409, CodeDuplicateReference, ErrDuplicateReference},
		{200, CodePaymentTimeout, ErrPaymentTimeout},
		{200, CodeInsufficientFunds, ErrInsufficientFunds},
		{502, CodeNetworkError, ErrNetworkError},
		{429, CodeRateLimited, ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			c, s := setup(t, WithMaxRetries(0))
			s.mux.HandleFunc("/pay/", func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-RateLimit-Limit", "120")
				w.Header().Set("X-RateLimit-Remaining", "7")
				writeJSON(w, tt.status, `{"status":"error","error_code":"`+string(tt.code)+`","message":"from server"}`)
			})
			p, err := c.Pay(context.Background(), &PayRequest{Amount: 100, Phone: "0780000000", Reference: "r-1"})
			assert.Nil(t, p)
			var e *Error
			require.ErrorAs(t, err, &e)
			assert.Equal(t, tt.status, e.HTTPStatus)
			assert.Equal(t, tt.code, e.Code)
			assert.Equal(t, "from server", e.Message)
			assert.Equal(t, "r-1", e.Reference)
			assert.Equal(t, 7, e.RateLimit.Remaining, "errors carry the rate-limit state")
			assert.ErrorIs(t, err, tt.is)
			for _, other := range []error{ErrInvalidKey, ErrInvalidPhone, ErrInvalidAmount, ErrDuplicateReference, ErrPaymentTimeout, ErrInsufficientFunds, ErrNetworkError, ErrRateLimited} {
				if other != tt.is {
					assert.NotErrorIs(t, err, other)
				}
			}
		})
	}
}

func TestNonJSONErrorBody(t *testing.T) {
	c, s := setup(t, WithMaxRetries(0))
	s.mux.HandleFunc("/transaction/status/", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(500)
		_, _ = w.Write([]byte("<html>Internal Server Error</html>"))
	})
	_, err := c.Status(context.Background(), "VP1")
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Equal(t, 500, e.HTTPStatus)
	assert.Contains(t, err.Error(), "not JSON")
}

// endlessBody is a response body that never ends, and counts what was read.
type endlessBody struct{ read atomic.Int64 }

func (b *endlessBody) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	b.read.Add(int64(len(p)))
	return len(p), nil
}
func (b *endlessBody) Close() error { return nil }

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorBodyCappedAt1MiB(t *testing.T) {
	for _, status := range []int{200, 500} {
		body := &endlessBody{}
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if r.URL.Path == "/auth/" {
				return &http.Response{StatusCode: 200, Header: http.Header{}, Request: r,
					Body: io.NopCloser(strings.NewReader(`{"access":"a","mode":"sandbox","expires_in":300}`))}, nil
			}
			return &http.Response{StatusCode: status, Header: http.Header{}, Body: body, Request: r}, nil
		})}
		c, err := NewClient(testUser, testKey, WithBaseURL("http://127.0.0.1:1/"), WithHTTPClient(hc), WithMaxRetries(0))
		require.NoError(t, err)
		_, err = c.Status(context.Background(), "VP1")
		require.Error(t, err, "an endless body ends the call instead of hanging it")
		assert.Contains(t, err.Error(), "larger than 1 MiB")
		assert.LessOrEqual(t, body.read.Load(), int64(maxBodyBytes+64<<10), "HTTP %d: read at most 1 MiB (and one buffer)", status)
		assert.Less(t, len(err.Error()), 1000, "the body is not copied into the error")
	}
}

func TestValidationErrorIsNotAnAPIError(t *testing.T) {
	err := (&PayRequest{Amount: 1}).Validate()
	var e *Error
	assert.False(t, errors.As(err, &e))
	assert.ErrorIs(t, err, ErrInvalidAmount)
	assert.NotErrorIs(t, err, ErrInvalidPhone)
}

func TestTransportErrorIsError(t *testing.T) {
	c, err := NewClient(testUser, testKey, WithBaseURL("http://127.0.0.1:1/"), WithMaxRetries(0)) // nothing listens there
	require.NoError(t, err)
	_, err = c.Token(context.Background())
	var e *Error
	require.ErrorAs(t, err, &e)
	assert.Zero(t, e.HTTPStatus)
	assert.True(t, e.Retryable())
	assert.True(t, e.Temporary(), "the deprecated alias agrees")
	assert.False(t, e.OutcomeUnknown, "a refused connection never reached the server")
}

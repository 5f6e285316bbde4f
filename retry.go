package vpay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// retryable is the one rule for whether a failure may go away if the same
// request is sent again, with the reason in words for the log. The request
// loop and Error.Retryable both ask it.
func retryable(status int, code ErrorCode, noAnswer bool) (bool, string) {
	switch {
	case status == http.StatusTooManyRequests || code == CodeRateLimited:
		return true, "rate limited"
	case code == CodeNetworkError:
		return true, "NETWORK_ERROR: the mobile money network failed"
	case noAnswer:
		return true, "no complete answer arrived"
	case status == http.StatusInternalServerError, status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return true, fmt.Sprintf("HTTP %d: the server failed, maybe for a moment", status)
	case status == 0:
		return false, "the request was not sent"
	}
	return false, fmt.Sprintf("HTTP %d %s: the same request would fail again", status, code)
}

// retryAfter decides whether a failed attempt is tried again and after how
// long, and says why either way, in words that go straight into the log.
func (c *Client) retryAfter(ctx context.Context, res result, tries int) (time.Duration, string, bool) {
	var e *Error
	if !errors.As(res.err, &e) {
		return 0, "not an API failure", false
	}
	ok, why := retryable(e.HTTPStatus, e.Code, e.noAnswer)
	switch {
	case !ok:
		return 0, why, false
	case ctx.Err() != nil:
		return 0, why + ", but the context ended", false
	case tries >= c.retries:
		return 0, fmt.Sprintf("%s, but %d retries are spent", why, c.retries), false
	case res.status == http.StatusTooManyRequests:
		return c.rate.afterThrottle(ctx, res.rl, c.backoff(tries))
	}
	return c.backoff(tries), why, true
}

// backoff is exponential with full jitter: uniformly random in
// [0, min(8s, 250ms·2^n)], so that clients that failed together do not
// retry together.
func (c *Client) backoff(n int) time.Duration {
	ceiling := min(250*time.Millisecond<<n, 8*time.Second)
	return rand.N(ceiling + 1)
}

// logDecision logs a retry decision, taken or declined, with its reason.
// A wait a person would notice is logged at info level too.
func (c *Client) logDecision(ctx context.Context, cl call, again bool, why string, wait time.Duration) {
	if again && wait >= time.Second {
		c.rate.logWait(ctx, wait, why)
	}
	if !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	msg := "vpay: not retrying"
	if again {
		msg = "vpay: retrying"
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, msg,
		slog.String("method", cl.ep.method), slog.String("path", cl.ep.path),
		slog.String("reason", why), slog.Duration("wait", wait))
}

func transportSummary(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "deadline exceeded"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "network error"
}

// notSent reports whether err proves the request never reached the server:
// the connection could not be made.
func notSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

// scrubURLError drops the URL from a *url.Error: the query may carry a
// transaction id, which is fine, but the base URL of a misconfigured client
// could carry more than it should.
func scrubURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

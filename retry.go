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

// retryDecision says whether a failed attempt is retried, after how long,
// and why, in words that go straight into the debug log.
func (c *Client) retryDecision(ctx context.Context, res result, retries int) (reason string, wait time.Duration, ok bool) {
	if ctx.Err() != nil {
		return "", 0, false
	}
	if retries >= c.retries {
		return "", 0, false
	}
	backoff := c.backoff(retries)
	switch {
	case res.throttled:
		now := c.clock.Now()
		wait = res.rl.Reset.Sub(now)
		if res.rl.Reset.IsZero() {
			wait = backoff
		}
		if wait > c.maxWait {
			return "", 0, false
		}
		if dl, ok := ctx.Deadline(); ok && wait > time.Until(dl) {
			return "", 0, false
		}
		return fmt.Sprintf("429: waiting %s for the rate-limit window to reset", wait.Round(time.Millisecond)), max(wait, 0), true
	case res.transport:
		return "transport error: " + errorSummary(res.err), backoff, true
	case errorCodeOf(res.err) == CodeNetworkError:
		return "502 NETWORK_ERROR: the mobile money network failed", backoff, true
	case res.status == http.StatusBadGateway, res.status == http.StatusServiceUnavailable, res.status == http.StatusGatewayTimeout:
		return fmt.Sprintf("HTTP %d: server temporarily unavailable", res.status), backoff, true
	}
	return "", 0, false
}

// backoff is exponential with full jitter: uniformly random in
// [0, min(8s, 250ms·2^n)], so that clients that failed together do not
// retry together.
func (c *Client) backoff(n int) time.Duration {
	ceiling := min(250*time.Millisecond<<n, 8*time.Second)
	return rand.N(ceiling + 1)
}

func (c *Client) logRetry(ctx context.Context, cl call, reason string, wait time.Duration) {
	c.logger.LogAttrs(ctx, slog.LevelDebug, "vpay: retrying",
		slog.String("method", cl.method), slog.String("path", "/"+cl.path),
		slog.String("reason", reason), slog.Duration("wait", wait))
}

func errorSummary(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		return transportSummary(e.Err)
	}
	return transportSummary(err)
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

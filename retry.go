package vpay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"
)

// retryable is the one rule for whether a failure may go away if the same
// request is sent again, with the reason as a label and in words for the
// log. The request loop and Error.Retryable both ask it.
func retryable(status int, code ErrorCode, noAnswer bool) (bool, RetryReason, string) {
	switch {
	case status == http.StatusTooManyRequests || code == CodeRateLimited:
		return true, RetryRateLimited, "rate limited"
	case code == CodeNetworkError:
		return true, RetryNetworkError, "NETWORK_ERROR: the mobile money network failed"
	case noAnswer:
		return true, RetryNoAnswer, "no complete answer arrived"
	case status == http.StatusInternalServerError, status == http.StatusBadGateway,
		status == http.StatusServiceUnavailable, status == http.StatusGatewayTimeout:
		return true, RetryServerError, fmt.Sprintf("HTTP %d: the server failed, maybe for a moment", status)
	case status == 0:
		return false, RetryNotRetryable, "the request was not sent"
	}
	return false, RetryNotRetryable, fmt.Sprintf("HTTP %d %s: the same request would fail again", status, code)
}

// decision is what happens after a failed attempt: try again after wait,
// or not; why says it in words for the log.
type decision struct {
	again  bool
	wait   time.Duration
	reason RetryReason
	why    string
}

// retryAfter decides whether a failed attempt is tried again and after how
// long, and says why either way.
func (c *Client) retryAfter(ctx context.Context, res result, tries int) decision {
	var e *Error
	if !errors.As(res.err, &e) {
		return decision{reason: RetryNotRetryable, why: "not an API failure"}
	}
	ok, reason, why := retryable(e.HTTPStatus, e.Code, e.noAnswer)
	d := decision{reason: reason, why: why}
	switch {
	case !ok:
	case ctx.Err() != nil:
		d.why += ", but the context ended"
	case tries >= c.retries:
		d.why = fmt.Sprintf("%s, but %d retries are spent", why, c.retries)
	case res.status == http.StatusTooManyRequests:
		d.wait, d.why, d.again = c.rate.afterThrottle(ctx, res.rl, c.backoff(tries))
	default:
		d.wait, d.again = c.backoff(tries), true
	}
	return d
}

// backoff is exponential with full jitter: uniformly random in
// [0, min(8s, 250ms·2^n)], so that clients that failed together do not
// retry together.
func (c *Client) backoff(n int) time.Duration {
	ceiling := min(250*time.Millisecond<<n, 8*time.Second)
	return rand.N(ceiling + 1)
}

// logDecision logs a retry decision, taken or declined, with its reason, and
// tells the observer. A wait a person would notice is logged at info level
// too.
func (c *Client) logDecision(ctx context.Context, cl *call, res result, tries int, d decision) {
	if d.again && d.wait >= time.Second {
		c.rate.logWait(ctx, d.wait, d.why)
	}
	if c.obs != nil && c.obs.Retry != nil {
		var code ErrorCode
		if e, ok := res.err.(*Error); ok {
			code = e.Code
		}
		c.obs.Retry(ctx, RetryDecision{Op: cl.ep.op, Again: d.again, Reason: d.reason, Detail: d.why,
			Wait: d.wait, Retries: tries, HTTPStatus: res.status, Code: code})
	}
	if !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	msg := "vpay: not retrying"
	if d.again {
		msg = "vpay: retrying"
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, msg,
		slog.String("method", cl.ep.method), slog.String("path", cl.ep.path),
		slog.String("reason", d.why), slog.Duration("wait", d.wait))
}

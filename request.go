package vpay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// maxBodyBytes caps what the client reads of any response body.
const maxBodyBytes = 1 << 20

// call describes one API request.
type call struct {
	method string
	path   string // relative to the base URL, e.g. "pay/"
	query  url.Values
	body   []byte // JSON, replayed byte for byte on every attempt
	// auth says whether the call carries the bearer token. /auth/ itself
	// does not.
	auth bool
	// reference is the payment reference, for errors from Pay.
	reference string
	// creates is true when a repeated request could create a second
	// object; such a call reports when its outcome is unknown.
	creates bool
}

// do sends c, retrying as the retry policy allows, and decodes a successful
// body into out. Every failure is an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	var (
		retries     int
		authRetried bool
		maybeSent   bool // an earlier attempt may have reached the server
	)
	for {
		// The token comes first: a request counted against the rate-limit
		// window must leave at once, not after a token refresh that could
		// carry it into the next window, where the server would count it
		// again.
		var tok *Token
		if cl.auth {
			t, err := c.Token(ctx)
			if err != nil {
				return c.finish(cl, err, maybeSent)
			}
			tok = t
		}
		if err := c.reserve(ctx, cl); err != nil {
			return c.finish(cl, err, maybeSent)
		}
		if tok != nil && !tok.Valid(c.clock.Now()) {
			// It expired while we waited for the window.
			t, err := c.Token(ctx)
			if err != nil {
				return c.finish(cl, err, maybeSent)
			}
			tok = t
		}
		res := c.attempt(ctx, cl, tok, out)
		if res.err == nil {
			return nil
		}
		if res.undecodable {
			// The server accepted the request: what it created exists even
			// though its description could not be read.
			return c.finish(cl, res.err, true)
		}
		maybeSent = maybeSent || res.maybeProcessed
		if cl.auth && res.status == http.StatusUnauthorized && !authRetried {
			authRetried = true
			c.logRetry(ctx, cl, "401 with a token: replacing the token", 0)
			if err := c.store.Invalidate(ctx, tok); err != nil {
				return c.finish(cl, err, maybeSent)
			}
			continue
		}
		if res.duplicate && maybeSent {
			var e *Error
			if errors.As(res.err, &e) {
				e.Message = "an earlier attempt of this request may have created the payment; check it before paying again: " + e.Message
			}
			return c.finish(cl, res.err, true)
		}
		reason, wait, ok := c.retryDecision(ctx, res, retries)
		if !ok {
			return c.finish(cl, res.err, maybeSent)
		}
		retries++
		c.logRetry(ctx, cl, reason, wait)
		if wait >= time.Second {
			c.logWait(ctx, wait, reason)
		}
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return c.finish(cl, c.ctxError(cl, err), maybeSent)
		}
	}
}

// finish adds what the caller needs to err: the reference, and whether the
// request may have taken effect.
//
// Every error leaves here as an *Error, whatever produced it (a TokenStore
// or Limiter of the merchant's, the context): once an attempt of a Pay may
// have reached V-Pay, losing the reference and "outcome unknown" to a Redis
// failover on the retry would leave the merchant guessing.
func (c *Client) finish(cl call, err error, maybeSent bool) error {
	var e *Error
	if shared, ok := err.(*Error); ok {
		// A token refresh's error reaches every caller that waited on it:
		// each gets its own copy to annotate.
		cp := *shared
		e = &cp
	} else {
		// A store's, a limiter's or the context's error: wrapped, so that
		// errors.Is and errors.As still reach it.
		e = &Error{Err: err}
		var inner *Error
		if errors.As(err, &inner) {
			e.HTTPStatus, e.Code, e.RateLimit = inner.HTTPStatus, inner.Code, inner.RateLimit
		}
	}
	if e.Method == "" {
		e.Method, e.Path = cl.method, "/"+cl.path
	}
	if cl.reference != "" {
		e.Reference = cl.reference
	}
	if cl.creates && maybeSent {
		e.OutcomeUnknown = true
	}
	if e.RateLimit.IsZero() {
		e.RateLimit = c.RateLimit()
	}
	return e
}

// reserve waits for the limiter's permission to send, asking again after
// each wait it is told, for at most maxWait (or ctx's deadline) in all.
func (c *Client) reserve(ctx context.Context, cl call) error {
	maxWait := c.maxWait
	if dl, ok := ctx.Deadline(); ok {
		// A ctx deadline is wall-clock time, whatever clock the client runs on.
		maxWait = min(maxWait, time.Until(dl))
	}
	giveUp := c.clock.Now().Add(maxWait)
	for logged := false; ; {
		wait, err := c.limiter.Reserve(ctx, max(giveUp.Sub(c.clock.Now()), 0))
		if err != nil || wait <= 0 {
			return err
		}
		if !logged && wait >= time.Second { // once per call is enough
			c.logWait(ctx, wait, "rate limit: waiting for the window to reset")
			logged = true
		}
		if err := c.clock.Sleep(ctx, wait); err != nil {
			return c.ctxError(cl, err)
		}
	}
}

// logHeaderIssues logs each kind of rate-limit header problem once in the
// client's life: a misbehaving proxy would otherwise fill the log.
func (c *Client) logHeaderIssues(ctx context.Context, issues headerIssue) {
	if issues == 0 {
		return
	}
	fresh := issues &^ headerIssue(c.headerIssues.Or(uint32(issues)))
	for i := headerIssue(1); fresh != 0; i <<= 1 {
		if fresh&i != 0 {
			fresh &^= i
			c.logger.LogAttrs(ctx, slog.LevelWarn, "vpay: rate-limit headers: "+i.String())
		}
	}
}

// logWait tells the merchant, at info level, about a wait a person would
// notice.
func (c *Client) logWait(ctx context.Context, d time.Duration, why string) {
	c.logger.LogAttrs(ctx, slog.LevelInfo, "vpay: waiting", slog.Duration("wait", d), slog.String("reason", why))
}

func (c *Client) ctxError(cl call, err error) *Error {
	return &Error{Method: cl.method, Path: "/" + cl.path, Message: "gave up waiting", Err: err}
}

// result is what one attempt produced.
type result struct {
	status         int
	header         http.Header
	body           []byte
	err            error // nil on success
	maybeProcessed bool  // the server may have acted on the request
	transport      bool  // no response arrived
	duplicate      bool  // DUPLICATE_REFERENCE
	throttled      bool  // 429
	undecodable    bool  // a 2xx success whose body could not be decoded
	rl             RateLimit
}

// attempt sends one request and, on success, decodes its body into out.
func (c *Client) attempt(ctx context.Context, cl call, tok *Token, out any) result {
	u := c.baseURL.ResolveReference(&url.URL{Path: cl.path})
	if cl.query != nil {
		u.RawQuery = cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, u.String(), body)
	if err != nil {
		return result{err: &Error{Message: "cannot build request", Err: err}}
	}
	if cl.body != nil {
		// GetBody lets net/http replay the exact bytes itself when an HTTP/2
		// connection is lost before the request was written.
		b := cl.body
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	req.Header.Set("apiUser", c.apiUser)
	req.Header.Set("apiKey", string(c.apiKey))
	if tok != nil {
		req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	}

	if err := ctx.Err(); err != nil {
		// net/http would refuse it too, but as a transport error that
		// cannot say whether anything left: nothing did.
		return result{err: &Error{Message: "not sent", Err: context.Cause(ctx)}}
	}
	start := c.clock.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "vpay: request failed",
			slog.String("method", cl.method), slog.String("path", "/"+cl.path),
			slog.Duration("duration", c.clock.Now().Sub(start)), slog.String("error", transportSummary(err)))
		return result{
			transport:      true,
			maybeProcessed: !notSent(err),
			err:            &Error{Message: "request failed", Err: scrubURLError(err)},
		}
	}
	defer resp.Body.Close()
	data, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	now := c.clock.Now()
	res := result{status: resp.StatusCode, header: resp.Header, body: data}
	rl, ok, issues := parseRateLimit(resp.Header, now)
	if ok {
		res.rl = rl
		c.mu.Lock()
		c.rl = rl
		c.mu.Unlock()
	} else {
		issues |= issueNoHeaders
	}
	res.throttled = resp.StatusCode == http.StatusTooManyRequests
	if res.throttled {
		d, ok, issue := retryAfter(resp.Header, now)
		issues |= issue
		if ok && now.Add(d).After(res.rl.Reset) {
			res.rl.Reset = now.Add(d)
		}
	}
	c.logHeaderIssues(ctx, issues)
	c.limiter.Observe(ctx, res.rl, res.throttled)
	reqID := requestID(resp.Header)
	c.logger.LogAttrs(ctx, slog.LevelDebug, "vpay: request",
		slog.String("method", cl.method), slog.String("path", "/"+cl.path),
		slog.Int("status", resp.StatusCode), slog.Duration("duration", now.Sub(start)),
		slog.String("request_id", reqID))

	ok2xx := resp.StatusCode >= 200 && resp.StatusCode < 300
	switch {
	case readErr != nil:
		// The answer was cut short: a 2xx or 5xx server may have acted.
		res.err = c.apiError(cl, res, 0, "", "cannot read response body", readErr)
		res.maybeProcessed = ok2xx || resp.StatusCode >= 500
		res.transport = true
		return res
	case len(data) > maxBodyBytes:
		res.err = c.apiError(cl, res, 0, "", "response body larger than 1 MiB", nil)
		res.maybeProcessed = true
		return res
	}
	if ok2xx {
		// One decode on the happy path: every response type embeds the
		// envelope that says whether the body is an error in disguise.
		err := wire.Decode(data, out)
		if e, ok := out.(interface{ IsError() bool }); err == nil && ok && !e.IsError() {
			return res
		}
	}
	var env wire.Envelope
	jsonErr := wire.Decode(data, &env)
	if ok2xx && jsonErr == nil && !env.IsError() {
		// The body is JSON and no error, yet out could not take it (an
		// amount with a fraction, a string where an object belongs).
		res.err = c.apiError(cl, res, 0, "", "cannot decode response", wire.Decode(data, out))
		res.undecodable, res.maybeProcessed = true, true
		return res
	}
	code := ErrorCode(strings.ToUpper(strings.TrimSpace(string(env.ErrorCode))))
	if code == "" && res.throttled {
		code = CodeRateLimited
	}
	msg := string(env.Message)
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	var cause error
	if jsonErr != nil {
		cause = fmt.Errorf("body is not JSON: %w", jsonErr)
	}
	res.err = c.apiError(cl, res, resp.StatusCode, code, msg, cause)
	res.duplicate = code == CodeDuplicateReference || resp.StatusCode == http.StatusConflict
	// A 5xx may come from a server that acted before it failed; a 2xx whose
	// body is unreadable certainly acted. 4xx and 429 were refused.
	// NETWORK_ERROR says the mobile money network failed after V-Pay took
	// the request, whatever HTTP status carries it (the documentation shows
	// error bodies at 200 too).
	res.maybeProcessed = resp.StatusCode >= 500 || (ok2xx && jsonErr != nil) || code == CodeNetworkError
	return res
}

func (c *Client) apiError(cl call, res result, status int, code ErrorCode, msg string, cause error) *Error {
	return &Error{
		HTTPStatus: status,
		Code:       code,
		Message:    msg,
		RequestID:  requestID(res.header),
		RateLimit:  res.rl,
		Method:     cl.method,
		Path:       "/" + cl.path,
		Err:        cause,
	}
}

func requestID(h http.Header) string {
	if h == nil {
		return ""
	}
	for _, k := range []string{"X-Request-Id", "Request-Id", "X-Correlation-Id"} {
		if v := h.Get(k); v != "" {
			return v
		}
	}
	return ""
}

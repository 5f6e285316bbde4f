package vpay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// maxBodyBytes caps what the client reads of any response body.
const maxBodyBytes = 1 << 20

// endpoint is one API path, its absolute URL built once per Client.
type endpoint struct {
	op     Op
	method string
	path   string // as errors and logs show it, e.g. "/pay/"
	url    string
}

// call is one API request.
type call struct {
	ep    *endpoint
	query string // already escaped, without "?"
	body  []byte // JSON, replayed byte for byte on every attempt
	// reference is the payment's reference, for errors from Pay.
	reference string
	// createsPayment: a second request could create a second payment, so
	// the caller must be told when the server may have acted.
	createsPayment bool
	// attempts counts the requests sent, for the Observer.
	attempts int
}

// do is the whole life of an API call: a token, the rate limit's
// permission, one exchange, and the decision to try again, until the
// answer decodes into out or the decision is no. Every failure is an *Error.
func (c *Client) do(ctx context.Context, cl *call, out any) error {
	var (
		tries        int  // retries spent
		replaced     bool // the token was replaced after a 401
		mayHaveActed bool // an attempt may have reached the server and acted
	)
	for {
		tok, err := c.Token(ctx)
		if err == nil {
			// After the token, so that a refresh cannot carry a request
			// counted in this window into the next one.
			err = c.waitForRate(ctx, cl.ep.op)
		}
		if err == nil && !tok.Valid(c.clock.Now()) {
			// It expired while we waited for the window.
			if tok, err = c.Token(ctx); err != nil {
				c.rate.unanswered(ctx) // the slot granted goes unused
			}
		}
		if err != nil {
			return c.fail(*cl, err, mayHaveActed)
		}

		res := c.exchange(ctx, cl.ep, cl.query, cl.body, tok, out, cl.attempts)
		cl.attempts++
		if res.err == nil {
			return nil
		}
		mayHaveActed = mayHaveActed || res.mayHaveActed

		switch {
		case res.status == http.StatusUnauthorized && !replaced:
			replaced = true
			c.decided(ctx, cl, res, tries, decision{again: true, reason: RetryTokenExpired, why: "401 with a token: replacing the token"})
			if err := c.store.Invalidate(ctx, tok); err != nil {
				return c.fail(*cl, err, mayHaveActed)
			}
			continue
		case res.duplicate && mayHaveActed:
			// The 409 answers our own earlier attempt, most likely.
			var e *Error
			if errors.As(res.err, &e) {
				e.Message = "an earlier attempt of this request may have created the payment; wait for the webhook naming its reference before paying again: " + e.Message
			}
			c.decided(ctx, cl, res, tries, decision{reason: RetryDuplicate, why: "409 after an attempt that may have acted: the payment may exist"})
			return c.fail(*cl, res.err, true)
		}
		d := c.retryAfter(ctx, res, tries)
		c.decided(ctx, cl, res, tries, d)
		if !d.again {
			return c.fail(*cl, withCtxCause(ctx, res.err), mayHaveActed)
		}
		tries++
		if err := c.pause(ctx, cl.ep.op, d); err != nil {
			return c.fail(*cl, gaveUp(err), mayHaveActed)
		}
	}
}

// waitForRate is the rate gate's wait before a request, told to the
// observer: how long it waited, or that it refused to let the request go.
func (c *Client) waitForRate(ctx context.Context, op Op) error {
	waited, err := c.rate.wait(ctx)
	if c.obs != nil {
		c.rateWaited(ctx, op, WaitWindow, waited)
		if errors.Is(err, ErrRateLimited) {
			c.refused(ctx, op, "", err)
		}
	}
	return err
}

// pause sleeps before the retry d allows; a wait after a 429 is told to the
// observer as a rate-limit wait.
func (c *Client) pause(ctx context.Context, op Op, d decision) error {
	if err := c.clock.Sleep(ctx, d.wait); err != nil {
		return err
	}
	if d.reason == RetryRateLimited && c.obs != nil {
		c.rateWaited(ctx, op, WaitThrottled, d.wait)
	}
	return nil
}

// fail adds what the caller needs to err: the call, the reference, whether
// the request may have taken effect, the latest rate-limit state.
//
// Every error leaves here as an *Error, whatever produced it (a TokenStore
// or Limiter of the merchant's, the context): once an attempt of a Pay may
// have reached V-Pay, losing the reference and "outcome unknown" to a Redis
// failover on the retry would leave the merchant guessing.
func (c *Client) fail(cl call, err error, mayHaveActed bool) error {
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
		e.Method, e.Path = cl.ep.method, cl.ep.path
	}
	if cl.reference != "" {
		e.Reference = cl.reference
	}
	if cl.createsPayment && mayHaveActed {
		e.OutcomeUnknown = true
	}
	if e.RateLimit.IsZero() {
		e.RateLimit = c.RateLimit()
	}
	return e
}

func gaveUp(err error) *Error { return &Error{Message: "gave up waiting", Err: err} }

// withCtxCause makes a failure after which ctx ended match ctx's error too
// (errors.Is(err, context.Canceled)), when it has no cause of its own: the
// call stopped there because of the context, whatever the last answer was.
func withCtxCause(ctx context.Context, err error) error {
	var e *Error
	if ctx.Err() == nil || !errors.As(err, &e) || e.Err != nil {
		return err
	}
	cp := *e
	cp.Err = context.Cause(ctx)
	return &cp
}

// result is what one exchange produced.
type result struct {
	status int
	header http.Header
	err    error // nil on success
	// mayHaveActed: the server may have acted on the request although
	// this attempt failed (no answer, a 5xx, a cut or unreadable 2xx).
	mayHaveActed bool
	duplicate    bool // DUPLICATE_REFERENCE
	rl           RateLimit
}

// exchange sends one request and decodes its answer into out. It is the
// only place that talks HTTP: the API calls and the token fetch both use
// it, each with its own loop around it. The rate gate has let the request
// go; exchange tells it what became of it, once: the answer's headers, or
// that no answer came.
//
// resend is the number of requests the call sent before this one.
func (c *Client) exchange(ctx context.Context, ep *endpoint, query string, body []byte, tok *Token, out any, resend int) (res result) {
	answered := false
	defer func() {
		if !answered {
			c.rate.unanswered(ctx)
		}
	}()
	if err := ctx.Err(); err != nil {
		// net/http would refuse it too, but as a transport error that
		// cannot say whether anything left: nothing did.
		return result{err: &Error{Message: "not sent", Err: context.Cause(ctx)}}
	}
	start := c.clock.Now()
	if c.obs != nil {
		a := Attempt{Op: ep.op, Method: ep.method, Path: ep.path, Host: c.baseURL.Host, URL: ep.url, Resend: resend, Start: start}
		if f := c.obs.AttemptStart; f != nil {
			if actx := f(ctx, a); actx != nil {
				ctx = actx
			}
		}
		defer func() { c.attemptEnd(ctx, a, &res) }()
	}
	req, err := c.newRequest(ctx, ep, query, body, tok)
	if err != nil {
		return result{err: &Error{Message: "cannot build request", Err: err}}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.logExchange(ctx, ep, start, 0, nil, err)
		return result{
			mayHaveActed: !notSent(err),
			err:          &Error{Message: "request failed", Err: scrubURLError(err), noAnswer: true},
		}
	}
	defer resp.Body.Close()
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer putBodyBuffer(buf)
	buf.Reset()
	if n := resp.ContentLength; n > 0 && n <= maxBodyBytes {
		buf.Grow(int(n) + bytes.MinRead) // one read, no regrowth
	}
	_, readErr := buf.ReadFrom(io.LimitReader(resp.Body, maxBodyBytes+1))
	res = result{status: resp.StatusCode, header: resp.Header}
	res.rl = c.rate.observe(ctx, resp.Header, resp.StatusCode)
	answered = true
	c.logExchange(ctx, ep, start, resp.StatusCode, resp.Header, nil)
	// The decoded values copy what they keep: the buffer can go back.
	c.decode(&res, ep, buf.Bytes(), readErr, out)
	return res
}

// bodyBuffers holds the buffers answers are read into, so that a steady
// stream of calls does not allocate one per answer.
var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func putBodyBuffer(b *bytes.Buffer) {
	if b.Cap() <= 64<<10 { // a rare huge answer is not kept
		bodyBuffers.Put(b)
	}
}

// newRequest builds the HTTP request: the endpoint's URL built once, and
// the headers every call sends, set with their canonical keys directly.
func (c *Client) newRequest(ctx context.Context, ep *endpoint, query string, body []byte, tok *Token) (*http.Request, error) {
	u := ep.url
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, ep.method, u, rd)
	if err != nil {
		return nil, err
	}
	h := make(http.Header, 7)
	h["Accept"] = jsonValue
	h["User-Agent"] = c.uaValue
	h["Apiuser"] = c.userValue
	h["Apikey"] = []string{string(c.apiKey)}
	if tok != nil {
		h["Authorization"] = []string{"Bearer " + tok.AccessToken}
	}
	if body != nil {
		h["Content-Type"] = jsonValue
		// GetBody lets net/http replay the exact bytes itself when an
		// HTTP/2 connection is lost before the request was written.
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	req.Header = h
	return req, nil
}

// jsonValue is a header value shared by every request: net/http only reads
// a request's headers.
var jsonValue = []string{"application/json"}

// decode reads the answer's body into out, or into res.err: a body
// {"status":"error"} is an error whatever the HTTP status.
func (c *Client) decode(res *result, ep *endpoint, data []byte, readErr error, out any) {
	ok2xx := res.status >= 200 && res.status < 300
	switch {
	case readErr != nil:
		// The answer was cut short: a 2xx or 5xx server may have acted.
		res.err = c.apiError(ep, res, res.status, "", "cannot read response body", readErr)
		res.mayHaveActed = ok2xx || res.status >= 500
		res.err.(*Error).noAnswer = true
		return
	case len(data) > maxBodyBytes:
		res.err = c.apiError(ep, res, res.status, "", "response body larger than 1 MiB", nil)
		res.mayHaveActed = true
		return
	}
	if ok2xx {
		// One decode on the happy path: every response type embeds the
		// envelope that says whether the body is an error in disguise.
		err := wire.Decode(data, out)
		if e, ok := out.(interface{ IsError() bool }); err == nil && ok && !e.IsError() {
			return
		}
	}
	var env wire.Envelope
	jsonErr := wire.Decode(data, &env)
	if ok2xx && jsonErr == nil && !env.IsError() {
		// The body is JSON and no error, yet out could not take it (an
		// amount with a fraction, a string where an object belongs): the
		// server accepted the request, what it created exists.
		res.err = c.apiError(ep, res, res.status, "", "cannot decode response", wire.Decode(data, out))
		res.mayHaveActed = true
		return
	}
	code := ErrorCode(strings.ToUpper(strings.TrimSpace(string(env.ErrorCode))))
	if code == "" && res.status == http.StatusTooManyRequests {
		code = CodeRateLimited
	}
	msg := string(env.Message)
	if msg == "" {
		msg = http.StatusText(res.status)
	}
	var cause error
	if jsonErr != nil {
		cause = fmt.Errorf("body is not JSON: %w", jsonErr)
	}
	res.err = c.apiError(ep, res, res.status, code, msg, cause)
	res.duplicate = code == CodeDuplicateReference || res.status == http.StatusConflict
	// A 5xx may come from a server that acted before it failed; a 2xx whose
	// body is unreadable certainly acted; NETWORK_ERROR says the mobile
	// money network failed after V-Pay took the request, whatever HTTP
	// status carries it. 4xx and 429 were refused.
	res.mayHaveActed = res.status >= 500 || (ok2xx && jsonErr != nil) || code == CodeNetworkError
}

func (c *Client) apiError(ep *endpoint, res *result, status int, code ErrorCode, msg string, cause error) *Error {
	return &Error{
		HTTPStatus: status,
		Code:       code,
		Message:    msg,
		RequestID:  requestID(res.header),
		RateLimit:  res.rl,
		Method:     ep.method,
		Path:       ep.path,
		Err:        cause,
	}
}

// logExchange logs one exchange at debug level; its fields are built only
// when that level is on.
func (c *Client) logExchange(ctx context.Context, ep *endpoint, start time.Time, status int, h http.Header, err error) {
	if !c.logger.Enabled(ctx, slog.LevelDebug) {
		return
	}
	attrs := []slog.Attr{slog.String("method", ep.method), slog.String("path", ep.path),
		slog.Duration("duration", c.clock.Now().Sub(start))}
	if err != nil {
		c.logger.LogAttrs(ctx, slog.LevelDebug, "vpay: request failed", append(attrs, slog.String("error", transportSummary(err)))...)
		return
	}
	c.logger.LogAttrs(ctx, slog.LevelDebug, "vpay: request",
		append(attrs, slog.Int("status", status), slog.String("request_id", requestID(h)))...)
}

// attemptEnd tells the observer how an attempt went.
func (c *Client) attemptEnd(ctx context.Context, a Attempt, res *result) {
	f := c.obs.AttemptEnd
	if f == nil {
		return
	}
	r := AttemptResult{Attempt: a, Duration: c.clock.Now().Sub(a.Start), HTTPStatus: res.status,
		RequestID: requestID(res.header), RateLimit: res.rl, Err: res.err}
	if e, ok := res.err.(*Error); ok {
		r.Code = e.Code
	}
	f(ctx, r)
}

func requestID(h http.Header) string {
	for _, k := range [...]string{"X-Request-Id", "Request-Id", "X-Correlation-Id"} {
		if v := h[k]; len(v) > 0 && v[0] != "" {
			return v[0]
		}
	}
	return ""
}

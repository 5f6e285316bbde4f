package vpay

// The exchange: the one place that talks HTTP. It builds a request, sends
// it, reads and decodes the answer, and tells the rate gate what became of
// it. The loop around it (request.go) decides what happens next.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

// maxBodyBytes caps what the client reads of any response body.
const maxBodyBytes = 1 << 20

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
	sent         time.Time // when the request was sent; zero if it was not
}

// exchange sends one request and decodes its answer into tx or out. It is the
// only place that talks HTTP; do, the one request loop, calls it for every
// attempt of every call, the token fetch included. The rate gate has let the request
// go; exchange tells it what became of it, once: the answer's headers, or
// that no answer came.
//
// resend is the number of requests the call sent before this one; start is
// when the rate gate let it go, the attempt's start.
func (c *Client) exchange(ctx context.Context, ep *endpoint, query string, body []byte, tok *Token, tx *wire.Transaction, out any, resend int, start time.Time) (res result) {
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
	res = result{status: resp.StatusCode, header: resp.Header, sent: start}
	res.rl = c.rate.answered(ctx, resp.Header, resp.StatusCode)
	answered = true
	c.logExchange(ctx, ep, start, resp.StatusCode, resp.Header, nil)
	// The decoded values copy what they keep: the buffer can go back.
	c.decode(&res, ep, buf.Bytes(), readErr, tx, out)
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
	// Every value is built once (per client, per token) and shared: net/http
	// only reads a request's headers. NewRequestWithContext has set GetBody
	// for the body's bytes.Reader, so net/http can replay the exact bytes
	// itself when an HTTP/2 connection is lost before the request was
	// written.
	h := make(http.Header, 6)
	h["Accept"] = jsonValue
	h["User-Agent"] = c.uaValue
	h["Apiuser"] = c.userValue
	h["Apikey"] = c.keyValue
	if tok != nil {
		h["Authorization"] = c.bearerHeader(tok)
	}
	if body != nil {
		h["Content-Type"] = jsonValue
	}
	req.Header = h
	return req, nil
}

// jsonValue is a header value shared by every request: net/http only reads
// a request's headers.
var jsonValue = []string{"application/json"}

// decodeInto decodes data into tx, or into other when tx is nil, and
// reports whether the body is an error in disguise ({"status":"error"}).
func decodeInto(data []byte, tx *wire.Transaction, other any) (isError bool, err error) {
	if tx != nil {
		err = wire.DecodeTransaction(data, tx)
		return tx.IsError(), err
	}
	err = wire.Decode(data, other)
	if e, ok := other.(interface{ IsError() bool }); ok {
		isError = e.IsError()
	}
	return isError, err
}

// decode reads the answer's body into tx or other, or into res.err: a body
// {"status":"error"} is an error whatever the HTTP status.
func (c *Client) decode(res *result, ep *endpoint, data []byte, readErr error, tx *wire.Transaction, other any) {
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
		if isError, err := decodeInto(data, tx, other); err == nil && !isError {
			return
		}
	}
	var env wire.Envelope
	jsonErr := wire.Decode(data, &env)
	if ok2xx && jsonErr == nil && !env.IsError() {
		// The body is JSON and no error, yet out could not take it (an
		// amount with a fraction, a string where an object belongs): the
		// server accepted the request, what it created exists.
		_, err := decodeInto(data, tx, other)
		res.err = c.apiError(ep, res, res.status, "", "cannot decode response", err)
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

// transportSummary names a transport failure in a few words for the log,
// without the URL or anything else the error may carry.
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

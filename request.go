package vpay

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/vonsung/vpay-go/internal/wire"
)

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
	// fetchesToken marks the token fetch (POST /auth/): it is how a token
	// is got, so it is sent without one, and a 401 means the credentials
	// are refused, not that a token went stale.
	fetchesToken bool
	// attempts counts the requests sent, for the Observer.
	attempts int
	// sent is when the last attempt was sent, on the client's clock: a
	// token's lifetime counts from there.
	sent time.Time
}

// do is the whole life of an API call, the token fetch included: a token
// (except for the fetch itself), the rate limit's permission, one exchange,
// and the decision to try again, until the answer decodes into out or the
// decision is no. Every failure is an *Error.
//
// The answer decodes into tx when the call's answer is a transaction (Pay,
// Status), into out otherwise: tx is never kept, so the caller's
// Transaction stays on its stack.
func (c *Client) do(ctx context.Context, cl *call, tx *wire.Transaction, out any) error {
	var (
		tries        int  // retries spent
		replaced     bool // the token was replaced after a 401
		mayHaveActed bool // an attempt may have reached the server and acted
	)
	for {
		tok, now, err := c.admit(ctx, cl)
		if err != nil {
			return c.annotate(*cl, err, mayHaveActed)
		}

		res := c.exchange(ctx, cl.ep, cl.query, cl.body, tok, tx, out, cl.attempts, now)
		cl.attempts++
		cl.sent = res.sent
		if res.err == nil {
			return nil
		}
		mayHaveActed = mayHaveActed || res.mayHaveActed

		switch {
		case res.status == http.StatusUnauthorized && !cl.fetchesToken && !replaced:
			replaced = true
			c.logDecision(ctx, cl, res, tries, decision{again: true, reason: RetryTokenExpired, why: "401 with a token: replacing the token"})
			if err := c.store.Invalidate(ctx, tok); err != nil {
				return c.annotate(*cl, err, mayHaveActed)
			}
			continue
		case res.duplicate && mayHaveActed && cl.createsPayment:
			// The 409 answers our own earlier attempt, most likely.
			var e *Error
			if errors.As(res.err, &e) {
				e.Message = "an earlier attempt of this request may have created the payment; wait for the webhook naming its reference before paying again: " + e.Message
			}
			c.logDecision(ctx, cl, res, tries, decision{reason: RetryDuplicate, why: "409 after an attempt that may have acted: the payment may exist"})
			return c.annotate(*cl, res.err, true)
		}
		d := c.retryAfter(ctx, res, tries)
		c.logDecision(ctx, cl, res, tries, d)
		if !d.again {
			return c.annotate(*cl, withCtxCause(ctx, res.err), mayHaveActed)
		}
		tries++
		if err := c.pause(ctx, cl.ep.op, d); err != nil {
			return c.annotate(*cl, gaveUp(err), mayHaveActed)
		}
	}
}

// admit is everything a request waits for before it is sent: a valid
// token, unless the call fetches one, and the rate limit's permission. It
// returns the time it let the request go. The clock is read once when
// nothing waits (a token in hand, a slot free): that reading serves the
// token's validity, the limiter and the attempt's start.
func (c *Client) admit(ctx context.Context, cl *call) (*Token, time.Time, error) {
	now := c.clock.Now()
	if cl.fetchesToken {
		now, err := c.waitForRate(ctx, cl.ep.op, now)
		return nil, now, err
	}
	tok, now, err := c.tokenAt(ctx, now)
	if err != nil {
		return nil, now, err
	}
	// After the token, so that a refresh cannot carry a request counted in
	// this window into the next one.
	before := now
	if now, err = c.waitForRate(ctx, cl.ep.op, now); err != nil {
		return nil, now, err
	}
	if now != before && !tok.Valid(now) {
		// It expired while we waited for the window.
		if tok, now, err = c.tokenAt(ctx, now); err != nil {
			c.rate.unanswered(ctx) // the slot granted goes unused
			return nil, now, err
		}
	}
	return tok, now, nil
}

// waitForRate is the rate gate's wait before a request, told to the
// observer: how long it waited, or that it refused to let the request go.
// It returns the time it let the request go.
func (c *Client) waitForRate(ctx context.Context, op Op, now time.Time) (time.Time, error) {
	waited, now, err := c.rate.reserve(ctx, now)
	if c.obs != nil {
		c.rateWaited(ctx, op, WaitWindow, waited)
		if errors.Is(err, ErrRateLimited) {
			c.refused(ctx, op, "", err)
		}
	}
	return now, err
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

// annotate adds what the caller needs to err: the call, the reference, whether
// the request may have taken effect, the latest rate-limit state.
//
// Every error leaves here as an *Error, whatever produced it (a TokenStore
// or Limiter of the merchant's, the context): once an attempt of a Pay may
// have reached V-Pay, losing the reference and "outcome unknown" to a Redis
// failover on the retry would leave the merchant guessing.
func (c *Client) annotate(cl call, err error, mayHaveActed bool) error {
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

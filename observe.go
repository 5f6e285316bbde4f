package vpay

import (
	"context"
	"errors"
	"time"
)

// Observer is told what a Client does, for traces and metrics: each
// operation's start and end, each HTTP attempt, each retry decision, each
// rate-limit wait, each refusal made without sending anything, and each
// token refresh. Set it with WithObserver; the package vpayotel
// (github.com/vonsung/vpay-go/vpayotel) implements it with OpenTelemetry.
//
// Every field is optional. The functions run on the caller's goroutine, in
// the order the events happen, possibly from many goroutines at once: they
// must be safe for concurrent use and quick. The values they receive hold
// no secret, no phone number, no name and no email (but for the text of an
// Err, which is the caller's own error); a merchant's reference and a
// transaction id are there for an observer that chooses to record them.
//
// A Client without an Observer pays nothing for this: no allocation, no
// extra clock reading.
type Observer struct {
	// OperationStart is called when Pay, Status, Wait, CreateLink or a
	// token fetch begins. The context it returns (a span's, say) is the one
	// the operation runs with: its attempts, and the operations it makes
	// (a Wait's Status polls, a token fetch), see it. Nil returns are
	// replaced by ctx.
	OperationStart func(ctx context.Context, op Operation) context.Context
	// OperationEnd is called with the context OperationStart returned.
	OperationEnd func(ctx context.Context, op OperationResult)
	// AttemptStart is called before each HTTP request; the context it
	// returns is the request's (so a transport sees its span).
	AttemptStart func(ctx context.Context, a Attempt) context.Context
	// AttemptEnd is called with the context AttemptStart returned, once
	// the answer is read or the request has failed.
	AttemptEnd func(ctx context.Context, a AttemptResult)
	// Retry is called after each failed attempt, whether the SDK tries
	// again (Again) or not, with the reason.
	Retry func(ctx context.Context, r RetryDecision)
	// RateLimitWait is called after the SDK waited for the rate limit:
	// before sending, for the window to allow the request, or after a 429.
	RateLimitWait func(ctx context.Context, w RateLimitWait)
	// Refused is called when the SDK refuses an operation without sending
	// it: invalid input, or a rate limit it would have to wait out for
	// longer than it may.
	Refused func(ctx context.Context, r Refusal)
	// TokenRefresh is called after each call to POST /auth/ the client
	// made (not for a token another replica refreshed in a shared store).
	TokenRefresh func(ctx context.Context, t TokenRefresh)
}

// Op names an operation of the Client.
type Op string

// The operations an Observer is told about.
const (
	OpPay        Op = "pay"
	OpStatus     Op = "status"
	OpWait       Op = "wait"
	OpCreateLink Op = "create_link"
	OpToken      Op = "token"
)

// Operation is an operation that begins.
type Operation struct {
	Op Op // which operation
	// Reference is Pay's reference (as given; empty when the SDK makes
	// one), empty for other operations.
	Reference string
	// TransactionID is the transaction Status and Wait ask about.
	TransactionID string
	// LowPriority: the call runs in the rate limit's low-priority lane.
	LowPriority bool
	Start       time.Time // when it began, on the client's clock
}

// OperationResult is how an operation ended.
type OperationResult struct {
	Operation
	Duration time.Duration // how long it took
	// Attempts is the number of HTTP requests the operation sent itself
	// (not counting a token fetch's).
	Attempts int
	// Status is the transaction's status when the operation returned one.
	Status Status
	// Err is nil on success. Outcome classifies it. It is the error the
	// caller gets, which may quote invalid input (a phone number the SDK
	// refused): record its kind, not its text.
	Err error
}

// Outcome is an operation's result in a word fit for a metric label.
type Outcome string

// The outcomes of an operation.
const (
	OutcomeSuccess Outcome = "success"
	// OutcomeRefused: refused before anything was sent (invalid input, or
	// a rate limit too long to wait out).
	OutcomeRefused Outcome = "refused"
	// OutcomeUnknown: a Pay that may or may not have created the payment.
	OutcomeUnknown Outcome = "unknown"
	// OutcomeCanceled: the context ended first.
	OutcomeCanceled Outcome = "canceled"
	OutcomeError    Outcome = "error"
)

// Outcome classifies r.Err.
func (r OperationResult) Outcome() Outcome {
	var ve *ValidationError
	switch err := r.Err; {
	case err == nil:
		return OutcomeSuccess
	case errors.Is(err, ErrOutcomeUnknown):
		return OutcomeUnknown
	case errors.As(err, &ve):
		return OutcomeRefused
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return OutcomeCanceled
	case r.Attempts == 0 && errors.Is(err, ErrRateLimited):
		return OutcomeRefused
	}
	return OutcomeError
}

// Attempt is one HTTP request that is about to be sent.
type Attempt struct {
	Op Op // the operation the request belongs to
	// Method and Path are the request's (e.g. "GET", "/transaction/status/").
	Method, Path string
	// Host is the server's host and port as in the base URL.
	Host string
	// URL is the request's URL without its query.
	URL string
	// Resend counts the requests of this operation sent before this one:
	// 0 for the first (OpenTelemetry's http.request.resend_count).
	Resend int
	Start  time.Time // when it was sent
}

// AttemptResult is how one HTTP request went.
type AttemptResult struct {
	Attempt
	Duration time.Duration // from sending to the answer read, or the failure
	// HTTPStatus is 0 when no answer arrived.
	HTTPStatus int
	// Code is the API's error code, if the answer was an error.
	Code      ErrorCode
	RequestID string // the answer's X-Request-Id, if any
	// RateLimit is what the answer's headers announced (zero without them).
	RateLimit RateLimit
	// Err is nil when the answer was a success the SDK could read.
	Err error
}

// RetryReason is why a failed attempt was or was not tried again, in a word
// fit for a metric label.
type RetryReason string

// Reasons for a retry decision. The first five say why a failure may pass;
// a declined retry has one of those when it was declined for lack of time
// or retries, or one of the rest.
const (
	RetryRateLimited  RetryReason = "rate_limited"  // a 429 or RATE_LIMITED
	RetryNetworkError RetryReason = "network_error" // NETWORK_ERROR: the mobile money network failed
	RetryNoAnswer     RetryReason = "no_answer"     // no complete answer arrived
	RetryServerError  RetryReason = "server_error"  // 500, 502, 503, 504
	RetryTokenExpired RetryReason = "token_expired" // a 401: the token is replaced once
	// RetryNotRetryable: the same request would fail again (a 4xx).
	RetryNotRetryable RetryReason = "not_retryable"
	// RetryDuplicate: a retried Pay was refused as a duplicate of itself.
	RetryDuplicate RetryReason = "duplicate"
)

// RetryDecision is the SDK's decision after a failed attempt.
type RetryDecision struct {
	Op Op // the operation whose attempt failed
	// Again: the request is sent again after Wait.
	Again  bool
	Reason RetryReason // why the failure may pass, or why it will not
	// Detail says the same in a sentence, with any limit that declined it
	// ("but 3 retries are spent"), as the debug log has it.
	Detail string
	Wait   time.Duration // how long before the next attempt, when Again
	// Retries is the number of retries already made before this decision.
	Retries    int
	HTTPStatus int       // the failed attempt's status; 0 without an answer
	Code       ErrorCode // the API's error code, if the answer had one
}

// RateLimitWaitReason says what a rate-limit wait waited for.
type RateLimitWaitReason string

// The rate-limit waits.
const (
	// WaitWindow: before sending, for the window to allow the request.
	WaitWindow RateLimitWaitReason = "window"
	// WaitThrottled: after a 429, for the window it announced to reset.
	WaitThrottled RateLimitWaitReason = "throttled"
)

// RateLimitWait is a wait for the rate limit that has ended.
type RateLimitWait struct {
	Op       Op                  // the operation that waited
	Reason   RateLimitWaitReason // what it waited for
	Duration time.Duration       // how long it waited
	// RateLimit is the latest state the client knows of.
	RateLimit RateLimit
}

// Refusal is an operation the SDK refused without sending it.
type Refusal struct {
	Op Op // the operation refused
	// Field names the invalid input ("PayRequest.Phone"); empty for a
	// rate-limit refusal.
	Field string
	Err   error // what the caller gets (for invalid input it may quote it)
}

// TokenRefresh is one token fetch from POST /auth/.
type TokenRefresh struct {
	// Lifetime is the new token's, from its sending; zero on failure.
	Lifetime time.Duration
	Duration time.Duration // how long the fetch took, retries included
	Err      error         // nil on success
}

// joinObservers makes one Observer of several: each event goes to each in
// order, a context returned by one passed to the next; ends go innermost
// first, as spans end.
func joinObservers(obs []*Observer) *Observer {
	switch len(obs) {
	case 0:
		return nil
	case 1:
		cp := *obs[0]
		return &cp
	}
	list := append([]*Observer(nil), obs...)
	return &Observer{
		OperationStart: chainStart(list, func(o *Observer) func(context.Context, Operation) context.Context { return o.OperationStart }),
		OperationEnd:   fanOut(list, true, func(o *Observer) func(context.Context, OperationResult) { return o.OperationEnd }),
		AttemptStart:   chainStart(list, func(o *Observer) func(context.Context, Attempt) context.Context { return o.AttemptStart }),
		AttemptEnd:     fanOut(list, true, func(o *Observer) func(context.Context, AttemptResult) { return o.AttemptEnd }),
		Retry:          fanOut(list, false, func(o *Observer) func(context.Context, RetryDecision) { return o.Retry }),
		RateLimitWait:  fanOut(list, false, func(o *Observer) func(context.Context, RateLimitWait) { return o.RateLimitWait }),
		Refused:        fanOut(list, false, func(o *Observer) func(context.Context, Refusal) { return o.Refused }),
		TokenRefresh:   fanOut(list, false, func(o *Observer) func(context.Context, TokenRefresh) { return o.TokenRefresh }),
	}
}

// chainStart calls each observer's start hook in order, each with the
// context the one before returned.
func chainStart[T any](list []*Observer, hook func(*Observer) func(context.Context, T) context.Context) func(context.Context, T) context.Context {
	return func(ctx context.Context, v T) context.Context {
		for _, o := range list {
			if f := hook(o); f != nil {
				if c := f(ctx, v); c != nil {
					ctx = c
				}
			}
		}
		return ctx
	}
}

// fanOut calls each observer's hook, in order or, for ends, in reverse.
func fanOut[T any](list []*Observer, reverse bool, hook func(*Observer) func(context.Context, T)) func(context.Context, T) {
	return func(ctx context.Context, v T) {
		for i := range list {
			if reverse {
				i = len(list) - 1 - i
			}
			if f := hook(list[i]); f != nil {
				f(ctx, v)
			}
		}
	}
}

// The Client's side: each helper is a no-op without an observer, and is
// called only behind a nil check where building its argument would cost.

func (c *Client) opStart(ctx context.Context, op Operation) (context.Context, Operation) {
	op.Start = c.clock.Now()
	op.LowPriority = IsLowPriority(ctx)
	if f := c.obs.OperationStart; f != nil {
		if octx := f(ctx, op); octx != nil {
			ctx = octx
		}
	}
	return ctx, op
}

func (c *Client) opEnd(ctx context.Context, op Operation, attempts int, st Status, err error) {
	if ve := (*ValidationError)(nil); errors.As(err, &ve) {
		c.refused(ctx, op.Op, ve.Field, err)
	}
	if f := c.obs.OperationEnd; f != nil {
		f(ctx, OperationResult{Operation: op, Duration: c.clock.Now().Sub(op.Start), Attempts: attempts, Status: st, Err: err})
	}
}

func (c *Client) refused(ctx context.Context, op Op, field string, err error) {
	if f := c.obs.Refused; f != nil {
		f(ctx, Refusal{Op: op, Field: field, Err: err})
	}
}

func (c *Client) rateWaited(ctx context.Context, op Op, why RateLimitWaitReason, d time.Duration) {
	if f := c.obs.RateLimitWait; f != nil && d > 0 {
		f(ctx, RateLimitWait{Op: op, Reason: why, Duration: d, RateLimit: c.RateLimit()})
	}
}

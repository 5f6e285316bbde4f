package vpay

import (
	"fmt"
	"strings"
)

// ErrorCode is V-Pay's machine-readable error code, the error_code field of
// an error body.
type ErrorCode string

// The documented error codes.
const (
	CodeInvalidKey         ErrorCode = "INVALID_KEY"
	CodeInvalidPhone       ErrorCode = "INVALID_PHONE"
	CodeInvalidAmount      ErrorCode = "INVALID_AMOUNT"
	CodeDuplicateReference ErrorCode = "DUPLICATE_REFERENCE"
	CodePaymentTimeout     ErrorCode = "PAYMENT_TIMEOUT"
	CodeInsufficientFunds  ErrorCode = "INSUFFICIENT_FUNDS"
	CodeNetworkError       ErrorCode = "NETWORK_ERROR"
	CodeRateLimited        ErrorCode = "RATE_LIMITED"
)

// sentinel is the type of the package's sentinel errors. An *Error matches a
// sentinel with errors.Is when their codes are equal.
type sentinel struct {
	code ErrorCode
	msg  string
}

func (s *sentinel) Error() string { return "vpay: " + s.msg }

// Sentinels for the documented error codes. Every *Error matches the one of
// its Code with errors.Is, and so does a *ValidationError for the field the
// code is about, so one check covers both the SDK's and the server's refusal:
//
//	if errors.Is(err, vpay.ErrInvalidPhone) { ... ask the customer again ... }
var (
	ErrInvalidKey         error = &sentinel{CodeInvalidKey, "invalid API key"}
	ErrInvalidPhone       error = &sentinel{CodeInvalidPhone, "invalid phone number"}
	ErrInvalidAmount      error = &sentinel{CodeInvalidAmount, "invalid amount"}
	ErrDuplicateReference error = &sentinel{CodeDuplicateReference, "duplicate reference"}
	ErrPaymentTimeout     error = &sentinel{CodePaymentTimeout, "payment timed out"}
	ErrInsufficientFunds  error = &sentinel{CodeInsufficientFunds, "insufficient funds"}
	ErrNetworkError       error = &sentinel{CodeNetworkError, "mobile money network error"}
	ErrRateLimited        error = &sentinel{CodeRateLimited, "rate limited"}
)

// Sentinels the SDK adds for conditions the API has no code for.
var (
	// ErrInvalidRequest matches every *ValidationError: input the SDK refused
	// before sending anything.
	ErrInvalidRequest error = &sentinel{"", "invalid request"}
	// ErrInvalidDescription: a description too long, or with characters
	// that MTN MoMo drops silently.
	ErrInvalidDescription error = &sentinel{"", "invalid description"}
	// ErrInvalidReference: a reference that is too long or has characters
	// the API does not accept.
	ErrInvalidReference error = &sentinel{"", "invalid reference"}
	// ErrOutcomeUnknown matches an error after which the payment may or may
	// not exist on V-Pay: the request may have been processed but its answer
	// was lost. The API has no lookup by reference, and Status needs the
	// transaction id the lost answer carried: keep the order pending and
	// wait for the webhook that names its Reference (external_id), or let
	// the tracker module (github.com/vonsung/vpay-go/tracker) follow it.
	// Paying again with the same Reference never charges twice: it creates
	// the payment if the first attempt never did, and is refused as
	// DUPLICATE_REFERENCE if it did (whose outcome the webhook still tells).
	ErrOutcomeUnknown error = &sentinel{"", "outcome unknown"}
	// ErrUnauthorized matches a 401 from an API call that persisted after
	// the token was replaced.
	ErrUnauthorized error = &sentinel{"", "unauthorized"}
)

// Error is the error of every failed API call: an error body, an unexpected
// HTTP status, a body that could not be read, or a transport failure
// (HTTPStatus 0, the cause in Err). Reach it with errors.As; match its code
// with errors.Is and the sentinels above.
type Error struct {
	// HTTPStatus is the response's status code, 0 if no response arrived.
	HTTPStatus int
	// Code is the body's error_code, if any.
	Code ErrorCode
	// Message is the server's message, or the SDK's description of the
	// failure.
	Message string
	// RequestID is the server's request id header, if it sent one.
	RequestID string
	// RateLimit is the rate-limit state the response announced (or the
	// latest the client knew, when no response arrived).
	RateLimit RateLimit
	// Method and Path say which call failed, e.g. "POST" "/pay/".
	Method, Path string
	// Reference is the payment's reference, for errors from Pay.
	Reference string
	// OutcomeUnknown is true when the request may have been processed even
	// though this error was returned (the answer was lost, or a retry was
	// refused as a duplicate of an earlier attempt). The error then also
	// matches ErrOutcomeUnknown.
	OutcomeUnknown bool
	// Err is the underlying cause: a transport error, a decoding error, the
	// context's error.
	Err error

	noAnswer bool // no complete answer arrived: the connection failed or the body was cut
}

// Error describes the failure: the call, the status and code, the API's
// message and the reference, never a secret.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("vpay: ")
	if e.Method != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	if e.HTTPStatus != 0 {
		fmt.Fprintf(&b, "HTTP %d: ", e.HTTPStatus)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, "%s: ", e.Code)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	} else if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	b.WriteString(msg)
	if e.Reference != "" {
		fmt.Fprintf(&b, " (reference %s)", e.Reference)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " [request %s]", e.RequestID)
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the sentinel of e's code, ErrOutcomeUnknown when the outcome
// is unknown, and ErrUnauthorized for a 401.
func (e *Error) Is(target error) bool {
	s, ok := target.(*sentinel)
	if !ok {
		return false
	}
	switch {
	case s == ErrOutcomeUnknown:
		return e.OutcomeUnknown
	case s == ErrUnauthorized:
		return e.HTTPStatus == 401
	case s.code != "":
		return s.code == e.Code || (s.code == CodeInvalidKey && e.HTTPStatus == 401 && e.Code == "") ||
			(s.code == CodeRateLimited && e.HTTPStatus == 429 && e.Code == "")
	}
	return false
}

// Retryable reports whether the same call may succeed if made again later:
// a rate limit (after its window resets), NETWORK_ERROR, a connection that
// failed or an answer cut short, and HTTP 500, 502, 503 and 504. It is the
// rule the client itself follows for its own retries, so an error that
// says true has already been retried as far as WithMaxRetries allowed.
// A Pay is safe to retry with the same Reference: V-Pay refuses a second
// payment for it.
func (e *Error) Retryable() bool {
	ok, _, _ := retryable(e.HTTPStatus, e.Code, e.noAnswer)
	return ok
}

// Temporary is Retryable.
//
// Deprecated: use Retryable, which says what it means.
func (e *Error) Temporary() bool { return e.Retryable() }

// ValidationError is returned, before any request is sent, for input the SDK
// can refuse itself. It names the field and matches ErrInvalidRequest and the
// field's own sentinel (ErrInvalidPhone, ErrInvalidAmount, ...) with
// errors.Is.
type ValidationError struct {
	// Field is the Go field name, e.g. "PayRequest.Phone".
	Field string
	// Reason says what is wrong, for a person.
	Reason string
	kind   error
}

// Error names the field and says what is wrong with it.
func (e *ValidationError) Error() string {
	return fmt.Sprintf("vpay: invalid %s: %s", e.Field, e.Reason)
}

// Is matches ErrInvalidRequest and the field's sentinel.
func (e *ValidationError) Is(target error) bool {
	return target == ErrInvalidRequest || (e.kind != nil && target == e.kind)
}

func invalid(field string, kind error, format string, args ...any) *ValidationError {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...), kind: kind}
}

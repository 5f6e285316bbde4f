// Package vpay is the Go SDK for the V-Pay payment API, for Rwandan
// merchants: MTN Mobile Money (MethodMTN), cards (MethodCard) and V-Pay's
// hosted checkout (MethodAll), which offers the payer whatever channels
// V-Pay has there. The API names no method for Airtel Money or bank
// transfer, which V-Pay's introduction mentions; the SDK sends neither.
//
// # Getting started
//
//	c, err := vpay.NewClient(os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY"))
//	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1500, Phone: "0780000000", Reference: orderID})
//	tx, err := c.Wait(ctx, p.TransactionID) // or receive the webhook
//
// A *Client is safe for concurrent use; create one per API key and share it.
//
// # Authentication
//
// The client fetches an access token from POST /auth/ with your apiUser and
// apiKey on the first call that needs one, and replaces it ahead of expiry
// in the background, so calls never wait on /auth/ in steady state. However
// many goroutines need a token at once, one /auth/ call is made. A 401 drops
// the token and retries the call once with a new one. To share tokens
// between processes, give WithTokenStore a shared TokenStore (the
// redisstore module).
//
// # Validation
//
// Pay and CreateLink refuse invalid input before sending anything, with a
// *ValidationError that names the field and matches a sentinel:
//
//	if errors.Is(err, vpay.ErrInvalidPhone) { ... }
//
// Phone numbers are accepted in any common form and sent as 07XXXXXXXX.
//
// # Errors
//
// Every failed API call returns a *Error (use errors.As) that matches the
// sentinel of its code (ErrInsufficientFunds, ErrPaymentTimeout, ...) with
// errors.Is, whatever the HTTP status: V-Pay sends some failures with 200.
// Input refused before sending is a *ValidationError instead (see
// Validation); both match the field's or code's sentinel.
// No error, log line or formatted Client contains the API key or a token.
//
// # Retries and double charges
//
// Transient failures (connection errors, timeouts, 500, 502 NETWORK_ERROR,
// 503, 504, and 429 after its window) are retried with exponential backoff and jitter, up to
// WithMaxRetries. A retried Pay sends the same Reference, so V-Pay's
// DUPLICATE_REFERENCE rule makes a double charge impossible. When the
// outcome of a Pay is unknown (its answer was lost, or a retry was refused as
// a duplicate of an attempt that may have succeeded) the error matches
// ErrOutcomeUnknown. There is no lookup by reference: keep the order
// pending and wait for the webhook that names its Reference, or use the
// tracker module, which does exactly that; never ask the customer to pay
// again under a new Reference.
//
// # Rate limiting
//
// V-Pay limits each API key per minute and per day, and announces the state
// in X-RateLimit-* headers on every response. The client reads them, and
// when the window is spent it waits for the reset (up to WithMaxWait)
// instead of earning a 429; a 429 is waited out and retried. Client.RateLimit
// returns the latest state, and every *Error carries it.
//
// # Webhooks
//
// Package webhook verifies X-VPay-Signature and turns payloads into Events;
// webhook.Handler is a ready http.Handler.
//
// # What the documentation leaves open
//
// V-Pay's documentation contradicts itself or is silent on the points
// below. The SDK follows one reading of each; openapi/vpay.yaml (package
// github.com/vonsung/vpay-go/openapi) describes each reading in an
// x-vpay-reading (the documentation's words, the SDK's assumption, what
// would show it wrong), and `vpay doctor` checks them against the real API:
//
//   - Pay's field names
//   - The status call
//   - Payment links
//   - Webhook payload and event names
//   - Webhook redelivery
//   - Error codes
//   - Replay protection
//   - Status spelling
//   - Amounts, dates, durations
//   - Authentication headers
//   - Key prefixes and mode
//   - Rate-limit headers
//   - Server clock
//
// # Testing
//
// Package vpaytest runs an in-process V-Pay emulator, like
// net/http/httptest: vpaytest.NewServer().Client() is a ready client.
package vpay

// Package vpaytest runs an in-process V-Pay emulator for tests, in the style
// of net/http/httptest:
//
//	s := vpaytest.NewServer()
//	defer s.Close()
//	c := s.Client() // a *vpay.Client pointed at the emulator
//	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1500, Phone: vpaytest.PhoneSuccess})
//
// The emulator speaks the wire contract of the real API: POST /auth/,
// POST /pay/, GET /transaction/status/?transaction_id=, POST /payment-links/
// and GET /payment-links/{id}/qr, with the documented field names, error
// bodies, "300.0 seconds" token lifetimes, the "PENNDING" spelling,
// amounts as "240.00" strings, X-RateLimit-* headers on every response, 429s
// past the plan, and signed webhooks POSTed to callback_url (retried until
// the merchant answers 2xx). The documentation's curl samples work against
// it, and so does any HTTP client: cmd/vpay-sandbox serves it standalone.
//
// # Phone numbers
//
// The documented sandbox numbers 0780000000 and 0790000000 always succeed,
// after the success delay (WithPaymentDelay, default 200 ms). So does any
// other valid MTN or Airtel number. These emulator-only numbers produce the
// other outcomes:
//
//	0780000001  fails: INSUFFICIENT_FUNDS
//	0780000002  fails: PAYMENT_TIMEOUT (the payer never answered the prompt)
//	0780000003  fails: the payer cancelled the prompt
//	0780000004  /pay/ answers 502 NETWORK_ERROR; no transaction is created
//
// # Faults
//
// Inject makes the next requests to a path fail: with a status, by dropping
// the connection before or after the request was processed, by answering
// slowly, or by cutting the body short. Transactions and PaymentsFor show
// what the emulator holds, so a test can check that no order was charged
// twice whatever the faults.
package vpaytest

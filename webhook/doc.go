// Package webhook verifies and handles V-Pay's webhooks.
//
// V-Pay signs every webhook with the hex HMAC-SHA256 of the raw body under
// your webhook secret, in the X-VPay-Signature header. Handler does all of
// it: it caps the body, verifies the signature in constant time, parses the
// event, drops redeliveries, and answers so that V-Pay retries what failed.
//
// # A complete endpoint
//
//	func main() {
//		secret := os.Getenv("VPAY_WEBHOOK_SECRET")
//		http.Handle("POST /webhooks/vpay", webhook.Handler(secret,
//			func(ctx context.Context, ev *vpay.Event) error {
//				switch ev.Type {
//				case vpay.EventPaymentSuccessful:
//					return orders.MarkPaid(ctx, ev.Transaction.Reference, ev.Transaction.Amount)
//				case vpay.EventPaymentFailed:
//					return orders.MarkFailed(ctx, ev.Transaction.Reference)
//				}
//				return nil // unknown types: acknowledge, do nothing
//			}))
//		log.Fatal(http.ListenAndServe(":8080", nil))
//	}
//
// Return an error from the function only when you want the delivery again:
// the handler answers 500 and forgets the event, and V-Pay redelivers it.
// For an event no redelivery could ever process (an id longer than your
// database stores), return Refuse(err): the handler answers 422, which
// V-Pay need not retry, and forgets the event; log what you refused.
//
// # Behind other routers
//
// Handler is a plain http.Handler: chi's r.Method("POST", "/webhooks/vpay",
// h), gin's r.POST("/webhooks/vpay", gin.WrapH(h)), echo's
// e.POST("/webhooks/vpay", echo.WrapHandler(h)). Mount it before any
// middleware that reads or rewrites the body: the signature covers the
// exact bytes. If your framework must read the body first, call
// VerifyRequest, which verifies and puts the body back.
//
// # Replays and rotation
//
// The signature has no timestamp, so a captured request stays valid;
// de-duplication on transaction id and status (WithDeduper, in memory by
// default, Redis across replicas) makes a replay harmless. To rotate the
// secret, accept both for a while: Handler(newSecret, fn,
// WithSecrets(oldSecret)).
package webhook

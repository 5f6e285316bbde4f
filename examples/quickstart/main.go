// Command quickstart runs the SDK's main job end to end: get a token, ask a
// customer to pay, receive and verify the webhook, and follow the payment
// to its final status with Status and Wait.
//
//	go run ./examples/quickstart
//
// With VPAY_API_USER and VPAY_API_KEY unset it runs against the built-in
// sandbox emulator (package vpaytest), with no setup. With them set it
// calls the real API (VPAY_BASE_URL, default https://vonsung.rw/api/); then
// VPAY_PHONE is the number to prompt (default the sandbox number) and
// VPAY_CALLBACK_URL your public webhook URL, if you have one.
//
// With -keep, the built-in sandbox stays up afterwards (until Ctrl-C), so
// that its dashboard can be looked at in a browser.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/examples/internal/setup"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

var keep = flag.Bool("keep", false, "keep the built-in sandbox running after the run, for its dashboard (Ctrl-C stops)")

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	logs := vpay.WithLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	c, sandbox, done, err := setup.Client(logs)
	if err != nil {
		return err
	}
	defer done()
	phone := setup.EnvOr("VPAY_PHONE", vpaytest.PhoneSuccess)
	callbackURL, secret := os.Getenv("VPAY_CALLBACK_URL"), os.Getenv("VPAY_WEBHOOK_SECRET")

	// 0. Where the webhook will arrive: against the sandbox, a local
	// endpoint that verifies it with the sandbox's secret.
	events := make(chan *vpay.Event, 4)
	if sandbox != nil {
		secret = sandbox.WebhookSecret
		hooks, err := serveWebhooks(secret, events)
		if err != nil {
			return err
		}
		defer hooks.Close()
		callbackURL = "http://" + hooks.Addr + "/webhooks/vpay"
	}

	// 1. Authenticate. Pay would do this by itself; it is shown as a step.
	tok, err := c.Token(ctx)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	fmt.Printf("1. Authenticated: %s mode, token valid until %s\n", c.Mode(), tok.Expiry.Format(time.TimeOnly))

	// 2. Ask the customer to pay.
	p, err := c.Pay(ctx, &vpay.PayRequest{
		Amount:      1500,
		Phone:       phone,
		Reference:   fmt.Sprintf("quickstart-%d", time.Now().UnixNano()),
		Description: "Quickstart order",
		CallbackURL: callbackURL,
		Metadata:    map[string]string{"cart": "42"},
	})
	if err != nil {
		return fmt.Errorf("pay: %w", err)
	}
	fmt.Printf("2. Payment %s for order %s is %s: %s\n", p.TransactionID, p.Reference, p.Status, p.Message)

	// 3. Status right away: still pending while the customer confirms.
	tx, err := c.Status(ctx, p.TransactionID)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	fmt.Printf("3. Status: %s\n", tx.Status)

	// 4. Wait polls until the payment is final.
	tx, err = c.Wait(ctx, p.TransactionID)
	if err != nil {
		return fmt.Errorf("wait: %w", err)
	}
	fmt.Printf("4. Final status: %s, %d %s from %s (%s)\n", tx.Status, tx.Amount, tx.Currency, tx.PayerPhone, tx.Message)

	// 5. The webhook, verified against the secret.
	if callbackURL != "" && secret != "" {
		select {
		case ev := <-events:
			fmt.Printf("5. Webhook verified: %s for %s (order %s, cart %s)\n", ev.Type, ev.Transaction.TransactionID, ev.Transaction.Reference, ev.Transaction.Metadata["cart"])
		case <-time.After(30 * time.Second):
			return fmt.Errorf("no webhook within 30 s")
		}
	} else {
		fmt.Println("5. Webhook: set VPAY_CALLBACK_URL and VPAY_WEBHOOK_SECRET to receive it")
	}
	rl := c.RateLimit()
	fmt.Printf("Done. Rate limit: %d of %d requests left in this window.\n", rl.Remaining, rl.Limit)
	if tx.Status != vpay.StatusSuccessful {
		return fmt.Errorf("payment ended %s", tx.Status)
	}
	if sandbox != nil && !*keep {
		fmt.Println("Run it with -keep to look at the sandbox's dashboard afterwards.")
	}
	if sandbox != nil && *keep {
		fmt.Println("The sandbox stays up: open", sandbox.DashboardURL(), "(Ctrl-C stops).")
		stop, cancelStop := signal.NotifyContext(context.Background(), os.Interrupt)
		defer cancelStop()
		<-stop.Done()
	}
	return nil
}

// serveWebhooks runs the merchant's webhook endpoint on a loopback port.
func serveWebhooks(secret string, events chan<- *vpay.Event) (*http.Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/vpay", webhook.Handler(secret, func(_ context.Context, ev *vpay.Event) error {
		events <- ev
		return nil
	}))
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}

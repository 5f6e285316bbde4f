// Command webhook-server is a merchant's V-Pay webhook endpoint: it verifies
// each delivery's signature, drops redeliveries and logs the events.
//
//	VPAY_WEBHOOK_SECRET=whsec_... go run ./examples/webhook-server
//
// Without VPAY_WEBHOOK_SECRET it uses a demo secret and prints a curl
// command that delivers a signed event to it. ADDR sets the address
// (default 127.0.0.1:8080).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/examples/internal/setup"
	"github.com/vonsung/vpay-go/webhook"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stdout, nil))
	addr := setup.EnvOr("ADDR", "127.0.0.1:8080")
	secret := os.Getenv("VPAY_WEBHOOK_SECRET")
	if secret == "" {
		secret = "whsec_demo_only"
		body := `{"event":"payment.successful","transaction_id":"VP86583387","status":"successful","amount":"240.00","external_id":"order-1042"}`
		fmt.Printf("VPAY_WEBHOOK_SECRET is unset: using the demo secret %q. Try:\n\n", secret)
		fmt.Printf("curl -i http://%s/webhooks/vpay -H 'X-VPay-Signature: %s' -d '%s'\n\n", addr, webhook.Sign([]byte(body), secret), body)
	}

	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/vpay", webhook.Handler(secret, func(ctx context.Context, ev *vpay.Event) error {
		tx := ev.Transaction
		logger.InfoContext(ctx, "payment event",
			slog.String("type", string(ev.Type)), slog.String("transaction_id", tx.TransactionID),
			slog.String("reference", tx.Reference), slog.String("status", string(tx.Status)),
			slog.Int64("amount_rwf", tx.Amount))
		// Here: mark the order paid, in a transaction keyed by tx.Reference.
		// Return an error to have V-Pay deliver the event again.
		return nil
	}, webhook.WithLogger(logger)))

	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	logger.Info("listening", slog.String("addr", "http://"+addr+"/webhooks/vpay"))
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("server failed", slog.String("error", err.Error()))
		os.Exit(1)
	}
}

// Command vpay-sandbox runs the V-Pay emulator (package vpaytest) as a
// standalone server, so the documentation's curl samples, and clients in
// any language, can run against it:
//
//	go run ./cmd/vpay-sandbox -addr 127.0.0.1:8000
//
// It prints the credentials and the webhook secret it accepts and signs
// with, and serves until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return // -h printed the usage: asking for help is no error
		}
		fmt.Fprintln(os.Stderr, "vpay-sandbox:", err)
		os.Exit(2)
	}
}

// run serves the emulator until ctx ends.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("vpay-sandbox", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8000", "address to listen on")
	user := fs.String("user", "vpay_sandbox_demo", "apiUser to accept (empty: random)")
	key := fs.String("key", "sk_sandbox_demo", "apiKey to accept (empty: random)")
	secret := fs.String("secret", "whsec_sandbox_demo", "webhook secret to sign with (empty: random)")
	delay := fs.Duration("delay", 2*time.Second, "how long a payment stays pending")
	lifetime := fs.Duration("token-lifetime", vpaytest.DefaultTokenLifetime, "access token lifetime")
	plan := fs.String("plan", "", `rate-limit plan: "starter", "growth", or empty for no practical limit`)
	verbose := fs.Bool("v", false, "log every request with its status code")
	hookURL := fs.String("webhook-url", "", "also send every webhook here, as the dashboard's webhook URL does")
	manual := fs.Bool("manual", false, "payments wait for you: approve MoMo prompts on the phone page, pay cards on the checkout page")
	promptTimeout := fs.Duration("prompt-timeout", vpaytest.DefaultPromptTimeout, "how long a payment that waits for its payer stays pending")
	if err := fs.Parse(args); err != nil {
		return err
	}

	opts := []vpaytest.Option{
		vpaytest.WithAddr(*addr),
		vpaytest.WithCredentials(*user, *key, *secret),
		vpaytest.WithPaymentDelay(*delay),
		vpaytest.WithTokenLifetime(*lifetime),
		vpaytest.WithWebhookURL(*hookURL),
		vpaytest.WithPromptTimeout(*promptTimeout),
	}
	if *manual {
		opts = append(opts, vpaytest.WithManualPayer())
	}
	switch strings.ToLower(*plan) {
	case "":
	case "starter":
		opts = append(opts, vpaytest.WithPlan(vpay.PlanStarter))
	case "growth":
		opts = append(opts, vpaytest.WithPlan(vpay.PlanGrowth))
	default:
		return fmt.Errorf("unknown plan %q", *plan)
	}
	if *verbose {
		opts = append(opts, vpaytest.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	s, err := vpaytest.Start(opts...)
	if err != nil {
		return err
	}
	defer s.Close()

	fmt.Fprintf(stdout, `V-Pay sandbox emulator listening.

  dashboard       %s
  base URL        %s
  apiUser         %s
  apiKey          %s
  webhook secret  %s

Try:
  curl -s -X POST '%sauth/' -H 'apiUser: %s' -H 'apiKey: %s'

Phone numbers: %s and %s succeed; %s insufficient funds,
%s timeout, %s cancelled, %s NETWORK_ERROR.
Test cards on checkout pages: %s succeeds, %s is declined.
The payer's phone: %sphone/<number>%s.
`, s.DashboardURL(), s.URL, s.APIUser, s.APIKey, s.WebhookSecret, s.URL, s.APIUser, s.APIKey,
		vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds,
		vpaytest.PhoneTimeout, vpaytest.PhoneCancelled, vpaytest.PhoneNetworkError,
		vpaytest.CardSuccess, vpaytest.CardDeclined, s.DashboardURL(), manualNote(*manual))
	<-ctx.Done()
	return nil
}

func manualNote(manual bool) string {
	if manual {
		return " (payments wait for you there: -manual)"
	}
	return " (with -manual, payments wait for you there)"
}

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
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/vonsung/vpay-go/internal/sandboxflags"
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
	set := sandboxflags.Register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts, err := set.Options(stderr)
	if err != nil {
		return err
	}
	s, err := vpaytest.Start(opts...)
	if err != nil {
		return err
	}
	defer s.Close()

	fmt.Fprintf(stdout, `V-Pay sandbox emulator listening.

  dashboard       %s%s
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
`, s.DashboardURL(), sameMachine(s), s.URL, s.APIUser, s.APIKey, s.WebhookSecret, s.URL, s.APIUser, s.APIKey,
		vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds,
		vpaytest.PhoneTimeout, vpaytest.PhoneCancelled, vpaytest.PhoneNetworkError,
		vpaytest.CardSuccess, vpaytest.CardDeclined, s.DashboardURL(), manualNote(set.Manual))
	<-ctx.Done()
	return nil
}

func manualNote(manual bool) string {
	if manual {
		return " (payments wait for you there: -manual)"
	}
	return " (with -manual, payments wait for you there)"
}

// sameMachine names the loopback dashboard too when the pages are on
// another address (a LAN address or -public-url).
func sameMachine(s *vpaytest.Server) string {
	local := strings.TrimSuffix(s.URL, "api/")
	if local == s.DashboardURL() {
		return ""
	}
	return "\n  on this machine  " + local
}

// Package sandboxflags defines the standalone sandbox's command-line flags
// once, for cmd/vpay-sandbox and `vpay sandbox`: the same names, defaults
// and checks in both.
package sandboxflags

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// Plans are the values of -plan, for help and completion.
var Plans = []string{"starter", "growth"}

// Settings are the parsed flags.
type Settings struct {
	Addr, User, Key, Secret      string
	Plan, WebhookURL, PublicURL  string
	Merchant                     string
	Delay, Lifetime, PromptAfter time.Duration
	Manual, Verbose              bool
}

// Register defines the flags on fs and returns where they land.
func Register(fs *flag.FlagSet) *Settings {
	s := &Settings{}
	fs.StringVar(&s.Addr, "addr", "127.0.0.1:8000", "address to listen on (0.0.0.0:8000: reachable from a phone on the same network)")
	fs.StringVar(&s.PublicURL, "public-url", "", "the address pages, links and QR codes carry, e.g. http://192.168.1.20:8000/ (default: detected)")
	fs.StringVar(&s.Merchant, "merchant", vpaytest.DefaultMerchant, "the merchant name every page shows")
	fs.StringVar(&s.User, "user", "vpay_sandbox_demo", "apiUser to accept (empty: random)")
	fs.StringVar(&s.Key, "key", "sk_sandbox_demo", "apiKey to accept (empty: random)")
	fs.StringVar(&s.Secret, "secret", "whsec_sandbox_demo", "webhook secret to sign with (empty: random)")
	fs.DurationVar(&s.Delay, "delay", 2*time.Second, "how long a payment stays pending")
	fs.DurationVar(&s.Lifetime, "token-lifetime", vpaytest.DefaultTokenLifetime, "access token lifetime")
	fs.StringVar(&s.Plan, "plan", "", "rate-limit plan: "+strings.Join(Plans, " or ")+", or empty for no practical limit")
	fs.BoolVar(&s.Verbose, "v", false, "log every request with its status code")
	fs.StringVar(&s.WebhookURL, "webhook-url", "", "also send every webhook here, as the dashboard's webhook URL does")
	fs.BoolVar(&s.Manual, "manual", false, "payments wait for you: approve MoMo prompts on the phone page, pay cards on the checkout page")
	fs.DurationVar(&s.PromptAfter, "prompt-timeout", vpaytest.DefaultPromptTimeout, "how long a payment that waits for its payer stays pending")
	return s
}

// Options turns the settings into the emulator's options; the request
// log (-v) goes to log. An error names the flag.
func (s *Settings) Options(log io.Writer) ([]vpaytest.Option, error) {
	opts := []vpaytest.Option{
		vpaytest.WithAddr(s.Addr),
		vpaytest.WithCredentials(s.User, s.Key, s.Secret),
		vpaytest.WithPaymentDelay(s.Delay),
		vpaytest.WithTokenLifetime(s.Lifetime),
		vpaytest.WithWebhookURL(s.WebhookURL),
		vpaytest.WithPromptTimeout(s.PromptAfter),
		vpaytest.WithMerchant(s.Merchant),
	}
	if s.PublicURL != "" {
		opts = append(opts, vpaytest.WithPublicURL(s.PublicURL))
	}
	if s.Manual {
		opts = append(opts, vpaytest.WithManualPayer())
	}
	switch strings.ToLower(s.Plan) {
	case "":
	case "starter":
		opts = append(opts, vpaytest.WithPlan(vpay.PlanStarter))
	case "growth":
		opts = append(opts, vpaytest.WithPlan(vpay.PlanGrowth))
	default:
		return nil, fmt.Errorf("--plan %q: want %s, or nothing for no practical limit", s.Plan, strings.Join(Plans, " or "))
	}
	if strings.TrimSpace(s.Merchant) == "" {
		return nil, fmt.Errorf("--merchant must not be empty")
	}
	if s.Verbose {
		opts = append(opts, vpaytest.WithLogger(slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	}
	return opts, nil
}

package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func sandboxCmd(e *env) *cobra.Command {
	var addr, hookURL, plan string
	var delay, promptTimeout time.Duration
	var manual bool
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the V-Pay emulator locally and print the export lines to use it",
		Args:  args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts := []vpaytest.Option{vpaytest.WithAddr(addr), vpaytest.WithPaymentDelay(delay), vpaytest.WithWebhookURL(hookURL),
				vpaytest.WithCredentials("vpay_sandbox_demo", "sk_sandbox_demo", "whsec_sandbox_demo"), vpaytest.WithPromptTimeout(promptTimeout)}
			if manual {
				opts = append(opts, vpaytest.WithManualPayer())
			}
			switch plan {
			case "":
			case "starter":
				opts = append(opts, vpaytest.WithPlan(vpay.PlanStarter))
			case "growth":
				opts = append(opts, vpaytest.WithPlan(vpay.PlanGrowth))
			default:
				return usageError("--plan %q: starter, growth or empty", plan)
			}
			s, err := vpaytest.Start(opts...)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			defer s.Close()
			e.emit(map[string]any{"url": s.URL, "dashboard_url": s.DashboardURL(), "api_user": s.APIUser, "api_key": s.APIKey, "webhook_secret": s.WebhookSecret}, func(w io.Writer) {
				fmt.Fprintf(w, "V-Pay sandbox on %s\nDashboard: %s\n\n", s.URL, s.DashboardURL())
				fmt.Fprintf(w, "export VPAY_BASE_URL=%s\nexport VPAY_API_USER=%s\nexport VPAY_API_KEY=%s\nexport VPAY_WEBHOOK_SECRET=%s\n\n",
					s.URL, s.APIUser, s.APIKey, s.WebhookSecret)
				fmt.Fprintln(w, "0780000000 and 0790000000 succeed; 0780000001 insufficient funds, 0780000002 timeout, 0780000003 cancelled, 0780000004 network error. Ctrl-C stops.")
			})
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8000", "address to listen on")
	cmd.Flags().StringVar(&hookURL, "webhook-url", "", "also send every webhook here, as the dashboard's webhook URL does")
	cmd.Flags().StringVar(&plan, "plan", "", "rate-limit plan: starter, growth, or empty for no practical limit")
	cmd.Flags().DurationVar(&delay, "delay", 2*time.Second, "how long a payment stays pending")
	cmd.Flags().BoolVar(&manual, "manual", false, "payments wait for you: approve MoMo prompts on the phone page, pay cards on the checkout page")
	cmd.Flags().DurationVar(&promptTimeout, "prompt-timeout", vpaytest.DefaultPromptTimeout, "how long a payment that waits for its payer stays pending")
	return cmd
}

package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go/internal/sandboxflags"
	"github.com/vonsung/vpay-go/vpaytest"
)

func sandboxCmd(e *env) *cobra.Command {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	set := sandboxflags.Register(fs) // the same flags as cmd/vpay-sandbox
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Run the V-Pay emulator locally and print the export lines to use it",
		Example: `  vpay sandbox
  vpay sandbox --manual --merchant "Huye Coffee"           # approve payments yourself on the phone page
  vpay sandbox --addr 0.0.0.0:8000                         # a phone on the same network opens links and QR codes
  vpay sandbox --plan starter --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := set.Options(e.stderr)
			if err != nil {
				return usageError("%v", err)
			}
			s, err := vpaytest.Start(opts...)
			if err != nil {
				return &exitError{exitUsage, fmt.Errorf("--addr %s: %w", set.Addr, err)}
			}
			defer s.Close()
			local := strings.TrimSuffix(s.URL, "api/")
			e.emit(map[string]any{"url": s.URL, "dashboard_url": s.DashboardURL(), "local_dashboard_url": local, "api_user": s.APIUser, "api_key": s.APIKey, "webhook_secret": s.WebhookSecret}, func(w io.Writer) {
				fmt.Fprintf(w, "V-Pay sandbox on %s\nDashboard: %s\n", s.URL, s.DashboardURL())
				if local != s.DashboardURL() {
					fmt.Fprintf(w, "Pages, links and QR codes use %s (a phone on the network opens them); on this machine also %s\n", s.DashboardURL(), local)
				}
				fmt.Fprintf(w, "\nexport VPAY_BASE_URL=%s\nexport VPAY_API_USER=%s\nexport VPAY_API_KEY=%s\nexport VPAY_WEBHOOK_SECRET=%s\n\n",
					s.URL, s.APIUser, s.APIKey, s.WebhookSecret)
				fmt.Fprintln(w, "0780000000 and 0790000000 succeed; 0780000001 insufficient funds, 0780000002 timeout, 0780000003 cancelled, 0780000004 network error. Ctrl-C stops.")
			})
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().AddGoFlagSet(fs)
	_ = cmd.RegisterFlagCompletionFunc("plan", fixedValues(sandboxflags.Plans...))
	return cmd
}

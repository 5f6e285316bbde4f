package main

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
)

// env is what commands reach the world through: the output streams and the
// environment, both replaced in tests.
type env struct {
	stdout, stderr io.Writer
	getenv         func(string) string
	json           bool
	redirects      *redirectSeen // where the API's redirects pointed, once a client exists
}

func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:           "vpay",
		Short:         "The V-Pay command line: payments, links, webhooks, reconciliation, the sandbox",
		Long:          longHelp,
		Version:       vpay.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.Example = `  vpay sandbox                  # in another terminal: a local V-Pay, and the export lines to use it
  vpay pay --amount 1500 --phone 0780000000 --wait
  vpay help pay`
	root.PersistentFlags().BoolVar(&e.json, "json", false, "print JSON (one document, or JSON lines for streams) instead of text")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &exitError{exitUsage, err} })
	root.AddCommand(payCmd(e), statusCmd(e), waitCmd(e), linkCmd(e), listenCmd(e), triggerCmd(e), resendCmd(e), reconcileCmd(e), sandboxCmd(e))
	root.AddCommand(trackerCmd(e))
	root.AddCommand(doctorCmd(e))
	return root
}

const longHelp = `vpay talks to the V-Pay API with the credentials in the environment:

  VPAY_API_USER, VPAY_API_KEY   your API user and key (required by pay, status, wait, link, reconcile)
  VPAY_BASE_URL                 the API's base URL (default https://vonsung.rw/api/)
  VPAY_WEBHOOK_SECRET           your webhook secret (listen, trigger, resend)

Run "vpay sandbox" for a local emulator and the export lines to use it.

Exit codes: 0 success (pay --wait, wait: the payment ended successful);
1 it ended in another final status, or reconcile found mismatches;
2 usage or configuration error; 3 API error; 4 timed out still pending;
5 outcome unknown (the request may have created a payment);
130 interrupted (Ctrl-C), but 5 when a payment's outcome is unknown,
and 0 for listen and sandbox, which are stopped that way.`

// args makes cobra's argument-count errors usage errors (exit 2).
func args(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if len(a) != n {
			return usageError("%s takes %d argument(s), got %d; see vpay help %s", cmd.Name(), n, len(a), cmd.Name())
		}
		return nil
	}
}

// client builds a *vpay.Client from the environment only.
func (e *env) client(opts ...vpay.Option) (*vpay.Client, error) {
	user, key := e.getenv("VPAY_API_USER"), e.getenv("VPAY_API_KEY")
	switch {
	case user == "":
		return nil, usageError("VPAY_API_USER is not set (credentials come from the environment only; try: vpay sandbox)")
	case key == "":
		return nil, usageError("VPAY_API_KEY is not set (credentials come from the environment only)")
	}
	if u := e.getenv("VPAY_BASE_URL"); u != "" {
		opts = append([]vpay.Option{vpay.WithBaseURL(u)}, opts...)
	}
	// The SDK never follows a redirect; this transport remembers where it
	// pointed, so the error can say.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.ResponseHeaderTimeout = vpay.DefaultTimeout
	e.redirects = &redirectSeen{next: tr, to: make(chan string, 1)}
	opts = append([]vpay.Option{vpay.WithUserAgent("vpay-cli/" + vpay.Version),
		vpay.WithHTTPClient(&http.Client{Timeout: vpay.DefaultTimeout, Transport: e.redirects})}, opts...)
	c, err := vpay.NewClient(user, key, opts...)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	return c, nil
}

// secret is the webhook secret from the environment.
func (e *env) secret() (string, error) {
	s := e.getenv("VPAY_WEBHOOK_SECRET")
	if s == "" {
		return "", usageError("VPAY_WEBHOOK_SECRET is not set: export VPAY_WEBHOOK_SECRET=<the webhook secret of your V-Pay dashboard>, " +
			"or, against the sandbox, the secret \"vpay sandbox\" prints (export VPAY_WEBHOOK_SECRET=whsec_sandbox_demo)")
	}
	return s, nil
}

// emit prints v as JSON with --json, or text otherwise.
func (e *env) emit(v any, text func(w io.Writer)) {
	if e.json {
		b, _ := json.Marshal(v)
		fmt.Fprintln(e.stdout, string(b))
		return
	}
	text(e.stdout)
}

// colour wraps s in an ANSI colour when stdout is a terminal and NO_COLOR
// is unset.
func (e *env) colour(code, s string) string {
	if !isTerminal(e.stdout) || e.getenv("NO_COLOR") != "" {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

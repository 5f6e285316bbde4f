package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
)

// txJSON is a transaction as --json prints it.
type txJSON struct {
	TransactionID string            `json:"transaction_id"`
	Reference     string            `json:"reference"`
	Status        vpay.Status       `json:"status"`
	Amount        int64             `json:"amount,omitempty"`
	Currency      string            `json:"currency,omitempty"`
	PayerPhone    string            `json:"payer_phone,omitempty"`
	FailureCode   vpay.ErrorCode    `json:"failure_code,omitempty"`
	Message       string            `json:"message,omitempty"`
	PaymentURL    string            `json:"payment_url,omitempty"`
	Final         bool              `json:"final"`
	Metadata      map[string]string `json:"metadata,omitempty"`
}

func fromTx(t *vpay.Transaction) txJSON {
	return txJSON{TransactionID: t.TransactionID, Reference: t.Reference, Status: t.Status, Amount: t.Amount, Currency: t.Currency,
		PayerPhone: t.PayerPhone, FailureCode: t.FailureCode, Message: t.Message, Final: t.Status.Final(), Metadata: t.Metadata}
}

// outcome is the exit status of a followed payment.
func outcome(t *vpay.Transaction) error {
	if t.Status == vpay.StatusSuccessful {
		return nil
	}
	return &exitError{exitNotPaid, fmt.Errorf("payment %s ended %s", t.TransactionID, t.Status)}
}

func payCmd(e *env) *cobra.Command {
	var (
		req      vpay.PayRequest
		method   string
		wait     bool
		timeout  time.Duration
		interval time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pay --amount N --phone P",
		Short: "Start a payment (and with --wait, follow it to its final status)",
		Example: `  vpay pay --amount 1500 --phone 0780000000 --reference order-42
  vpay pay --amount 1500 --phone 0780000000 --wait --timeout 5m
  vpay pay --amount 25000 --method card --description "Order 42" --json`,
		Args: args(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.Method = vpay.PaymentMethod(method)
			if err := req.Validate(); err != nil {
				return &exitError{exitUsage, err}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			p, err := c.Pay(cmd.Context(), &req)
			if err != nil {
				return err
			}
			if !wait {
				e.emit(map[string]any{"transaction_id": p.TransactionID, "reference": p.Reference, "status": p.Status,
					"message": p.Message, "payment_url": p.PaymentURL}, func(w io.Writer) {
					fmt.Fprintf(w, "Payment %s for %s: %s", p.TransactionID, p.Reference, p.Status)
					if p.Message != "" {
						fmt.Fprintf(w, " (%s)", p.Message)
					}
					fmt.Fprintln(w)
					if p.PaymentURL != "" {
						fmt.Fprintln(w, "Pay at:", p.PaymentURL)
					}
				})
				return nil
			}
			if !e.json {
				fmt.Fprintf(e.stdout, "Payment %s for %s started; waiting up to %s for the payer (a MoMo prompt lasts 3 minutes)\n", p.TransactionID, p.Reference, timeout)
			}
			return follow(cmd.Context(), e, c, p.TransactionID, timeout, interval)
		},
	}
	f := cmd.Flags()
	f.Int64Var(&req.Amount, "amount", 0, "amount in RWF (at least 100)")
	f.StringVar(&req.Phone, "phone", "", "payer's phone, any form (0781234567, +250 78 123 4567)")
	f.StringVar(&method, "method", "mtnrw", "mtnrw, card or all")
	f.StringVar(&req.Reference, "reference", "", "your order id (default: a new one)")
	f.StringVar(&req.Description, "description", "", "shown to the payer (MoMo: letters, digits, space, .,-_'/#())")
	f.StringVar(&req.CallbackURL, "callback-url", "", "where V-Pay sends this payment's webhooks")
	f.BoolVar(&wait, "wait", false, "follow the payment until its final status (exit 0 only if successful)")
	f.DurationVar(&timeout, "timeout", 4*time.Minute, "with --wait: give up after this long (exit 4)")
	f.DurationVar(&interval, "interval", 2*time.Second, "with --wait: first interval between status checks")
	_ = f.MarkHidden("interval")
	_ = cmd.MarkFlagRequired("amount")
	_ = cmd.RegisterFlagCompletionFunc("method", fixedValues("mtnrw\tMTN MoMo prompt", "card\tcheckout page, cards", "all\tcheckout page, cards and MoMo"))
	return cmd
}

// fixedValues completes a flag from a fixed list ("value\tdescription").
func fixedValues(values ...string) cobra.CompletionFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

func statusCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "status TRANSACTION_ID",
		Short: "Print a transaction's status",
		Example: `  vpay status VP12345678
  vpay status VP12345678 --json | jq -r .status`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.Status(cmd.Context(), a[0])
			if err != nil {
				return err
			}
			e.emit(fromTx(t), func(w io.Writer) { printTx(e, w, t) })
			return nil
		},
	}
}

func waitCmd(e *env) *cobra.Command {
	var timeout, interval time.Duration
	cmd := &cobra.Command{
		Use:   "wait TRANSACTION_ID",
		Short: "Follow a transaction until its final status (exit 0 only if successful)",
		Example: `  vpay wait VP12345678
  vpay wait VP12345678 --timeout 10m && echo paid`,
		Args: args(1),
		RunE: func(cmd *cobra.Command, a []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			return follow(cmd.Context(), e, c, a[0], timeout, interval)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 4*time.Minute, "give up after this long (exit 4)")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "first interval between status checks")
	_ = cmd.Flags().MarkHidden("interval")
	return cmd
}

func printTx(e *env, w io.Writer, t *vpay.Transaction) {
	colour := "33" // pending: yellow
	switch {
	case t.Status == vpay.StatusSuccessful:
		colour = "32"
	case t.Status.Final():
		colour = "31"
	}
	fmt.Fprintf(w, "%s  %s  %s", t.TransactionID, t.Reference, e.colour(colour, string(t.Status)))
	if t.Amount != 0 {
		fmt.Fprintf(w, "  %d %s", t.Amount, t.Currency)
	}
	switch {
	case t.Status == vpay.StatusSuccessful || !t.Status.Final():
	case t.FailureCode != "" && t.Message != "":
		fmt.Fprintf(w, "  (%s: %s)", t.FailureCode, t.Message)
	case t.FailureCode != "":
		fmt.Fprintf(w, "  (%s)", t.FailureCode)
	case t.Message != "":
		fmt.Fprintf(w, "  (%s)", t.Message) // a cancelled payment has a reason and no code
	}
	fmt.Fprintln(w)
}

// follow polls a transaction until it is final, printing each change with
// the time elapsed against the --timeout it has.
func follow(parent context.Context, e *env, c *vpay.Client, id string, timeout, interval time.Duration) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	start := time.Now()
	var last *vpay.Transaction
	for {
		t, err := c.Status(ctx, id)
		switch {
		case err == nil:
			if last == nil || t.Status != last.Status {
				elapsed := time.Since(start).Round(time.Second)
				e.emit(map[string]any{"elapsed_seconds": int(elapsed.Seconds()), "transaction": fromTx(t)}, func(w io.Writer) {
					fmt.Fprintf(w, "[%s of %s] ", elapsed, timeout)
					printTx(e, w, t)
				})
			}
			last = t
			if t.Status.Final() {
				return outcome(t)
			}
		case ctx.Err() != nil:
		default:
			var ae *vpay.Error
			if !errors.As(err, &ae) || !ae.Retryable() {
				return err // not something polling again would cure
			}
		}
		select {
		case <-ctx.Done():
			if parent.Err() != nil {
				return fmt.Errorf("interrupted while following %s (still %s); follow it again with: vpay wait %s", id, statusOf(last), id)
			}
			if last != nil {
				return &exitError{exitTimeout, fmt.Errorf("payment %s still %s after %s", id, last.Status, timeout)}
			}
			return &exitError{exitTimeout, fmt.Errorf("no answer about %s within %s", id, timeout)}
		case <-time.After(interval):
			interval = min(interval*3/2, 15*time.Second)
		}
	}
}

func statusOf(t *vpay.Transaction) string {
	if t == nil {
		return "unknown"
	}
	return string(t.Status)
}

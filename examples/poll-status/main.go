// Command poll-status follows payments without webhooks: it starts a few
// payments and waits for each to reach its final status, concurrently, as a
// backend without a public URL would.
//
//	go run ./examples/poll-status
//
// Runs against the built-in sandbox when VPAY_API_USER/VPAY_API_KEY are
// unset, where the emulator-only numbers show a failed payment too. With
// credentials set, VPAY_PHONE is the number to prompt.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/examples/internal/setup"
	"github.com/vonsung/vpay-go/vpaytest"
)

func main() {
	c, sandbox, done, err := setup.Client(vpay.WithPollInterval(500 * time.Millisecond))
	if err != nil {
		fmt.Fprintln(os.Stderr, "poll-status:", err)
		os.Exit(1)
	}
	defer done()
	phones := []string{vpaytest.PhoneSuccess}
	if sandbox != nil {
		phones = []string{vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds}
	} else if p := os.Getenv("VPAY_PHONE"); p != "" {
		phones = []string{p}
	}

	ctx, cancel := context.WithTimeout(context.Background(), vpay.WaitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, phone := range phones {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := c.Pay(ctx, &vpay.PayRequest{Amount: int64(1000 * (i + 1)), Phone: phone, Description: fmt.Sprintf("Order %d", i+1)})
			if err != nil {
				if errors.Is(err, vpay.ErrOutcomeUnknown) {
					fmt.Printf("%s: outcome unknown, check before retrying: %v\n", phone, err)
					return
				}
				fmt.Printf("%s: refused: %v\n", phone, err)
				return
			}
			fmt.Printf("%s: %s pending (order %s)\n", phone, p.TransactionID, p.Reference)
			tx, err := c.Wait(ctx, p.TransactionID)
			if err != nil {
				fmt.Printf("%s: %s still not final: %v\n", phone, p.TransactionID, err)
				return
			}
			line := fmt.Sprintf("%s: %s %s, %d %s", phone, tx.TransactionID, tx.Status, tx.Amount, tx.Currency)
			if tx.FailureCode != "" {
				line += " (" + string(tx.FailureCode) + ")"
			}
			fmt.Println(line)
		}()
	}
	wg.Wait()
}

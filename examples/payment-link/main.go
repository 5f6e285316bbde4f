// Command payment-link creates a shareable payment page, for invoices or a
// link sent on WhatsApp, and prints its URL and QR code address.
//
//	go run ./examples/payment-link
//
// Runs against the built-in sandbox when VPAY_API_USER/VPAY_API_KEY are
// unset.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/examples/internal/setup"
)

func main() {
	c, _, done, err := setup.Client()
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment-link:", err)
		os.Exit(1)
	}
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	fixed, err := c.CreateLink(ctx, &vpay.LinkRequest{
		Name:        "School fees, June",
		Amount:      10000,
		Type:        vpay.LinkMultiple,
		Description: "Monthly fee for one pupil",
		RedirectURL: "https://school.example.rw/thanks",
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment-link:", err)
		os.Exit(1)
	}
	fmt.Printf("Reusable link for %d RWF: %s\n  QR code: %s\n", fixed.Amount, fixed.URL, fixed.QRCodeURL)

	donation, err := c.CreateLink(ctx, &vpay.LinkRequest{Name: "Donations", Type: vpay.LinkOneOff})
	if err != nil {
		fmt.Fprintln(os.Stderr, "payment-link:", err)
		os.Exit(1)
	}
	fmt.Printf("One-off link, payer chooses the amount: %s (id %s, active %t)\n", donation.URL, donation.ID, donation.Active)
}

package vpay_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func ExampleNewClient() {
	// In production: vpay.NewClient(os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY")).
	c, err := vpay.NewClient("vpay_sandbox_shop", "sk_sandbox_0123456789")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Mode())

	_, err = vpay.NewClient("vpay_sandbox_shop", "sk_live_0123456789")
	fmt.Println(err)
	// Output:
	// sandbox
	// vpay: invalid apiKey: a live key cannot be used with a sandbox user
}

func ExampleClient_Pay() {
	sandbox := vpaytest.NewServer() // in production: vpay.NewClient(user, key)
	defer sandbox.Close()
	c := sandbox.Client()
	ctx := context.Background()

	p, err := c.Pay(ctx, &vpay.PayRequest{
		Amount:      1500,
		Phone:       "+250 78 000 0000",
		Reference:   "order-1042",
		Description: "Order 1042",
	})
	switch {
	case errors.Is(err, vpay.ErrInvalidPhone):
		fmt.Println("ask the customer for their number again")
	case errors.Is(err, vpay.ErrOutcomeUnknown):
		fmt.Println("the payment may exist: keep the order pending until its webhook arrives")
	case err != nil:
		log.Fatal(err)
	default:
		fmt.Println(p.Reference, p.Status)
	}

	_, err = c.Pay(ctx, &vpay.PayRequest{Amount: 50, Phone: "0780000000"})
	fmt.Println(err)
	// Output:
	// order-1042 pending
	// vpay: invalid PayRequest.Amount: 50 RWF is below the minimum of 100 RWF
}

func ExampleClient_Status() {
	// The payment stays pending until the example completes it.
	sandbox := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour))
	defer sandbox.Close()
	c := sandbox.Client()
	ctx := context.Background()

	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 240, Phone: vpaytest.PhoneSuccess, Reference: "order-7"})
	if err != nil {
		log.Fatal(err)
	}
	tx, err := c.Status(ctx, p.TransactionID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tx.Reference, tx.Status, tx.Amount, tx.Currency)

	sandbox.Complete(p.TransactionID) // the customer confirms on their phone
	tx, err = c.Wait(ctx, p.TransactionID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tx.Reference, tx.Status, tx.Status.Final())
	// Output:
	// order-7 pending 240 RWF
	// order-7 successful true
}

func ExampleClient_Wait() {
	sandbox := vpaytest.NewServer(vpaytest.WithPaymentDelay(50 * time.Millisecond))
	defer sandbox.Close()
	c := sandbox.Client()

	// Wait polls until the payer answers the prompt; give it a deadline
	// (without one it gives up after vpay.WaitTimeout, a MoMo prompt's life).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, phone := range []string{vpaytest.PhoneSuccess, vpaytest.PhoneInsufficientFunds} {
		p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1200, Phone: phone})
		if err != nil {
			log.Fatal(err)
		}
		tx, err := c.Wait(ctx, p.TransactionID)
		if err != nil {
			// Still pending at the deadline (tx is the last status seen),
			// or the API failed in a way polling cannot fix.
			log.Fatal(err)
		}
		// A failed payment is a result, not an error.
		if tx.Status == vpay.StatusFailed {
			fmt.Println(tx.Status, tx.FailureCode)
			continue
		}
		fmt.Println(tx.Status)
	}
	// Output:
	// successful
	// failed INSUFFICIENT_FUNDS
}

func ExampleClient_CreateLink() {
	sandbox := vpaytest.NewServer()
	defer sandbox.Close()
	c := sandbox.Client()

	l, err := c.CreateLink(context.Background(), &vpay.LinkRequest{
		Name:   "Monthly fee",
		Amount: 10000,
		Type:   vpay.LinkMultiple,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(l.Amount, l.Type, l.Active)
	// Output:
	// 10000 multiple true
}

package vpaytest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

func ExampleNewServer() {
	// An emulator on a loopback port, with its own credentials; Client
	// returns a *vpay.Client pointed at it. Use one per test.
	s := vpaytest.NewServer(vpaytest.WithPaymentDelay(20 * time.Millisecond))
	defer s.Close()
	c := s.Client()
	ctx := context.Background()

	// The sandbox numbers decide the outcome.
	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 5000, Phone: vpaytest.PhoneSuccess, Reference: "order-1"})
	if err != nil {
		log.Fatal(err)
	}
	tx, err := c.Wait(ctx, p.TransactionID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(tx.Reference, tx.Status, tx.Amount)
	// What your code did, as the emulator saw it.
	fmt.Println(s.PaymentsFor("order-1"), s.Requests("/pay/"))
	// Output:
	// order-1 successful 5000
	// 1 1
}

func ExampleServer_Inject() {
	s := vpaytest.NewServer()
	defer s.Close()
	c := s.Client(vpay.WithMaxRetries(2))
	ctx := context.Background()

	// The first /pay/ is processed, then its connection dropped: the
	// answer is lost. The SDK retries with the same reference, V-Pay
	// refuses the duplicate, and the error says the payment may exist.
	s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter})
	_, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess, Reference: "order-2"})
	fmt.Println(errors.Is(err, vpay.ErrOutcomeUnknown), s.PaymentsFor("order-2"))

	// Two 503s, then success: retried, one payment.
	s.Inject("/pay/", vpaytest.Fault{Status: 503, Count: 2})
	p, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess, Reference: "order-3"})
	fmt.Println(err, p.Status, s.PaymentsFor("order-3"))
	// Output:
	// true 1
	// <nil> pending 1
}

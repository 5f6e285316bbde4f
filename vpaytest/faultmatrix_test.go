package vpaytest_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestFaultMatrix pays many orders through the SDK, with retries on, while
// the emulator fails in one way at a time. Whatever happens, no order may be
// charged twice, and every call must either return the payment or say
// truthfully whether it may exist: an error that does not match
// vpay.ErrOutcomeUnknown promises that no payment was created.
//
// In full (CI=true or VPAY_FULL_TESTS=1) each scenario pays 60 orders; by
// default 12, which still meets each fault four times.
func TestFaultMatrix(t *testing.T) {
	const (
		workers    = 6
		faultEvery = 3 // one call in three meets the fault
	)
	orders := 12
	if fullTests() {
		orders = 60
	}
	scenarios := []struct {
		name    string
		inject  func(s *vpaytest.Server)
		timeout time.Duration            // per Pay call
		before  func(s *vpaytest.Server) // once, before the first order
	}{
		{"drop before processing", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropBefore}) }, 2 * time.Second, nil},
		{"drop after processing", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Drop: vpaytest.DropAfter}) }, 2 * time.Second, nil},
		{"502 NETWORK_ERROR", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Status: 502}) }, 2 * time.Second, nil},
		{"503", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Status: 503}) }, 2 * time.Second, nil},
		{"slow answer past the deadline", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Delay: time.Second}) }, 300 * time.Millisecond, nil},
		{"truncated body", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Truncate: true}) }, 2 * time.Second, nil},
		{"429 burst", func(s *vpaytest.Server) { s.Inject("/pay/", vpaytest.Fault{Status: 429, Count: 3}) }, 5 * time.Second, nil},
		{"token revoked mid-flight", func(s *vpaytest.Server) { s.RevokeTokens() }, 2 * time.Second, nil},
		// The run starts with /auth/ down for three requests; every third
		// order then finds its token revoked and /auth/ failing once more.
		{"/auth/ down for a while", func(s *vpaytest.Server) {
			s.RevokeTokens()
			s.Inject("/auth/", vpaytest.Fault{Status: 503})
		}, 5 * time.Second, func(s *vpaytest.Server) {
			s.Inject("/auth/", vpaytest.Fault{Status: 503, Count: 3})
		}},
	}
	var total struct{ calls, paid, unknown, refused, payments, doubles int }
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			s := vpaytest.NewServer(vpaytest.WithPaymentDelay(time.Hour)) // payments stay pending: only creation matters
			defer s.Close()
			if sc.before != nil {
				sc.before(s)
			}
			c := s.Client(vpay.WithMaxRetries(3))

			type outcome struct {
				order string
				ref   string
				p     *vpay.Payment
				err   error
			}
			results := make(chan outcome, orders)
			var injectMu sync.Mutex
			var wg sync.WaitGroup
			jobs := make(chan int)
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range jobs {
						order := fmt.Sprintf("order-%d", i)
						req := &vpay.PayRequest{
							Amount:   int64(100 + rand.IntN(50000)),
							Phone:    []string{vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt}[rand.IntN(2)],
							Metadata: map[string]string{"order": order},
						}
						if i%2 == 0 { // half the orders bring their own reference
							req.Reference = order
						}
						if i%faultEvery == 0 {
							injectMu.Lock()
							sc.inject(s)
							injectMu.Unlock()
						}
						ctx, cancel := context.WithTimeout(context.Background(), sc.timeout)
						p, err := c.Pay(ctx, req)
						cancel()
						ref := req.Reference
						var e *vpay.Error
						switch {
						case p != nil:
							ref = p.Reference
						case errors.As(err, &e):
							ref = e.Reference
						}
						results <- outcome{order, ref, p, err}
					}
				}()
			}
			for i := range orders {
				jobs <- i
			}
			close(jobs)
			wg.Wait()
			close(results)

			perOrder := map[string]int{}
			for _, tx := range s.Transactions() {
				perOrder[tx.Metadata["order"]]++
			}
			var paid, unknown, refused, doubles int
			for r := range results {
				require.NotEmpty(t, r.ref, "order %s: the reference is known whatever happened (%v)", r.order, r.err)
				n := s.PaymentsFor(r.ref)
				if perOrder[r.order] > 1 {
					doubles++
				}
				switch {
				case r.err == nil:
					paid++
					assert.Equal(t, 1, n, "order %s: returned a payment the server does not hold", r.order)
				case errors.Is(r.err, vpay.ErrOutcomeUnknown):
					unknown++
					assert.LessOrEqual(t, n, 1)
				default:
					refused++
					if refused == 1 {
						t.Logf("first refusal: %v", r.err)
					}
					assert.Zero(t, n, "order %s: the error says no payment exists, but one does: %v", r.order, r.err)
				}
			}
			payments := len(s.Transactions())
			assert.Zero(t, doubles, "no order is charged twice")
			t.Logf("%-30s calls %d: paid %d, outcome unknown %d, refused %d; payments %d; double charges %d",
				sc.name, orders, paid, unknown, refused, payments, doubles)
			total.calls += orders
			total.paid += paid
			total.unknown += unknown
			total.refused += refused
			total.payments += payments
			total.doubles += doubles
		})
	}
	t.Logf("fault matrix: %d calls, %d paid, %d outcome unknown, %d refused; %d payments; %d double charges",
		total.calls, total.paid, total.unknown, total.refused, total.payments, total.doubles)
}

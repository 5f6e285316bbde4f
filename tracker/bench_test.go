package tracker_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// BenchmarkTracked measures payments tracked per second on one tracker
// process, from Pay to the final status committed in the shop's table,
// with every webhook arriving and with none (then every status comes from
// a poll, the first 300 ms after Pay in this test's schedule), and the API
// requests each payment cost. Run it with
//
//	go test -run XXX -bench Tracked -benchtime 1x ./tracker
func BenchmarkTracked(b *testing.B) {
	for _, tt := range []struct {
		name string
		loss float64
	}{{"webhooks=all", 0}, {"webhooks=none", 1}} {
		b.Run(tt.name, func(b *testing.B) {
			s := newShop(b)
			s.emulator.LoseWebhooks(tt.loss)
			tr := s.process()
			const payments, payers = 200, 16
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				if _, err := s.db.Exec(context.Background(), `TRUNCATE shop_updates`); err != nil {
					b.Fatal(err)
				}
				base := s.emulator.Requests("/pay/") + s.emulator.Requests("/transaction/status/")
				payConcurrently(b, s, payers, payments, func(_, i int) (*tracker.Tracker, string) {
					return tr, fmt.Sprintf("order-%d-%d", start.UnixNano(), i)
				})
				s.waitFor("every payment tracked", func(u map[string][]delivery) bool { return len(u) == payments })
				elapsed := time.Since(start)
				requests := s.emulator.Requests("/pay/") + s.emulator.Requests("/transaction/status/") - base
				b.ReportMetric(float64(payments)/elapsed.Seconds(), "payments/s")
				b.ReportMetric(float64(requests)/payments, "requests/payment")
			}
		})
	}
}

// payConcurrently makes payments successful payments with payers payers at
// once, payer w paying w, w+payers, ...; pick names the tracker that pays
// and the reference of payment i by payer w. It returns when every Pay
// returned.
func payConcurrently(b *testing.B, s *shop, payers, payments int, pick func(w, i int) (*tracker.Tracker, string)) {
	var wg sync.WaitGroup
	for w := range payers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < payments; i += payers {
				tr, ref := pick(w, i)
				if _, err := s.pay(tr, ref, vpaytest.PhoneSuccess); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	wg.Wait()
}

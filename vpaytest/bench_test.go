package vpaytest_test

import (
	"context"
	"testing"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// BenchmarkEmulatorPay measures how many payments a second the emulator
// serves through the SDK, with 32 concurrent callers, for merchants who
// load-test against it.
func BenchmarkEmulatorPay(b *testing.B) {
	s := vpaytest.NewServer()
	defer s.Close()
	c := s.Client()
	ctx := context.Background()
	b.SetParallelism(16) // 16 × GOMAXPROCS(2) = 32 callers
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Pay(ctx, &vpay.PayRequest{Amount: 1000, Phone: vpaytest.PhoneSuccess}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "payments/s")
}

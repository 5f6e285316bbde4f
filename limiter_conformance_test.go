package vpay_test

import (
	"testing"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest"
)

// The default Limiter is the reference vpaytest.TestLimiter holds every
// other to (redisstore runs the same table against Redis).
func TestDefaultLimiterConformance(t *testing.T) {
	vpaytest.TestLimiter(t, vpay.NewLimiterAt)
}

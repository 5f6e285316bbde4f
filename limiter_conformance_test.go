package vpay_test

import (
	"testing"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/vpaytest/limitertest"
)

// The default Limiter is the reference limitertest.TestLimiter holds every
// other to (redisstore runs the same table against Redis).
func TestDefaultLimiterConformance(t *testing.T) {
	limitertest.TestLimiter(t, vpay.NewLimiterAt)
}

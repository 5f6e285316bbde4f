package vpay

import (
	"context"
	"time"
)

// NewLimiterAt is the default Limiter on a clock the test moves, for
// limitertest.TestLimiter from the external test package.
func NewLimiterAt(plan Plan, now func() time.Time) Limiter {
	return newLocalLimiter(plan, true, funcClock(now))
}

// funcClock reads the time from a function and never sleeps.
type funcClock func() time.Time

func (f funcClock) Now() time.Time                                 { return f() }
func (funcClock) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }
func (funcClock) SleepOrWake(ctx context.Context, _ time.Duration, _ <-chan struct{}) error {
	return ctx.Err()
}

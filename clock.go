package vpay

import (
	"context"
	"time"
)

// clock is the client's source of time and of waiting, so that tests can
// replace both.
type clock interface {
	Now() time.Time
	// Sleep waits for d or until ctx ends, whichever is first, and returns
	// ctx's error in the second case.
	Sleep(ctx context.Context, d time.Duration) error
	// SleepOrWake is Sleep that also returns, with nil, when wake is
	// closed. A nil wake never is.
	SleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (c realClock) Sleep(ctx context.Context, d time.Duration) error {
	return c.SleepOrWake(ctx, d, nil)
}

func (realClock) SleepOrWake(ctx context.Context, d time.Duration, wake <-chan struct{}) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-wake:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

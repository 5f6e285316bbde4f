package vpay

import (
	"context"
	"fmt"
)

// DefaultLowPriorityShare is the share of each rate-limit window that
// low-priority calls may use by default.
const DefaultLowPriorityShare = 0.5

type lowPriorityKey struct{}

// WithLowPriority marks the calls made with the returned context as
// background work (status polls, reconciliation): they may use at most a
// share of each rate-limit window (WithLowPriorityShare, default half) and
// never wait for one. Past their share they fail at once with an error
// matching ErrRateLimited whose RateLimit.Reset says when to try again, so
// that background work never delays a Pay or earns a 429.
func WithLowPriority(ctx context.Context) context.Context {
	if _, ok := ctx.Value(lowPriorityKey{}).(float64); ok {
		return ctx
	}
	return context.WithValue(ctx, lowPriorityKey{}, float64(0))
}

// IsLowPriority reports whether ctx was marked with WithLowPriority.
func IsLowPriority(ctx context.Context) bool {
	_, ok := ctx.Value(lowPriorityKey{}).(float64)
	return ok
}

// LowPriorityShare returns the share of a window a low-priority call made
// with ctx may use, and whether the call is low-priority at all. A Limiter
// implementation reads it in Reserve: the client puts its
// WithLowPriorityShare there (DefaultLowPriorityShare otherwise).
func LowPriorityShare(ctx context.Context) (share float64, ok bool) {
	v, ok := ctx.Value(lowPriorityKey{}).(float64)
	if !ok {
		return 0, false
	}
	if v <= 0 {
		v = DefaultLowPriorityShare
	}
	return v, true
}

// withShare puts the client's share into a low-priority ctx.
func withShare(ctx context.Context, share float64) context.Context {
	if v, ok := ctx.Value(lowPriorityKey{}).(float64); !ok || v == share {
		return ctx
	}
	return context.WithValue(ctx, lowPriorityKey{}, share)
}

// WithLowPriorityShare sets the share of each rate-limit window that calls
// marked with WithLowPriority may use (default 0.5): more than 0, at most
// 1. The rest stays free for the calls a customer waits on.
func WithLowPriorityShare(f float64) Option {
	return func(c *config) error {
		if !(f > 0 && f <= 1) {
			return fmt.Errorf("vpay: WithLowPriorityShare: %v is not in (0, 1]", f)
		}
		c.lowShare = f
		return nil
	}
}

package vpay

import (
	"context"
)

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

package redisstore

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go/webhook"
)

// Deduper is a webhook.Deduper shared by every replica: SET NX with a TTL,
// so that a delivery reaches one replica's handler once.
type Deduper struct {
	rdb   redis.UniversalClient
	opt   options
	ttl   time.Duration
	local *webhook.MemoryDeduper
	h     *health
}

var _ webhook.Deduper = (*Deduper)(nil)

// NewDeduper returns a Deduper that remembers an event for ttl.
func NewDeduper(rdb redis.UniversalClient, ttl time.Duration, opts ...Option) *Deduper {
	o := newOptions(opts)
	if ttl <= 0 {
		ttl = webhook.DefaultDedupeTTL
	}
	return &Deduper{rdb: rdb, opt: o, ttl: ttl, local: webhook.NewMemoryDeduper(ttl), h: &health{what: "webhook", log: o.logger, retryDown: o.retryDown}}
}

// Claim implements webhook.Deduper.
func (d *Deduper) Claim(ctx context.Context, key string) (bool, error) {
	if !d.h.usable() {
		return d.local.Claim(ctx, key)
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	ok, err := d.rdb.SetNX(rctx, d.opt.key("webhook:"+key), 1, d.ttl).Result()
	if d.h.result(err) {
		return d.local.Claim(ctx, key)
	}
	return ok, err
}

// Release implements webhook.Deduper.
func (d *Deduper) Release(ctx context.Context, key string) error {
	_ = d.local.Release(ctx, key)
	if !d.h.usable() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	err := d.rdb.Del(rctx, d.opt.key("webhook:"+key)).Err()
	if d.h.result(err) {
		return nil
	}
	return err
}

package redisstore

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go/webhook"
)

// Deduper is a webhook.Deduper shared by every replica, so that a delivery
// reaches one replica's handler once. An event's key holds "p:<owner>"
// while a delivery processes it, with the lease as its expiry (renewed
// while fn runs), and "done" for the TTL once processed.
type Deduper struct {
	rdb   redis.UniversalClient
	opt   options
	ttl   time.Duration
	local *webhook.MemoryDeduper
	h     *health
}

var _ webhook.Deduper = (*Deduper)(nil)

// NewDeduper returns a Deduper that remembers a processed event for ttl
// (webhook.DefaultDedupeTTL when ttl is not positive).
func NewDeduper(rdb redis.UniversalClient, ttl time.Duration, opts ...Option) *Deduper {
	o := newOptions("NewDeduper", rdb, opts)
	if ttl <= 0 {
		ttl = webhook.DefaultDedupeTTL
	}
	return &Deduper{rdb: rdb, opt: o, ttl: ttl, local: webhook.NewMemoryDeduper(ttl), h: &health{what: "webhook", log: o.logger, retryDown: o.retryDown}}
}

// The scripts return 1 claimed / 2 in progress / 3 done (webhook.ClaimState),
// and 1 or 0 for whether owner held the key.
var (
	claimScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == 'done' then return 3 end
if v then return 2 end
redis.call('SET', KEYS[1], 'p:' .. ARGV[1], 'PX', ARGV[2])
return 1
`)
	extendScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= 'p:' .. ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)
	releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= 'p:' .. ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
`)
)

func (d *Deduper) key(k string) string { return d.opt.key("webhook:" + k) }

// Claim implements webhook.Deduper.
func (d *Deduper) Claim(ctx context.Context, key, owner string, lease time.Duration) (webhook.ClaimState, error) {
	if !d.h.usable() {
		return d.local.Claim(ctx, key, owner, lease)
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	n, err := claimScript.Run(rctx, d.rdb, []string{d.key(key)}, owner, max(lease.Milliseconds(), 1)).Int()
	if d.h.result(err) {
		return d.local.Claim(ctx, key, owner, lease)
	}
	return webhook.ClaimState(n), err
}

// Extend implements webhook.Deduper.
func (d *Deduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if !d.h.usable() {
		return d.extendLocal(ctx, key, owner, lease, errRedisDown)
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	n, err := extendScript.Run(rctx, d.rdb, []string{d.key(key)}, owner, max(lease.Milliseconds(), 1)).Int()
	if d.h.result(err) {
		return d.extendLocal(ctx, key, owner, lease, err)
	}
	if err == nil && n == 0 {
		return webhook.ErrLeaseLost
	}
	return err
}

// errRedisDown is why a lease is not renewed while Redis is skipped.
var errRedisDown = errors.New("redisstore: Redis unavailable; lease not renewed")

// extendLocal renews a lease in the fallback. An event claimed in Redis
// before the outage is unknown to it: its "lease lost" would stop the
// handler's fn for an outage, so the outage is reported instead (the
// handler logs it and goes on).
func (d *Deduper) extendLocal(ctx context.Context, key, owner string, lease time.Duration, outage error) error {
	if err := d.local.Extend(ctx, key, owner, lease); !errors.Is(err, webhook.ErrLeaseLost) {
		return err
	}
	return outage
}

// Complete implements webhook.Deduper.
func (d *Deduper) Complete(ctx context.Context, key, owner string) error {
	_ = d.local.Complete(ctx, key, owner)
	if !d.h.usable() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	err := d.rdb.Set(rctx, d.key(key), "done", d.ttl).Err()
	if d.h.result(err) {
		return nil
	}
	return err
}

// Release implements webhook.Deduper.
func (d *Deduper) Release(ctx context.Context, key, owner string) error {
	_ = d.local.Release(ctx, key, owner)
	if !d.h.usable() {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	err := releaseScript.Run(rctx, d.rdb, []string{d.key(key)}, owner).Err()
	if d.h.result(err) {
		return nil
	}
	return err
}

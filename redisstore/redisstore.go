// Package redisstore shares what a fleet of replicas of one merchant
// backend must agree on, through Redis: the access token (one /auth/ call
// per token lifetime across all replicas), the rate-limit budget of the API
// key (a 429 seen by one replica pauses all of them), and which webhooks
// were already processed (a delivery reaches one replica's handler once).
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"}) // or a Sentinel or Cluster client
//	c, err := vpay.NewClient(user, key,
//		vpay.WithTokenStore(redisstore.NewTokenStore(rdb)),
//		vpay.WithLimiter(redisstore.NewLimiter(rdb, vpay.PlanGrowth)),
//	)
//	h := webhook.Handler(secret, fn, webhook.WithDeduper(redisstore.NewDeduper(rdb, 24*time.Hour)))
//
// Every key of one namespace (WithNamespace, one per API key) shares a
// Redis Cluster hash tag, so the scripts run on Cluster too.
//
// When Redis is unreachable, each store falls back to its in-process
// counterpart (the server still enforces the limit), logs it once, and
// returns to Redis when Redis answers again. A refused connection falls back
// at once; a Redis that does not answer costs at most redisTimeout (500 ms)
// per call, after which Redis is skipped for a second.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Option configures the stores. An invalid option (an empty namespace, a
// nil logger, a lock TTL that is not positive) makes the constructor panic,
// naming it, as webhook.Handler does: the constructors return no error,
// and a store that silently ran with another setting than the one written
// (an empty namespace shared by every API key) would be found only in
// production.
type Option func(*options)

type options struct {
	namespace string
	logger    *slog.Logger
	retryDown time.Duration
	lockTTL   time.Duration
	// invalid lists the options refused, "; "-separated: a string, not a
	// slice, so that the stores that keep their options stay comparable.
	invalid string
}

func (o *options) refuse(msg string) {
	if o.invalid != "" {
		o.invalid += "; "
	}
	o.invalid += msg
}

// WithNamespace separates the keys of one V-Pay API key from another's in
// the same Redis (default "default"). Use the API user, not the key.
func WithNamespace(ns string) Option {
	return func(o *options) {
		if ns == "" {
			o.refuse(`WithNamespace(""): a namespace must not be empty`)
			return
		}
		o.namespace = ns
	}
}

// WithLogger receives the fallback notices (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.refuse("WithLogger(nil)")
			return
		}
		o.logger = l
	}
}

// WithLockTTL bounds how long a replica may hold the token-refresh lock
// before another may take it (default 30 s, the SDK's refresh timeout).
func WithLockTTL(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.refuse(fmt.Sprintf("WithLockTTL(%s): the TTL must be positive", d))
			return
		}
		o.lockTTL = d
	}
}

// newOptions applies opts for constructor what, and panics on a nil
// client or an invalid option.
func newOptions(what string, rdb redis.UniversalClient, opts []Option) options {
	if rdb == nil {
		panic("redisstore: " + what + ": nil Redis client")
	}
	o := options{namespace: "default", logger: slog.New(slog.DiscardHandler), retryDown: time.Second, lockTTL: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.invalid != "" {
		panic("redisstore: " + what + ": invalid option: " + o.invalid)
	}
	return o
}

// key names a key of the namespace; the braces are the Cluster hash tag.
func (o options) key(name string) string { return "vpay:{" + o.namespace + "}:" + name }

// health remembers that Redis is away, so that calls do not wait on it
// again for retryDown, and logs the change of state once each way.
type health struct {
	what      string
	log       *slog.Logger
	retryDown time.Duration
	mu        sync.Mutex
	downUntil time.Time
	down      atomic.Bool
}

// usable reports whether Redis should be tried now.
func (h *health) usable() bool {
	if !h.down.Load() {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().After(h.downUntil)
}

// result records the outcome of a Redis call and reports whether the
// caller must fall back. Errors that are answers (redis.Nil, a script's
// own error) are not outages.
func (h *health) result(err error) (fallback bool) {
	if err == nil || errors.Is(err, redis.Nil) {
		if h.down.CompareAndSwap(true, false) {
			h.log.Info("vpay redisstore: Redis is back; sharing again", slog.String("store", h.what))
		}
		return false
	}
	if !isOutage(err) {
		return false
	}
	h.mu.Lock()
	h.downUntil = time.Now().Add(h.retryDown)
	h.mu.Unlock()
	if h.down.CompareAndSwap(false, true) {
		h.log.Warn("vpay redisstore: Redis unreachable; using the in-process fallback",
			slog.String("store", h.what), slog.String("error", err.Error()))
	}
	return true
}

// outagePrefixes are the Redis error replies that mean "this Redis cannot
// serve the store now", not "your command is wrong": a replica promoted
// back to read-only in a failover (READONLY), a server loading its data
// (LOADING), a replica cut from its primary (MASTERDOWN), a full memory
// (OOM), a script hogging the server (BUSY), a cluster re-sharding or
// without quorum (CLUSTERDOWN, TRYAGAIN).
var outagePrefixes = []string{"READONLY", "LOADING", "MASTERDOWN", "OOM", "BUSY ", "CLUSTERDOWN", "TRYAGAIN"}

func isOutage(err error) bool {
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &oe), errors.As(err, &ne):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, redis.ErrClosed):
		return true
	}
	for _, p := range outagePrefixes {
		if redis.HasErrorPrefix(err, p) {
			return true
		}
	}
	// Connection failures that reach us as plain errors.
	msg := err.Error()
	for _, s := range []string{"connection refused", "EOF", "broken pipe", "connection reset", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// redisTimeout bounds each Redis call: a slow Redis must not slow payments
// more than this.
const redisTimeout = 500 * time.Millisecond

package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go"
)

// TokenStore is a vpay.TokenStore shared by every replica through Redis:
// the token lives in a hash with a TTL ending at its expiry; a lock
// (SET NX PX with a random value, released by compare-and-delete) lets one
// replica call /auth/ while the others wait for its token; a 401
// invalidates by compare-and-delete of that exact token.
type TokenStore struct {
	rdb   redis.UniversalClient
	opt   options
	key   string
	lock  string
	local *vpay.MemoryTokenStore
	h     *health
	poll  time.Duration
}

var _ vpay.TokenStore = (*TokenStore)(nil)

// NewTokenStore returns a TokenStore on rdb (a single, Sentinel or Cluster
// client).
func NewTokenStore(rdb redis.UniversalClient, opts ...Option) *TokenStore {
	o := newOptions("NewTokenStore", rdb, opts)
	return &TokenStore{
		rdb:   rdb,
		opt:   o,
		key:   o.key("token"),
		lock:  o.key("token:lock"),
		local: vpay.NewMemoryTokenStore(),
		h:     &health{what: "token", log: o.logger, retryDown: o.retryDown},
		poll:  25 * time.Millisecond,
	}
}

// Load implements vpay.TokenStore.
func (s *TokenStore) Load(ctx context.Context) (*vpay.Token, error) {
	if !s.h.usable() {
		return s.local.Load(ctx)
	}
	tok, err := s.get(ctx)
	if s.h.result(err) {
		return s.local.Load(ctx)
	}
	return tok, err
}

func (s *TokenStore) get(ctx context.Context) (*vpay.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	m, err := s.rdb.HGetAll(ctx, s.key).Result()
	if err != nil || len(m) == 0 || m["access"] == "" {
		return nil, err
	}
	exp, _ := strconv.ParseInt(m["expiry"], 10, 64)
	issued, _ := strconv.ParseInt(m["issued"], 10, 64)
	return &vpay.Token{
		AccessToken:  m["access"],
		RefreshToken: m["refresh"],
		Mode:         vpay.Mode(m["mode"]),
		Expiry:       time.UnixMilli(exp),
		IssuedAt:     time.UnixMilli(issued),
	}, nil
}

// Refresh implements vpay.TokenStore: the replica that takes the lock
// calls fetch; the others wait for the token it stores.
func (s *TokenStore) Refresh(ctx context.Context, stale *vpay.Token, fetch func(context.Context) (*vpay.Token, error)) (*vpay.Token, error) {
	owner := randomToken()
	for {
		if !s.h.usable() {
			return s.local.Refresh(ctx, stale, fetch)
		}
		if cur, err := s.get(ctx); s.h.result(err) {
			return s.local.Refresh(ctx, stale, fetch)
		} else if err == nil && fresh(cur, stale) {
			return cur, nil
		}
		lctx, cancel := context.WithTimeout(ctx, redisTimeout)
		won, err := s.rdb.SetNX(lctx, s.lock, owner, s.opt.lockTTL).Result()
		cancel()
		if s.h.result(err) {
			return s.local.Refresh(ctx, stale, fetch)
		}
		if err != nil {
			// An answer that is no outage (a wrong type, an ACL): waiting
			// for a lock nobody holds would only spin until ctx ends.
			return nil, err
		}
		if won {
			return s.fetchAndStore(ctx, stale, owner, fetch)
		}
		// Another replica is fetching: wait for its token, or for its lock
		// to lapse if it died.
		select {
		case <-time.After(s.poll):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (s *TokenStore) fetchAndStore(ctx context.Context, stale *vpay.Token, owner string, fetch func(context.Context) (*vpay.Token, error)) (*vpay.Token, error) {
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
		defer cancel()
		_ = releaseLock.Run(rctx, s.rdb, []string{s.lock}, owner).Err()
	}()
	// The token may have been stored between our look and our lock.
	if cur, err := s.get(ctx); err == nil && fresh(cur, stale) {
		return cur, nil
	}
	tok, err := fetch(ctx)
	if err != nil {
		return nil, err
	}
	ttl := time.Until(tok.Expiry)
	if ttl <= 0 {
		return tok, nil
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), redisTimeout)
	defer cancel()
	pipe := s.rdb.TxPipeline()
	pipe.Del(sctx, s.key)
	pipe.HSet(sctx, s.key,
		"access", tok.AccessToken, "refresh", tok.RefreshToken, "mode", string(tok.Mode),
		"expiry", tok.Expiry.UnixMilli(), "issued", tok.IssuedAt.UnixMilli())
	pipe.PExpire(sctx, s.key, ttl)
	_, err = pipe.Exec(sctx)
	s.h.result(err)
	// The token is good whether or not Redis kept it; keep it locally too,
	// for the moment Redis is away.
	_, _ = s.local.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) { return tok, nil })
	return tok, nil
}

// Invalidate implements vpay.TokenStore: compare-and-delete, so a 401 on
// an old token never drops its replacement.
func (s *TokenStore) Invalidate(ctx context.Context, tok *vpay.Token) error {
	_ = s.local.Invalidate(ctx, tok)
	if tok == nil || !s.h.usable() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	err := invalidateToken.Run(ctx, s.rdb, []string{s.key}, tok.AccessToken).Err()
	s.h.result(err)
	return nil
}

// fresh reports whether cur is a valid token other than stale.
func fresh(cur, stale *vpay.Token) bool {
	if cur == nil || !cur.Valid(time.Now()) {
		return false
	}
	return stale == nil || cur.AccessToken != stale.AccessToken
}

var releaseLock = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

var invalidateToken = redis.NewScript(`
if redis.call("HGET", KEYS[1], "access") == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

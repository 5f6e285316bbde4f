package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go"
)

// TokenStore is a vpay.TokenStore shared by every replica through
// PostgreSQL: the token lives in the namespace's row; a lease on the same
// row (an owner and a time it lapses, taken by one conditional upsert) lets
// one replica call /auth/ while the others read the row until its token
// appears; a 401 invalidates by compare-and-clear of that exact token. The
// lease is a value in a row, not a database lock: nobody holds a
// connection while /auth/ answers, and a replica that dies holding it
// delays the others by at most the lock TTL.
type TokenStore struct {
	pool    *pgxpool.Pool
	ns      string
	lockTTL time.Duration
	local   *vpay.MemoryTokenStore
	h       *health
	poll    time.Duration
}

var _ vpay.TokenStore = (*TokenStore)(nil)

// NewTokenStore returns a TokenStore on pool. Run Migrate first.
func NewTokenStore(pool *pgxpool.Pool, opts ...Option) *TokenStore {
	o := newOptions("NewTokenStore", pool, opts)
	return &TokenStore{
		pool:    pool,
		ns:      o.namespace,
		lockTTL: o.lockTTL,
		local:   vpay.NewMemoryTokenStore(),
		h:       newHealth("token", o),
		poll:    25 * time.Millisecond,
	}
}

// Load implements vpay.TokenStore.
func (s *TokenStore) Load(ctx context.Context) (*vpay.Token, error) {
	if !s.h.usable() {
		return s.local.Load(ctx)
	}
	began := s.h.begin()
	tok, err := s.get(ctx)
	if s.h.result(ctx, began, err) {
		return s.local.Load(ctx)
	}
	return tok, err
}

// get reads the namespace's token; nil when there is none, or when it has
// expired (as Redis's TTL drops it in redisstore).
func (s *TokenStore) get(ctx context.Context) (*vpay.Token, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var tok vpay.Token
	var mode string
	err := s.pool.QueryRow(ctx, `SELECT access, refresh, mode, expiry, issued FROM vpay_pgstore_tokens
		WHERE namespace = $1 AND access IS NOT NULL AND expiry > $2`, s.ns, time.Now()).
		Scan(&tok.AccessToken, &tok.RefreshToken, &mode, &tok.Expiry, &tok.IssuedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: token store: %w", err)
	}
	tok.Mode = vpay.Mode(mode)
	return &tok, nil
}

// Refresh implements vpay.TokenStore: the replica that takes the lease
// calls fetch; the others wait for the token it stores, reading the row
// every poll without holding a connection in between.
func (s *TokenStore) Refresh(ctx context.Context, stale *vpay.Token, fetch func(context.Context) (*vpay.Token, error)) (*vpay.Token, error) {
	owner := randomToken()
	for {
		if !s.h.usable() {
			return s.local.Refresh(ctx, stale, fetch)
		}
		began := s.h.begin()
		if cur, err := s.get(ctx); s.h.result(ctx, began, err) {
			return s.local.Refresh(ctx, stale, fetch)
		} else if err == nil && fresh(cur, stale) {
			return cur, nil
		}
		began = s.h.begin()
		won, err := s.lock(ctx, owner)
		if s.h.result(ctx, began, err) {
			return s.local.Refresh(ctx, stale, fetch)
		}
		if err != nil {
			// An answer that is no outage (a missing table, a permission):
			// waiting for a lease nobody can take would only spin until
			// ctx ends.
			return nil, err
		}
		if won {
			return s.fetchAndStore(ctx, stale, owner, fetch)
		}
		// Another replica is fetching: wait for its token, or for its
		// lease to lapse if it died.
		select {
		case <-time.After(s.poll):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// lock takes the refresh lease for owner unless another owner holds one
// that has not lapsed, and reports whether it did.
func (s *TokenStore) lock(ctx context.Context, owner string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO vpay_pgstore_tokens AS t (namespace, lock_owner, lock_until)
		VALUES ($1, $2, clock_timestamp() + $3 * interval '1 millisecond')
		ON CONFLICT (namespace) DO UPDATE SET lock_owner = excluded.lock_owner, lock_until = excluded.lock_until
		WHERE t.lock_owner IS NULL OR t.lock_until <= clock_timestamp()`,
		s.ns, owner, s.lockTTL.Milliseconds())
	if err != nil {
		return false, fmt.Errorf("pgstore: token store: lock: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

func (s *TokenStore) fetchAndStore(ctx context.Context, stale *vpay.Token, owner string, fetch func(context.Context) (*vpay.Token, error)) (tok *vpay.Token, err error) {
	// The lease is given back however this ends; after a stored token the
	// statement finds it given back already, and changes nothing.
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgTimeout)
		defer cancel()
		_, _ = s.pool.Exec(rctx, `UPDATE vpay_pgstore_tokens SET lock_owner = NULL, lock_until = NULL
			WHERE namespace = $1 AND lock_owner = $2`, s.ns, owner)
	}()
	// The token may have been stored between our look and our lease.
	if cur, err := s.get(ctx); err == nil && fresh(cur, stale) {
		return cur, nil
	}
	tok, err = fetch(ctx)
	if err != nil {
		return nil, err
	}
	if !tok.Expiry.After(time.Now()) {
		return tok, nil
	}
	began := s.h.begin()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pgTimeout)
	defer cancel()
	// The token and the lease's release in one statement: a waiter that
	// finds the lease free finds the token too.
	_, err = s.pool.Exec(sctx, `UPDATE vpay_pgstore_tokens SET access = $2, refresh = $3, mode = $4, expiry = $5, issued = $6,
			lock_owner = CASE WHEN lock_owner = $7 THEN NULL ELSE lock_owner END,
			lock_until = CASE WHEN lock_owner = $7 THEN NULL ELSE lock_until END
		WHERE namespace = $1`,
		s.ns, tok.AccessToken, tok.RefreshToken, string(tok.Mode), tok.Expiry, tok.IssuedAt, owner)
	s.h.result(ctx, began, err)
	// The token is good whether or not the database kept it; keep it
	// locally too, for the moment the database is away.
	_, _ = s.local.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) { return tok, nil })
	return tok, nil
}

// Invalidate implements vpay.TokenStore: compare-and-clear, so a 401 on an
// old token never drops its replacement.
func (s *TokenStore) Invalidate(ctx context.Context, tok *vpay.Token) error {
	_ = s.local.Invalidate(ctx, tok)
	if tok == nil || !s.h.usable() {
		return nil
	}
	began := s.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	_, err := s.pool.Exec(qctx, `UPDATE vpay_pgstore_tokens SET access = NULL, refresh = NULL, mode = NULL, expiry = NULL, issued = NULL
		WHERE namespace = $1 AND access = $2`, s.ns, tok.AccessToken)
	if s.h.result(ctx, began, err) || err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: token store: invalidate: %w", err)
}

// fresh reports whether cur is a valid token other than stale.
func fresh(cur, stale *vpay.Token) bool {
	if cur == nil || !cur.Valid(time.Now()) {
		return false
	}
	return stale == nil || cur.AccessToken != stale.AccessToken
}

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

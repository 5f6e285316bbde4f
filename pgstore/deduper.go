package pgstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go/webhook"
)

// Deduper is a webhook.Deduper shared by every replica, so that a delivery
// reaches one replica's handler once. An event's row holds its owner while
// a delivery processes it, with the lease as its expiry (renewed while fn
// runs), and done for the TTL once processed. A row past its expiry is
// taken over by the next Claim, and deleted by the periodic clean-up.
type Deduper struct {
	pool  *pgxpool.Pool
	ns    string
	ttl   time.Duration
	local *webhook.MemoryDeduper
	h     *health

	// The expired rows are deleted by a Claim at most once per cleanEvery
	// per process: a table that only grows would slow every Claim.
	cleanEvery time.Duration
	cleanMu    sync.Mutex
	cleaned    time.Time
}

var _ webhook.Deduper = (*Deduper)(nil)

// NewDeduper returns a Deduper that remembers a processed event for ttl
// (webhook.DefaultDedupeTTL when ttl is not positive). Run Migrate first.
func NewDeduper(pool *pgxpool.Pool, ttl time.Duration, opts ...Option) *Deduper {
	o := newOptions("NewDeduper", pool, opts)
	if ttl <= 0 {
		ttl = webhook.DefaultDedupeTTL
	}
	return &Deduper{pool: pool, ns: o.namespace, ttl: ttl, local: webhook.NewMemoryDeduper(ttl),
		h: newHealth("webhook", o), cleanEvery: time.Minute}
}

// Claim implements webhook.Deduper.
func (d *Deduper) Claim(ctx context.Context, key, owner string, lease time.Duration) (webhook.ClaimState, error) {
	if !d.h.usable() {
		return d.local.Claim(ctx, key, owner, lease)
	}
	began := d.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var n int
	err := d.pool.QueryRow(qctx, `SELECT vpay_pgstore_claim($1, $2, $3, $4)`, d.ns, key, owner, max(lease.Milliseconds(), 1)).Scan(&n)
	if d.h.result(ctx, began, err) {
		return d.local.Claim(ctx, key, owner, lease)
	}
	if err != nil {
		return 0, fmt.Errorf("pgstore: deduper: claim: %w", err)
	}
	d.clean(qctx)
	return webhook.ClaimState(n), nil
}

// clean deletes a batch of expired rows, if none was deleted for
// cleanEvery. A failure is left for the next time: the rows are expired
// whether or not they are deleted.
func (d *Deduper) clean(ctx context.Context) {
	d.cleanMu.Lock()
	due := time.Since(d.cleaned) >= d.cleanEvery
	if due {
		d.cleaned = time.Now()
	}
	d.cleanMu.Unlock()
	if due {
		_, _ = d.pool.Exec(ctx, `DELETE FROM vpay_pgstore_webhooks WHERE ctid = ANY (ARRAY(
			SELECT ctid FROM vpay_pgstore_webhooks WHERE expires_at < clock_timestamp() LIMIT 1000))`)
	}
}

// Extend implements webhook.Deduper.
func (d *Deduper) Extend(ctx context.Context, key, owner string, lease time.Duration) error {
	if !d.h.usable() {
		return d.extendLocal(ctx, key, owner, lease, errPostgresDown)
	}
	began := d.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	tag, err := d.pool.Exec(qctx, `UPDATE vpay_pgstore_webhooks SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
		WHERE namespace = $1 AND key = $2 AND owner = $3 AND NOT done AND expires_at > clock_timestamp()`,
		d.ns, key, owner, max(lease.Milliseconds(), 1))
	if d.h.result(ctx, began, err) {
		return d.extendLocal(ctx, key, owner, lease, err)
	}
	if err != nil {
		return fmt.Errorf("pgstore: deduper: extend: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return webhook.ErrLeaseLost
	}
	return nil
}

// errPostgresDown is why a lease is not renewed while PostgreSQL is
// skipped.
var errPostgresDown = errors.New("pgstore: PostgreSQL unavailable; lease not renewed")

// extendLocal renews a lease in the fallback. An event claimed in the
// database before the outage is unknown to it: its "lease lost" would stop
// the handler's fn for an outage, so the outage is reported instead (the
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
	began := d.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	_, err := d.pool.Exec(qctx, `INSERT INTO vpay_pgstore_webhooks AS w (namespace, key, owner, done, expires_at)
		VALUES ($1, $2, NULL, true, clock_timestamp() + $3 * interval '1 millisecond')
		ON CONFLICT (namespace, key) DO UPDATE SET owner = NULL, done = true, expires_at = excluded.expires_at`,
		d.ns, key, d.ttl.Milliseconds())
	if d.h.result(ctx, began, err) || err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: deduper: complete: %w", err)
}

// Release implements webhook.Deduper.
func (d *Deduper) Release(ctx context.Context, key, owner string) error {
	_ = d.local.Release(ctx, key, owner)
	if !d.h.usable() {
		return nil
	}
	began := d.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	_, err := d.pool.Exec(qctx, `DELETE FROM vpay_pgstore_webhooks WHERE namespace = $1 AND key = $2 AND owner = $3 AND NOT done`,
		d.ns, key, owner)
	if d.h.result(ctx, began, err) || err == nil {
		return nil
	}
	return fmt.Errorf("pgstore: deduper: release: %w", err)
}

// deduperFunctions is Claim in one statement: take the event unless a live
// row holds it, and otherwise say whether that row is done or in progress.
// ON CONFLICT DO UPDATE locks the row it does not update, so the state
// read next is the one that stopped the claim.
const deduperFunctions = `
CREATE OR REPLACE FUNCTION vpay_pgstore_claim(ns text, k text, own text, lease_ms bigint) RETURNS integer
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	d boolean;
BEGIN
	INSERT INTO vpay_pgstore_webhooks AS w (namespace, key, owner, done, expires_at)
	VALUES (ns, k, own, false, clock_timestamp() + lease_ms * interval '1 millisecond')
	ON CONFLICT (namespace, key) DO UPDATE SET owner = excluded.owner, done = false, expires_at = excluded.expires_at
	WHERE w.expires_at <= clock_timestamp();
	IF FOUND THEN
		RETURN 1; -- webhook.Claimed
	END IF;
	SELECT done INTO d FROM vpay_pgstore_webhooks WHERE namespace = ns AND key = k;
	IF d THEN
		RETURN 3; -- webhook.Done
	END IF;
	RETURN 2; -- webhook.InProgress
END $$;
`

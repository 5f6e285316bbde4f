package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/vonsung/vpay-go"
)

// Admin is the tracker for the people who run it: listings, manual
// resolution and retention, on the tracker's database. It works no jobs
// and needs no Client or OnUpdate, so a tool built on it (the vpay
// command line) can never deliver a merchant's Updates itself: a status
// it resolves is delivered by the merchant's running trackers. Safe for
// concurrent use.
type Admin struct {
	pool  *pgxpool.Pool
	river *river.Client[pgx.Tx] // inserts jobs only, in Admin's own use
	log   *slog.Logger
}

// NewAdmin returns an Admin on pool's database, where Migrate has run.
func NewAdmin(pool *pgxpool.Pool) (*Admin, error) {
	if pool == nil {
		return nil, errors.New("tracker: NewAdmin: nil pool")
	}
	// With no Workers, a River client only inserts jobs: it never works one.
	rc, err := river.NewClient(riverpgxv5.New(pool), &river.Config{})
	if err != nil {
		return nil, fmt.Errorf("tracker: %w", err)
	}
	return &Admin{pool: pool, river: rc, log: slog.New(slog.DiscardHandler)}, nil
}

// ErrNoPayment is returned by Resolve and ResolveTransaction when the
// tracker has no such payment.
var ErrNoPayment = errors.New("tracker: no such payment")

// Payment is a tracked payment, for the people who run the tracker.
type Payment struct {
	// Reference is the payment's reference (the order id), "" for a
	// payment known by transaction id only; TransactionID V-Pay's id, ""
	// while it is unknown.
	Reference, TransactionID string
	// Status is the latest status the tracker knows.
	Status vpay.Status
	// OutcomeUnknown: the Pay's answer was lost; the tracker waits for
	// the webhook that names the reference.
	OutcomeUnknown bool
	// Unresolved: no final status after Config.GiveUp.
	Unresolved bool
	// Note is what Resolve was told.
	Note string
	// CreatedAt is when the tracker first recorded the payment, UpdatedAt
	// when it last learnt something of it.
	CreatedAt, UpdatedAt time.Time
	// Undelivered lists the statuses learnt and not yet delivered to
	// OnUpdate, in the order they will be ("unresolved" for the give-up
	// report).
	Undelivered []string
	// Attempts is how many times the first of Undelivered failed in
	// OnUpdate.
	Attempts int
	// LastError is the first of Undelivered's last error in OnUpdate.
	LastError string
}

// finalList is vpay.FinalStatuses as an SQL list, ('successful', ...): the
// one source of "final" for every query here and for the partial index
// that serves them (migration 3), whose predicate must be this same text
// for PostgreSQL to use it.
func finalList() string {
	q := make([]string, 0, 5)
	for _, s := range vpay.FinalStatuses() {
		q = append(q, "'"+strings.ReplaceAll(string(s), "'", "''")+"'")
	}
	return "(" + strings.Join(q, ", ") + ")"
}

// Pending lists the payments without a final status, oldest first, at most
// limit of them (all when limit is 0).
func (a *Admin) Pending(ctx context.Context, limit int) ([]Payment, error) {
	return a.list(ctx, `p.status NOT IN `+finalList(), limit)
}

// PendingCount returns how many payments have no final status, and how many
// of those were reported Unresolved: one count over the partial index of
// payments without a final status (an index-only scan, however many settled
// payments the table holds), cheap enough for a metrics gauge's callback.
func (a *Admin) PendingCount(ctx context.Context) (pending, unresolved int64, err error) {
	err = a.pool.QueryRow(ctx, pendingCountQuery()).Scan(&pending, &unresolved)
	return pending, unresolved, err
}

func pendingCountQuery() string {
	return `SELECT count(*), count(*) FILTER (WHERE unresolved)
		FROM vpay_tracker_payments WHERE status NOT IN ` + finalList()
}

// Unresolved lists the payments reported Unresolved and not resolved
// since, oldest first.
func (a *Admin) Unresolved(ctx context.Context, limit int) ([]Payment, error) {
	return a.list(ctx, `p.unresolved AND p.status NOT IN `+finalList(), limit)
}

// Held lists the payments whose Updates are held back: the first
// undelivered one has failed in OnUpdate at least once, and later ones
// wait behind it (Updates of a payment are delivered in order). Fix what
// makes OnUpdate fail; the retries then deliver them all, in order.
func (a *Admin) Held(ctx context.Context, limit int) ([]Payment, error) {
	return a.list(ctx, `EXISTS (SELECT 1 FROM vpay_tracker_updates f WHERE f.payment_id = p.id AND f.delivered_at IS NULL AND f.attempts > 0
			AND f.seq = (SELECT min(seq) FROM vpay_tracker_updates m WHERE m.payment_id = p.id AND m.delivered_at IS NULL)
			AND EXISTS (SELECT 1 FROM vpay_tracker_updates l WHERE l.payment_id = p.id AND l.seq > f.seq AND l.delivered_at IS NULL))`, limit)
}

func (a *Admin) list(ctx context.Context, where string, limit int) ([]Payment, error) {
	q := `SELECT COALESCE(p.reference, ''), COALESCE(p.transaction_id, ''), p.status, p.outcome_unknown, p.unresolved, p.note, p.created_at, p.updated_at,
			COALESCE(array_agg(u.status ORDER BY u.seq) FILTER (WHERE u.seq IS NOT NULL), '{}'),
			COALESCE((array_agg(u.attempts ORDER BY u.seq))[1], 0), COALESCE((array_agg(u.last_error ORDER BY u.seq))[1], '')
		FROM vpay_tracker_payments p LEFT JOIN vpay_tracker_updates u ON u.payment_id = p.id AND u.delivered_at IS NULL
		WHERE ` + where + ` GROUP BY p.id ORDER BY p.created_at, p.id`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := a.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := r.Scan(&p.Reference, &p.TransactionID, &p.Status, &p.OutcomeUnknown, &p.Unresolved, &p.Note, &p.CreatedAt, &p.UpdatedAt,
			&p.Undelivered, &p.Attempts, &p.LastError)
		return p, err
	})
}

// Resolve settles the payment of reference by hand, after a person checked
// it with V-Pay: status must be final; it is delivered to OnUpdate like any
// other (once, in order, by the merchant's trackers), with Source
// SourceManual, and note is kept with the payment.
func (a *Admin) Resolve(ctx context.Context, reference string, status vpay.Status, note string) error {
	return a.resolve(ctx, `reference = $1`, reference, status, note)
}

// ResolveTransaction is Resolve for a payment named by its transaction id:
// the only name of a payment that came without a reference.
func (a *Admin) ResolveTransaction(ctx context.Context, transactionID string, status vpay.Status, note string) error {
	return a.resolve(ctx, `transaction_id = $1`, transactionID, status, note)
}

func (a *Admin) resolve(ctx context.Context, where, key string, status vpay.Status, note string) error {
	if !status.Final() {
		return fmt.Errorf("tracker: Resolve: %q is not a final status", status)
	}
	return pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		var id int64
		err := tx.QueryRow(ctx, `UPDATE vpay_tracker_payments SET note = $2 WHERE id =
			(SELECT id FROM vpay_tracker_payments WHERE `+where+` ORDER BY id DESC LIMIT 1) RETURNING id`, key, note).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tracker: Resolve %q: %w", key, ErrNoPayment)
		}
		if err != nil {
			return err
		}
		return a.learn(ctx, tx, id, &vpay.Transaction{Status: status}, SourceManual)
	})
}

// Prune deletes the tracker's records of payments settled (final status,
// every Update delivered) before before, and returns how many it deleted:
// the retention rule for the tracker's own rows. Your orders are yours.
//
// Of each pruned payment it keeps, for ever, a tombstone per status
// delivered (the payment's reference, or its transaction id when it had
// none, and the status): a webhook delivered again later (V-Pay's retry, a
// dashboard Resend, a replayed capture, which verifies for ever) delivers
// nothing again. A tombstone is a few dozen bytes.
func (a *Admin) Prune(ctx context.Context, before time.Time) (n int64, err error) {
	err = pgx.BeginFunc(ctx, a.pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id FROM vpay_tracker_payments p
			WHERE p.updated_at < $1 AND p.status IN `+finalList()+`
			AND NOT EXISTS (SELECT 1 FROM vpay_tracker_updates u WHERE u.payment_id = p.id AND u.delivered_at IS NULL)
			FOR UPDATE SKIP LOCKED`, before)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO vpay_tracker_tombstones (reference, transaction_id, status)
			SELECT p.reference, p.transaction_id, u.status FROM vpay_tracker_payments p
			JOIN vpay_tracker_updates u ON u.payment_id = p.id
			WHERE p.id = ANY($1) ON CONFLICT DO NOTHING`, ids); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM vpay_tracker_payments WHERE id = ANY($1)`, ids)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

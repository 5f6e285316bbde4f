package tracker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vonsung/vpay-go"
)

// Payment is a tracked payment, for the people who run the tracker.
type Payment struct {
	// Reference is the payment's reference (the order id); TransactionID
	// V-Pay's id, "" while it is unknown.
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
}

// Pending lists the payments without a final status, oldest first, at most
// limit of them (all when limit is 0).
func (t *Tracker) Pending(ctx context.Context, limit int) ([]Payment, error) {
	return t.list(ctx, `status NOT IN ('successful', 'failed', 'cancelled', 'refunded', 'disputed')`, limit)
}

// PendingCount returns how many payments have no final status, and how many
// of those were reported Unresolved: one indexed count, cheap enough for a
// metrics gauge's callback.
func (t *Tracker) PendingCount(ctx context.Context) (pending, unresolved int64, err error) {
	err = t.cfg.Pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE unresolved)
		FROM vpay_tracker_payments WHERE status NOT IN ('successful', 'failed', 'cancelled', 'refunded', 'disputed')`).Scan(&pending, &unresolved)
	return pending, unresolved, err
}

// Unresolved lists the payments reported Unresolved and not resolved
// since, oldest first.
func (t *Tracker) Unresolved(ctx context.Context, limit int) ([]Payment, error) {
	return t.list(ctx, `unresolved AND status NOT IN ('successful', 'failed', 'cancelled', 'refunded', 'disputed')`, limit)
}

func (t *Tracker) list(ctx context.Context, where string, limit int) ([]Payment, error) {
	q := `SELECT reference, COALESCE(transaction_id, ''), status, outcome_unknown, unresolved, note, created_at, updated_at
		FROM vpay_tracker_payments WHERE ` + where + ` ORDER BY created_at`
	args := []any{}
	if limit > 0 {
		q += ` LIMIT $1`
		args = append(args, limit)
	}
	rows, err := t.cfg.Pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Payment, error) {
		var p Payment
		err := r.Scan(&p.Reference, &p.TransactionID, &p.Status, &p.OutcomeUnknown, &p.Unresolved, &p.Note, &p.CreatedAt, &p.UpdatedAt)
		return p, err
	})
}

// Resolve settles a payment by hand, after a person checked it with V-Pay:
// status must be final; it is delivered to OnUpdate like any other (once),
// with Source SourceManual, and note is kept with the payment.
func (t *Tracker) Resolve(ctx context.Context, reference string, status vpay.Status, note string) error {
	if !status.Final() {
		return fmt.Errorf("tracker: Resolve: %q is not a final status", status)
	}
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		var id *string
		err := tx.QueryRow(ctx, `UPDATE vpay_tracker_payments SET note = $2 WHERE reference = $1 RETURNING transaction_id`, reference, note).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tracker: Resolve: no payment %q", reference)
		}
		if err != nil {
			return err
		}
		txn := &vpay.Transaction{Reference: reference, Status: status}
		if id != nil {
			txn.TransactionID = *id
		}
		return t.record(ctx, tx, reference, txn, SourceManual)
	})
}

// Prune deletes the tracker's records of payments settled (final status,
// every status delivered) before before, and returns how many it deleted:
// the retention rule for the tracker's own rows. Your orders are yours.
func (t *Tracker) Prune(ctx context.Context, before time.Time) (int64, error) {
	tag, err := t.cfg.Pool.Exec(ctx, `DELETE FROM vpay_tracker_payments p
		WHERE p.updated_at < $1
		AND p.status IN ('successful', 'failed', 'cancelled', 'refunded', 'disputed')
		AND EXISTS (SELECT 1 FROM vpay_tracker_deliveries d WHERE d.reference = p.reference AND d.status = p.status)`, before)
	return tag.RowsAffected(), err
}

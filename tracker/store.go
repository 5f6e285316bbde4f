package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/vonsung/vpay-go"
)

// MaxIDLen is the longest reference or transaction id the tracker stores,
// in bytes: well inside PostgreSQL's index row limit. A webhook naming a
// longer one (or one holding a NUL, which PostgreSQL text cannot hold) is
// refused with webhook.Refuse: V-Pay need not deliver it again.
const MaxIDLen = 255

// storable reports whether s fits the tracker's text columns.
func storable(s string) bool {
	return len(s) <= MaxIDLen && utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}

// payment is a payment's row, as the jobs read it.
type payment struct {
	id            int64
	reference     string // "" for a payment known by transaction id only
	transactionID string
	status        vpay.Status
	created       time.Time
}

// lock reads payment id's row and locks it until tx ends: every change to
// a payment and every delivery of its Updates runs under this lock, one at
// a time. found is false when the payment is gone (pruned).
func lock(ctx context.Context, tx pgx.Tx, id int64) (p payment, raw []byte, found bool, err error) {
	var ref, txnID *string
	err = tx.QueryRow(ctx, `SELECT reference, transaction_id, status, txn, created_at FROM vpay_tracker_payments WHERE id = $1 FOR UPDATE`, id).
		Scan(&ref, &txnID, &p.status, &raw, &p.created)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, nil, false, nil
	}
	if err != nil {
		return p, nil, false, fmt.Errorf("tracker: payment %d: %w", id, err)
	}
	p.id = id
	if ref != nil {
		p.reference = *ref
	}
	if txnID != nil {
		p.transactionID = *txnID
	}
	return p, raw, true, nil
}

// find returns the payment txn belongs to, locked until tx ends as lock
// locks it, creating it when the tracker did not know it (isNew). A
// reference is looked up first: it is the merchant's key. Only a payment
// that came without a reference is found by its transaction id then (and
// takes the reference now learnt); an event without a reference is found by
// transaction id. A payment without a reference gets a row of its own, with
// no reference: no reference can name it by accident. Each statement reads
// the row it locks as it is once locked (FOR UPDATE, UPDATE and ON CONFLICT
// DO UPDATE all return the newest version), so the lookup is the lock: no
// second read.
func find(ctx context.Context, tx pgx.Tx, txn *vpay.Transaction) (p payment, isNew bool, err error) {
	const cols = `id, reference, transaction_id, status, created_at`
	ref, txnID := txn.Reference, txn.TransactionID
	var refOrNil, txnIDOrNil *string
	scan := func(row pgx.Row, dest ...any) error {
		err := row.Scan(append([]any{&p.id, &refOrNil, &txnIDOrNil, &p.status, &p.created}, dest...)...)
		if refOrNil != nil {
			p.reference = *refOrNil
		}
		if txnIDOrNil != nil {
			p.transactionID = *txnIDOrNil
		}
		return err
	}
	if ref != "" {
		err = scan(tx.QueryRow(ctx, `SELECT `+cols+` FROM vpay_tracker_payments WHERE reference = $1 FOR UPDATE`, ref))
		if err == nil || !errors.Is(err, pgx.ErrNoRows) {
			return p, false, err
		}
		if txnID != "" {
			err = scan(tx.QueryRow(ctx, `UPDATE vpay_tracker_payments SET reference = $1, updated_at = now()
				WHERE reference IS NULL AND transaction_id = $2 RETURNING `+cols, ref, txnID))
			if err == nil || !errors.Is(err, pgx.ErrNoRows) {
				return p, false, err
			}
		}
		err = scan(tx.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (reference, transaction_id) VALUES ($1, NULLIF($2, ''))
			ON CONFLICT (reference) DO UPDATE SET updated_at = now() RETURNING `+cols+`, xmax = 0`, ref, txnID), &isNew)
		return p, isNew, err
	}
	err = scan(tx.QueryRow(ctx, `SELECT `+cols+` FROM vpay_tracker_payments WHERE transaction_id = $1 ORDER BY id DESC LIMIT 1 FOR UPDATE`, txnID))
	if err == nil || !errors.Is(err, pgx.ErrNoRows) {
		return p, false, err
	}
	err = scan(tx.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (transaction_id) VALUES ($1)
		ON CONFLICT (transaction_id) WHERE reference IS NULL DO UPDATE SET updated_at = now() RETURNING `+cols+`, xmax = 0`, txnID), &isNew)
	return p, isNew, err
}

// learn saves in tx what the tracker learnt of payment id and, for a final
// status not learnt before, adds it to the payment's Updates. A final
// status is never replaced by pending; a transaction id once known is
// never replaced. A manual resolution keeps the
// Transaction last seen.
func (a *Admin) learn(ctx context.Context, tx pgx.Tx, id int64, txn *vpay.Transaction, src Source) error {
	p, _, found, err := lock(ctx, tx, id)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("tracker: payment %d is gone", id)
	}
	return a.record(ctx, tx, p, txn, src)
}

// record is learn for payment p, whose row tx has locked.
func (a *Admin) record(ctx context.Context, tx pgx.Tx, p payment, txn *vpay.Transaction, src Source) error {
	id := p.id
	status := txn.Status
	if !storable(string(status)) || (p.status.Final() && !status.Final()) {
		status = p.status // a late "pending" changes nothing
	}
	txnID, raw, err := a.columns(ctx, id, txn, src)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE vpay_tracker_payments
		SET transaction_id = COALESCE(transaction_id, NULLIF($2, '')), status = $3, txn = COALESCE($4, txn), updated_at = now()
		WHERE id = $1`, id, txnID, string(status), raw); err != nil {
		return fmt.Errorf("tracker: record payment %d: %w", id, err)
	}
	if !status.Final() {
		return nil
	}
	if p.transactionID == "" {
		p.transactionID = txnID
	}
	return a.addUpdate(ctx, tx, p, string(status), src)
}

// wake is the SQL expression that wakes every process's fetch of the
// tracker's queue when the transaction commits: River's insert
// notification, sent for each delivery the tracker enqueues, where River
// sends its own at most once per FetchCooldown and per process, so that a
// delivery enqueued just after another would wait for the next poll
// (PollInterval). Channel and payload are River's (v0.51's PGNotifyMany):
// PostgreSQL folds it with River's own into one notification per
// transaction. It rides on a statement the tracker sends anyway.
const wake = `pg_notify(concat(current_schema(), '.river_insert'), '{"queue": "` + queue + `"}')`

// columns are what learn writes of txn besides its status: the
// transaction id ("" when it cannot be stored) and txn itself as JSON (nil
// for a manual resolution, which keeps the Transaction last seen).
func (a *Admin) columns(ctx context.Context, id int64, txn *vpay.Transaction, src Source) (txnID string, raw []byte, err error) {
	txnID = txn.TransactionID
	if !storable(txnID) {
		a.log.WarnContext(ctx, "vpay tracker: a transaction id too long to store; kept the one known", slog.Int64("payment", id), slog.Int("bytes", len(txnID)))
		txnID = ""
	}
	if src != SourceManual {
		raw, err = json.Marshal(txn)
	}
	return txnID, raw, err
}

// learnPending is learn for a txn whose status is not final, in one
// statement instead of a transaction of four: such a status adds no
// Update, and the UPDATE's own row lock is enough for the rule that a final
// status is never replaced, which it applies in SQL.
func (a *Admin) learnPending(ctx context.Context, id int64, txn *vpay.Transaction, src Source) error {
	txnID, raw, err := a.columns(ctx, id, txn, src)
	if err != nil {
		return err
	}
	var status *string // nil: keep the one stored
	if s := string(txn.Status); storable(s) {
		status = &s
	}
	tag, err := a.pool.Exec(ctx, `UPDATE vpay_tracker_payments
		SET transaction_id = COALESCE(transaction_id, NULLIF($2, '')),
			status = CASE WHEN status IN `+finalList()+` THEN status ELSE COALESCE($3, status) END,
			txn = COALESCE($4, txn), updated_at = now()
		WHERE id = $1`, id, txnID, status, raw)
	switch {
	case err != nil:
		return fmt.Errorf("tracker: record payment %d: %w", id, err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("tracker: payment %d is gone", id)
	}
	return nil
}

// addUpdate appends status to payment p's Updates (p's row locked in tx),
// unless it was learnt before, and enqueues its delivery. A status that a
// pruned record of the payment delivered already (its tombstone) is added
// as delivered: it never reaches OnUpdate again.
func (a *Admin) addUpdate(ctx context.Context, tx pgx.Tx, p payment, status string, src Source) error {
	var (
		seq      int
		buried   bool
		refOrNil *string
	)
	if p.reference != "" {
		refOrNil = &p.reference
	}
	err := tx.QueryRow(ctx, `WITH t AS (
			SELECT EXISTS (SELECT 1 FROM vpay_tracker_tombstones
				WHERE status = $2 AND (reference = $4
					OR (transaction_id = NULLIF($5, '') AND (reference IS NULL OR $4::text IS NULL)))) AS buried)
		INSERT INTO vpay_tracker_updates (payment_id, seq, status, source, delivered_at)
		SELECT $1, COALESCE((SELECT max(seq) FROM vpay_tracker_updates WHERE payment_id = $1), 0) + 1, $2, $3,
			CASE WHEN t.buried THEN now() END
		FROM t
		ON CONFLICT (payment_id, status) DO NOTHING
		RETURNING seq, delivered_at IS NOT NULL, CASE WHEN delivered_at IS NULL THEN `+wake+` END IS NULL`,
		p.id, status, string(src), refOrNil, p.transactionID).Scan(&seq, &buried, new(bool))
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // learnt before
	case err != nil:
		return fmt.Errorf("tracker: add update of payment %d: %w", p.id, err)
	case buried:
		a.log.InfoContext(ctx, "vpay tracker: a status delivered before the payment was pruned; not delivered again",
			slog.String("reference", p.reference), slog.String("transaction_id", p.transactionID), slog.String("status", status))
		return nil
	}
	if _, err := a.river.InsertTx(ctx, tx, deliverArgs{PaymentID: p.id, Seq: seq}, nil); err != nil {
		return fmt.Errorf("tracker: enqueue delivery of payment %d: %w", p.id, err)
	}
	return nil
}

package tracker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// Pay records the payment, then calls Client.Pay, then records what it
// answered; it returns what Client.Pay returned. The payment is recorded,
// with its first status check, before anything is sent, so that no process
// crash between the two can leave a payment untracked. A Pay whose outcome
// is unknown (vpay.ErrOutcomeUnknown) is kept by its reference until a
// webhook names it, or reported Unresolved; it is never sent again: the
// tracker never charges on its own. A Pay refused outright (invalid input,
// a declined key) leaves no record.
//
// A req without a Reference gets one (vpay.NewReference) before it is
// recorded; the Payment carries it.
func (t *Tracker) Pay(ctx context.Context, req *vpay.PayRequest) (*vpay.Payment, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	r := *req
	r.Reference = strings.TrimSpace(r.Reference)
	if r.Reference == "" {
		r.Reference = vpay.NewReference()
	}
	ref := r.Reference
	err := pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		var created time.Time
		err := tx.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (reference) VALUES ($1)
			ON CONFLICT DO NOTHING RETURNING created_at`, ref).Scan(&created)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tracker: reference %q is tracked already: %w", ref, vpay.ErrDuplicateReference)
		}
		if err != nil {
			return err
		}
		return t.scheduleCheck(ctx, tx, ref, 0, created)
	})
	if err != nil {
		return nil, err
	}

	p, err := t.cfg.Client.Pay(ctx, &r)
	// What follows must be written even if the caller's ctx ends now.
	bg := context.WithoutCancel(ctx)
	switch {
	case errors.Is(err, vpay.ErrOutcomeUnknown):
		t.log.WarnContext(ctx, "vpay tracker: payment outcome unknown; waiting for its webhook", slog.String("reference", ref))
		if _, derr := t.cfg.Pool.Exec(bg, `UPDATE vpay_tracker_payments SET outcome_unknown = true, updated_at = now() WHERE reference = $1`, ref); derr != nil {
			t.log.ErrorContext(ctx, "vpay tracker: cannot record an unknown outcome", slog.String("reference", ref), slog.String("error", derr.Error()))
		}
		return p, err
	case err != nil:
		// Refused: nothing exists at V-Pay, nothing to follow.
		if _, derr := t.cfg.Pool.Exec(bg, `DELETE FROM vpay_tracker_payments WHERE reference = $1`, ref); derr != nil {
			t.log.ErrorContext(ctx, "vpay tracker: cannot forget a refused payment", slog.String("reference", ref), slog.String("error", derr.Error()))
		}
		return p, err
	}
	txn := p.Transaction
	if txn == nil {
		txn = &vpay.Transaction{TransactionID: p.TransactionID, Reference: ref, Status: p.Status, Amount: r.Amount, Merchant: p.Merchant}
	}
	if derr := pgx.BeginFunc(bg, t.cfg.Pool, func(tx pgx.Tx) error { return t.record(bg, tx, ref, txn, SourcePay) }); derr != nil {
		// The payment exists and its check is scheduled: the webhook or
		// the report at GiveUp will still say what became of it.
		t.log.ErrorContext(ctx, "vpay tracker: cannot record a payment's answer", slog.String("reference", ref), slog.String("error", derr.Error()))
	}
	return p, nil
}

// Handler returns the merchant's webhook endpoint. It verifies deliveries
// as webhook.Handler does (same options), then records the event and
// enqueues its delivery in one transaction before answering 2xx. An event
// for a payment the tracker did not start (a payment link, a payment made
// elsewhere) is tracked from then on too.
func (t *Tracker) Handler(secret string, opts ...webhook.Option) http.Handler {
	return webhook.Handler(secret, t.onEvent, opts...)
}

func (t *Tracker) onEvent(ctx context.Context, ev *vpay.Event) error {
	txn := ev.Transaction
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		ref, created, isNew, err := t.find(ctx, tx, &txn)
		if err != nil {
			return err
		}
		if err := t.record(ctx, tx, ref, &txn, SourceWebhook); err != nil {
			return err
		}
		if isNew && !txn.Status.Final() {
			// Someone else's pending payment: follow it like our own.
			return t.scheduleCheck(ctx, tx, ref, 0, created)
		}
		return nil
	})
}

// find returns the reference under which the tracker follows txn: its own
// row by reference, else by transaction id, else a new row.
func (t *Tracker) find(ctx context.Context, tx pgx.Tx, txn *vpay.Transaction) (ref string, created time.Time, isNew bool, err error) {
	err = tx.QueryRow(ctx, `SELECT reference, created_at FROM vpay_tracker_payments
		WHERE reference = $1 OR transaction_id = $2 ORDER BY reference = $1 DESC LIMIT 1`,
		txn.Reference, txn.TransactionID).Scan(&ref, &created)
	if err == nil {
		return ref, created, false, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return "", time.Time{}, false, err
	}
	ref = txn.Reference
	if ref == "" {
		ref = "vpay:" + txn.TransactionID // a payment without an order id
	}
	err = tx.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (reference, transaction_id) VALUES ($1, $2)
		ON CONFLICT (reference) DO UPDATE SET updated_at = now() RETURNING created_at`, ref, txn.TransactionID).Scan(&created)
	return ref, created, true, err
}

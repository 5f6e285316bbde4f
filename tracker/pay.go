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

// How Pay retries the write of V-Pay's answer before returning
// ErrNotRecorded: a failover or a lock timeout lasts seconds.
const (
	recordTries      = 6
	recordFirstWait  = 50 * time.Millisecond
	recordMaxWait    = 2 * time.Second
	recordLaterWait  = 30 * time.Second // the longest wait between background tries
	recordTryTimeout = 10 * time.Second // one write, however stuck the connection
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
// The write of the answer is retried with backoff while ctx lasts (at most
// a few seconds, and a write under way is never cut short by ctx); if it
// still fails, Pay returns the Payment with ErrNotRecorded: the payment
// exists, do not pay again. The write is then retried in the background
// until Stop.
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
	var id int64
	err := pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		var created time.Time
		err := tx.QueryRow(ctx, `INSERT INTO vpay_tracker_payments (reference) VALUES ($1)
			ON CONFLICT DO NOTHING RETURNING id, created_at`, ref).Scan(&id, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("tracker: reference %q is tracked already: %w", ref, vpay.ErrDuplicateReference)
		}
		if err != nil {
			return err
		}
		return t.scheduleCheck(ctx, tx, id, 0, created)
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
		if _, derr := t.cfg.Pool.Exec(bg, `UPDATE vpay_tracker_payments SET outcome_unknown = true, updated_at = now() WHERE id = $1`, id); derr != nil {
			t.log.ErrorContext(ctx, "vpay tracker: cannot record an unknown outcome", slog.String("reference", ref), slog.String("error", derr.Error()))
		}
		return p, err
	case err != nil:
		// Refused: nothing exists at V-Pay, nothing to follow.
		if _, derr := t.cfg.Pool.Exec(bg, `DELETE FROM vpay_tracker_payments WHERE id = $1`, id); derr != nil {
			t.log.ErrorContext(ctx, "vpay tracker: cannot forget a refused payment", slog.String("reference", ref), slog.String("error", derr.Error()))
		}
		return p, err
	}
	txn := p.Transaction
	if txn == nil {
		txn = &vpay.Transaction{TransactionID: p.TransactionID, Reference: ref, Status: p.Status, Amount: r.Amount, Merchant: p.Merchant}
	}
	if rerr := t.recordAnswer(ctx, id, txn); rerr != nil {
		return p, fmt.Errorf("%w (reference %q, transaction %s): %w", ErrNotRecorded, ref, p.TransactionID, rerr)
	}
	return p, nil
}

// recordAnswer writes Pay's answer for payment id, retrying with backoff
// while ctx lasts (recordTries at most); each write runs to its end
// whatever ctx does. When every try failed, it hands the write to the
// background and returns the last error.
func (t *Tracker) recordAnswer(ctx context.Context, id int64, txn *vpay.Transaction) error {
	wait := recordFirstWait
	var err error
	for try := 1; ; try++ {
		if err = t.writeAnswer(ctx, id, txn); err == nil {
			return nil
		}
		t.log.WarnContext(ctx, "vpay tracker: cannot record a payment's answer; trying again",
			slog.String("reference", txn.Reference), slog.String("transaction_id", txn.TransactionID), slog.Int("try", try), slog.String("error", err.Error()))
		if try == recordTries || sleep(ctx, wait) != nil {
			break
		}
		wait = min(2*wait, recordMaxWait)
	}
	t.later.Add(1)
	go func() {
		defer t.later.Done()
		wait := recordMaxWait
		for {
			select {
			case <-t.stopping:
				t.log.ErrorContext(ctx, "vpay tracker: stopped before a payment's answer could be recorded; its webhook or Resolve must settle it",
					slog.String("reference", txn.Reference), slog.String("transaction_id", txn.TransactionID))
				return
			case <-time.After(wait):
			}
			wait = min(2*wait, recordLaterWait)
			if err := t.writeAnswer(ctx, id, txn); err == nil {
				t.log.InfoContext(ctx, "vpay tracker: a payment's answer recorded after all", slog.String("transaction_id", txn.TransactionID))
				return
			}
		}
	}()
	return err
}

// writeAnswer is one try of recordAnswer's write.
func (t *Tracker) writeAnswer(ctx context.Context, id int64, txn *vpay.Transaction) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTryTimeout)
	defer cancel()
	if !txn.Status.Final() {
		return t.admin.learnPending(wctx, id, txn, SourcePay) // the usual answer
	}
	return pgx.BeginFunc(wctx, t.cfg.Pool, func(tx pgx.Tx) error { return t.admin.learn(wctx, tx, id, txn, SourcePay) })
}

// sleep waits for d or for ctx to end, whichever is first.
func sleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Handler returns the merchant's webhook endpoint. It verifies deliveries
// as webhook.Handler does (same options), then records the event and
// enqueues its delivery in one transaction before answering 2xx. An event
// for a payment the tracker did not start (a payment link, a payment made
// elsewhere) is tracked from then on too; one without a reference is known
// by its transaction id alone (Update.Reference ""). An event the tracker
// can never store (a reference or transaction id longer than MaxIDLen, or
// holding a NUL) is refused with 422 (webhook.Refuse)
// and logged: V-Pay need not deliver it again.
func (t *Tracker) Handler(secret string, opts ...webhook.Option) http.Handler {
	return webhook.Handler(secret, t.onEvent, opts...)
}

func (t *Tracker) onEvent(ctx context.Context, ev *vpay.Event) error {
	txn := ev.Transaction
	if err := trackable(&txn); err != nil {
		t.log.ErrorContext(ctx, "vpay tracker: refused a webhook it cannot store", slog.String("error", err.Error()))
		return webhook.Refuse(err)
	}
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		p, isNew, err := find(ctx, tx, &txn)
		if err != nil {
			return err
		}
		if err := t.admin.record(ctx, tx, p, &txn, SourceWebhook); err != nil {
			return err
		}
		if isNew && !txn.Status.Final() {
			// Someone else's pending payment: follow it like our own.
			return t.scheduleCheck(ctx, tx, p.id, 0, p.created)
		}
		return nil
	})
}

// trackable says why the tracker cannot follow txn, if it cannot.
func trackable(txn *vpay.Transaction) error {
	switch { // webhook.Handler refused an event without a transaction id
	case !storable(txn.Reference):
		return fmt.Errorf("tracker: a reference of %d bytes (at most %d, no NUL)", len(txn.Reference), MaxIDLen)
	case !storable(txn.TransactionID):
		return fmt.Errorf("tracker: a transaction id of %d bytes (at most %d, no NUL)", len(txn.TransactionID), MaxIDLen)
	case !storable(string(txn.Status)):
		return fmt.Errorf("tracker: a status of %d bytes (at most %d, no NUL)", len(txn.Status), MaxIDLen)
	}
	return nil
}

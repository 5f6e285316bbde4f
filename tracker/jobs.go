package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/vonsung/vpay-go"
)

// checkArgs is a scheduled status check of one payment: Step indexes
// Config.Schedule; len(Schedule) is the check at GiveUp.
type checkArgs struct {
	Reference string `json:"reference"`
	Step      int    `json:"step"`
}

func (checkArgs) Kind() string { return "vpay_tracker_check" }

func (checkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// deliverArgs is the delivery of one status of one payment to OnUpdate;
// Status "unresolved" is the give-up report.
type deliverArgs struct {
	Reference string `json:"reference"`
	Status    string `json:"status"`
	Source    Source `json:"source"`
}

func (deliverArgs) Kind() string { return "vpay_tracker_deliver" }

func (deliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

const statusUnresolved = "unresolved"

// record saves in tx what the tracker learnt of a payment (whose row
// exists) and, for a final status, enqueues its delivery in the same
// transaction. A final status is never replaced by pending.
func (t *Tracker) record(ctx context.Context, tx pgx.Tx, ref string, txn *vpay.Transaction, src Source) error {
	var prev vpay.Status
	if err := tx.QueryRow(ctx, `SELECT status FROM vpay_tracker_payments WHERE reference = $1 FOR UPDATE`, ref).Scan(&prev); err != nil {
		return fmt.Errorf("tracker: record %s: %w", ref, err)
	}
	status := txn.Status
	if prev.Final() && !status.Final() {
		status = prev // a late "pending" changes nothing
	}
	raw, err := json.Marshal(txn)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE vpay_tracker_payments
		SET transaction_id = COALESCE(NULLIF($2, ''), transaction_id), status = $3, transaction = $4, updated_at = now()
		WHERE reference = $1`, ref, txn.TransactionID, string(status), raw); err != nil {
		return fmt.Errorf("tracker: record %s: %w", ref, err)
	}
	if status.Final() {
		if _, err := t.river.InsertTx(ctx, tx, deliverArgs{Reference: ref, Status: string(status), Source: src}, nil); err != nil {
			return fmt.Errorf("tracker: enqueue delivery of %s: %w", ref, err)
		}
	}
	return nil
}

// scheduleCheck enqueues check step of the payment created at created.
func (t *Tracker) scheduleCheck(ctx context.Context, tx pgx.Tx, ref string, step int, created time.Time) error {
	at := created.Add(t.cfg.GiveUp)
	if step < len(t.cfg.Schedule) {
		at = created.Add(t.cfg.Schedule[step])
	}
	_, err := t.river.InsertTx(ctx, tx, checkArgs{Reference: ref, Step: step}, &river.InsertOpts{ScheduledAt: at})
	return err
}

type checkWorker struct {
	river.WorkerDefaults[checkArgs]
	t *Tracker
}

// Work checks one payment's status, unless a final one is known already.
func (w *checkWorker) Work(ctx context.Context, job *river.Job[checkArgs]) error {
	t, ref := w.t, job.Args.Reference
	var (
		status  vpay.Status
		id      *string
		created time.Time
	)
	err := t.cfg.Pool.QueryRow(ctx, `SELECT status, transaction_id, created_at FROM vpay_tracker_payments WHERE reference = $1`, ref).
		Scan(&status, &id, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // pruned
	case err != nil:
		return err
	case status.Final():
		return nil // a webhook or an earlier check settled it
	}
	giveUpAt := created.Add(t.cfg.GiveUp)
	if id == nil || *id == "" || job.Args.Step >= len(t.cfg.Schedule) {
		// Without a transaction id there is nothing to ask (no lookup by
		// reference exists): wait for the webhook until GiveUp.
		if wait := time.Until(giveUpAt); wait > 0 {
			return river.JobSnooze(wait)
		}
		return t.giveUp(ctx, ref)
	}
	txn, err := t.cfg.Client.Status(vpay.WithLowPriority(ctx), *id)
	if err != nil {
		var e *vpay.Error
		if errors.Is(err, vpay.ErrRateLimited) && errors.As(err, &e) {
			// Background work never takes the customers' share: come back
			// when the window resets.
			return river.JobSnooze(max(time.Until(e.RateLimit.Reset), time.Second))
		}
		return err
	}
	if txn.Reference == "" {
		txn.Reference = ref
	}
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		if err := t.record(ctx, tx, ref, txn, SourcePoll); err != nil {
			return err
		}
		if txn.Status.Final() {
			return nil
		}
		return t.scheduleCheck(ctx, tx, ref, job.Args.Step+1, created)
	})
}

// giveUp marks a payment Unresolved and enqueues its one report.
func (t *Tracker) giveUp(ctx context.Context, ref string) error {
	t.log.WarnContext(ctx, "vpay tracker: no final status after GiveUp; reporting it unresolved", slog.String("reference", ref))
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE vpay_tracker_payments SET unresolved = true, updated_at = now() WHERE reference = $1`, ref); err != nil {
			return err
		}
		_, err := t.river.InsertTx(ctx, tx, deliverArgs{Reference: ref, Status: statusUnresolved, Source: SourceGiveUp}, nil)
		return err
	})
}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	t *Tracker
}

// Work hands one status to OnUpdate, once: in one transaction it locks the
// payment's row, inserts the (payment, status) delivery row (nothing to do
// if it exists) and calls OnUpdate; commit is delivery.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	t, a := w.t, job.Args
	var (
		delivered *Update // set when this run delivered
		created   time.Time
	)
	err := pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		var (
			id     *string
			raw    []byte
			status vpay.Status
		)
		err := tx.QueryRow(ctx, `SELECT transaction_id, transaction, status, created_at FROM vpay_tracker_payments WHERE reference = $1 FOR UPDATE`, a.Reference).
			Scan(&id, &raw, &status, &created)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil // pruned
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `INSERT INTO vpay_tracker_deliveries (reference, status, source) VALUES ($1, $2, $3)
			ON CONFLICT DO NOTHING`, a.Reference, a.Status, string(a.Source))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return nil // delivered before: River ran the job again
		}
		u := Update{Reference: a.Reference, Status: vpay.Status(a.Status), Source: a.Source}
		if id != nil {
			u.TransactionID = *id
		}
		if len(raw) > 0 && string(raw) != "null" {
			u.Transaction = new(vpay.Transaction)
			if err := json.Unmarshal(raw, u.Transaction); err != nil {
				return err
			}
		}
		if a.Status == statusUnresolved {
			u.Status, u.Unresolved = status, true
		}
		delivered = &u
		return callOnUpdate(ctx, t.cfg.OnUpdate, tx, u)
	})
	if err == nil && delivered != nil && t.cfg.Observer != nil && t.cfg.Observer.Delivered != nil {
		t.cfg.Observer.Delivered(ctx, *delivered, time.Since(created))
	}
	if err != nil {
		level := slog.LevelWarn
		if time.Since(job.CreatedAt) > 24*time.Hour {
			level = slog.LevelError // failing for a day: someone must look, nothing is dropped
		}
		t.log.Log(ctx, level, "vpay tracker: delivering an update failed; it will be tried again",
			slog.String("reference", a.Reference), slog.String("status", a.Status),
			slog.Int("attempt", job.Attempt), slog.String("error", err.Error()))
	}
	return err
}

// callOnUpdate turns a panic in the merchant's code into an error, so the
// transaction rolls back and the delivery is retried.
func callOnUpdate(ctx context.Context, fn func(context.Context, pgx.Tx, Update) error, tx pgx.Tx, u Update) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("tracker: OnUpdate panicked: %v", r)
		}
	}()
	return fn(ctx, tx, u)
}

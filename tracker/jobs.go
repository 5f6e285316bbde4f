package tracker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/vonsung/vpay-go"
)

// checkArgs is a scheduled status check of one payment: Step indexes
// Config.Schedule; len(Schedule) is the check at GiveUp. Reference alone
// names the payment in a job v0.2 enqueued.
type checkArgs struct {
	PaymentID int64  `json:"payment,omitempty"`
	Reference string `json:"reference,omitempty"`
	Step      int    `json:"step"`
}

func (checkArgs) Kind() string { return "vpay_tracker_check" }

func (checkArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: queue, UniqueOpts: river.UniqueOpts{ByArgs: true}}
}

// deliverArgs is the delivery of one payment's Update number Seq to
// OnUpdate. Reference, Status and Source alone name the delivery in a job
// v0.2 enqueued.
type deliverArgs struct {
	PaymentID int64  `json:"payment,omitempty"`
	Seq       int    `json:"seq,omitempty"`
	Reference string `json:"reference,omitempty"`
	Status    string `json:"status,omitempty"`
	Source    Source `json:"source,omitempty"`
}

func (deliverArgs) Kind() string { return "vpay_tracker_deliver" }

func (deliverArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: queue} }

const statusUnresolved = "unresolved"

// paymentByReference finds the payment a v0.2 job names.
func paymentByReference(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, ref string) (int64, error) {
	var id int64
	err := q.QueryRow(ctx, `SELECT id FROM vpay_tracker_payments WHERE reference = $1`, ref).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	return id, err
}

// scheduleCheck enqueues check step of payment id, created at created.
func (t *Tracker) scheduleCheck(ctx context.Context, tx pgx.Tx, id int64, step int, created time.Time) error {
	at := created.Add(t.cfg.GiveUp)
	if step < len(t.cfg.Schedule) {
		at = created.Add(t.cfg.Schedule[step])
	}
	_, err := t.river.InsertTx(ctx, tx, checkArgs{PaymentID: id, Step: step}, &river.InsertOpts{ScheduledAt: at})
	return err
}

type checkWorker struct {
	river.WorkerDefaults[checkArgs]
	t *Tracker
}

// Work checks one payment's status, unless a final one is known already.
// A check that keeps failing gives up at GiveUp like any other: no
// payment stays unreported.
func (w *checkWorker) Work(ctx context.Context, job *river.Job[checkArgs]) error {
	t, a := w.t, job.Args
	if a.PaymentID == 0 {
		id, err := paymentByReference(ctx, t.cfg.Pool, a.Reference)
		if err != nil || id == 0 {
			return err // gone, or try again
		}
		a.PaymentID = id
	}
	var (
		status  vpay.Status
		id      *string
		created time.Time
	)
	err := t.cfg.Pool.QueryRow(ctx, `SELECT status, transaction_id, created_at FROM vpay_tracker_payments WHERE id = $1`, a.PaymentID).
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
	if a.Step >= len(t.cfg.Schedule) {
		if wait := time.Until(giveUpAt); wait > 0 {
			return river.JobSnooze(wait)
		}
		return t.giveUp(ctx, a.PaymentID)
	}
	next := func(ctx context.Context, tx pgx.Tx) error {
		return t.scheduleCheck(ctx, tx, a.PaymentID, a.Step+1, created)
	}
	if id == nil || *id == "" {
		// Nothing to ask yet (no lookup by reference exists): the id may
		// still be written (a Pay answer whose write failed), or the
		// webhook may name the payment. Go on to the next step.
		return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error { return next(ctx, tx) })
	}
	txn, err := t.cfg.Client.Status(vpay.WithLowPriority(ctx), *id)
	if err == nil {
		// txn is kept as V-Pay sent it; Update.Reference names the order.
		err = pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
			if err := t.admin.learn(ctx, tx, a.PaymentID, txn, SourcePoll); err != nil || txn.Status.Final() {
				return err
			}
			return next(ctx, tx)
		})
		if err == nil {
			return nil
		}
	}
	var e *vpay.Error
	if errors.Is(err, vpay.ErrRateLimited) && errors.As(err, &e) && time.Now().Before(giveUpAt) {
		// Background work never takes the customers' share: come back
		// when the window resets.
		return river.JobSnooze(max(time.Until(e.RateLimit.Reset), time.Second))
	}
	if !time.Now().Before(giveUpAt) {
		t.log.ErrorContext(ctx, "vpay tracker: a status check kept failing until GiveUp", slog.Int64("payment", a.PaymentID), slog.String("error", err.Error()))
		return t.giveUp(ctx, a.PaymentID)
	}
	return err
}

// giveUp marks a payment Unresolved and adds its one report, unless a
// final status came meanwhile.
func (t *Tracker) giveUp(ctx context.Context, id int64) error {
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		p, _, found, err := lock(ctx, tx, id)
		if err != nil || !found || p.status.Final() {
			return err
		}
		t.log.WarnContext(ctx, "vpay tracker: no final status after GiveUp; reporting it unresolved",
			slog.String("reference", p.reference), slog.String("transaction_id", p.transactionID))
		if _, err := tx.Exec(ctx, `UPDATE vpay_tracker_payments SET unresolved = true, updated_at = now() WHERE id = $1`, id); err != nil {
			return err
		}
		return t.admin.addUpdate(ctx, tx, p, statusUnresolved, SourceGiveUp)
	})
}

type deliverWorker struct {
	river.WorkerDefaults[deliverArgs]
	t *Tracker
}

// Work hands one Update to OnUpdate, once and in its payment's order: in
// one transaction it locks the payment's row, checks that every earlier
// Update was delivered, calls OnUpdate and marks the Update delivered;
// commit is delivery. An Update behind an undelivered earlier one waits:
// the earlier one's delivery enqueues it again when it commits.
func (w *deliverWorker) Work(ctx context.Context, job *river.Job[deliverArgs]) error {
	t, a := w.t, job.Args
	if a.Seq == 0 {
		return t.upgradeDelivery(ctx, a)
	}
	var (
		delivered *Update // set when this run delivered
		created   time.Time
		status    string
	)
	err := pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		p, raw, found, err := lock(ctx, tx, a.PaymentID)
		if err != nil || !found {
			return err // !found: pruned
		}
		created = p.created
		var (
			seq, attempts int
			src           Source
			done          bool
		)
		err = tx.QueryRow(ctx, `SELECT seq, status, source, attempts, delivered_at IS NOT NULL FROM vpay_tracker_updates
			WHERE payment_id = $1 AND (seq = $2 OR (seq < $2 AND delivered_at IS NULL)) ORDER BY seq LIMIT 1`, a.PaymentID, a.Seq).
			Scan(&seq, &status, &src, &attempts, &done)
		switch {
		case errors.Is(err, pgx.ErrNoRows), err == nil && done && seq == a.Seq:
			return nil // delivered before: River ran the job again
		case err != nil:
			return err
		case seq < a.Seq:
			level := slog.LevelDebug
			if attempts > 0 {
				level = slog.LevelWarn
			}
			t.log.Log(ctx, level, "vpay tracker: an update is held back until an earlier one of its payment is delivered",
				slog.String("reference", p.reference), slog.String("transaction_id", p.transactionID),
				slog.Int("seq", a.Seq), slog.String("held_by", status), slog.Int("held_by_attempts", attempts))
			return nil
		}
		u := Update{Reference: p.reference, TransactionID: p.transactionID, Status: vpay.Status(status), Source: src}
		if len(raw) > 0 && string(raw) != "null" {
			u.Transaction = new(vpay.Transaction)
			if err := json.Unmarshal(raw, u.Transaction); err != nil {
				return err
			}
		}
		if status == statusUnresolved {
			u.Status, u.Unresolved = p.status, true
		}
		if err := callOnUpdate(ctx, t.cfg.OnUpdate, tx, u); err != nil {
			return err
		}
		// Marks this one delivered and finds the next undelivered one in
		// one statement: the update touches no row the query reads.
		var next int
		err = tx.QueryRow(ctx, `WITH d AS (UPDATE vpay_tracker_updates SET delivered_at = now(), attempts = attempts + 1
				WHERE payment_id = $1 AND seq = $2)
			SELECT seq, `+wake+` IS NULL FROM vpay_tracker_updates WHERE payment_id = $1 AND seq > $2 AND delivered_at IS NULL
			ORDER BY seq LIMIT 1`, a.PaymentID, a.Seq).Scan(&next, new(bool))
		delivered = &u // told to the Observer only once this commits
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		// The next Update may have been held back while this one failed:
		// its turn has come.
		_, err = t.river.InsertTx(ctx, tx, deliverArgs{PaymentID: a.PaymentID, Seq: next}, nil)
		return err
	})
	if err == nil && delivered != nil && t.cfg.Observer != nil && t.cfg.Observer.Delivered != nil {
		t.cfg.Observer.Delivered(ctx, *delivered, time.Since(created))
	}
	if err != nil {
		t.failed(ctx, job, status, err)
	}
	return err
}

// failed records and logs a delivery that failed; it is tried again with
// backoff. Later Updates of the payment wait for it: the log says so, and
// Admin.Held lists the payment.
func (t *Tracker) failed(ctx context.Context, job *river.Job[deliverArgs], status string, err error) {
	a := job.Args
	msg := strings.ToValidUTF8(strings.ReplaceAll(err.Error(), "\x00", ""), "?")
	if len(msg) > 500 {
		msg = strings.ToValidUTF8(msg[:500], "")
	}
	var later int // undelivered Updates after this one: held back
	if uerr := t.cfg.Pool.QueryRow(context.WithoutCancel(ctx), `WITH f AS (UPDATE vpay_tracker_updates SET attempts = attempts + 1, last_error = $3
		WHERE payment_id = $1 AND seq = $2 AND delivered_at IS NULL)
		SELECT count(*) FROM vpay_tracker_updates WHERE payment_id = $1 AND seq > $2 AND delivered_at IS NULL`, a.PaymentID, a.Seq, msg).Scan(&later); uerr != nil {
		t.log.WarnContext(ctx, "vpay tracker: cannot record a failed delivery", slog.String("error", uerr.Error()))
	}
	level := slog.LevelWarn
	if time.Since(job.CreatedAt) > 24*time.Hour {
		level = slog.LevelError // failing for a day: someone must look, nothing is dropped
	}
	t.log.Log(ctx, level, "vpay tracker: delivering an update failed; it will be tried again",
		slog.Int64("payment", a.PaymentID), slog.String("status", status), slog.Int("attempt", job.Attempt),
		slog.Int("held_back", later), slog.String("error", err.Error()))
}

// upgradeDelivery turns a delivery job of v0.2 into the payment's next
// Update, delivered in order like any other.
func (t *Tracker) upgradeDelivery(ctx context.Context, a deliverArgs) error {
	return pgx.BeginFunc(ctx, t.cfg.Pool, func(tx pgx.Tx) error {
		id, err := paymentByReference(ctx, tx, a.Reference)
		if err != nil || id == 0 {
			return err
		}
		p, _, found, err := lock(ctx, tx, id)
		if err != nil || !found {
			return err
		}
		return t.admin.addUpdate(ctx, tx, p, a.Status, a.Source)
	})
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

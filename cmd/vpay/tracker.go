package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/tracker"
)

// trackerCmd is `vpay tracker`: the operator's view of a tracker's
// database, through tracker.Admin, which works no jobs and delivers
// nothing itself (the merchant's running trackers deliver what resolve
// settles).
func trackerCmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tracker",
		Short: "Look at and act on a tracker's database (DATABASE_URL): migrate, pending, unresolved, held, resolve",
		Long: `tracker works on the database of github.com/vonsung/vpay-go/tracker, named by
DATABASE_URL (a PostgreSQL connection string). It never delivers an update
itself: a payment it resolves is delivered by your running trackers.

  migrate      create or upgrade the tracker's tables (idempotent)
  pending      payments without a final status, oldest first
  unresolved   payments reported unresolved (no final status after GiveUp)
  held         payments whose updates are held back behind one that keeps
               failing in OnUpdate (fix OnUpdate; they then go out in order)
  resolve      settle a payment by hand after checking it with V-Pay

Exit codes: 0 done; 1 resolve found no such payment; 2 usage or
configuration error; 3 the database failed.`,
		Example: `  export DATABASE_URL=postgres://shop@127.0.0.1:5432/shop
  vpay tracker migrate
  vpay tracker pending --limit 20
  vpay tracker held --json`,
	}
	var limit int
	list := func(use, short string, fn func(*tracker.Admin, context.Context, int) ([]tracker.Payment, error)) *cobra.Command {
		c := &cobra.Command{
			Use:     use,
			Short:   short,
			Example: "  vpay tracker " + use + "\n  vpay tracker " + use + " --limit 0 --json",
			Args:    args(0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withAdmin(cmd.Context(), func(ctx context.Context, a *tracker.Admin) error {
					ps, err := fn(a, ctx, limit)
					if err != nil {
						return err
					}
					e.emit(jsonPayments(ps), func(w io.Writer) { printPayments(w, ps) })
					return nil
				})
			},
		}
		c.Flags().IntVar(&limit, "limit", 100, "at most this many payments (0: all)")
		return c
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:     "migrate",
			Short:   "Create or upgrade the tracker's tables and River's (idempotent)",
			Example: "  DATABASE_URL=postgres://shop@127.0.0.1:5432/shop vpay tracker migrate",
			Args:    args(0),
			RunE: func(cmd *cobra.Command, _ []string) error {
				return e.withPool(cmd.Context(), func(ctx context.Context, pool *pgxpool.Pool) error {
					if err := tracker.Migrate(ctx, pool); err != nil {
						return err
					}
					e.emit(map[string]bool{"migrated": true}, func(w io.Writer) { fmt.Fprintln(w, "migrated") })
					return nil
				})
			},
		},
		list("pending", "List the payments without a final status", (*tracker.Admin).Pending),
		list("unresolved", "List the payments reported unresolved", (*tracker.Admin).Unresolved),
		list("held", "List the payments whose updates are held back by a failing one", (*tracker.Admin).Held),
		resolveCmd(e),
	)
	return cmd
}

func resolveCmd(e *env) *cobra.Command {
	var transactionID, status, note string
	cmd := &cobra.Command{
		Use:   "resolve (REFERENCE | --transaction-id ID) --status STATUS --note NOTE",
		Short: "Settle a payment by hand after checking it with V-Pay; your trackers deliver it once",
		Example: `  vpay tracker resolve order-1042 --status successful --note "paid, seen on the V-Pay dashboard by Aline"
  vpay tracker resolve --transaction-id VP86583387 --status failed --note "payer confirmed no debit"`,
		Args: func(cmd *cobra.Command, a []string) error {
			if (len(a) == 1) == (transactionID != "") {
				return usageError("resolve takes a reference or --transaction-id, exactly one; see vpay help tracker resolve")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, a []string) error {
			s := vpay.Status(strings.ToLower(strings.TrimSpace(status)))
			if !s.Final() {
				return usageError("--status must be a final status (successful, failed, cancelled, refunded, disputed), got %q", status)
			}
			if strings.TrimSpace(note) == "" {
				return usageError("--note is required: say who checked what, for the next person")
			}
			return e.withAdmin(cmd.Context(), func(ctx context.Context, adm *tracker.Admin) error {
				key, err := transactionID, error(nil)
				if len(a) == 1 {
					key = a[0]
					err = adm.Resolve(ctx, key, s, note)
				} else {
					err = adm.ResolveTransaction(ctx, key, s, note)
				}
				if errors.Is(err, tracker.ErrNoPayment) {
					return &exitError{exitNotPaid, err}
				}
				if err != nil {
					return err
				}
				e.emit(map[string]string{"resolved": key, "status": string(s)}, func(w io.Writer) {
					fmt.Fprintf(w, "%s resolved as %s; your running trackers deliver it\n", key, s)
				})
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&transactionID, "transaction-id", "", "the payment's transaction id (for a payment without a reference)")
	cmd.Flags().StringVar(&status, "status", "", "the final status V-Pay confirmed (required)")
	cmd.Flags().StringVar(&note, "note", "", "who checked what (required; kept with the payment)")
	return cmd
}

// withPool connects to DATABASE_URL for fn.
func (e *env) withPool(ctx context.Context, fn func(context.Context, *pgxpool.Pool) error) error {
	dsn := e.getenv("DATABASE_URL")
	if dsn == "" {
		return usageError("DATABASE_URL is not set (the tracker's PostgreSQL, e.g. postgres://user@host/db)")
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return usageError("DATABASE_URL: %v", err)
	}
	defer pool.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		return fmt.Errorf("cannot reach the database at DATABASE_URL: %w", err)
	}
	return fn(ctx, pool)
}

// withAdmin is withPool with the tracker's admin entry point.
func (e *env) withAdmin(ctx context.Context, fn func(context.Context, *tracker.Admin) error) error {
	return e.withPool(ctx, func(ctx context.Context, pool *pgxpool.Pool) error {
		a, err := tracker.NewAdmin(pool)
		if err != nil {
			return err
		}
		return fn(ctx, a)
	})
}

// trackedPayment is a tracker.Payment as --json prints it.
type trackedPayment struct {
	Reference      string    `json:"reference"`
	TransactionID  string    `json:"transaction_id"`
	Status         string    `json:"status"`
	OutcomeUnknown bool      `json:"outcome_unknown"`
	Unresolved     bool      `json:"unresolved"`
	Note           string    `json:"note"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	Undelivered    []string  `json:"undelivered"`
	Attempts       int       `json:"attempts"`
	LastError      string    `json:"last_error"`
}

func jsonPayments(ps []tracker.Payment) []trackedPayment {
	out := make([]trackedPayment, 0, len(ps))
	for _, p := range ps {
		out = append(out, trackedPayment{p.Reference, p.TransactionID, string(p.Status), p.OutcomeUnknown, p.Unresolved, p.Note,
			p.CreatedAt, p.UpdatedAt, append([]string{}, p.Undelivered...), p.Attempts, p.LastError})
	}
	return out
}

func printPayments(w io.Writer, ps []tracker.Payment) {
	if len(ps) == 0 {
		fmt.Fprintln(w, "none")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REFERENCE\tTRANSACTION\tSTATUS\tAGE\tUNDELIVERED\tNOTE")
	for _, p := range ps {
		ref := p.Reference
		if ref == "" {
			ref = "-"
		}
		extra := p.Note
		if p.Attempts > 0 {
			extra = fmt.Sprintf("%d failed: %s", p.Attempts, p.LastError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", ref, p.TransactionID, p.Status, time.Since(p.CreatedAt).Round(time.Second),
			strings.Join(p.Undelivered, ","), extra)
	}
	_ = tw.Flush()
}

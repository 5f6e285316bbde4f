// Command shop runs a whole shop on the tracker: the V-Pay emulator
// (vpaytest) losing half of its webhooks, a PostgreSQL, five orders paid,
// and each order's final status written to the shop's own table exactly
// once, whether its webhook came or a status check found it; then a
// refund, delivered as a second update.
//
// Get a PostgreSQL with one command, then run it from the tracker
// directory:
//
//	docker run -d --name vpay-pg -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:17
//	VPAY_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/postgres go run ./examples/shop
//
// Everything it creates lives in its own schema, vpay_shop_example (drop it
// with DROP SCHEMA vpay_shop_example CASCADE); nothing goes to public. It
// prints its progress while it waits, and exits 0 when every order
// settled, 1 when one did not in time.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/pgstore"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
	"github.com/vonsung/vpay-go/webhook"
)

// schema holds the example's tables, the tracker's and River's.
const schema = "vpay_shop_example"

// errUnsettled is the run's failure: an order did not settle in time.
var errUnsettled = errors.New("not every order settled")

func main() {
	err := run(context.Background())
	switch {
	case errors.Is(err, errUnsettled):
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(1)
	case err != nil:
		fmt.Fprintln(os.Stderr, "shop:", err)
		os.Exit(2)
	}
}

func run(ctx context.Context) error {
	dsn := os.Getenv("VPAY_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		fmt.Println("VPAY_POSTGRES_DSN is not set: using", dsn)
	}
	pool, err := open(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := tracker.Migrate(ctx, pool); err != nil {
		return err
	}
	// The shop's replicas share one token, one rate budget and one webhook
	// de-duplication through the same database (pgstore): no Redis to run.
	if err := pgstore.Migrate(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS shop_orders (id text PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}

	emulator := vpaytest.NewServer(vpaytest.WithPaymentDelay(500 * time.Millisecond))
	defer emulator.Close()
	emulator.LoseWebhooks(0.5) // a bad day: half the callbacks never arrive

	ns := pgstore.WithNamespace("shop")
	t, err := tracker.New(tracker.Config{
		Client: emulator.Client(
			vpay.WithTokenStore(pgstore.NewTokenStore(pool, ns)),
			vpay.WithLimiter(pgstore.NewLimiter(pool, vpay.Plan{PerMinute: vpaytest.DefaultPerMinute}, ns)),
		),
		Pool: pool,
		// The shop's write, in the tracker's transaction: exactly once.
		OnUpdate: func(ctx context.Context, tx pgx.Tx, u tracker.Update) error {
			fmt.Printf("  order %s: %s (from the %s)\n", u.Reference, u.Status, u.Source)
			_, err := tx.Exec(ctx, `INSERT INTO shop_orders (id, status) VALUES ($1, $2)
				ON CONFLICT (id) DO UPDATE SET status = $2, updated_at = now()`, u.Reference, string(u.Status))
			return err
		},
		Schedule:     []time.Duration{2 * time.Second, 5 * time.Second, 15 * time.Second},
		Logger:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		PollInterval: 100 * time.Millisecond,
	})
	if err != nil {
		return err
	}
	if err := t.Start(ctx); err != nil {
		return err
	}
	defer func() { _ = t.Stop(context.Background()) }()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: t.Handler(emulator.WebhookSecret, webhook.WithDeduper(pgstore.NewDeduper(pool, 24*time.Hour, ns))), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	callback := "http://" + ln.Addr().String() + "/webhooks/vpay"

	run := time.Now().Format("150405")
	phones := []string{vpaytest.PhoneSuccess, vpaytest.PhoneSuccessAlt, vpaytest.PhoneInsufficientFunds, vpaytest.PhoneSuccess, vpaytest.PhoneTimeout}
	var first *vpay.Payment
	fmt.Println("Paying 5 orders; half of the webhooks will be lost:")
	for i, phone := range phones {
		p, err := t.Pay(ctx, &vpay.PayRequest{Amount: 1500, Phone: phone, Reference: fmt.Sprintf("shop-%s-%d", run, i), CallbackURL: callback})
		if err != nil {
			return err
		}
		if first == nil {
			first = p
		}
	}
	settled := func(ctx context.Context) (int, error) {
		var n int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM shop_orders WHERE id LIKE $1`, "shop-"+run+"-%").Scan(&n)
		return n, err
	}
	if err := wait(ctx, "orders settled", len(phones), 60*time.Second, settled); err != nil {
		return err
	}

	fmt.Println("Refunding the first order:")
	if err := emulator.SetStatus(first.TransactionID, vpay.StatusRefunded); err != nil {
		return err
	}
	refunded := func(ctx context.Context) (int, error) {
		var status string
		err := pool.QueryRow(ctx, `SELECT status FROM shop_orders WHERE id = $1`, first.Reference).Scan(&status)
		if status == "refunded" {
			return 1, err
		}
		return 0, err
	}
	if err := wait(ctx, "refund delivered", 1, 5*time.Second, refunded); err != nil {
		// The tracker polls only until a final status: a lost refund
		// webhook comes back with V-Pay's redelivery, as here.
		fmt.Println("  the refund's webhook was lost; V-Pay delivers it again:")
		if err := emulator.Resend(first.TransactionID); err != nil {
			return err
		}
		if err := wait(ctx, "refund delivered", 1, 30*time.Second, refunded); err != nil {
			return err
		}
	}
	fmt.Printf("Done: every order settled, %d requests to the API for %d orders.\n",
		emulator.Requests("/pay/")+emulator.Requests("/transaction/status/"), len(phones))
	return nil
}

// open connects to dsn with the example's own schema first on the search
// path, creating it: the tracker's tables, River's and the shop's all go
// there.
func open(ctx context.Context, dsn string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("VPAY_POSTGRES_DSN: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := pool.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at VPAY_POSTGRES_DSN (see this program's doc comment for a one-command server): %w", err)
	}
	return pool, nil
}

// wait polls count until it reaches n, printing progress, for at most
// within; errUnsettled when it does not.
func wait(ctx context.Context, what string, n int, within time.Duration, count func(context.Context) (int, error)) error {
	start := time.Now()
	last, printed := -1, start
	for {
		got, err := count(ctx)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if got != last || time.Since(printed) >= 5*time.Second {
			fmt.Printf("  ... %d of %d %s after %s\n", got, n, what, time.Since(start).Round(time.Second))
			last, printed = got, time.Now()
		}
		if got >= n {
			return nil
		}
		if time.Since(start) > within {
			return fmt.Errorf("%w: %d of %d %s within %s", errUnsettled, got, n, what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

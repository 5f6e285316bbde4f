// Command shop runs a whole shop on the tracker: the V-Pay emulator
// (vpaytest) losing half of its webhooks, a local PostgreSQL, five orders
// paid, and each order's final status written to the shop's own table
// exactly once, whether its webhook came or a status check found it; then
// a refund, delivered as a second update.
//
//	VPAY_POSTGRES_DSN=postgres://postgres@127.0.0.1:5432/postgres go run ./examples/shop
//
// (from the tracker directory; without VPAY_POSTGRES_DSN it tries that
// address).
package main

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

func main() {
	if err := run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context) error {
	dsn := os.Getenv("VPAY_POSTGRES_DSN")
	if dsn == "" {
		dsn = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
		fmt.Println("VPAY_POSTGRES_DSN is not set: using", dsn)
	}
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return fmt.Errorf("cannot reach PostgreSQL at VPAY_POSTGRES_DSN: %w", err)
	}
	if err := tracker.Migrate(ctx, pool); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS shop_orders (id text PRIMARY KEY, status text NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return err
	}

	emulator := vpaytest.NewServer(vpaytest.WithPaymentDelay(500 * time.Millisecond))
	defer emulator.Close()
	emulator.LoseWebhooks(0.5) // a bad day: half the callbacks never arrive

	t, err := tracker.New(tracker.Config{
		Client: emulator.Client(),
		Pool:   pool,
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
	srv := &http.Server{Handler: t.Handler(emulator.WebhookSecret), ReadHeaderTimeout: 5 * time.Second}
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
	if err := waitOrders(ctx, pool, "shop-"+run+"-%", len(phones), 60*time.Second); err != nil {
		return err
	}
	fmt.Println("Refunding the first order:")
	if err := emulator.SetStatus(first.TransactionID, vpay.StatusRefunded); err != nil {
		return err
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var status string
		if err := pool.QueryRow(ctx, `SELECT status FROM shop_orders WHERE id = $1`, first.Reference).Scan(&status); err == nil && status == "refunded" {
			break
		}
		if time.Now().After(deadline) {
			fmt.Println("  (its webhook was lost; the tracker only polls until a final status, so a lost refund needs the webhook's redelivery)")
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Printf("Done: %d requests to the API for %d orders.\n", emulator.Requests("/pay/")+emulator.Requests("/transaction/status/"), len(phones))
	return nil
}

// waitOrders waits until n orders matching like have a final status.
func waitOrders(ctx context.Context, pool *pgxpool.Pool, like string, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		var got int
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM shop_orders WHERE id LIKE $1`, like).Scan(&got); err != nil {
			return err
		}
		if got == n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d orders settled", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

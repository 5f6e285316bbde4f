package pgstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/pgstore"
	"github.com/vonsung/vpay-go/webhook"
)

// Wiring one replica of a fleet on the database it already has: the
// tables once, then the three lines that share the token, the rate budget
// and webhook de-duplication.
func Example() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		log.Fatal(err)
	}
	if err := pgstore.Migrate(ctx, pool); err != nil {
		log.Fatal(err)
	}
	ns := pgstore.WithNamespace(os.Getenv("VPAY_API_USER"))
	c, err := vpay.NewClient(os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY"),
		vpay.WithTokenStore(pgstore.NewTokenStore(pool, ns)),
		vpay.WithLimiter(pgstore.NewLimiter(pool, vpay.PlanGrowth, ns)),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = webhook.Handler(os.Getenv("VPAY_WEBHOOK_SECRET"), func(ctx context.Context, ev *vpay.Event) error {
		return nil
	}, webhook.WithDeduper(pgstore.NewDeduper(pool, 24*time.Hour, ns)))
	_ = c
}

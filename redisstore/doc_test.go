package redisstore_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/redisstore"
	"github.com/vonsung/vpay-go/webhook"
)

// Wiring one replica of a fleet: the three lines that share the token, the
// rate budget and webhook de-duplication.
func Example() {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	ns := redisstore.WithNamespace(os.Getenv("VPAY_API_USER"))
	c, err := vpay.NewClient(os.Getenv("VPAY_API_USER"), os.Getenv("VPAY_API_KEY"),
		vpay.WithTokenStore(redisstore.NewTokenStore(rdb, ns)),
		vpay.WithLimiter(redisstore.NewLimiter(rdb, vpay.PlanGrowth, ns)),
	)
	if err != nil {
		log.Fatal(err)
	}
	_ = webhook.Handler(os.Getenv("VPAY_WEBHOOK_SECRET"), func(ctx context.Context, ev *vpay.Event) error {
		return nil
	}, webhook.WithDeduper(redisstore.NewDeduper(rdb, 24*time.Hour, ns)))
	_ = c
}

package pgbench

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/pgstore"
	"github.com/vonsung/vpay-go/redisstore"
	"github.com/vonsung/vpay-go/webhook"
)

// stores is one backend's three stores.
type stores struct {
	name    string
	tokens  vpay.TokenStore
	limiter vpay.Limiter
	deduper webhook.Deduper
}

// BenchmarkStores compares pgstore with redisstore, side by side in one
// run, on loopback: the latency of the calls a payment makes (Reserve
// before each request, the token read, a webhook's Claim). Each reports
// its p50 and p99 besides the mean.
//
//	go test -run '^$' -bench . -benchtime 3000x ./internal/pgbench
func BenchmarkStores(b *testing.B) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, postgres(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if err := pgstore.Migrate(ctx, pool); err != nil {
		b.Fatal(err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr(b)})
	b.Cleanup(func() { _ = rdb.Close() })
	ns := fmt.Sprintf("bench-%d", time.Now().UnixNano())
	// A plan no run reaches: Reserve always lets the request go, so each
	// call is the store's round trip, not a wait.
	plan := vpay.Plan{PerMinute: 1 << 30}
	backends := []stores{
		{"redis", redisstore.NewTokenStore(rdb, redisstore.WithNamespace(ns)),
			redisstore.NewLimiter(rdb, plan, redisstore.WithNamespace(ns)), redisstore.NewDeduper(rdb, time.Hour, redisstore.WithNamespace(ns))},
		{"postgres", pgstore.NewTokenStore(pool, pgstore.WithNamespace(ns)),
			pgstore.NewLimiter(pool, plan, pgstore.WithNamespace(ns)), pgstore.NewDeduper(pool, time.Hour, pgstore.WithNamespace(ns))},
	}
	for _, s := range backends {
		_, err := s.tokens.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) {
			now := time.Now()
			return &vpay.Token{AccessToken: "bench", Mode: vpay.ModeSandbox, IssuedAt: now, Expiry: now.Add(time.Hour)}, nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	ops := []struct {
		name string
		call func(s stores, i int) error
	}{
		{"Reserve", func(s stores, _ int) error { _, err := s.limiter.Reserve(ctx, time.Minute); return err }},
		{"TokenLoad", func(s stores, _ int) error { _, err := s.tokens.Load(ctx); return err }},
		{"Claim", func(s stores, i int) error {
			_, err := s.deduper.Claim(ctx, fmt.Sprintf("VP%d-%d:successful", time.Now().UnixNano(), i), "bench", 30*time.Second)
			return err
		}},
	}
	for _, op := range ops {
		for _, s := range backends {
			b.Run(op.name+"/"+s.name, func(b *testing.B) {
				lat := make([]time.Duration, 0, b.N)
				for i := 0; b.Loop(); i++ {
					start := time.Now()
					if err := op.call(s, i); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(start))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
				b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
			})
		}
	}
}

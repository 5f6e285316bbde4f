package tracker_test

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/tracker"
)

// BenchmarkSettleLatency measures how long a settled payment takes to reach
// OnUpdate: from the moment the emulator settles it and sends its webhook
// to the commit of the OnUpdate transaction that delivers the final status
// (Observer.Delivered), with 16 payers and every webhook arriving, at the
// default configuration (Workers, PollInterval, Schedule; the pool is
// pgxpool's default too), on one tracker process and on two sharing the
// database ("two processes" are two Trackers with pools of their own in
// this test process; the webhooks alternate between them). It reports the
// latency's p50 and p99, payments per second, and the statements the
// trackers sent to PostgreSQL per payment (Pay, webhook, delivery, River's
// fetches and upkeep, counted by a pgx tracer on the trackers' pools). Run
// it with
//
//	go test -run XXX -bench 'SettleLatency|IdleStatements' -benchtime 1x ./tracker
func BenchmarkSettleLatency(b *testing.B) {
	for _, procs := range []int{1, 2} {
		b.Run(fmt.Sprintf("procs=%d", procs), func(b *testing.B) {
			const payments, payers = 400, 16
			s := newShop(b)
			var (
				mu        sync.Mutex
				delivered = map[string]time.Time{}
				count     statementCounter
			)
			obs := &tracker.Observer{Delivered: func(_ context.Context, u tracker.Update, _ time.Duration) {
				if u.Status.Final() {
					at := time.Now()
					mu.Lock()
					delivered[u.Reference] = at
					mu.Unlock()
				}
			}}
			trs := make([]*tracker.Tracker, procs)
			handlers := make([]http.Handler, procs)
			for i := range trs {
				trs[i] = defaultProcess(b, s, &count, obs)
				handlers[i] = trs[i].Handler(s.emulator.WebhookSecret)
			}
			var next atomic.Uint64
			var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				handlers[next.Add(1)%uint64(procs)].ServeHTTP(w, r)
			})
			s.handler.Store(&h)
			var lat []time.Duration
			b.ResetTimer()
			for n := range b.N {
				start := time.Now()
				before := count.n.Load()
				payConcurrently(b, s, payers, payments, func(w, i int) (*tracker.Tracker, string) {
					return trs[w%procs], fmt.Sprintf("order-%d-%d", n, i)
				})
				deadline := time.Now().Add(time.Minute)
				for {
					mu.Lock()
					got := len(delivered)
					mu.Unlock()
					if got == (n+1)*payments {
						break
					}
					if time.Now().After(deadline) {
						b.Fatalf("%d of %d payments delivered after a minute", got-n*payments, payments)
					}
					time.Sleep(5 * time.Millisecond)
				}
				elapsed := time.Since(start)
				b.ReportMetric(float64(payments)/elapsed.Seconds(), "payments/s")
				b.ReportMetric(float64(count.n.Load()-before)/payments, "statements/payment")
			}
			b.StopTimer()
			mu.Lock()
			defer mu.Unlock()
			for _, txn := range s.emulator.Transactions() {
				at, ok := delivered[txn.Reference]
				require.True(b, ok, "%s delivered", txn.Reference)
				lat = append(lat, at.Sub(txn.TransactionDate))
			}
			slices.Sort(lat)
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*99/100]), "p99-ms")
			count.logBreakdown(b, b.N*payments)
		})
	}
}

// BenchmarkIdleStatements counts the statements an idle tracker process
// (started, nothing to do) sends to PostgreSQL per second over a 10 s
// window, after a second to settle in.
func BenchmarkIdleStatements(b *testing.B) {
	s := newShop(b)
	var count statementCounter
	defaultProcess(b, s, &count, nil)
	time.Sleep(time.Second)
	b.ResetTimer()
	for range b.N {
		before := count.n.Load()
		const window = 10 * time.Second
		time.Sleep(window)
		b.ReportMetric(float64(count.n.Load()-before)/window.Seconds(), "statements/s")
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// defaultProcess starts a tracker at the default configuration on a pool of
// its own (pgxpool's defaults) whose statements count counts.
func defaultProcess(b *testing.B, s *shop, count *statementCounter, obs *tracker.Observer) *tracker.Tracker {
	b.Helper()
	pc, err := pgxpool.ParseConfig(s.dsn)
	require.NoError(b, err)
	pc.ConnConfig.Tracer = count
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	require.NoError(b, err)
	b.Cleanup(pool.Close)
	tr, err := tracker.New(tracker.Config{
		Client:   s.emulator.Client(vpay.WithMaxRetries(0)),
		Pool:     pool,
		OnUpdate: record,
		Observer: obs,
	})
	require.NoError(b, err)
	require.NoError(b, tr.Start(context.Background()))
	b.Cleanup(func() { _ = tr.Stop(context.Background()) })
	return tr
}

// statementCounter counts the statements sent through the pools it traces,
// BEGIN and COMMIT included, and each statement's count by its first words
// (for the breakdown the benchmark logs with -v).
type statementCounter struct {
	n      atomic.Int64
	mu     sync.Mutex
	byText map[string]int
}

func (c *statementCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	c.n.Add(1)
	key := strings.Join(strings.Fields(d.SQL), " ")
	key = key[:min(len(key), 70)]
	c.mu.Lock()
	if c.byText == nil {
		c.byText = map[string]int{}
	}
	c.byText[key]++
	c.mu.Unlock()
	return ctx
}

// logBreakdown logs the statements counted, most frequent first, per payment.
func (c *statementCounter) logBreakdown(b *testing.B, payments int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(c.byText), func(x, y string) int { return c.byText[y] - c.byText[x] })
	for _, k := range keys {
		b.Logf("%6.2f/payment  %s", float64(c.byText[k])/float64(payments), k)
	}
}

func (c *statementCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (c *statementCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}

func (c *statementCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {
	c.n.Add(1)
}

func (c *statementCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}

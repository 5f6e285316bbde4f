package pgstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/webhook"
)

// logSink is a logger's output, safe to read while the stores write.
type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count is how many lines contain every one of parts.
func (l *logSink) count(parts ...string) (n int) {
	for _, line := range strings.Split(l.String(), "\n") {
		all := line != ""
		for _, p := range parts {
			all = all && strings.Contains(line, p)
		}
		if all {
			n++
		}
	}
	return n
}

func (l *logSink) option() Option { return WithLogger(slog.New(slog.NewTextHandler(l, nil))) }

// poolWithStores is one replica: its pool, its stores, its log.
type poolWithStores struct {
	pool    *pgxpool.Pool
	tokens  *TokenStore
	limiter *Limiter
	deduper *Deduper
	logs    *logSink
}

func newPoolWithStores(t *testing.T, dsn string, plan vpay.Plan, opts ...Option) *poolWithStores {
	p := &poolWithStores{pool: newPool(t, dsn, 4), logs: &logSink{}}
	opts = append(opts, p.logs.option())
	p.tokens = NewTokenStore(p.pool, opts...)
	p.limiter = NewLimiter(p.pool, plan, opts...)
	p.deduper = NewDeduper(p.pool, time.Hour, opts...)
	return p
}

func TestFallbackWhilePostgresIsDown(t *testing.T) {
	pg := startPostgres(t)
	r := newPoolWithStores(t, pg.DSN, vpay.PlanGrowth, ns(t))
	require.NoError(t, Migrate(context.Background(), r.pool))
	s, l, d := r.tokens, r.limiter, r.deduper
	s.h.retryDown = 0 // try PostgreSQL on every call, so recovery is seen at once
	ctx := context.Background()

	pg.Stop()
	var fetches int
	fetch := func(context.Context) (*vpay.Token, error) { fetches++; return newToken("local", time.Minute), nil }
	for range 3 {
		tok, err := s.Refresh(ctx, nil, fetch)
		require.NoError(t, err, "PostgreSQL refused: the in-process store answers")
		assert.Equal(t, "local", tok.AccessToken)
	}
	assert.Equal(t, 1, fetches, "the in-process store keeps the token")
	tok, err := s.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, "local", tok.AccessToken, "Load falls back too")
	require.NoError(t, s.Invalidate(ctx, tok), "an outage is no Invalidate error")
	tok, err = s.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, tok, "the fallback dropped it")
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.Zero(t, w.For)
	st, err := d.Claim(ctx, "VP9:successful", "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.Claimed, st)
	st, _ = d.Claim(ctx, "VP9:successful", "b", time.Minute)
	assert.Equal(t, webhook.InProgress, st, "the in-process deduper still de-duplicates")
	require.NoError(t, d.Complete(ctx, "VP9:successful", "a"), "an outage is no Complete error")
	st, _ = d.Claim(ctx, "VP9:successful", "b", time.Minute)
	assert.Equal(t, webhook.Done, st, "the fallback remembers it done")
	require.NoError(t, d.Release(ctx, "VP9:successful", "b"), "an outage is no Release error")
	for _, store := range []string{"token", "limiter", "webhook"} {
		assert.Equal(t, 1, r.logs.count("unreachable", "store="+store), "%s: logged once, not per call", store)
	}

	pg.Start()
	tok, err = s.Refresh(ctx, &vpay.Token{AccessToken: "local"}, func(context.Context) (*vpay.Token, error) { return newToken("shared", time.Minute), nil })
	require.NoError(t, err)
	assert.Equal(t, "shared", tok.AccessToken)
	other := NewTokenStore(newPool(t, pg.DSN, 1), r.tokens.optNamespace())
	cur, err := other.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, cur, "back in PostgreSQL once it returned")
	assert.Equal(t, "shared", cur.AccessToken)
	assert.Equal(t, 1, r.logs.count("PostgreSQL is back", "store=token"))
}

// optNamespace is the option that gives another store s's namespace.
func (s *TokenStore) optNamespace() Option { return WithNamespace(s.ns) }

// While PostgreSQL is down the Limiter falls back to the in-process one:
// it still limits, it never lets everything through. Both ways into the
// fallback are checked: the call that meets the outage, and the calls made
// while PostgreSQL is skipped.
func TestLimiterKeepsLimitingWhilePostgresIsDown(t *testing.T) {
	pg := startPostgres(t)
	pool := newPool(t, pg.DSN, 4)
	require.NoError(t, Migrate(context.Background(), pool))
	pg.Stop()
	for name, retryDown := range map[string]time.Duration{"every call meets the outage": 0, "PostgreSQL skipped": time.Hour} {
		t.Run(name, func(t *testing.T) {
			l := NewLimiter(pool, vpay.PlanStarter, ns(t))
			l.h.retryDown = retryDown
			ctx := context.Background()

			// Cold: Starter's burst is one request, then one per 3 s.
			granted := 0
			for range 5 {
				w, err := l.Reserve(ctx, 0)
				switch {
				case err == nil && w.For <= 0:
					granted++
				case err != nil:
					require.ErrorIs(t, err, vpay.ErrRateLimited)
				}
			}
			assert.Equal(t, 1, granted, "paced at the plan's rate while PostgreSQL is down")

			// A known window: its remaining requests, then a wait.
			l.Answered(ctx, vpay.RateLimit{Limit: 20, Remaining: 2, Reset: time.Now().Add(30 * time.Second)}, false)
			for i := range 2 {
				w, err := l.Reserve(ctx, time.Minute)
				require.NoError(t, err)
				assert.Zero(t, w.For, "request %d of the window's last two", i+1)
			}
			w, err := l.Reserve(ctx, time.Minute)
			require.NoError(t, err)
			assert.Greater(t, w.For, 20*time.Second, "the window is spent: wait for its reset")
			l.Unanswered(ctx) // told to the fallback; must not fail or block
		})
	}
}

// A PostgreSQL outage while fn runs is not a lost lease: the in-process
// fallback never held the event, and its "lost" would stop fn and refuse
// the delivery for an outage.
func TestDeduperOutageMidLeaseIsNotALostLease(t *testing.T) {
	for name, retryDown := range map[string]time.Duration{"the renewal meets the outage": 0, "PostgreSQL skipped": time.Hour} {
		t.Run(name, func(t *testing.T) {
			pg := startPostgres(t)
			pool := newPool(t, pg.DSN, 4)
			require.NoError(t, Migrate(context.Background(), pool))
			d := NewDeduper(pool, time.Hour, ns(t))
			d.h.retryDown = retryDown
			ctx := context.Background()
			st, err := d.Claim(ctx, "VP1:successful", "a", time.Minute)
			require.NoError(t, err)
			require.Equal(t, webhook.Claimed, st)
			pg.Stop()
			_, _ = d.Claim(ctx, "VP2:successful", "x", time.Minute) // mark PostgreSQL down
			err = d.Extend(ctx, "VP1:successful", "a", time.Minute)
			require.Error(t, err, "the lease was not renewed")
			assert.False(t, errors.Is(err, webhook.ErrLeaseLost), "an outage is not a lost lease: %v", err)

			// An event claimed in the fallback is renewed there, and lost there.
			st, err = d.Claim(ctx, "VP3:successful", "b", time.Minute)
			require.NoError(t, err)
			require.Equal(t, webhook.Claimed, st)
			assert.NoError(t, d.Extend(ctx, "VP3:successful", "b", time.Minute))
		})
	}
}

// blackHole is a database that accepts connections and never answers: a
// server stopped with SIGSTOP, a network that drops packets.
func blackHole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return fmt.Sprintf("postgres://postgres@%s/postgres?sslmode=disable&connect_timeout=60", ln.Addr())
}

// A database that hangs costs each store at most pgTimeout once, then the
// fallback answers at once while PostgreSQL is skipped.
func TestHangingDatabaseCostsABoundedTime(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), blackHole(t)) // connect_timeout: a minute
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	logs := &logSink{}
	opts := []Option{ns(t), logs.option()}
	s, l, d := NewTokenStore(pool, opts...), NewLimiter(pool, vpay.PlanGrowth, opts...), NewDeduper(pool, time.Hour, opts...)
	ctx := context.Background()
	const bound = 2 * time.Second // pgTimeout (500 ms), with room for a loaded machine; the hang is for ever
	for name, call := range map[string]func() error{
		"token": func() error {
			_, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("local", time.Minute), nil })
			return err
		},
		"limiter": func() error { _, err := l.Reserve(ctx, time.Minute); return err },
		"webhook": func() error { _, err := d.Claim(ctx, "VP1:successful", "a", time.Minute); return err },
	} {
		start := time.Now()
		require.NoError(t, call(), name)
		assert.Less(t, time.Since(start), bound, "%s: the first call waits at most the bound", name)
		start = time.Now()
		require.NoError(t, call(), name)
		assert.Less(t, time.Since(start), pgTimeout/2, "%s: then PostgreSQL is skipped", name)
		assert.Equal(t, 1, logs.count("unreachable", "store="+name))
	}
}

// An error that is the database's answer (here: Migrate was not run) is
// returned, not hidden behind the fallback: the merchant must see it.
func TestErrorsThatAreAnswersAreReturned(t *testing.T) {
	pool := newPool(t, postgres(t), 4)
	logs := &logSink{}
	opts := []Option{ns(t), logs.option()}
	ctx := context.Background()
	var fetched bool
	_, err := NewTokenStore(pool, opts...).Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) {
		fetched = true
		return newToken("x", time.Minute), nil
	})
	assertUndefined(t, err)
	assert.False(t, fetched)
	_, err = NewTokenStore(pool, opts...).Load(ctx)
	assertUndefined(t, err)
	assertUndefined(t, NewTokenStore(pool, opts...).Invalidate(ctx, newToken("x", time.Minute)))
	_, err = NewLimiter(pool, vpay.PlanGrowth, opts...).Reserve(ctx, time.Minute)
	assertUndefined(t, err)
	dd := NewDeduper(pool, time.Hour, opts...)
	_, err = dd.Claim(ctx, "VP1:successful", "a", time.Minute)
	assertUndefined(t, err)
	assertUndefined(t, dd.Extend(ctx, "VP1:successful", "a", time.Minute))
	assertUndefined(t, dd.Complete(ctx, "VP1:successful", "a"))
	assertUndefined(t, dd.Release(ctx, "VP1:successful", "a"))
	assert.NotContains(t, logs.String(), "unreachable", "no fallback for an answer")
}

func assertUndefined(t *testing.T, err error) {
	t.Helper()
	var pe *pgconn.PgError
	if assert.ErrorAs(t, err, &pe) {
		assert.Contains(t, []string{"42P01", "42883"}, pe.Code, "undefined table or function: %v", err)
	}
	assert.Contains(t, err.Error(), "pgstore", "the error names the store")
}

// A caller whose ctx has ended gets its error; PostgreSQL is not thought
// away because one caller stopped waiting.
func TestCallerCancelIsNoOutage(t *testing.T) {
	pool := migrated(t)
	logs := &logSink{}
	l := NewLimiter(pool, vpay.PlanGrowth, ns(t), logs.option())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := l.Reserve(ctx, time.Minute)
	require.ErrorIs(t, err, context.Canceled)
	assert.True(t, l.h.usable())
	assert.NotContains(t, logs.String(), "unreachable")
	dctx, dcancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer dcancel()
	_, err = l.Reserve(dctx, time.Minute)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.True(t, l.h.usable(), "the caller's own deadline is not PostgreSQL's")
}

func TestErrorsThatMeanAnOutage(t *testing.T) {
	pgErr := func(code string) error { return fmt.Errorf("wrapped: %w", &pgconn.PgError{Code: code}) }
	for name, tc := range map[string]struct {
		err  error
		want bool
	}{
		"connection failure (08006)":         {pgErr("08006"), true},
		"too many connections (53300)":       {pgErr("53300"), true},
		"disk full (53100)":                  {pgErr("53100"), true},
		"admin shutdown (57P01)":             {pgErr("57P01"), true},
		"crash shutdown (57P02)":             {pgErr("57P02"), true},
		"starting up (57P03)":                {pgErr("57P03"), true},
		"statement timeout (57014)":          {pgErr("57014"), true},
		"I/O error (58030)":                  {pgErr("58030"), true},
		"read-only standby (25006)":          {pgErr("25006"), true},
		"undefined table (42P01)":            {pgErr("42P01"), false},
		"permission denied (42501)":          {pgErr("42501"), false},
		"bad password (28P01)":               {pgErr("28P01"), false},
		"unique violation (23505)":           {pgErr("23505"), false},
		"database dropped (57P04)":           {pgErr("57P04"), false},
		"refused":                            {&net.OpError{Op: "dial", Err: errors.New("connection refused")}, true},
		"deadline":                           {fmt.Errorf("q: %w", context.DeadlineExceeded), true},
		"EOF":                                {fmt.Errorf("read: %w", io.EOF), true},
		"unexpected EOF":                     {io.ErrUnexpectedEOF, true},
		"conn closed":                        {fmt.Errorf("x: %w", pgconn.ErrConnClosed), true},
		"closed pool":                        {errors.New("closed pool"), true},
		"reset as text":                      {errors.New("read tcp: connection reset by peer"), true},
		"a scan into the wrong type":         {errors.New("can't scan into dest[0]"), false},
		"a canceled caller is not a timeout": {context.Canceled, false},
	} {
		assert.Equal(t, tc.want, isOutage(tc.err), name)
	}
}

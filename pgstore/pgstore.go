// Package pgstore shares what a fleet of replicas of one merchant backend
// must agree on, through the PostgreSQL database it already runs: the
// access token (one /auth/ call per token lifetime across all replicas),
// the rate-limit budget of the API key (a 429 seen by one replica pauses
// all of them), and which webhooks were already processed (a delivery
// reaches one replica's handler once). It is the redisstore module's
// contract for teams that run PostgreSQL and nothing else; it may share a
// database, and a pool, with the tracker and River.
//
//	pool, err := pgxpool.New(ctx, os.Getenv("DATABASE_URL"))
//	err = pgstore.Migrate(ctx, pool)
//	c, err := vpay.NewClient(user, key,
//		vpay.WithTokenStore(pgstore.NewTokenStore(pool)),
//		vpay.WithLimiter(pgstore.NewLimiter(pool, vpay.PlanGrowth)),
//	)
//	h := webhook.Handler(secret, fn, webhook.WithDeduper(pgstore.NewDeduper(pool, 24*time.Hour)))
//
// Every call is one short statement: no pgstore call holds a connection of
// the pool while it waits (for the token another replica is fetching, for
// a rate-limit window, for a lock), so a small pool shared with River's
// workers is enough.
//
// When PostgreSQL is unreachable, each store falls back to its in-process
// counterpart (the server still enforces the limit), logs it once, and
// returns to PostgreSQL when it answers again. A refused connection falls
// back at once; a database that does not answer (or a pool with no
// connection free) costs at most pgTimeout (500 ms) per call, after which
// PostgreSQL is skipped for a second. An error that is an answer (a
// missing table because Migrate was not run, a permission) is returned,
// not hidden behind the fallback.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Option configures the stores. An invalid option (an empty namespace, a
// nil logger, a lock TTL that is not positive) makes the constructor panic,
// naming it, as redisstore's and webhook.Handler do: the constructors
// return no error, and a store that silently ran with another setting than
// the one written (an empty namespace shared by every API key) would be
// found only in production.
type Option func(*options)

type options struct {
	namespace string
	logger    *slog.Logger
	retryDown time.Duration
	lockTTL   time.Duration
	invalid   string // the options refused, "; "-separated
}

func (o *options) refuse(msg string) {
	if o.invalid != "" {
		o.invalid += "; "
	}
	o.invalid += msg
}

// WithNamespace separates the state of one V-Pay API key from another's
// in the same database (default "default"). Use the API user, not the key.
func WithNamespace(ns string) Option {
	return func(o *options) {
		if ns == "" {
			o.refuse(`WithNamespace(""): a namespace must not be empty`)
			return
		}
		o.namespace = ns
	}
}

// WithLogger receives the fallback notices (default: discarded).
func WithLogger(l *slog.Logger) Option {
	return func(o *options) {
		if l == nil {
			o.refuse("WithLogger(nil)")
			return
		}
		o.logger = l
	}
}

// WithLockTTL bounds how long a replica may hold the token-refresh lock
// before another may take it (default 30 s, the SDK's refresh timeout).
func WithLockTTL(d time.Duration) Option {
	return func(o *options) {
		if d <= 0 {
			o.refuse(fmt.Sprintf("WithLockTTL(%s): the TTL must be positive", d))
			return
		}
		o.lockTTL = d
	}
}

// newOptions applies opts for constructor what, and panics on a nil pool
// or an invalid option.
func newOptions(what string, pool *pgxpool.Pool, opts []Option) options {
	if pool == nil {
		panic("pgstore: " + what + ": nil pool")
	}
	o := options{namespace: "default", logger: slog.New(slog.DiscardHandler), retryDown: time.Second, lockTTL: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.invalid != "" {
		panic("pgstore: " + what + ": invalid option: " + o.invalid)
	}
	return o
}

// pgTimeout bounds each statement, the wait for a pool connection
// included: a slow database must not slow payments more than this.
const pgTimeout = 500 * time.Millisecond

// health remembers that PostgreSQL is away, so that calls do not wait on
// it again for retryDown, and logs the change of state once each way.
type health struct {
	what      string
	log       *slog.Logger
	retryDown time.Duration
	mu        sync.Mutex
	downUntil time.Time
	down      atomic.Bool
	// outages counts the outages seen, so that a call that began before
	// the latest one and succeeds (its connection answered just before the
	// crash) does not announce a return that has not happened.
	outages atomic.Uint64
}

// begin is taken before a statement and given to result.
func (h *health) begin() uint64 { return h.outages.Load() }

func newHealth(what string, o options) *health {
	return &health{what: what, log: o.logger, retryDown: o.retryDown}
}

// usable reports whether PostgreSQL should be tried now.
func (h *health) usable() bool {
	if !h.down.Load() {
		return true
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return time.Now().After(h.downUntil)
}

// result records the outcome of a statement begun at began, run for a
// caller whose context is ctx, and reports whether the caller must fall
// back. Errors
// that are answers (a missing table, a permission) are not outages, and
// neither is the end of the caller's own ctx: that caller has stopped
// waiting, and PostgreSQL may be fine.
func (h *health) result(ctx context.Context, began uint64, err error) (fallback bool) {
	if err == nil {
		if h.outages.Load() == began && h.down.CompareAndSwap(true, false) {
			h.log.Info("vpay pgstore: PostgreSQL is back; sharing again", slog.String("store", h.what))
		}
		return false
	}
	if ctx.Err() != nil || !isOutage(err) {
		return false
	}
	h.mu.Lock()
	h.downUntil = time.Now().Add(h.retryDown)
	h.mu.Unlock()
	h.outages.Add(1)
	if h.down.CompareAndSwap(false, true) {
		h.log.Warn("vpay pgstore: PostgreSQL unreachable; using the in-process fallback",
			slog.String("store", h.what), slog.String("error", err.Error()))
	}
	return true
}

// outageStates are the SQLSTATEs (a class of two characters, or one code)
// that mean "this database cannot serve the store now", not "the statement
// is wrong": a lost connection (class 08), a server out of disk, memory or
// connection slots (class 53), a server shutting down, crashed or still
// starting (57P01-57P03), a statement cancelled by statement_timeout
// (57014), an I/O error (58030), and a standby that a failover left
// read-only (25006).
var outageStates = []string{"08", "53", "57P01", "57P02", "57P03", "57014", "58030", "25006"}

func isOutage(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		for _, s := range outageStates {
			if strings.HasPrefix(pe.Code, s) {
				return true
			}
		}
		// The server answered: the statement, the schema or the role is
		// wrong, and falling back would hide it.
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), pgconn.Timeout(err):
		return true
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return true
	}
	// A closed pool (puddle's ErrClosedPool) and connection failures that
	// reach us as plain errors.
	msg := err.Error()
	for _, s := range []string{"closed pool", "connection refused", "broken pipe", "connection reset", "i/o timeout"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

package pgstore

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vonsung/vpay-go"
)

// Limiter is a vpay.Limiter shared by every replica through PostgreSQL:
// one budget for the API key. While no response has shown the server's
// window, a GCRA at the plan's rate paces the fleet; once one has, the
// window (Limit, Remaining, Reset) lives in a row of the database and
// every replica's request is counted against it, so together they use the
// quota without earning a 429. A 429 seen by one replica pauses all of
// them until its Reset.
//
// Each call is one statement: a function that locks the key's row, makes
// the default limiter's decision and writes the row back, so the row lock
// lasts microseconds and no connection is held while a caller waits.
type Limiter struct {
	pool  *pgxpool.Pool
	ns    string
	plan  vpay.Plan
	local vpay.Limiter
	h     *health
	now   func() time.Time // the functions' clock; a test's fake one
	poll  time.Duration    // the longest a waiter goes without asking again

	// wake is closed when this process observes an answer, so that its
	// waiting callers ask again at once, or after poll, so that another
	// replica's answer reaches them within poll (a bounded poll, rather
	// than a LISTEN that would hold a connection for good).
	mu   sync.Mutex
	wake chan struct{}
}

var _ vpay.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter for an API key on plan. Run Migrate first.
func NewLimiter(pool *pgxpool.Pool, plan vpay.Plan, opts ...Option) *Limiter {
	o := newOptions("NewLimiter", pool, opts)
	if plan.PerMinute <= 0 || plan.PerDay < 0 {
		panic(fmt.Sprintf("pgstore: NewLimiter: invalid plan %+v: PerMinute must be positive (vpay.PlanStarter, vpay.PlanGrowth or your own)", plan))
	}
	return &Limiter{
		pool:  pool,
		ns:    o.namespace,
		plan:  plan,
		local: vpay.NewLimiter(plan),
		h:     newHealth("limiter", o),
		now:   time.Now,
		poll:  time.Second,
	}
}

// Reserve implements vpay.Limiter.
func (l *Limiter) Reserve(ctx context.Context, maxWait time.Duration) (vpay.Reservation, error) {
	if !l.h.usable() {
		return l.local.Reserve(ctx, maxWait)
	}
	now := l.now()
	interval := float64(time.Minute.Milliseconds()) / float64(l.plan.PerMinute)
	// One second's worth, rounded up, as the default limiter's bucket.
	burst := max(1, int(math.Ceil(float64(l.plan.PerMinute)/60)))
	share, _ := vpay.LowPriorityShare(ctx) // 0 for a normal call
	began := l.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	var wait, until int64
	err := l.pool.QueryRow(qctx, `SELECT wait, until_ms FROM vpay_pgstore_reserve($1, $2, $3, $4, $5, $6)`,
		l.ns, now.UnixMilli(), maxWait.Milliseconds(), interval, burst, share).Scan(&wait, &until)
	if l.h.result(ctx, began, err) {
		return l.local.Reserve(ctx, maxWait)
	}
	if err != nil {
		return vpay.Reservation{}, fmt.Errorf("pgstore: limiter: %w", err)
	}
	switch {
	case wait < 0:
		reset := time.UnixMilli(until)
		return vpay.Reservation{}, &vpay.Error{
			Code:      vpay.CodeRateLimited,
			Message:   fmt.Sprintf("rate limit: shared budget spent; resets in %s", reset.Sub(now).Round(time.Second)),
			RateLimit: vpay.RateLimit{Remaining: 0, Reset: reset},
		}
	case wait == 0:
		return vpay.Reservation{}, nil
	}
	return vpay.Reservation{For: time.Duration(wait) * time.Millisecond, Wake: l.wakeChan()}, nil
}

// wakeChan is the channel this process's waiters wait on, closed by the
// next answer that may let one go, or after poll.
func (l *Limiter) wakeChan() <-chan struct{} {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		ch := make(chan struct{})
		l.wake = ch
		time.AfterFunc(l.poll, func() { l.closeWake(ch) })
	}
	return l.wake
}

// closeWake closes ch if it is still the waiters' channel.
func (l *Limiter) closeWake(ch chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == ch {
		close(ch)
		l.wake = nil
	}
}

// Answered implements vpay.Limiter.
func (l *Limiter) Answered(ctx context.Context, rl vpay.RateLimit, throttled bool) {
	l.local.Answered(ctx, rl, throttled)
	if l.h.usable() {
		// Called for an answer without headers too: the function counts
		// every answer against the requests in flight.
		began := l.h.begin()
		qctx, cancel := context.WithTimeout(ctx, pgTimeout)
		_, err := l.pool.Exec(qctx, `SELECT vpay_pgstore_observe($1, $2, $3, $4, $5, $6)`,
			l.ns, l.now().UnixMilli(), rl.Limit, rl.Remaining, rl.Reset.UnixMilli(), throttled)
		cancel()
		l.h.result(ctx, began, err)
	}
	// After the row is written: a waiter woken before would read the old
	// state and wait again.
	if !throttled && (rl.Remaining > 0 || rl.IsZero()) {
		l.mu.Lock()
		if l.wake != nil {
			close(l.wake)
			l.wake = nil
		}
		l.mu.Unlock()
	}
}

// Unanswered implements vpay.Limiter: the request is no longer in flight
// for any replica.
func (l *Limiter) Unanswered(ctx context.Context) {
	l.local.Unanswered(ctx)
	if !l.h.usable() {
		return
	}
	began := l.h.begin()
	qctx, cancel := context.WithTimeout(ctx, pgTimeout)
	defer cancel()
	_, err := l.pool.Exec(qctx, `SELECT vpay_pgstore_unanswered($1)`, l.ns)
	l.h.result(ctx, began, err)
}

// limiterFunctions is the default limiter's algorithm (package vpay,
// limiter.go), moved into the database as redisstore moves it into Redis,
// so that every replica sees one state. Each function locks the key's row
// (FOR UPDATE), decides, and writes the row back in the one statement that
// calls it. search_path is the one Migrate ran with, so the functions find
// their table whatever the caller's.
const limiterFunctions = `
CREATE OR REPLACE FUNCTION vpay_pgstore_limiter_row(ns text) RETURNS vpay_pgstore_limits
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	s vpay_pgstore_limits;
BEGIN
	SELECT * INTO s FROM vpay_pgstore_limits WHERE namespace = ns FOR UPDATE;
	IF NOT FOUND THEN
		INSERT INTO vpay_pgstore_limits (namespace) VALUES (ns) ON CONFLICT DO NOTHING;
		SELECT * INTO s FROM vpay_pgstore_limits WHERE namespace = ns FOR UPDATE;
	END IF;
	RETURN s;
END $$;

CREATE OR REPLACE FUNCTION vpay_pgstore_limiter_save(s vpay_pgstore_limits) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
	UPDATE vpay_pgstore_limits SET lim = s.lim, remaining = s.remaining, wend = s.wend, est = s.est,
		wlen = s.wlen, blind = s.blind, tat = s.tat, last = s.last, pat = s.pat, pev = s.pev,
		infl = s.infl, grants = s.grants, strag = s.strag
	WHERE namespace = s.namespace
$$;

CREATE OR REPLACE FUNCTION vpay_pgstore_reserve(ns text, now_ms bigint, maxw bigint,
	intv double precision, burst integer, lowshare double precision,
	OUT wait bigint, OUT until_ms bigint)
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	s vpay_pgstore_limits := vpay_pgstore_limiter_row(ns);
	held integer;
	t double precision;
	allow double precision;
BEGIN
	IF s.wend > 0 AND now_ms >= s.wend THEN
		-- The window has rolled over and the new one starts full; its end
		-- is a guess until an answer confirms it. Requests let through in
		-- the window that ended and not answered yet may reach the server
		-- after its boundary: hold a slot for each.
		held := least(s.infl, s.grants);
		s.wend := s.wend + s.wlen * ((now_ms - s.wend) / s.wlen + 1);
		s.remaining := greatest(s.lim - held, 0);
		s.strag := held;
		s.infl := held;
		s.grants := 0;
		s.est := true;
		s.pev := 0;
		IF s.lim = 0 THEN
			s.wend := 0;
		END IF;
	END IF;
	IF s.wend > 0 THEN
		until_ms := s.wend;
		IF s.remaining <= 0 THEN
			wait := s.wend - now_ms;
			IF wait > maxw AND s.pev > 0 AND now_ms >= s.pat THEN
				-- One probe for the whole fleet.
				s.pev := least(s.pev * 2, 3600000);
				s.pat := now_ms + s.pev;
				s.infl := s.infl + 1;
				wait := 0;
			ELSIF wait > maxw THEN
				wait := -1;
			END IF;
		ELSIF lowshare > 0 AND s.lim > 0 AND (s.lim - s.remaining) >= lowshare * s.lim THEN
			-- Background work has used its share of this window.
			wait := -1;
		ELSE
			s.remaining := s.remaining - 1;
			s.grants := s.grants + 1;
			s.infl := s.infl + 1;
			wait := 0;
		END IF;
		PERFORM vpay_pgstore_limiter_save(s);
		RETURN;
	END IF;
	t := greatest(s.tat, now_ms);
	allow := t + intv - intv * burst;
	-- Intervals like 666.67 ms leave float dust: a microsecond is no wait.
	IF allow > now_ms + 0.001 THEN
		wait := ceil(allow - now_ms);
		until_ms := ceil(allow);
		IF wait > maxw THEN
			wait := -1;
		END IF;
	ELSE
		s.tat := t + intv;
		s.blind := s.blind + 1;
		s.infl := s.infl + 1;
		wait := 0;
		until_ms := 0;
	END IF;
	PERFORM vpay_pgstore_limiter_save(s);
END $$;

CREATE OR REPLACE FUNCTION vpay_pgstore_observe(ns text, now_ms bigint, rlimit integer,
	rrem integer, reset bigint, throttled boolean) RETURNS void
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
	s vpay_pgstore_limits := vpay_pgstore_limiter_row(ns);
BEGIN
	s.infl := greatest(s.infl - 1, 0);
	IF reset > 0 AND reset <= now_ms AND s.strag > 0 THEN
		-- A request held for was counted in the window that ended.
		s.strag := s.strag - 1;
		s.remaining := s.remaining + 1;
	END IF;
	IF rlimit > 0 THEN
		s.lim := rlimit;
	END IF;
	IF reset <= now_ms THEN
		NULL;
	ELSIF throttled THEN
		s.remaining := 0;
		s.blind := 0;
		s.wend := reset;
		s.est := false;
	ELSIF s.pev > 0 THEN
		-- A normal answer replaces the announced window.
		s.remaining := rrem;
		s.wend := reset;
		s.est := false;
		s.last := reset;
		s.blind := 0;
		IF rrem > 0 THEN
			s.pev := 0;
		END IF;
	ELSE
		IF s.last > 0 AND reset > s.last AND reset - s.last < s.wlen THEN
			s.wlen := reset - s.last;
		END IF;
		s.last := greatest(s.last, reset);
		IF s.wend = 0 THEN
			s.remaining := greatest(rrem - greatest(s.blind - greatest(s.lim - rrem, 1), 0), 0);
			s.wend := reset;
			s.blind := 0;
		ELSIF reset = s.wend OR s.est THEN
			s.remaining := least(s.remaining, rrem);
			s.wend := reset;
			s.est := false;
		ELSIF reset > s.wend THEN
			s.remaining := rrem;
			s.wend := reset;
		END IF;
	END IF;
	-- A spent window announced to end over a minute away is probed.
	IF s.pev = 0 AND s.wend > 0 AND s.remaining <= 0 AND NOT s.est AND s.wend - now_ms > 60000 THEN
		s.pev := 60000;
		s.pat := now_ms + 60000;
	END IF;
	PERFORM vpay_pgstore_limiter_save(s);
END $$;

-- A request in flight that will get no answer; a slot held for it in the
-- current window stays spent.
CREATE OR REPLACE FUNCTION vpay_pgstore_unanswered(ns text) RETURNS void
LANGUAGE sql SET search_path FROM CURRENT AS $$
	UPDATE vpay_pgstore_limits SET infl = greatest(infl - 1, 0) WHERE namespace = ns
$$;
`

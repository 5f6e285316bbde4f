package vpay

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// RateLimit is the rate-limit state a response announced in its
// X-RateLimit-Limit, X-RateLimit-Remaining and X-RateLimit-Reset headers.
// Reset is expressed on the local clock: when the response carried a Date
// header and the two clocks disagree, Reset is shifted by the difference.
type RateLimit struct {
	// Limit is the number of requests the key may make in the window.
	Limit int
	// Remaining is the number of requests left in the window.
	Remaining int
	// Reset is when the window ends and Remaining returns to Limit.
	Reset time.Time
}

// IsZero reports whether no rate-limit header has been seen.
func (r RateLimit) IsZero() bool { return r == RateLimit{} }

// String formats r for logs: "118/120, resets 2026-05-23T12:00:00Z".
func (r RateLimit) String() string {
	if r.IsZero() {
		return "unknown"
	}
	return fmt.Sprintf("%d/%d, resets %s", r.Remaining, r.Limit, r.Reset.UTC().Format(time.RFC3339))
}

// Plan is a V-Pay pricing plan's request quota for one API key.
type Plan struct {
	// PerMinute is the requests allowed in each minute's window.
	PerMinute int
	// PerDay is the requests allowed in a UTC day; 0 for no daily cap.
	PerDay int
}

// The documented plans. Enterprise plans are custom: use Plan{PerMinute, PerDay}.
var (
	PlanStarter = Plan{PerMinute: 20, PerDay: 1000}
	PlanGrowth  = Plan{PerMinute: 120, PerDay: 50000}
)

func (p Plan) validate() error {
	if p.PerMinute <= 0 || p.PerDay < 0 {
		return fmt.Errorf("vpay: WithPlan: PerMinute must be positive and PerDay not negative, got %d and %d", p.PerMinute, p.PerDay)
	}
	return nil
}

// rateGate owns the client's rate limiting, in one place: the wait before
// a request is sent, reading every answer's headers (the window, Retry-After,
// the Date skew), the state RateLimit reports, telling the Limiter, and the
// one rule for how long the client may wait: MaxWait, or less when the
// ctx's deadline comes first.
type rateGate struct {
	limiter Limiter
	// local is limiter when it is the default one on the gate's clock: it
	// takes the gate's reading of the clock instead of reading it again.
	local    *localLimiter
	clock    clock
	maxWait  time.Duration
	lowShare float64 // of each window, for WithLowPriority calls
	logger   *slog.Logger

	mu     sync.Mutex
	latest RateLimit
	issues atomic.Uint32 // the headerIssue kinds already logged
	date   atomic.Pointer[parsedDate]
}

// parsedDate is the last Date header read: it changes once a second, so
// most answers reuse its parse.
type parsedDate struct {
	text string
	t    time.Time
	err  error
}

// parseDate is http.ParseTime, remembered for the last value seen.
func (g *rateGate) parseDate(v string) (time.Time, error) {
	if d := g.date.Load(); d != nil && d.text == v {
		return d.t, d.err
	}
	t, err := http.ParseTime(v)
	g.date.Store(&parsedDate{v, t, err})
	return t, err
}

func newRateGate(l Limiter, c clock, maxWait time.Duration, lowShare float64, logger *slog.Logger) *rateGate {
	g := &rateGate{limiter: l, clock: c, maxWait: maxWait, lowShare: lowShare, logger: logger}
	if local, ok := l.(*localLimiter); ok && local.clock == c {
		g.local = local
	}
	return g
}

// budget is the longest a caller may wait at now.
func (g *rateGate) budget(ctx context.Context, now time.Time) time.Duration {
	b := g.maxWait
	if dl, ok := ctx.Deadline(); ok {
		// A ctx deadline is wall-clock time, whatever clock the client
		// runs on: what is left of it is a duration on any clock.
		if _, wall := g.clock.(realClock); wall {
			b = min(b, dl.Sub(now))
		} else {
			b = min(b, time.Until(dl))
		}
	}
	return max(b, 0)
}

// limiterReserve asks the Limiter, handing it the reading of the clock
// when it can take one.
func (g *rateGate) limiterReserve(ctx context.Context, now time.Time, maxWait time.Duration) (Reservation, error) {
	if g.local != nil {
		return g.local.reserveAt(ctx, now, maxWait)
	}
	return g.limiter.Reserve(ctx, maxWait)
}

// reserve returns when the Limiter lets one request go, asking again after
// each wait it is told, for at most the budget in all; or an error matching
// ErrRateLimited when the window will not reset in time. now is the
// caller's reading of the clock; reserve returns how long it waited and
// the time it let the request go (now itself when it did not wait: the
// clock is read again only after a wait).
func (g *rateGate) reserve(ctx context.Context, now time.Time) (time.Duration, time.Time, error) {
	if IsLowPriority(ctx) {
		// Background work never waits: the limiter grants it now, within
		// its share, or refuses it at once.
		w, err := g.limiterReserve(withShare(ctx, g.lowShare), now, 0)
		if err == nil && w.For > 0 {
			err = &Error{Code: CodeRateLimited, Message: "rate limit: low-priority call would have to wait",
				RateLimit: RateLimit{Reset: now.Add(w.For)}}
		}
		return 0, now, err
	}
	start := now
	giveUp := start.Add(g.budget(ctx, now))
	for logged := false; ; {
		w, err := g.limiterReserve(ctx, now, max(giveUp.Sub(now), 0))
		if err != nil || w.For <= 0 {
			return now.Sub(start), now, err
		}
		if !logged && w.For >= time.Second { // once per call is enough
			g.logWait(ctx, w.For, "rate limit: waiting for the window to reset")
			logged = true
		}
		err = g.clock.SleepOrWake(ctx, w.For, w.Wake)
		now = g.clock.Now()
		if err != nil {
			return now.Sub(start), now, gaveUp(err)
		}
	}
}

// afterThrottle says how long to wait after a 429 before sending again:
// until the Reset or Retry-After it announced, or a backoff when it
// announced neither; not at all when that is beyond the budget.
func (g *rateGate) afterThrottle(ctx context.Context, rl RateLimit, backoff time.Duration) (time.Duration, string, bool) {
	if IsLowPriority(ctx) {
		return 0, "429 on a low-priority call: it does not wait", false
	}
	now := g.clock.Now()
	wait := backoff
	if !rl.Reset.IsZero() {
		wait = max(rl.Reset.Sub(now), 0)
	}
	if b := g.budget(ctx, now); wait > b {
		return 0, fmt.Sprintf("429: the window resets in %s, beyond the %s the call may wait", wait.Round(time.Second), b.Round(time.Second)), false
	}
	return wait, fmt.Sprintf("429: waiting %s for the rate-limit window to reset", wait.Round(time.Millisecond)), true
}

// answered reads an answer's rate-limit headers (and Retry-After on a 429),
// records them as the latest state, tells the Limiter and logs what was
// wrong with them, once per kind. It returns the state the answer
// announced.
func (g *rateGate) answered(ctx context.Context, h http.Header, status int) RateLimit {
	now := g.clock.Now()
	rl, ok, issues := parseRateLimit(h, now, g.parseDate)
	if ok {
		g.mu.Lock()
		g.latest = rl
		g.mu.Unlock()
	} else {
		issues |= issueNoHeaders
	}
	throttled := status == http.StatusTooManyRequests
	if throttled {
		d, ok, issue := retryAfter(h, now, g.parseDate)
		issues |= issue
		if ok && now.Add(d).After(rl.Reset) {
			rl.Reset = now.Add(d)
		}
	}
	if g.local != nil {
		g.local.answeredAt(ctx, now, rl, throttled)
	} else {
		g.limiter.Answered(ctx, rl, throttled)
	}
	g.logIssues(ctx, issues)
	return rl
}

// unanswered tells the Limiter that a request it let go got no answer.
// The ctx may have ended (that is often why no answer came): the limiter
// still hears of it, or a shared limiter would keep the slot for ever.
func (g *rateGate) unanswered(ctx context.Context) {
	g.limiter.Unanswered(context.WithoutCancel(ctx))
}

// Latest is the state the last answer with rate-limit headers announced.
func (g *rateGate) Latest() RateLimit {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.latest
}

// logIssues logs each kind of rate-limit header problem once in the
// client's life: a misbehaving proxy would otherwise fill the log.
func (g *rateGate) logIssues(ctx context.Context, issues headerIssue) {
	if issues == 0 {
		return
	}
	fresh := issues &^ headerIssue(g.issues.Or(uint32(issues)))
	for i := headerIssue(1); fresh != 0; i <<= 1 {
		if fresh&i != 0 {
			fresh &^= i
			g.logger.LogAttrs(ctx, slog.LevelWarn, "vpay: rate-limit headers: "+i.String())
		}
	}
}

// logWait tells the merchant, at info level, about a wait a person would
// notice.
func (g *rateGate) logWait(ctx context.Context, d time.Duration, why string) {
	g.logger.LogAttrs(ctx, slog.LevelInfo, "vpay: waiting", slog.Duration("wait", d), slog.String("reason", why))
}

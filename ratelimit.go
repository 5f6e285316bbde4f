package vpay

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
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
	PerMinute int
	PerDay    int
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

// Limiter decides when the client may send a request. The client asks it
// before every request (Reserve) and tells it every rate-limit state it sees
// (Observe), so an implementation shared by many processes (see the
// redisstore module) can pause all of them when one sees a spent window.
// vpaytest.TestLimiter checks an implementation against the decisions of
// the default one.
//
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Reserve asks to send one request now. It returns a zero Wait when the
	// request may go (and counts it), or how long to wait before asking
	// again (and counts nothing). Asking again, rather than booking a slot
	// far ahead, lets a limiter base every decision on the latest headers.
	// If the wait would be longer than maxWait it returns an error matching
	// ErrRateLimited instead (a *Error whose RateLimit says when the window
	// resets).
	Reserve(ctx context.Context, maxWait time.Duration) (Wait, error)
	// Observe records the state an answer announced (the zero RateLimit for
	// an answer without rate-limit headers). throttled is true for a 429,
	// when rl.Reset is the time the server said to come back.
	Observe(ctx context.Context, rl RateLimit, throttled bool)
}

// Wait is a Limiter's answer to Reserve. The zero Wait means "go".
type Wait struct {
	// For is how long to wait before asking again.
	For time.Duration
	// Wake, when not nil, is closed if the limiter learns something before
	// For has passed (an answer that frees the window, a window that ends
	// sooner than thought): ask again then, instead of polling.
	Wake <-chan struct{}
}

// NewLimiter returns the default Limiter for plan: a token bucket
// (golang.org/x/time/rate) at the plan's rate paces a client that knows
// nothing of the server's window yet; once a response has said how many
// requests remain until Reset, the limiter counts every request it lets
// through against that window and holds the next one until Reset when none
// remain, so the client uses the whole quota without earning a 429. A header
// Limit that changes (a plan upgrade) rescales the bucket; a Remaining lower
// than the limiter's own count (another process using the key) lowers it.
func NewLimiter(plan Plan) Limiter {
	return newLocalLimiter(plan, true, realClock{})
}

type localLimiter struct {
	clock  clock
	bucket *rate.Limiter

	mu        sync.Mutex
	limit     int           // last Limit seen, 0 before any header
	remaining int           // requests left in the window ending at windowEnd, by our count
	windowEnd time.Time     // zero before any header
	estimated bool          // windowEnd is our guess, not yet confirmed by a response
	lastReset time.Time     // the last Reset a response confirmed
	windowLen time.Duration // learnt from successive Resets; the documented minute until then
	blind     int           // requests let through while no window was known
	// A request let through just before a window ends can reach the server
	// after it, and count in the next one. inflight is how many were let
	// through and not answered yet, grants how many the current window let
	// through; at a rollover the new window holds back a slot for each
	// unanswered request of the old one (stragglers), and gives it back
	// when its answer shows it counted in the old window.
	inflight, grants, stragglers int
	perDay                       int
	day                          time.Time // start of the UTC day counted in dayCount
	dayCount                     int
	// planned: the merchant declared the plan, so its pace holds even
	// against a server that sends no rate-limit headers. headerless: a
	// response came without them.
	planned, headerless bool
	// While the server has announced a spent window that ends more than a
	// minute away, one request may go at probeAt, to learn whether the
	// announcement still stands; the interval doubles up to maxProbeEvery.
	// probeEvery is 0 when no such window is in force.
	probeAt    time.Time
	probeEvery time.Duration
	// wake is closed, and forgotten, when an answer may let a waiting
	// request go; nil while nobody waits.
	wake chan struct{}
}

// waitFor tells a caller to wait d or until an answer changes the state.
// The caller holds l.mu.
func (l *localLimiter) waitFor(d time.Duration) Wait {
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return Wait{For: d, Wake: l.wake}
}

// Probing a window announced to be spent: the first probe a minute after
// the announcement, then at doubling intervals up to an hour.
const (
	firstProbe    = time.Minute
	maxProbeEvery = time.Hour
)

func newLocalLimiter(plan Plan, planned bool, c clock) *localLimiter {
	perSec := float64(plan.PerMinute) / 60
	// The burst is one second's worth: enough for a cold client to start at
	// once, small enough that it cannot overrun a window before the first
	// response tells it where the window stands.
	burst := int(math.Ceil(perSec))
	return &localLimiter{
		clock:     c,
		bucket:    rate.NewLimiter(rate.Limit(perSec), max(burst, 1)),
		perDay:    plan.PerDay,
		windowLen: time.Minute,
		planned:   planned,
	}
}

func (l *localLimiter) Reserve(_ context.Context, maxWait time.Duration) (Wait, error) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()

	if !l.windowEnd.IsZero() && !now.Before(l.windowEnd) {
		// The window has rolled over and the new one starts full. Its end
		// is a guess until a response confirms it.
		end := l.windowEnd.Add(l.windowLen)
		for !end.After(now) {
			end = end.Add(l.windowLen)
		}
		held := min(l.inflight, l.grants)
		l.remaining, l.windowEnd, l.estimated = max(l.limit-held, 0), end, true
		l.stragglers, l.inflight, l.grants = held, held, 0
		l.probeEvery = 0
		if l.limit == 0 {
			// A 429 without a Limit: we know when it ended, not what the
			// next window holds, so nothing is counted until a header says.
			l.windowEnd = time.Time{}
		}
	}
	if day := now.UTC().Truncate(24 * time.Hour); !day.Equal(l.day) {
		l.day, l.dayCount = day, 0
	}
	if l.perDay > 0 && l.dayCount >= l.perDay {
		return Wait{}, l.refuse(l.day.Add(24*time.Hour), now, "daily quota of %d requests spent", l.perDay)
	}
	if !l.windowEnd.IsZero() && l.remaining <= 0 {
		wait := l.windowEnd.Sub(now)
		if wait > maxWait {
			if l.probeEvery > 0 && !now.Before(l.probeAt) {
				// A wrong announcement must cost at most a minute: one
				// request goes, and its answer confirms or replaces it.
				l.probeEvery = min(2*l.probeEvery, maxProbeEvery)
				l.probeAt = now.Add(l.probeEvery)
				l.dayCount++
				l.inflight++
				return Wait{}, nil
			}
			return Wait{}, l.refuse(l.windowEnd, now, "window of %d requests spent", l.limit)
		}
		// When the end is our guess, the first answer of the new window
		// wakes the waiters.
		return l.waitFor(wait), nil
	}
	if !l.windowEnd.IsZero() {
		// The server's window is known: it alone decides.
		l.remaining--
		l.dayCount++
		l.grants++
		l.inflight++
		return Wait{}, nil
	}
	if l.headerless && !l.planned {
		// The server (or a proxy) sends no headers and the merchant named
		// no plan: pacing at a guessed plan would throttle a Growth key to
		// Starter's pace forever. 429s will say when to stop.
		return Wait{}, nil
	}
	// No window known yet (a cold client): pace at the plan's rate until
	// the first answer says where the window stands.
	r := l.bucket.ReserveN(now, 1)
	if !r.OK() {
		return Wait{}, l.refuse(now.Add(time.Minute), now, "limiter cannot grant a request")
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if d > maxWait {
			return Wait{}, l.refuse(now.Add(d), now, "pacing would wait %s", d.Round(time.Millisecond))
		}
		// An answer in flight may make the wait unnecessary: it wakes us.
		return l.waitFor(d), nil
	}
	l.blind++
	l.dayCount++
	l.inflight++
	return Wait{}, nil
}

func (l *localLimiter) refuse(reset, now time.Time, format string, args ...any) error {
	return &Error{
		Code:      CodeRateLimited,
		Message:   fmt.Sprintf("rate limit: "+format+"; resets in %s", append(args, reset.Sub(now).Round(time.Second))...),
		RateLimit: RateLimit{Limit: l.limit, Remaining: 0, Reset: reset},
	}
}

func (l *localLimiter) Observe(_ context.Context, rl RateLimit, throttled bool) {
	now := l.clock.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.armProbe(now)
	defer l.wakeWaiters()
	l.inflight = max(l.inflight-1, 0) // every answer is one request less in flight
	if rl.IsZero() {
		l.headerless = l.headerless || !throttled
		return
	}
	if !rl.Reset.IsZero() && !rl.Reset.After(now) && l.stragglers > 0 {
		// A request held back for was counted in the window that ended.
		l.stragglers--
		l.remaining++
	}
	if rl.Limit > 0 && l.limit > 0 && rl.Limit != l.limit {
		// The key's plan changed: scale the pace by the same factor.
		f := float64(rl.Limit) / float64(l.limit)
		l.bucket.SetLimitAt(now, l.bucket.Limit()*rate.Limit(f))
		l.bucket.SetBurstAt(now, max(1, int(math.Ceil(float64(l.bucket.Burst())*f))))
	}
	if rl.Limit > 0 {
		l.limit = rl.Limit
	}
	if !rl.Reset.After(now) {
		return
	}
	if throttled {
		// The server says nothing is left until Reset, whatever we counted
		// and whenever we thought the window ended.
		l.remaining, l.blind = 0, 0
		l.windowEnd, l.estimated = rl.Reset, false
		return
	}
	if l.probeEvery > 0 {
		// A normal answer while a spent window was announced: the server's
		// word now replaces the announcement, whatever it said before.
		l.remaining, l.windowEnd, l.estimated, l.lastReset = rl.Remaining, rl.Reset, false, rl.Reset
		l.blind = 0
		if rl.Remaining > 0 {
			l.probeEvery = 0
		}
		return
	}
	if !l.lastReset.IsZero() && rl.Reset.After(l.lastReset) {
		if d := rl.Reset.Sub(l.lastReset); d < l.windowLen {
			l.windowLen = d
		}
	}
	if rl.Reset.After(l.lastReset) {
		l.lastReset = rl.Reset
	}
	switch {
	case l.windowEnd.IsZero():
		// The server has counted limit-remaining requests in this window.
		// Those of ours it has not counted yet are still in flight: count
		// them as spent.
		counted := max(l.limit-rl.Remaining, 1)
		l.remaining, l.windowEnd = max(rl.Remaining-max(l.blind-counted, 0), 0), rl.Reset
		l.blind = 0
	case rl.Reset.Equal(l.windowEnd) || l.estimated:
		// Requests we let through after this one was answered are not in
		// the server's figure yet, so our own count wins when lower.
		l.remaining = min(l.remaining, rl.Remaining)
		l.windowEnd, l.estimated = rl.Reset, false
	case rl.Reset.After(l.windowEnd):
		// A window we had not reached by our clock: the server's word.
		l.remaining, l.windowEnd = rl.Remaining, rl.Reset
	}
}

// rateGate owns the client's rate limiting, in one place: the wait before
// a request is sent, reading every answer's headers (the window, Retry-After,
// the Date skew), the state RateLimit reports, telling the Limiter, and the
// one rule for how long the client may wait: MaxWait, or less when the
// ctx's deadline comes first.
type rateGate struct {
	limiter Limiter
	clock   clock
	maxWait time.Duration
	logger  *slog.Logger

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

// budget is the longest a caller may wait now.
func (g *rateGate) budget(ctx context.Context) time.Duration {
	b := g.maxWait
	if dl, ok := ctx.Deadline(); ok {
		// A ctx deadline is wall-clock time, whatever clock the client
		// runs on: what is left of it is a duration on any clock.
		b = min(b, time.Until(dl))
	}
	return max(b, 0)
}

// wait returns when the Limiter lets one request go, asking again after
// each wait it is told, for at most the budget in all; or an error matching
// ErrRateLimited when the window will not reset in time.
func (g *rateGate) wait(ctx context.Context) error {
	giveUp := g.clock.Now().Add(g.budget(ctx))
	for logged := false; ; {
		w, err := g.limiter.Reserve(ctx, max(giveUp.Sub(g.clock.Now()), 0))
		if err != nil || w.For <= 0 {
			return err
		}
		if !logged && w.For >= time.Second { // once per call is enough
			g.logWait(ctx, w.For, "rate limit: waiting for the window to reset")
			logged = true
		}
		if err := g.clock.SleepOrWake(ctx, w.For, w.Wake); err != nil {
			return gaveUp(err)
		}
	}
}

// afterThrottle says how long to wait after a 429 before sending again:
// until the Reset or Retry-After it announced, or a backoff when it
// announced neither; not at all when that is beyond the budget.
func (g *rateGate) afterThrottle(ctx context.Context, rl RateLimit, backoff time.Duration) (time.Duration, string, bool) {
	wait := backoff
	if !rl.Reset.IsZero() {
		wait = max(rl.Reset.Sub(g.clock.Now()), 0)
	}
	if b := g.budget(ctx); wait > b {
		return 0, fmt.Sprintf("429: the window resets in %s, beyond the %s the call may wait", wait.Round(time.Second), b.Round(time.Second)), false
	}
	return wait, fmt.Sprintf("429: waiting %s for the rate-limit window to reset", wait.Round(time.Millisecond)), true
}

// observe reads an answer's rate-limit headers (and Retry-After on a 429),
// records them as the latest state, tells the Limiter and logs what was
// wrong with them, once per kind. It returns the state the answer
// announced.
func (g *rateGate) observe(ctx context.Context, h http.Header, status int) RateLimit {
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
	g.limiter.Observe(ctx, rl, throttled)
	g.logIssues(ctx, issues)
	return rl
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

// wakeWaiters wakes the callers told to wait, when the state may now let
// one of them go: a window with requests left, or none known. The caller
// holds l.mu.
func (l *localLimiter) wakeWaiters() {
	if l.wake != nil && (l.remaining > 0 || l.windowEnd.IsZero()) {
		close(l.wake)
		l.wake = nil
	}
}

// armProbe starts probing when the state says the window is spent until
// more than a minute from now: only the server said so, and a wrong
// announcement must not stop the client for longer.
func (l *localLimiter) armProbe(now time.Time) {
	if l.probeEvery == 0 && !l.windowEnd.IsZero() && l.remaining <= 0 && !l.estimated && l.windowEnd.Sub(now) > firstProbe {
		l.probeEvery, l.probeAt = firstProbe, now.Add(firstProbe)
	}
}

// maxAnnounced is the furthest ahead a response may move the client's
// rate-limit state: the longest documented window, a day. A Reset or a
// Retry-After further out (a bug, a proxy, an attacker) is clamped to it,
// so that no single response can stop a client for good.
const maxAnnounced = 24 * time.Hour

// resetMillisAfter is the X-RateLimit-Reset above which the value is read as
// milliseconds since the epoch: as seconds it would be after the year 5000.
const resetMillisAfter = 95617584000

// headerIssue is a set of things wrong with a response's rate-limit
// headers, each logged once per client.
type headerIssue uint32

const (
	issueResetTooFar headerIssue = 1 << iota
	issueRetryAfterTooFar
	issueDateTooFar
	issueBadValue
	issueNoHeaders
)

func (i headerIssue) String() string {
	switch i {
	case issueResetTooFar:
		return "X-RateLimit-Reset more than a day ahead; read as a day"
	case issueRetryAfterTooFar:
		return "Retry-After more than a day ahead; read as a day"
	case issueDateTooFar:
		return "Date more than a day away from the local clock; ignored for the clock-skew correction"
	case issueBadValue:
		return "a rate-limit header that is negative or not a number; ignored"
	case issueNoHeaders:
		return "the server sends no X-RateLimit-* headers; relying on 429s (and WithPlan, if set)"
	}
	return "rate-limit header issue"
}

// parseRateLimit reads the X-RateLimit-* headers. now is the local time the
// response arrived; when the response's Date disagrees with it by more than
// Date's one-second resolution (and less than a day), Reset is moved onto
// the local clock. A Reset in milliseconds is read as such, one more than a
// day ahead is clamped to a day, and without a Reset the Remaining counts
// against the current clock minute. The second result is false when the
// response carried none of the headers; the third says what was wrong.
func parseRateLimit(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (RateLimit, bool, headerIssue) {
	var issues headerIssue
	// Canonical keys, read straight from the map: Header.Get would
	// canonicalize "X-RateLimit-Limit" anew on every answer.
	limit, okL := headerInt(h, "X-Ratelimit-Limit", &issues)
	remaining, okR := headerInt(h, "X-Ratelimit-Remaining", &issues)
	reset, okT := headerInt(h, "X-Ratelimit-Reset", &issues)
	if !okL && !okR && !okT {
		return RateLimit{}, false, issues
	}
	rl := RateLimit{Limit: int(limit), Remaining: int(remaining)}
	switch {
	case okT && reset > resetMillisAfter:
		rl.Reset = time.UnixMilli(reset)
	case okT:
		rl.Reset = time.Unix(reset, 0)
	case okR:
		// Remaining without a Reset still says something: count it against
		// a one-minute window, the documented one, on the clock's minutes.
		rl.Reset = now.Truncate(time.Minute).Add(time.Minute)
	}
	if okT {
		skew, skewIssue := clockSkew(h, now, parseDate)
		issues |= skewIssue
		rl.Reset = rl.Reset.Add(skew)
	}
	if rl.Reset.Sub(now) > maxAnnounced {
		rl.Reset = now.Add(maxAnnounced)
		issues |= issueResetTooFar
	}
	return rl, true, issues
}

// clockSkew returns how far the local clock is ahead of the server's, or 0
// when the difference is within the Date header's resolution, or more than
// a day (a broken Date, not a skewed clock).
func clockSkew(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (time.Duration, headerIssue) {
	var v string
	if vs := h["Date"]; len(vs) > 0 {
		v = vs[0]
	}
	if v == "" {
		return 0, 0
	}
	d, err := parseDate(v)
	if err != nil {
		return 0, 0
	}
	skew := now.Sub(d)
	switch {
	case skew > -2*time.Second && skew < 2*time.Second:
		return 0, 0
	case skew > maxAnnounced || skew < -maxAnnounced:
		return 0, issueDateTooFar
	}
	return skew, 0
}

// retryAfter reads a Retry-After header, in seconds or as an HTTP date, as a
// duration from now, at most a day.
func retryAfter(h http.Header, now time.Time, parseDate func(string) (time.Time, error)) (time.Duration, bool, headerIssue) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false, 0
	}
	var d time.Duration
	var issues headerIssue
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if !(secs >= 0) { // negative or NaN
			return 0, false, issueBadValue
		}
		// Bounded before the conversion, which would overflow past 292 years.
		d = time.Duration(min(secs, 2*maxAnnounced.Seconds()) * float64(time.Second))
	} else if t, err := http.ParseTime(v); err == nil {
		skew, issue := clockSkew(h, now, parseDate)
		issues |= issue
		d = max(t.Add(skew).Sub(now), 0)
	} else {
		return 0, false, issueBadValue
	}
	if d > maxAnnounced {
		d, issues = maxAnnounced, issues|issueRetryAfterTooFar
	}
	return d, true, issues
}

// headerInt reads a non-negative integer header. Integers are what the
// documentation shows; "118.0" is read too. A value that is present but
// negative, NaN, infinite or not a number adds issueBadValue and is not ok.
func headerInt(h http.Header, key string, issues *headerIssue) (int64, bool) {
	vs := h[key]
	if len(vs) == 0 {
		return 0, false
	}
	v := strings.TrimSpace(vs[0])
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 && n <= 1<<53 {
		return n, true // the documented form, without a float's detour
	}
	// The bound is where float64 stops holding integers exactly, far past
	// any unix time in milliseconds.
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0 && f <= 1<<53) {
		*issues |= issueBadValue
		return 0, false
	}
	return int64(f), true
}

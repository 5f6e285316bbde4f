package vpay

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter decides when the client may send a request. The client asks it
// before every request (Reserve) and then tells it, exactly once, what
// became of each request it let go: the rate-limit state the answer
// announced (Answered), or that no answer came (Unanswered). So an
// implementation shared by many processes (see the redisstore and pgstore
// modules) can pause all of them when one sees a spent window.
// limitertest.TestLimiter (package vpaytest/limitertest) checks an
// implementation against the decisions of the default one.
//
// Implementations must be safe for concurrent use.
type Limiter interface {
	// Reserve asks to send one request now. It returns a zero Reservation when the
	// request may go (and counts it), or how long to wait before asking
	// again (and counts nothing). Asking again, rather than booking a slot
	// far ahead, lets a limiter base every decision on the latest headers.
	// If the wait would be longer than maxWait it returns an error matching
	// ErrRateLimited instead (a *Error whose RateLimit says when the window
	// resets).
	Reserve(ctx context.Context, maxWait time.Duration) (Reservation, error)
	// Answered records the state an answer announced (the zero RateLimit for
	// an answer without rate-limit headers). throttled is true for a 429,
	// when rl.Reset is the time the server said to come back.
	Answered(ctx context.Context, rl RateLimit, throttled bool)
	// Unanswered records that a request Reserve let go will get no answer:
	// the connection failed or was dropped, the call timed out, or its ctx
	// ended before an answer came (or before the request left). It is no
	// longer in flight; what it spent of its window stays spent. The
	// client calls exactly one of Answered and Unanswered for every request
	// Reserve let go, so a limiter that counts requests in flight (to hold
	// slots for those that may land in the next window) never carries an
	// unanswered one into every later window.
	Unanswered(ctx context.Context)
}

// Reservation is a Limiter's answer to Reserve. The zero Reservation means
// "go".
type Reservation struct {
	// For is how long to wait before asking again.
	For time.Duration
	// Wake, when not nil, is closed if the limiter learns something before
	// For has passed (an answer that frees the window, a window that ends
	// sooner than thought): ask again then, instead of polling.
	Wake <-chan struct{}
}

// Wait is the old name of Reservation.
//
// Deprecated: use Reservation; Wait goes in the next minor release, so that
// Client.Wait has the word to itself.
type Wait = Reservation

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
func (l *localLimiter) waitFor(d time.Duration) Reservation {
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return Reservation{For: d, Wake: l.wake}
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

func (l *localLimiter) Reserve(ctx context.Context, maxWait time.Duration) (Reservation, error) {
	return l.reserveAt(ctx, l.clock.Now(), maxWait)
}

// reserveAt is Reserve at now, read by a caller on the same clock: the
// client reads the clock once per call and hands the reading on.
func (l *localLimiter) reserveAt(ctx context.Context, now time.Time, maxWait time.Duration) (Reservation, error) {
	share, low := LowPriorityShare(ctx)
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
		return Reservation{}, l.refuse(l.day.Add(24*time.Hour), now, "daily quota of %d requests spent", l.perDay)
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
				return Reservation{}, nil
			}
			return Reservation{}, l.refuse(l.windowEnd, now, "window of %d requests spent", l.limit)
		}
		// When the end is our guess, the first answer of the new window
		// wakes the waiters.
		return l.waitFor(wait), nil
	}
	if !l.windowEnd.IsZero() && low && l.limit > 0 && float64(l.limit-l.remaining) >= share*float64(l.limit) {
		// Background work has used its share of this window: the rest is
		// kept for the calls a customer waits on.
		return Reservation{}, l.refuse(l.windowEnd, now, "low-priority share (%.0f%%) of the window of %d spent", 100*share, l.limit)
	}
	if !l.windowEnd.IsZero() {
		// The server's window is known: it alone decides.
		l.remaining--
		l.dayCount++
		l.grants++
		l.inflight++
		return Reservation{}, nil
	}
	if l.headerless && !l.planned {
		// The server (or a proxy) sends no headers and the merchant named
		// no plan: pacing at a guessed plan would throttle a Growth key to
		// Starter's pace forever. 429s will say when to stop.
		return Reservation{}, nil
	}
	// No window known yet (a cold client): pace at the plan's rate until
	// the first answer says where the window stands.
	r := l.bucket.ReserveN(now, 1)
	if !r.OK() {
		return Reservation{}, l.refuse(now.Add(time.Minute), now, "limiter cannot grant a request")
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		if d > maxWait {
			return Reservation{}, l.refuse(now.Add(d), now, "pacing would wait %s", d.Round(time.Millisecond))
		}
		// An answer in flight may make the wait unnecessary: it wakes us.
		return l.waitFor(d), nil
	}
	l.blind++
	l.dayCount++
	l.inflight++
	return Reservation{}, nil
}

func (l *localLimiter) refuse(reset, now time.Time, format string, args ...any) error {
	return &Error{
		Code:      CodeRateLimited,
		Message:   fmt.Sprintf("rate limit: "+format+"; resets in %s", append(args, reset.Sub(now).Round(time.Second))...),
		RateLimit: RateLimit{Limit: l.limit, Remaining: 0, Reset: reset},
	}
}

func (l *localLimiter) Answered(ctx context.Context, rl RateLimit, throttled bool) {
	l.answeredAt(ctx, l.clock.Now(), rl, throttled)
}

// answeredAt is Answered at now, read by a caller on the same clock.
func (l *localLimiter) answeredAt(_ context.Context, now time.Time, rl RateLimit, throttled bool) {
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

func (l *localLimiter) Unanswered(context.Context) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// No later window holds a slot for it. One this window held for it
	// (a straggler) stays spent: it may have counted here.
	l.inflight = max(l.inflight-1, 0)
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

// Package limitertest checks an implementation of vpay.Limiter against the
// decisions of the SDK's default one, in the style of testing/fstest: call
// TestLimiter from your Limiter's tests. It lives apart from vpaytest so
// that programs which run the sandbox (the vpay command) do not link the
// testing package.
package limitertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/vonsung/vpay-go"
)

// TestLimiter checks a vpay.Limiter against the decisions of the default
// one: the same answers to the same sequence of Reserve, Answered and Unanswered calls,
// scenario by scenario, so that a Limiter shared through a store (the
// redisstore module's) cannot drift from the SDK's own. newLimiter must
// return a fresh Limiter with no state, for plan, that reads the time from
// now (the test moves it; nothing sleeps).
//
// Waits are compared to the millisecond, the resolution a store keeps.
func TestLimiter(t *testing.T, newLimiter func(plan vpay.Plan, now func() time.Time) vpay.Limiter) {
	t.Helper()
	for _, sc := range limiterScenarios {
		t.Run(sc.name, func(t *testing.T) {
			start := time.Date(2026, 5, 30, 18, 0, 0, 0, time.UTC)
			now := start
			l := newLimiter(sc.plan, func() time.Time { return now })
			ctx := context.Background()
			for i, st := range sc.steps {
				now = now.Add(st.advance)
				if st.dropped {
					l.Unanswered(ctx)
					continue
				}
				if st.observe != nil {
					rl := vpay.RateLimit{Limit: st.observe.limit, Remaining: st.observe.remaining}
					if st.observe.reset != 0 {
						rl.Reset = start.Add(st.observe.reset)
					}
					l.Answered(ctx, rl, st.observe.throttled)
					continue
				}
				maxWait, rctx := st.maxWait, ctx
				switch {
				case st.low:
					// As the client asks for background work: no wait.
					maxWait, rctx = 0, vpay.WithLowPriority(ctx)
				case maxWait == 0:
					maxWait = time.Minute
				}
				w, err := l.Reserve(rctx, maxWait)
				got := describe(w, err)
				if !sameDecision(got, st.want) {
					t.Fatalf("step %d (at +%s): Reserve(maxWait %s) = %s, want %s", i, now.Sub(start), maxWait, got, st.want)
				}
			}
		})
	}
}

// decision is what Reserve said: "go", "wait <d>" or "refused".
type decision struct {
	kind string
	wait time.Duration
}

func (d decision) String() string {
	if d.kind == "wait" {
		return fmt.Sprintf("wait %s", d.wait)
	}
	return d.kind
}

func describe(w vpay.Reservation, err error) decision {
	switch {
	case err != nil && errors.Is(err, vpay.ErrRateLimited):
		return decision{kind: "refused"}
	case err != nil:
		return decision{kind: "error: " + err.Error()}
	case w.For <= 0:
		return decision{kind: "go"}
	}
	return decision{kind: "wait", wait: w.For}
}

func sameDecision(got, want decision) bool {
	if got.kind != want.kind {
		return false
	}
	diff := got.wait - want.wait
	return diff < time.Millisecond && diff > -time.Millisecond
}

var (
	goNow   = decision{kind: "go"}
	refused = decision{kind: "refused"}
)

func waitFor(d time.Duration) decision { return decision{kind: "wait", wait: d} }

// observed is an answer's rate-limit state, its Reset relative to the
// scenario's start.
type observed struct {
	limit, remaining int
	reset            time.Duration
	throttled        bool
}

type limiterStep struct {
	advance time.Duration // move the clock first
	dropped bool          // then tell Unanswered, or else
	observe *observed     // Observe this, or else Reserve:
	maxWait time.Duration // 0: a minute
	low     bool          // a vpay.WithLowPriority call (its share: the default)
	want    decision
}

// noAnswer is a request let go that gets no answer (a dropped connection,
// a timeout, a cancelled ctx).
var noAnswer = limiterStep{dropped: true}

// times repeats steps n times.
func times(n int, steps ...limiterStep) []limiterStep {
	var out []limiterStep
	for range n {
		out = append(out, steps...)
	}
	return out
}

// concat joins runs of steps.
func concat(runs ...[]limiterStep) []limiterStep {
	var out []limiterStep
	for _, r := range runs {
		out = append(out, r...)
	}
	return out
}

func background(want decision) limiterStep { return limiterStep{low: true, want: want} }

func reserve(want decision) limiterStep { return limiterStep{want: want} }
func at(d time.Duration, s limiterStep) limiterStep {
	s.advance = d
	return s
}
func answer(limit, remaining int, reset time.Duration) limiterStep {
	return limiterStep{observe: &observed{limit: limit, remaining: remaining, reset: reset}}
}
func throttledUntil(reset time.Duration) limiterStep {
	return limiterStep{observe: &observed{reset: reset, throttled: true}}
}

var limiterScenarios = []struct {
	name  string
	plan  vpay.Plan
	steps []limiterStep
}{
	{"cold client paced at the plan's rate, one second's burst", vpay.Plan{PerMinute: 120}, []limiterStep{
		reserve(goNow), reserve(goNow), reserve(waitFor(500 * time.Millisecond)),
		at(500*time.Millisecond, reserve(goNow)),
	}},
	{"a fractional burst rounds up", vpay.Plan{PerMinute: 90}, []limiterStep{
		reserve(goNow), reserve(goNow), reserve(waitFor(667 * time.Millisecond)),
	}},
	{"a known window counts down, then waits for its Reset", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 2, 30*time.Second),
		reserve(goNow), reserve(goNow),
		reserve(waitFor(30 * time.Second)),
		{maxWait: 10 * time.Second, want: refused},
	}},
	{"a lower Remaining (another process) wins over the count", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 10, 30*time.Second),
		reserve(goNow),
		answer(10, 2, 30*time.Second),
		reserve(goNow), reserve(goNow),
		reserve(waitFor(30 * time.Second)),
	}},
	{"a 429 pauses until its Reset", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 5, 60*time.Second),
		throttledUntil(5 * time.Second),
		reserve(waitFor(5 * time.Second)),
		at(5*time.Second, reserve(goNow)),
	}},
	{"the next window starts full", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(3, 3, 10*time.Second),
		reserve(goNow), answer(3, 2, 10*time.Second),
		reserve(goNow), answer(3, 1, 10*time.Second),
		reserve(goNow), answer(3, 0, 10*time.Second),
		reserve(waitFor(10 * time.Second)),
		at(10*time.Second, reserve(goNow)), reserve(goNow), reserve(goNow),
		// The new window's end is a guess: one documented minute on, until
		// an answer says (or successive Resets teach the length).
		reserve(waitFor(60 * time.Second)),
	}},
	{"requests in flight at the boundary hold a slot in the next window", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(3, 3, 10*time.Second),
		reserve(goNow), reserve(goNow), reserve(goNow),
		answer(3, 2, 10*time.Second), // one answered; two still in flight
		at(10*time.Second, reserve(goNow)),
		reserve(waitFor(60 * time.Second)), // two slots held for the stragglers
		answer(3, 2, 10*time.Second),       // one was counted in the old window: its slot comes back
		reserve(goNow),
		answer(3, 0, 20*time.Second), // the other counted in the new one: its slot stays spent
		reserve(waitFor(10 * time.Second)),
	}},
	// A slot is held for a request in flight at one rollover only: at the
	// next, the new window holds back no more than the old one let go.
	{"a request in flight across two rollovers holds a slot in the next window only", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(1, 1, 10*time.Second),
		reserve(goNow), // in flight from here on: neither answered nor dropped
		at(10*time.Second, reserve(waitFor(60*time.Second))), // the window's one slot held for it
		at(60*time.Second, reserve(goNow)),                   // the window after: nothing held
		reserve(waitFor(60 * time.Second)),
	}},
	{"a probe in flight at the rollover holds no slot", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 5, 60*time.Second),
		throttledUntil(24 * time.Hour),
		at(time.Minute, reserve(goNow)), // the probe, never answered
		at(24*time.Hour-time.Minute, reserve(goNow)),
		reserve(goNow), reserve(goNow), reserve(goNow), reserve(goNow),
		reserve(goNow), reserve(goNow), reserve(goNow), reserve(goNow),
		reserve(goNow), // the whole window of 10: the probe was let go in none
		reserve(waitFor(60 * time.Second)),
	}},
	{"low-priority calls use half a window and never wait", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 10, 30*time.Second),
		background(goNow), background(goNow), background(goNow), background(goNow), background(goNow),
		background(refused), // half the window is spent: the rest is the customers'
		reserve(goNow), reserve(goNow), reserve(goNow), reserve(goNow), reserve(goNow),
		reserve(waitFor(30 * time.Second)),
		background(refused),
		at(30*time.Second, answer(10, 10, 60*time.Second)),
		background(goNow), // a new window, a new share
	}},
	{"a low-priority call is never paced", vpay.Plan{PerMinute: 120}, []limiterStep{
		background(goNow), background(goNow),
		background(refused), // a normal call would wait 500 ms
		reserve(waitFor(500 * time.Millisecond)),
	}},
	{"requests that get no answer hold no slot in later windows", vpay.PlanStarter, concat(
		[]limiterStep{answer(20, 20, 60*time.Second)},
		// A flaky network drops 15 requests; 5 more are answered.
		times(15, reserve(goNow), noAnswer),
		[]limiterStep{
			reserve(goNow), answer(20, 4, 60*time.Second), reserve(goNow), answer(20, 3, 60*time.Second),
			reserve(goNow), answer(20, 2, 60*time.Second), reserve(goNow), answer(20, 1, 60*time.Second),
			reserve(goNow), answer(20, 0, 60*time.Second),
		},
		[]limiterStep{reserve(waitFor(60 * time.Second))},
		// Each later window has its whole budget, though this one's
		// requests are dropped too.
		[]limiterStep{at(60*time.Second, reserve(goNow)), noAnswer},
		times(19, reserve(goNow), noAnswer),
		[]limiterStep{reserve(waitFor(60 * time.Second))},
		[]limiterStep{at(60*time.Second, reserve(goNow)), noAnswer},
		times(19, reserve(goNow), noAnswer),
		[]limiterStep{reserve(waitFor(60 * time.Second))},
	)},
	{"a window announced spent for a day is probed", vpay.Plan{PerMinute: 120}, []limiterStep{
		answer(10, 5, 60*time.Second),
		throttledUntil(24 * time.Hour),
		reserve(refused),
		at(59*time.Second, reserve(refused)),
		at(2*time.Second, reserve(goNow)), // the probe, a minute after the announcement
		throttledUntil(24 * time.Hour),
		reserve(refused),
		at(time.Minute, reserve(refused)),
		at(time.Minute+time.Second, reserve(goNow)), // two minutes later
		answer(10, 9, 24*time.Hour-4*time.Minute),   // the probe's answer is normal
		reserve(goNow),
	}},
}

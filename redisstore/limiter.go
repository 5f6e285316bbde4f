package redisstore

import (
	"context"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/vonsung/vpay-go"
)

// Limiter is a vpay.Limiter shared by every replica through Redis: one
// budget for the API key. While no response has shown the server's window,
// a GCRA at the plan's rate paces the fleet; once one has, the window
// (Limit, Remaining, Reset) lives in Redis and every replica's request is
// counted against it, so together they use the quota without earning a
// 429. A 429 seen by one replica pauses all of them until its Reset.
type Limiter struct {
	rdb   redis.UniversalClient
	key   string
	plan  vpay.Plan
	local vpay.Limiter
	h     *health
	now   func() time.Time // the scripts' clock; a test's fake one

	// wake is closed when this process observes an answer, so that its
	// waiting callers ask again at once; other replicas' answers reach
	// them at the end of the wait Redis gave.
	mu   sync.Mutex
	wake chan struct{}
}

var _ vpay.Limiter = (*Limiter)(nil)

// NewLimiter returns a Limiter for an API key on plan.
func NewLimiter(rdb redis.UniversalClient, plan vpay.Plan, opts ...Option) *Limiter {
	o := newOptions("NewLimiter", rdb, opts)
	if plan.PerMinute <= 0 || plan.PerDay < 0 {
		panic(fmt.Sprintf("redisstore: NewLimiter: invalid plan %+v: PerMinute must be positive (vpay.PlanStarter, vpay.PlanGrowth or your own)", plan))
	}
	return &Limiter{
		rdb:   rdb,
		key:   o.key("ratelimit"),
		plan:  plan,
		local: vpay.NewLimiter(plan),
		h:     &health{what: "limiter", log: o.logger, retryDown: o.retryDown},
		now:   time.Now,
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
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	share, _ := vpay.LowPriorityShare(ctx) // 0 for a normal call
	res, err := reserveScript.Run(rctx, l.rdb, []string{l.key},
		now.UnixMilli(), maxWait.Milliseconds(), interval, burst, share).Int64Slice()
	if l.h.result(err) {
		return l.local.Reserve(ctx, maxWait)
	}
	if err != nil {
		return vpay.Reservation{}, err
	}
	wait, until := res[0], res[1]
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
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake == nil {
		l.wake = make(chan struct{})
	}
	return vpay.Reservation{For: time.Duration(wait) * time.Millisecond, Wake: l.wake}, nil
}

// Answered implements vpay.Limiter.
func (l *Limiter) Answered(ctx context.Context, rl vpay.RateLimit, throttled bool) {
	defer l.wakeWaiters(rl, throttled)
	l.local.Answered(ctx, rl, throttled)
	if !l.h.usable() {
		return
	}
	// Called for an answer without headers too: the script counts every
	// answer against the requests in flight.
	thr := 0
	if throttled {
		thr = 1
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	err := answeredScript.Run(rctx, l.rdb, []string{l.key},
		l.now().UnixMilli(), rl.Limit, rl.Remaining, rl.Reset.UnixMilli(), thr).Err()
	l.h.result(err)
}

// Unanswered implements vpay.Limiter: the request is no longer in flight
// for any replica.
func (l *Limiter) Unanswered(ctx context.Context) {
	l.local.Unanswered(ctx)
	if !l.h.usable() {
		return
	}
	rctx, cancel := context.WithTimeout(ctx, redisTimeout)
	defer cancel()
	l.h.result(unansweredScript.Run(rctx, l.rdb, []string{l.key}).Err())
}

// wakeWaiters wakes this process's waiting callers after an answer that
// may let one of them go; Redis decides when they ask again.
func (l *Limiter) wakeWaiters(rl vpay.RateLimit, throttled bool) {
	if throttled || (rl.Remaining == 0 && !rl.IsZero()) {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.wake != nil {
		close(l.wake)
		l.wake = nil
	}
}

// The scripts keep the state of one key's window in a hash; all times are
// unix milliseconds of the callers' clocks. They are the default limiter's
// algorithm (package vpay, limiter.go: localLimiter), moved into Redis so
// that every replica sees one state.
const stateLua = `
-- One hash per API key; its fields keep their short names (the stored
-- format), the locals read as the Go limiter's fields (vpay's localLimiter):
-- limit, remaining: the window as the last answer announced and our count;
-- wend=windowEnd (ms), est=estimated (1 while windowEnd is our guess);
-- wlen=windowLen, learnt from successive Resets; blind: requests let go
-- while no window was known; tat=theoreticalArrival of the pacing GCRA;
-- last=lastReset confirmed by an answer; pat=probeAt, pev=probeEvery for a
-- spent window announced far ahead; infl=inflight (let go, not answered);
-- grants: let go in this window; strag=stragglers: slots held in this
-- window for requests of the last one still in flight.
local key = KEYS[1]
local state = redis.call('HMGET', key, 'limit', 'remaining', 'wend', 'est', 'wlen', 'blind', 'tat', 'last', 'pat', 'pev', 'infl', 'grants', 'strag')
local limit = tonumber(state[1]) or 0
local remaining = tonumber(state[2]) or 0
local windowEnd = tonumber(state[3]) or 0
local estimated = tonumber(state[4]) or 0
local windowLen = tonumber(state[5]) or 60000
local blind = tonumber(state[6]) or 0
local theoreticalArrival = tonumber(state[7]) or 0
local lastReset = tonumber(state[8]) or 0
local probeAt = tonumber(state[9]) or 0
local probeEvery = tonumber(state[10]) or 0
local inflight = tonumber(state[11]) or 0
local grants = tonumber(state[12]) or 0
local stragglers = tonumber(state[13]) or 0
local function save()
	redis.call('HSET', key, 'limit', limit, 'remaining', remaining, 'wend', windowEnd, 'est', estimated,
		'wlen', windowLen, 'blind', blind, 'tat', theoreticalArrival, 'last', lastReset, 'pat', probeAt, 'pev', probeEvery,
		'infl', inflight, 'grants', grants, 'strag', stragglers)
	redis.call('PEXPIRE', key, 86400000)
end
`

var reserveScript = redis.NewScript(stateLua + `
local now = tonumber(ARGV[1])
local maxWait = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local lowShare = tonumber(ARGV[5])
if windowEnd > 0 and now >= windowEnd then
	local nextEnd = windowEnd + windowLen
	while nextEnd <= now do nextEnd = nextEnd + windowLen end
	-- Requests let through in the window that ended and not answered yet
	-- may reach the server after its boundary: hold a slot for each.
	local held = math.min(inflight, grants)
	remaining = math.max(limit - held, 0)
	stragglers = held
	inflight = held
	grants = 0
	windowEnd = nextEnd
	estimated = 1
	probeEvery = 0
	if limit == 0 then windowEnd = 0 end
end
if windowEnd > 0 then
	if remaining <= 0 then
		local wait = windowEnd - now
		if wait > maxWait and probeEvery > 0 and now >= probeAt then
			-- one probe for the whole fleet
			probeEvery = math.min(probeEvery * 2, 3600000)
			probeAt = now + probeEvery
			inflight = inflight + 1
			save()
			return {0, windowEnd}
		end
		save()
		if wait > maxWait then return {-1, windowEnd} end
		return {wait, windowEnd}
	end
	if lowShare > 0 and limit > 0 and (limit - remaining) >= lowShare * limit then
		-- background work has used its share of this window
		save()
		return {-1, windowEnd}
	end
	remaining = remaining - 1
	grants = grants + 1
	inflight = inflight + 1
	save()
	return {0, windowEnd}
end
local start = math.max(theoreticalArrival, now)
local allow = start + interval - interval * burst
-- Intervals like 666.67 ms leave float dust: a microsecond is no wait.
if allow > now + 0.001 then
	local wait = math.ceil(allow - now)
	save()
	if wait > maxWait then return {-1, allow} end
	return {wait, allow}
end
theoreticalArrival = start + interval
blind = blind + 1
inflight = inflight + 1
save()
return {0, 0}
`)

var answeredScript = redis.NewScript(stateLua + `
local now = tonumber(ARGV[1])
local answerLimit = tonumber(ARGV[2])
local answerRemaining = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local throttled = tonumber(ARGV[5])
local function done()
	-- A spent window announced to end over a minute away is probed.
	if probeEvery == 0 and windowEnd > 0 and remaining <= 0 and estimated == 0 and windowEnd - now > 60000 then
		probeEvery = 60000
		probeAt = now + 60000
	end
	save()
	return 0
end
inflight = math.max(inflight - 1, 0)
if reset > 0 and reset <= now and stragglers > 0 then
	-- A request held for was counted in the window that ended.
	stragglers = stragglers - 1
	remaining = remaining + 1
end
if answerLimit > 0 then limit = answerLimit end
if reset <= now then return done() end
if throttled == 1 then
	remaining = 0
	blind = 0
	windowEnd = reset
	estimated = 0
	return done()
end
if probeEvery > 0 then
	-- A normal answer replaces the announced window.
	remaining = answerRemaining
	windowEnd = reset
	estimated = 0
	lastReset = reset
	blind = 0
	if answerRemaining > 0 then probeEvery = 0 end
	return done()
end
if lastReset > 0 and reset > lastReset and reset - lastReset < windowLen then windowLen = reset - lastReset end
if reset > lastReset then lastReset = reset end
if windowEnd == 0 then
	local counted = math.max(limit - answerRemaining, 1)
	remaining = math.max(answerRemaining - math.max(blind - counted, 0), 0)
	windowEnd = reset
	blind = 0
elseif reset == windowEnd or estimated == 1 then
	remaining = math.min(remaining, answerRemaining)
	windowEnd = reset
	estimated = 0
elseif reset > windowEnd then
	remaining = answerRemaining
	windowEnd = reset
end
return done()
`)

// unansweredScript forgets a request in flight that will get no answer; a
// slot held for it in the current window stays spent.
var unansweredScript = redis.NewScript(stateLua + `
inflight = math.max(inflight - 1, 0)
save()
return 0
`)

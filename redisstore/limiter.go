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
	err := observeScript.Run(rctx, l.rdb, []string{l.key},
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
local k = KEYS[1]
local s = redis.call('HMGET', k, 'limit', 'remaining', 'wend', 'est', 'wlen', 'blind', 'tat', 'last', 'pat', 'pev', 'infl', 'grants', 'strag')
local limit = tonumber(s[1]) or 0
local remaining = tonumber(s[2]) or 0
local wend = tonumber(s[3]) or 0
local est = tonumber(s[4]) or 0
local wlen = tonumber(s[5]) or 60000
local blind = tonumber(s[6]) or 0
local tat = tonumber(s[7]) or 0
local last = tonumber(s[8]) or 0
local pat = tonumber(s[9]) or 0
local pev = tonumber(s[10]) or 0
local infl = tonumber(s[11]) or 0
local grants = tonumber(s[12]) or 0
local strag = tonumber(s[13]) or 0
local function save()
	redis.call('HSET', k, 'limit', limit, 'remaining', remaining, 'wend', wend, 'est', est,
		'wlen', wlen, 'blind', blind, 'tat', tat, 'last', last, 'pat', pat, 'pev', pev,
		'infl', infl, 'grants', grants, 'strag', strag)
	redis.call('PEXPIRE', k, 86400000)
end
`

var reserveScript = redis.NewScript(stateLua + `
local now = tonumber(ARGV[1])
local maxw = tonumber(ARGV[2])
local interval = tonumber(ARGV[3])
local burst = tonumber(ARGV[4])
local lowshare = tonumber(ARGV[5])
if wend > 0 and now >= wend then
	local e = wend + wlen
	while e <= now do e = e + wlen end
	-- Requests let through in the window that ended and not answered yet
	-- may reach the server after its boundary: hold a slot for each.
	local held = math.min(infl, grants)
	remaining = math.max(limit - held, 0)
	strag = held
	infl = held
	grants = 0
	wend = e
	est = 1
	pev = 0
	if limit == 0 then wend = 0 end
end
if wend > 0 then
	if remaining <= 0 then
		local wait = wend - now
		if wait > maxw and pev > 0 and now >= pat then
			-- one probe for the whole fleet
			pev = math.min(pev * 2, 3600000)
			pat = now + pev
			infl = infl + 1
			save()
			return {0, wend}
		end
		save()
		if wait > maxw then return {-1, wend} end
		return {wait, wend}
	end
	if lowshare > 0 and limit > 0 and (limit - remaining) >= lowshare * limit then
		-- background work has used its share of this window
		save()
		return {-1, wend}
	end
	remaining = remaining - 1
	grants = grants + 1
	infl = infl + 1
	save()
	return {0, wend}
end
local t = math.max(tat, now)
local allow = t + interval - interval * burst
-- Intervals like 666.67 ms leave float dust: a microsecond is no wait.
if allow > now + 0.001 then
	local wait = math.ceil(allow - now)
	save()
	if wait > maxw then return {-1, allow} end
	return {wait, allow}
end
tat = t + interval
blind = blind + 1
infl = infl + 1
save()
return {0, 0}
`)

var observeScript = redis.NewScript(stateLua + `
local now = tonumber(ARGV[1])
local rlimit = tonumber(ARGV[2])
local rrem = tonumber(ARGV[3])
local reset = tonumber(ARGV[4])
local throttled = tonumber(ARGV[5])
local function done()
	-- A spent window announced to end over a minute away is probed.
	if pev == 0 and wend > 0 and remaining <= 0 and est == 0 and wend - now > 60000 then
		pev = 60000
		pat = now + 60000
	end
	save()
	return 0
end
infl = math.max(infl - 1, 0)
if reset > 0 and reset <= now and strag > 0 then
	-- A request held for was counted in the window that ended.
	strag = strag - 1
	remaining = remaining + 1
end
if rlimit > 0 then limit = rlimit end
if reset <= now then return done() end
if throttled == 1 then
	remaining = 0
	blind = 0
	wend = reset
	est = 0
	return done()
end
if pev > 0 then
	-- A normal answer replaces the announced window.
	remaining = rrem
	wend = reset
	est = 0
	last = reset
	blind = 0
	if rrem > 0 then pev = 0 end
	return done()
end
if last > 0 and reset > last and reset - last < wlen then wlen = reset - last end
if reset > last then last = reset end
if wend == 0 then
	local counted = math.max(limit - rrem, 1)
	remaining = math.max(rrem - math.max(blind - counted, 0), 0)
	wend = reset
	blind = 0
elseif reset == wend or est == 1 then
	remaining = math.min(remaining, rrem)
	wend = reset
	est = 0
elseif reset > wend then
	remaining = rrem
	wend = reset
end
return done()
`)

// unansweredScript forgets a request in flight that will get no answer; a
// slot held for it in the current window stays spent.
var unansweredScript = redis.NewScript(stateLua + `
infl = math.max(infl - 1, 0)
save()
return 0
`)

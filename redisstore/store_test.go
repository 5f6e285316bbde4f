package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
	"github.com/vonsung/vpay-go/internal/testutil"
	"github.com/vonsung/vpay-go/vpaytest/limitertest"
	"github.com/vonsung/vpay-go/webhook"
)

func newToken(access string, life time.Duration) *vpay.Token {
	now := time.Now()
	return &vpay.Token{AccessToken: access, RefreshToken: "r-" + access, Mode: vpay.ModeSandbox, IssuedAt: now, Expiry: now.Add(life)}
}

func TestTokenStoreOneFetchAcrossReplicas(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	var fetches atomic.Int64
	release := make(chan struct{})
	fetch := func(context.Context) (*vpay.Token, error) {
		fetches.Add(1)
		testutil.Wait(t, release, "every replica to wait") // every replica is waiting by now
		return newToken("shared-1", time.Minute), nil
	}
	const replicas, perReplica = 8, 25
	var wg sync.WaitGroup
	got := make(chan string, replicas*perReplica)
	for range replicas {
		s := NewTokenStore(r.Client(), opt)
		for range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tok, err := s.Refresh(context.Background(), nil, fetch)
				if assert.NoError(t, err) {
					got <- tok.AccessToken
				}
			}()
		}
	}
	require.Eventually(t, func() bool { return fetches.Load() == 1 }, 5*time.Second, time.Millisecond)
	close(release)
	wg.Wait()
	close(got)
	for a := range got {
		assert.Equal(t, "shared-1", a)
	}
	assert.EqualValues(t, 1, fetches.Load())

	other := NewTokenStore(r.Client(), opt)
	tok, err := other.Load(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "shared-1", tok.AccessToken)
	assert.Equal(t, vpay.ModeSandbox, tok.Mode)
	assert.WithinDuration(t, time.Now().Add(time.Minute), tok.Expiry, 2*time.Second)
}

func TestTokenStoreInvalidateIsCompareAndDelete(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	a, b := NewTokenStore(r.Client(), opt), NewTokenStore(r.Client(), opt)
	ctx := context.Background()
	old, err := a.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("old", time.Minute), nil })
	require.NoError(t, err)
	newer, err := b.Refresh(ctx, old, func(context.Context) (*vpay.Token, error) { return newToken("new", time.Minute), nil })
	require.NoError(t, err)
	require.NoError(t, a.Invalidate(ctx, old)) // a late 401 on the old token
	cur, err := b.Load(ctx)
	require.NoError(t, err)
	assert.Equal(t, newer.AccessToken, cur.AccessToken, "the replacement survives")
	require.NoError(t, a.Invalidate(ctx, newer))
	cur, err = b.Load(ctx)
	require.NoError(t, err)
	assert.Nil(t, cur)
}

func TestTokenStoreExpiresWithToken(t *testing.T) {
	r := useRedis(t)
	s := NewTokenStore(r.Client(), ns(t))
	_, err := s.Refresh(context.Background(), nil, func(context.Context) (*vpay.Token, error) { return newToken("short", 50*time.Millisecond), nil })
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		tok, err := s.rdb.HGetAll(context.Background(), s.key).Result()
		return err == nil && len(tok) == 0
	}, 5*time.Second, 10*time.Millisecond, "Redis drops the token at its expiry")
}

func TestTokenStoreDeadLockHolder(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	s := NewTokenStore(r.Client(), opt, WithLockTTL(100*time.Millisecond))
	// A replica took the lock and died.
	require.NoError(t, s.rdb.Set(context.Background(), s.lock, "dead-replica", 100*time.Millisecond).Err())
	tok, err := s.Refresh(context.Background(), nil, func(context.Context) (*vpay.Token, error) { return newToken("after", time.Minute), nil })
	require.NoError(t, err)
	assert.Equal(t, "after", tok.AccessToken)
}

func TestLimiterShared(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	plan := vpay.Plan{PerMinute: 6000}
	a, b := NewLimiter(r.Client(), plan, opt), NewLimiter(r.Client(), plan, opt)
	ctx := context.Background()

	// A sees the window spent; B, another replica, holds its next request.
	reset := time.Now().Add(30 * time.Second)
	a.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 0, Reset: reset}, false)
	w0, err := b.Reserve(ctx, time.Minute)
	wait := w0.For
	require.NoError(t, err)
	assert.InDelta(t, time.Until(reset).Seconds(), wait.Seconds(), 1)
	_, err = b.Reserve(ctx, time.Second)
	assert.ErrorIs(t, err, vpay.ErrRateLimited, "past MaxWait it fails fast")

	// The window rolls: B counts what remains, A sees B's count.
	opt2 := ns(t)
	c, d := NewLimiter(r.Client(), plan, opt2), NewLimiter(r.Client(), plan, opt2)
	c.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 3, Reset: time.Now().Add(time.Minute)}, false)
	for range 3 {
		w, err := d.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		assert.Zero(t, w.For)
	}
	w, err := c.Reserve(ctx, 2*time.Minute)
	require.NoError(t, err)
	assert.Greater(t, w.For, 50*time.Second, "the three remaining were spent by the other replica")

	// A 429 on one replica pauses the others until its Reset.
	opt3 := ns(t)
	e, f := NewLimiter(r.Client(), plan, opt3), NewLimiter(r.Client(), plan, opt3)
	e.Answered(ctx, vpay.RateLimit{Limit: 100, Remaining: 50, Reset: time.Now().Add(time.Minute)}, false)
	e.Answered(ctx, vpay.RateLimit{Limit: 100, Reset: time.Now().Add(5 * time.Second)}, true)
	w, err = f.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 5, w.For.Seconds(), 1)
}

func TestLimiterProbesAnAnnouncedWindowOncePerFleet(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	now := time.Now()
	clock := func() time.Time { return now }
	a, b := NewLimiter(r.Client(), vpay.PlanGrowth, opt), NewLimiter(r.Client(), vpay.PlanGrowth, opt)
	a.now, b.now = clock, clock
	ctx := context.Background()
	// A 429 announcing a window spent for a day (the most the client lets a
	// response announce).
	a.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(24 * time.Hour)}, true)

	granted := func() (n int) {
		for _, l := range []*Limiter{a, b, a, b} {
			if w, err := l.Reserve(ctx, time.Minute); err == nil && w.For == 0 {
				n++
			}
		}
		return n
	}
	assert.Zero(t, granted(), "refused at once")
	now = now.Add(59 * time.Second)
	assert.Zero(t, granted())
	now = now.Add(2 * time.Second)
	assert.Equal(t, 1, granted(), "after a minute, one probe for the whole fleet")
	a.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: now.Add(24 * time.Hour)}, true)
	now = now.Add(time.Minute)
	assert.Zero(t, granted(), "the probe's interval doubled")
	now = now.Add(time.Minute + time.Second)
	assert.Equal(t, 1, granted())

	// The probe's answer is normal: it replaces the announcement.
	b.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 50, Reset: now.Add(30 * time.Second)}, false)
	assert.Equal(t, 4, granted(), "calls flow again")
}

func TestLimiterPacesColdFleet(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	plan := vpay.Plan{PerMinute: 600} // 10 a second, burst of 10
	var granted int
	for i := range 4 {
		l := NewLimiter(r.Client(), plan, opt)
		for range 5 {
			w, err := l.Reserve(context.Background(), time.Minute)
			require.NoError(t, err, "replica %d", i)
			if w.For == 0 {
				granted++
			}
		}
	}
	assert.Equal(t, 10, granted, "the fleet shares one burst, not one each")
}

func TestDeduperShared(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	a, b := NewDeduper(r.Client(), time.Hour, opt), NewDeduper(r.Client(), time.Hour, opt)
	ctx := context.Background()
	const key = "VP1:successful"
	st, err := a.Claim(ctx, key, "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.Claimed, st)
	st, err = b.Claim(ctx, key, "b", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.InProgress, st, "the other replica must not acknowledge it yet")
	assert.ErrorIs(t, b.Extend(ctx, key, "b", time.Minute), webhook.ErrLeaseLost)
	require.NoError(t, a.Extend(ctx, key, "a", time.Minute))

	require.NoError(t, b.Release(ctx, key, "b"), "a Release by a non-owner is a no-op")
	st, _ = b.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, webhook.InProgress, st)
	require.NoError(t, a.Release(ctx, key, "a"))
	st, _ = b.Claim(ctx, key, "b", time.Minute)
	assert.Equal(t, webhook.Claimed, st, "released after a failure: the redelivery is processed")
	require.NoError(t, b.Complete(ctx, key, "b"))
	st, _ = a.Claim(ctx, key, "a", time.Minute)
	assert.Equal(t, webhook.Done, st)
	ttl, err := r.Client().PTTL(ctx, a.key(key)).Result()
	require.NoError(t, err)
	assert.Greater(t, ttl, 59*time.Minute, "done lives for the TTL, not the lease")
}

func TestDeduperLeaseOfACrashedReplicaExpires(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	a, b := NewDeduper(r.Client(), time.Hour, opt), NewDeduper(r.Client(), time.Hour, opt)
	ctx := context.Background()
	st, err := a.Claim(ctx, "VP2:successful", "a", time.Millisecond)
	require.NoError(t, err)
	require.Equal(t, webhook.Claimed, st)
	// a crashed: it never renews. Redis expires the lease itself.
	require.Eventually(t, func() bool {
		st, err := b.Claim(ctx, "VP2:successful", "b", time.Minute)
		return err == nil && st == webhook.Claimed
	}, 5*time.Second, time.Millisecond)
}

func TestFallbackWhileRedisIsDown(t *testing.T) {
	r := startRedis(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	opt := ns(t)
	s := NewTokenStore(r.Client(), opt, WithLogger(logger))
	s.h.retryDown = 0 // try Redis on every call, so recovery is seen at once
	l := NewLimiter(r.Client(), vpay.PlanGrowth, opt, WithLogger(logger))
	d := NewDeduper(r.Client(), time.Hour, opt, WithLogger(logger))
	ctx := context.Background()

	r.Stop()
	var fetches int
	fetch := func(context.Context) (*vpay.Token, error) { fetches++; return newToken("local", time.Minute), nil }
	for range 3 {
		tok, err := s.Refresh(ctx, nil, fetch)
		require.NoError(t, err, "Redis refused: the in-process store answers")
		assert.Equal(t, "local", tok.AccessToken)
	}
	assert.Equal(t, 1, fetches, "the in-process store keeps the token")
	_, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	st, err := d.Claim(ctx, "VP9:successful", "a", time.Minute)
	require.NoError(t, err)
	assert.Equal(t, webhook.Claimed, st)
	st, _ = d.Claim(ctx, "VP9:successful", "b", time.Minute)
	assert.Equal(t, webhook.InProgress, st, "the in-process deduper still de-duplicates")
	assert.Equal(t, 1, bytes.Count(logs.Bytes(), []byte(`store=token`)), "logged once, not per call")

	r.Start()
	tok, err := s.Refresh(ctx, &vpay.Token{AccessToken: "local"}, func(context.Context) (*vpay.Token, error) { return newToken("shared", time.Minute), nil })
	require.NoError(t, err)
	assert.Equal(t, "shared", tok.AccessToken)
	other := NewTokenStore(r.Client(), opt)
	cur, err := other.Load(ctx)
	require.NoError(t, err)
	require.NotNil(t, cur, "back in Redis once it returned")
	assert.Equal(t, "shared", cur.AccessToken)
	assert.Contains(t, logs.String(), "Redis is back")
}

// replyError is a Redis error reply, as go-redis returns one.
type replyError string

func (e replyError) Error() string { return string(e) }
func (replyError) RedisError()     {}

func TestServerRepliesThatMeanAnOutage(t *testing.T) {
	for reply, want := range map[string]bool{
		"READONLY You can't write against a read only replica.":                                    true,
		"LOADING Redis is loading the dataset in memory":                                           true,
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.":         true,
		"OOM command not allowed when used memory > 'maxmemory'.":                                  true,
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.": true,
		"CLUSTERDOWN The cluster is down":                                                          true,
		"TRYAGAIN Multiple keys request during rehashing of slot":                                  true,
		"WRONGTYPE Operation against a key holding the wrong kind of value":                        false,
		"NOSCRIPT No matching script. Please use EVAL.":                                            false,
		"ERR Error running script":                                                                 false,
	} {
		assert.Equal(t, want, isOutage(replyError(reply)), reply)
	}
}

func TestReadOnlyOrFullRedisFallsBack(t *testing.T) {
	for name, breakIt := range map[string]func(ctx context.Context, c *redis.Client) error{
		// A failover that turns this Redis into the replica of a primary
		// that is gone: reads work, every write is READONLY.
		"read-only replica": func(ctx context.Context, c *redis.Client) error {
			return c.SlaveOf(ctx, "127.0.0.1", strconv.Itoa(freePort(t))).Err()
		},
		// maxmemory reached with noeviction: every write is OOM.
		"out of memory": func(ctx context.Context, c *redis.Client) error {
			if err := c.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
				return err
			}
			return c.ConfigSet(ctx, "maxmemory", "1").Err()
		},
	} {
		t.Run(name, func(t *testing.T) {
			r := startRedis(t)
			ctx := context.Background()
			var logs bytes.Buffer
			opt := ns(t)
			logger := WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))
			s := NewTokenStore(r.Client(), opt, logger)
			l := NewLimiter(r.Client(), vpay.PlanGrowth, opt, logger)
			d := NewDeduper(r.Client(), time.Hour, opt, logger)
			require.NoError(t, breakIt(ctx, r.Client()))

			tok, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return newToken("local", time.Minute), nil })
			require.NoError(t, err, "the token store falls back")
			assert.Equal(t, "local", tok.AccessToken)
			_, err = l.Reserve(ctx, time.Minute)
			require.NoError(t, err, "the limiter falls back")
			st, err := d.Claim(ctx, "VP1:successful", "a", time.Minute)
			require.NoError(t, err, "the deduper falls back")
			assert.Equal(t, webhook.Claimed, st)
			assert.Contains(t, logs.String(), "using the in-process fallback")
		})
	}
}

// TestLimiterConformance: the Redis limiter makes the default limiter's
// decisions, step for step (limitertest.TestLimiter).
func TestLimiterConformance(t *testing.T) {
	r := useRedis(t)
	limitertest.TestLimiter(t, func(plan vpay.Plan, now func() time.Time) vpay.Limiter {
		l := NewLimiter(r.Client(), plan, ns(t))
		l.now = now
		return l
	})
}

// TestDeduperTTLDefaultsOnlyWhenNotPositive: "done" lives for the TTL
// given, and for webhook.DefaultDedupeTTL when none is (0 must not mean
// "remember for ever", nor a TTL given be replaced by the default).
func TestDeduperTTLDefaultsOnlyWhenNotPositive(t *testing.T) {
	r := useRedis(t)
	ctx := context.Background()
	for _, tc := range []struct {
		ttl      time.Duration
		min, max time.Duration
	}{
		{0, webhook.DefaultDedupeTTL - time.Hour, webhook.DefaultDedupeTTL},
		{-time.Second, webhook.DefaultDedupeTTL - time.Hour, webhook.DefaultDedupeTTL},
		{time.Hour, 59 * time.Minute, time.Hour},
	} {
		t.Run(tc.ttl.String(), func(t *testing.T) {
			d := NewDeduper(r.Client(), tc.ttl, ns(t))
			st, err := d.Claim(ctx, "VP3:successful", "a", time.Minute)
			require.NoError(t, err)
			require.Equal(t, webhook.Claimed, st)
			require.NoError(t, d.Complete(ctx, "VP3:successful", "a"))
			pttl, err := r.Client().PTTL(ctx, d.key("VP3:successful")).Result()
			require.NoError(t, err)
			assert.Greater(t, pttl, tc.min)
			assert.LessOrEqual(t, pttl, tc.max)
		})
	}
}

// TestTokenStoreLockLapsesByDefault: without WithLockTTL the refresh lock
// still expires (30 s), so a replica that dies while fetching does not
// block every other replica's refresh for ever.
func TestTokenStoreLockLapsesByDefault(t *testing.T) {
	r := useRedis(t)
	s := NewTokenStore(r.Client(), ns(t))
	var pttl time.Duration
	_, err := s.Refresh(context.Background(), nil, func(ctx context.Context) (*vpay.Token, error) {
		var err error
		pttl, err = s.rdb.PTTL(ctx, s.lock).Result() // while this replica holds the lock
		if err != nil {
			return nil, err
		}
		return newToken("t", time.Minute), nil
	})
	require.NoError(t, err)
	assert.Greater(t, pttl, 20*time.Second)
	assert.LessOrEqual(t, pttl, 30*time.Second)
}

// lockTries calls seen for each SET of key (a try for the refresh lock)
// before it reaches Redis.
type lockTries struct {
	key  string
	seen func()
}

func (h lockTries) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h lockTries) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h lockTries) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if a := cmd.Args(); cmd.Name() == "set" && len(a) > 1 && a[1] == h.key {
			h.seen()
		}
		return next(ctx, cmd)
	}
}

// TestTokenStoreWaiterDoesNotSpin: a replica waiting for another's refresh
// asks Redis again every 25 ms, not in a busy loop that would load Redis
// with every waiting goroutine of the fleet. Load only lengthens the gaps,
// so the lower bound cannot flake.
func TestTokenStoreWaiterDoesNotSpin(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	rdb := r.Client()
	s := NewTokenStore(rdb, opt)
	require.NoError(t, s.rdb.Set(context.Background(), s.lock, "other-replica", time.Minute).Err())
	tries := make(chan time.Time, 100)
	rdb.AddHook(lockTries{key: s.lock, seen: func() {
		select {
		case tries <- time.Now():
		default:
		}
	}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := s.Refresh(ctx, nil, func(context.Context) (*vpay.Token, error) { return nil, assert.AnError })
		done <- err
	}()
	var at []time.Time
	for range 5 {
		at = append(at, testutil.Recv(t, tries, "a try for the lock"))
	}
	cancel()
	assert.ErrorIs(t, testutil.Recv(t, done, "Refresh to give up"), context.Canceled)
	for i := 1; i < len(at); i++ {
		assert.GreaterOrEqual(t, at[i].Sub(at[i-1]), 20*time.Millisecond, "gap before try %d", i)
	}
}

// TestTokenStoreTakesAnotherReplicasTokenWhileItHoldsTheLock: a replica
// whose token went stale takes the fresh one another replica stored, even
// while that replica still holds the lock, instead of waiting for the lock.
func TestTokenStoreTakesAnotherReplicasTokenWhileItHoldsTheLock(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	a, b := NewTokenStore(r.Client(), opt), NewTokenStore(r.Client(), opt)
	ctx := context.Background()
	stale := newToken("stale", time.Minute)
	_, err := a.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) { return newToken("fresh", time.Minute), nil })
	require.NoError(t, err)
	require.NoError(t, a.rdb.Set(ctx, a.lock, "other-replica", time.Minute).Err())

	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tok, err := b.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) {
		t.Error("fetched although Redis held a fresh token")
		return newToken("fetched", time.Minute), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "fresh", tok.AccessToken)
}

// TestTokenStoreLooksAgainOnceItHoldsTheLock: a token stored by another
// replica between this one's look and its lock is used, not fetched again.
func TestTokenStoreLooksAgainOnceItHoldsTheLock(t *testing.T) {
	r := useRedis(t)
	opt := ns(t)
	rdb := r.Client()
	a, b := NewTokenStore(r.Client(), opt), NewTokenStore(rdb, opt)
	ctx := context.Background()
	stale := newToken("stale", time.Minute)
	var once sync.Once
	rdb.AddHook(lockTries{key: b.lock, seen: func() {
		once.Do(func() { // b looked and found none; a stores one before b's lock
			_, err := a.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) { return newToken("from-a", time.Minute), nil })
			assert.NoError(t, err)
		})
	}})
	tok, err := b.Refresh(ctx, stale, func(context.Context) (*vpay.Token, error) {
		t.Error("fetched although another replica had just stored a token")
		return newToken("from-b", time.Minute), nil
	})
	require.NoError(t, err)
	assert.Equal(t, "from-a", tok.AccessToken)
}

// TestLimiterWakesWaitersOnAnAnswerThatFreesTheWindow: a caller held for
// a spent window is woken by an answer with requests remaining, and not by
// one that shows the window still spent.
func TestLimiterWakesWaitersOnAnAnswerThatFreesTheWindow(t *testing.T) {
	r := useRedis(t)
	l := NewLimiter(r.Client(), vpay.PlanGrowth, ns(t))
	ctx := context.Background()
	reset := time.Now().Add(30 * time.Second)
	l.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: reset}, false)
	w, err := l.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	require.Positive(t, w.For)
	require.NotNil(t, w.Wake, "a held caller can be woken")

	l.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 0, Reset: reset}, false)
	l.Answered(ctx, vpay.RateLimit{Limit: 120, Reset: reset}, true)
	select {
	case <-w.Wake:
		t.Fatal("woken by an answer that shows the window spent")
	default:
	}
	l.Answered(ctx, vpay.RateLimit{Limit: 120, Remaining: 5, Reset: reset.Add(time.Minute)}, false)
	testutil.Wait(t, w.Wake, "the waiter to be woken") // closed before Answered returns
}

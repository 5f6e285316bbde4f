package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
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
		<-release // every replica is waiting by now
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
	a.Observe(ctx, vpay.RateLimit{Limit: 100, Remaining: 0, Reset: reset}, false)
	wait, err := b.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, time.Until(reset).Seconds(), wait.Seconds(), 1)
	_, err = b.Reserve(ctx, time.Second)
	assert.ErrorIs(t, err, vpay.ErrRateLimited, "past MaxWait it fails fast")

	// The window rolls: B counts what remains, A sees B's count.
	opt2 := ns(t)
	c, d := NewLimiter(r.Client(), plan, opt2), NewLimiter(r.Client(), plan, opt2)
	c.Observe(ctx, vpay.RateLimit{Limit: 100, Remaining: 3, Reset: time.Now().Add(time.Minute)}, false)
	for range 3 {
		w, err := d.Reserve(ctx, time.Minute)
		require.NoError(t, err)
		assert.Zero(t, w)
	}
	w, err := c.Reserve(ctx, 2*time.Minute)
	require.NoError(t, err)
	assert.Greater(t, w, 50*time.Second, "the three remaining were spent by the other replica")

	// A 429 on one replica pauses the others until its Reset.
	opt3 := ns(t)
	e, f := NewLimiter(r.Client(), plan, opt3), NewLimiter(r.Client(), plan, opt3)
	e.Observe(ctx, vpay.RateLimit{Limit: 100, Remaining: 50, Reset: time.Now().Add(time.Minute)}, false)
	e.Observe(ctx, vpay.RateLimit{Limit: 100, Reset: time.Now().Add(5 * time.Second)}, true)
	w, err = f.Reserve(ctx, time.Minute)
	require.NoError(t, err)
	assert.InDelta(t, 5, w.Seconds(), 1)
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
			if w == 0 {
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
	ok, err := a.Claim(ctx, "VP1:successful")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = b.Claim(ctx, "VP1:successful")
	require.NoError(t, err)
	assert.False(t, ok, "the other replica skips it")
	require.NoError(t, a.Release(ctx, "VP1:successful"))
	ok, _ = b.Claim(ctx, "VP1:successful")
	assert.True(t, ok, "released after a failure: the redelivery is processed")
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
	ok, err := d.Claim(ctx, "VP9:successful")
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _ = d.Claim(ctx, "VP9:successful")
	assert.False(t, ok, "the in-process deduper still de-duplicates")
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

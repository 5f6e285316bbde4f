package redisstore

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go"
)

// TestInvalidOptionsAreRefused: a constructor panics on an invalid option,
// naming it, instead of running with a setting nobody wrote. No Redis is
// needed: the constructors do not connect.
func TestInvalidOptionsAreRefused(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	for _, tc := range []struct {
		name string
		make func()
		says string
	}{
		{"empty namespace", func() { NewTokenStore(rdb, WithNamespace("")) }, `WithNamespace("")`},
		{"nil logger", func() { NewDeduper(rdb, time.Hour, WithLogger(nil)) }, "WithLogger(nil)"},
		{"zero lock TTL", func() { NewTokenStore(rdb, WithLockTTL(0)) }, "WithLockTTL(0s)"},
		{"nil client", func() { NewLimiter(nil, vpay.PlanStarter) }, "nil Redis client"},
		{"zero plan", func() { NewLimiter(rdb, vpay.Plan{}) }, "invalid plan"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				r := recover()
				require.NotNil(t, r, "the constructor accepted it")
				assert.Contains(t, fmt.Sprint(r), tc.says)
			}()
			tc.make()
		})
	}
	assert.NotPanics(t, func() { NewLimiter(rdb, vpay.PlanGrowth, WithNamespace("merchant-1"), WithLockTTL(time.Second)) })
}

// TestInvalidOptionsAreAllNamed: every invalid option is named, once, in
// the order written.
func TestInvalidOptionsAreAllNamed(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = rdb.Close() })
	assert.PanicsWithValue(t,
		`redisstore: NewTokenStore: invalid option: WithNamespace(""): a namespace must not be empty; WithLockTTL(-1s): the TTL must be positive`,
		func() { NewTokenStore(rdb, WithNamespace(""), WithLockTTL(-time.Second)) })
	assert.PanicsWithValue(t, "redisstore: NewDeduper: invalid option: WithLogger(nil)",
		func() { NewDeduper(rdb, time.Hour, WithLogger(nil)) })
}

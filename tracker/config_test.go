package tracker_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go/tracker"
	"github.com/vonsung/vpay-go/vpaytest"
)

// TestNewRefusesInvalidConfig: a Config value that cannot be meant is an
// error naming the field, never replaced by a default (0 is the default).
// No database is needed: the pool connects lazily.
func TestNewRefusesInvalidConfig(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	emu := vpaytest.NewServer()
	t.Cleanup(emu.Close)
	base := func() tracker.Config {
		return tracker.Config{Client: emu.Client(), Pool: pool,
			OnUpdate: func(context.Context, pgx.Tx, tracker.Update) error { return nil }}
	}
	for _, tc := range []struct {
		name string
		edit func(*tracker.Config)
		says string
	}{
		{"no client", func(c *tracker.Config) { c.Client = nil }, "Config.Client"},
		{"no OnUpdate", func(c *tracker.Config) { c.OnUpdate = nil }, "Config.OnUpdate"},
		{"negative GiveUp", func(c *tracker.Config) { c.GiveUp = -time.Hour }, "Config.GiveUp"},
		{"negative Workers", func(c *tracker.Config) { c.Workers = -1 }, "Config.Workers"},
		{"negative RescueAfter", func(c *tracker.Config) { c.RescueAfter = -time.Second }, "Config.RescueAfter"},
		{"negative PollInterval", func(c *tracker.Config) { c.PollInterval = -time.Second }, "Config.PollInterval"},
		{"decreasing Schedule", func(c *tracker.Config) { c.Schedule = []time.Duration{time.Minute, time.Second} }, "Config.Schedule"},
		{"GiveUp before the last check", func(c *tracker.Config) {
			c.Schedule, c.GiveUp = []time.Duration{time.Minute, time.Hour}, 30*time.Minute
		}, "Config.GiveUp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.edit(&cfg)
			_, err := tracker.New(cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.says)
		})
	}
	_, err = tracker.New(base())
	assert.NoError(t, err, "the defaults are valid")
}

// TestDefaultsReachRiver: the configuration the latency figures of the
// README were measured with is what a merchant gets (100 workers, a fetch
// every 10 ms at most while busy, a poll a second while idle), and what a
// merchant sets replaces it.
func TestDefaultsReachRiver(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://nobody@127.0.0.1:1/none")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	emu := vpaytest.NewServer()
	t.Cleanup(emu.Close)
	cfg := tracker.Config{Client: emu.Client(), Pool: pool,
		OnUpdate: func(context.Context, pgx.Tx, tracker.Update) error { return nil }}
	tr, err := tracker.New(cfg)
	require.NoError(t, err)
	rc := tracker.RiverConfig(tr)
	require.Len(t, rc.Queues, 1)
	for _, q := range rc.Queues {
		assert.Equal(t, 100, q.MaxWorkers, "default workers")
	}
	assert.Equal(t, 10*time.Millisecond, rc.FetchCooldown, "a busy process fetches every 10 ms")
	assert.Equal(t, time.Second, rc.FetchPollInterval, "an idle process polls once a second")

	cfg.Workers, cfg.PollInterval = 7, 5*time.Second
	tr, err = tracker.New(cfg)
	require.NoError(t, err)
	rc = tracker.RiverConfig(tr)
	for _, q := range rc.Queues {
		assert.Equal(t, 7, q.MaxWorkers, "Config.Workers reaches River")
	}
	assert.Equal(t, 5*time.Second, rc.FetchPollInterval, "Config.PollInterval is the idle poll")
	assert.Equal(t, 10*time.Millisecond, rc.FetchCooldown)
}

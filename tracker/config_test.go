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

package pgstore

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A statement that began before the latest outage and succeeds (its
// connection answered just before the crash) is no sign that PostgreSQL
// is back: the store keeps falling back, and says nothing, until a
// statement begun after the outage succeeds.
func TestSuccessBegunBeforeAnOutageIsNoReturn(t *testing.T) {
	logs := &logSink{}
	h := newHealth("limiter", options{logger: slog.New(slog.NewTextHandler(logs, nil)), retryDown: time.Hour})
	ctx := context.Background()

	early := h.begin() // sent before the crash
	require.True(t, h.result(ctx, h.begin(), &pgconn.PgError{Code: "57P02"}), "another call sees the crash")
	require.Equal(t, 1, logs.count("unreachable"))
	assert.False(t, h.result(ctx, early, nil), "the early call's own answer is used")
	assert.False(t, h.usable(), "PostgreSQL is still thought away")
	assert.Zero(t, logs.count("is back"), "no return announced for a call begun before the outage")

	assert.False(t, h.result(ctx, h.begin(), nil))
	assert.True(t, h.usable(), "a call begun after the outage that succeeds is a return")
	assert.Equal(t, 1, logs.count("is back"))
}

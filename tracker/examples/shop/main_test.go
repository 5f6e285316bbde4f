package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vonsung/vpay-go/tracker/trackertest"
)

// TestShopRunsOnAFreshDatabase runs the example as its README says, on an
// empty PostgreSQL: it exits 0 (every order settled), prints its progress,
// and leaves no table in public.
func TestShopRunsOnAFreshDatabase(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole example: slow")
	}
	dsn := trackertest.NewPostgres(t).DSN
	bin := filepath.Join(t.TempDir(), "shop")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "VPAY_POSTGRES_DSN="+dsn)
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "exit 0 when every order settled:\n%s", out)
	assert.Contains(t, string(out), "of 5 orders settled after")
	assert.Contains(t, string(out), "Done: every order settled")

	pool, err := pgxpool.New(context.Background(), dsn)
	require.NoError(t, err)
	defer pool.Close()
	var public, own int
	require.NoError(t, pool.QueryRow(context.Background(),
		`SELECT count(*) FILTER (WHERE table_schema = 'public'), count(*) FILTER (WHERE table_schema = $1) FROM information_schema.tables`, schema).
		Scan(&public, &own))
	assert.Zero(t, public, "nothing in public")
	assert.Positive(t, own)
}

// Package trackertest starts throwaway PostgreSQL servers for tests of the
// tracker and of code built on it (an OnUpdate, an operator's tool): a
// real server, never a mock of what a merchant runs.
//
//	pg := trackertest.NewPostgres(t)
//	pool, err := pgxpool.New(ctx, pg.DSN)
//
// With VPAY_TEST_POSTGRES_DSN set, each test gets a fresh database on that
// server instead. Without either (no initdb from Debian's postgresql
// package), the test is skipped, except under CI=true, where it fails.
package trackertest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is one test's PostgreSQL. Its DSN stays valid across Kill and
// Start.
type Postgres struct {
	// DSN is the connection string of the test's database.
	DSN string

	// asPG runs a server binary as the postgres user when the test runs
	// as root; nil for a server the test did not start.
	asPG func(name string, args ...string) *exec.Cmd
	data string // the cluster's data directory
	opts string // the server's options
	log  string // the server's log file
}

// NewPostgres returns a PostgreSQL of the test's own: a cluster started
// in a temporary directory on a free loopback port (initdb and pg_ctl of
// the newest server under /usr/lib/postgresql, run through runuser as the
// postgres user when the test runs as root), stopped at the test's end.
func NewPostgres(t testing.TB) *Postgres {
	t.Helper()
	if dsn := os.Getenv("VPAY_TEST_POSTGRES_DSN"); dsn != "" {
		return &Postgres{DSN: freshDatabase(t, dsn)}
	}
	bin := pgBin(t)
	dir, err := os.MkdirTemp("", "vpay-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	root := os.Geteuid() == 0
	pg := &Postgres{data: filepath.Join(dir, "data"), log: filepath.Join(dir, "log")}
	pg.asPG = func(name string, args ...string) *exec.Cmd {
		path := filepath.Join(bin, name)
		if root {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
		}
		return exec.Command(path, args...)
	}
	if root {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	if out, err := pg.asPG("initdb", "-D", pg.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	port := freePort(t)
	pg.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	pg.Start(t)
	t.Cleanup(func() { _ = pg.asPG("pg_ctl", "-D", pg.data, "-m", "immediate", "stop").Run() })
	pg.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	return pg
}

// CanKill reports whether Kill and Start work: false on a server the test
// did not start (VPAY_TEST_POSTGRES_DSN).
func (pg *Postgres) CanKill() bool { return pg.asPG != nil }

// Kill stops the server as a crash would (pg_ctl -m immediate): every
// connection drops, open transactions are lost.
func (pg *Postgres) Kill(t testing.TB) {
	t.Helper()
	if !pg.CanKill() {
		t.Fatal("trackertest: Kill on a server the test did not start")
	}
	if out, err := pg.asPG("pg_ctl", "-D", pg.data, "-m", "immediate", "-w", "stop").CombinedOutput(); err != nil {
		t.Fatalf("pg_ctl stop: %v: %s", err, out)
	}
}

// Start starts the server again after Kill (NewPostgres starts it), and
// waits until it accepts connections.
func (pg *Postgres) Start(t testing.TB) {
	t.Helper()
	if !pg.CanKill() {
		t.Fatal("trackertest: Start on a server the test did not start")
	}
	if out, err := pg.asPG("pg_ctl", "-D", pg.data, "-o", pg.opts, "-l", pg.log, "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(pg.log)
		t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// pgBin finds the newest PostgreSQL server's bin directory.
func pgBin(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("no PostgreSQL server (initdb); .ci/run installs it (apt-get install postgresql)")
	}
	t.Skip("no PostgreSQL server: apt-get install postgresql, or set VPAY_TEST_POSTGRES_DSN")
	return ""
}

func version(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

// freshDatabase creates a database of the test's own on the server of dsn.
func freshDatabase(t testing.TB, dsn string) string {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	name := fmt.Sprintf("vpay_test_%d", time.Now().UnixNano())
	if _, err := pool.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

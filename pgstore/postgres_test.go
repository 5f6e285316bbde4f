package pgstore

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
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// pgServer is a throwaway PostgreSQL cluster of the test's own (initdb and
// pg_ctl from Debian's postgresql package, run as the postgres user when
// the test runs as root), so that a test can stop and restart it.
type pgServer struct {
	t    testing.TB
	asPG func(name string, args ...string) *exec.Cmd
	dir  string
	data string
	opts string
	log  string
	DSN  string
}

// postgres is the database a test runs on, a fresh one of its own: on the
// server of VPAY_TEST_POSTGRES_DSN when set, otherwise on a cluster the
// package's tests share (TestMain stops it). A test that stops its server
// uses startPostgres instead. Without PostgreSQL the test is skipped,
// except under CI=true, where it fails: CI installs it.
func postgres(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("VPAY_TEST_POSTGRES_DSN"); dsn != "" {
		return freshDatabase(t, dsn)
	}
	sharedPG.mu.Lock()
	defer sharedPG.mu.Unlock()
	if sharedPG.srv == nil {
		sharedPG.srv = newPostgres(t)
	}
	return freshDatabase(t, sharedPG.srv.DSN)
}

// sharedPG is the cluster postgres hands databases out of.
var sharedPG struct {
	mu  sync.Mutex
	srv *pgServer
}

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPG.srv != nil {
		sharedPG.srv.Stop()
		_ = os.RemoveAll(sharedPG.srv.dir)
	}
	os.Exit(code)
}

// startPostgres starts a cluster of the test's own on a free loopback
// port, stopped when the test ends.
func startPostgres(t testing.TB) *pgServer {
	t.Helper()
	s := newPostgres(t)
	t.Cleanup(func() {
		s.Stop()
		_ = os.RemoveAll(s.dir)
	})
	return s
}

// newPostgres starts a cluster on a free loopback port; the caller stops
// it and removes its directory.
func newPostgres(t testing.TB) *pgServer {
	t.Helper()
	bin := pgBin(t)
	dir, err := os.MkdirTemp("", "vpay-pg-")
	if err != nil {
		t.Fatal(err)
	}
	asPG := func(name string, args ...string) *exec.Cmd {
		path := filepath.Join(bin, name)
		if os.Geteuid() == 0 {
			return exec.Command("runuser", append([]string{"-u", "postgres", "--", path}, args...)...)
		}
		return exec.Command(path, args...)
	}
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chown", "postgres:postgres", dir).CombinedOutput(); err != nil {
			t.Fatalf("chown: %v: %s", err, out)
		}
	}
	s := &pgServer{t: t, asPG: asPG, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "log")}
	if out, err := asPG("initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	port := freePort(t)
	s.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	s.Start()
	return s
}

// Start starts the server and returns once it accepts connections.
func (s *pgServer) Start() {
	s.t.Helper()
	if out, err := s.asPG("pg_ctl", "-D", s.data, "-o", s.opts, "-l", s.log, "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(s.log)
		s.t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// Stop stops the server at once, as a crash would (its recovery then
// empties the UNLOGGED tables).
func (s *pgServer) Stop() {
	_ = s.asPG("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop").Run()
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

// newPool opens a pool on dsn, closed when the test ends, with a short
// connect timeout so that a stopped server is seen at once.
func newPool(t testing.TB, dsn string, maxConns int32) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.ConnectTimeout = 2 * time.Second
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// migrated is a pool on a migrated database of its own.
func migrated(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool := newPool(t, postgres(t), 0)
	if err := Migrate(context.Background(), pool); err != nil {
		t.Fatal(err)
	}
	return pool
}

var nsSeq atomic.Int64

// ns gives each test its own namespace.
func ns(t testing.TB) Option {
	return WithNamespace(fmt.Sprintf("%s-%d", t.Name(), nsSeq.Add(1)))
}

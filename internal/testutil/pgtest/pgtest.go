// Package pgtest starts the throwaway PostgreSQL clusters that the nested
// modules' tests run on (initdb and pg_ctl from Debian's postgresql
// package, run as the postgres user when the test runs as root), so that
// each module does not keep its own copy. It uses no PostgreSQL driver:
// the core module has none; a test that needs a database of its own on a
// shared server passes the statement runner its driver gives.
package pgtest

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
)

// Server is a cluster of the test's own, which the test may stop and
// start again.
type Server struct {
	t    testing.TB
	asPG func(name string, args ...string) *exec.Cmd
	dir  string
	data string
	opts string
	log  string
	// DSN connects to its postgres database as the postgres user.
	DSN string
}

// New starts a cluster on a free loopback port. The caller stops it with
// Close. Without PostgreSQL the test is skipped, except under CI=true,
// where it fails: CI installs it.
func New(t testing.TB) *Server {
	t.Helper()
	bin := binDir(t)
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
	s := &Server{t: t, asPG: asPG, dir: dir, data: filepath.Join(dir, "data"), log: filepath.Join(dir, "log")}
	if out, err := asPG("initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v: %s", err, out)
	}
	port := FreePort(t)
	s.opts = fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200", port, dir)
	s.DSN = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	s.Start()
	return s
}

// Start starts the server and returns once it accepts connections.
func (s *Server) Start() {
	s.t.Helper()
	if out, err := s.asPG("pg_ctl", "-D", s.data, "-o", s.opts, "-l", s.log, "-w", "start").CombinedOutput(); err != nil {
		log, _ := os.ReadFile(s.log)
		s.t.Fatalf("pg_ctl start: %v: %s\n%s", err, out, log)
	}
}

// Stop stops the server at once, as a crash would (its recovery then
// empties the UNLOGGED tables).
func (s *Server) Stop() {
	_ = s.asPG("pg_ctl", "-D", s.data, "-m", "immediate", "-w", "stop").Run()
}

// Close stops the server and removes its files.
func (s *Server) Close() {
	s.Stop()
	_ = os.RemoveAll(s.dir)
}

// Exec runs one statement on a database: the caller's driver.
type Exec func(ctx context.Context, dsn, stmt string) error

// FreshDatabase creates a database of the test's own on the server of dsn
// and returns its DSN.
func FreshDatabase(t testing.TB, dsn string, exec Exec) string {
	t.Helper()
	name := fmt.Sprintf("vpay_test_%d", time.Now().UnixNano())
	if err := exec(context.Background(), dsn, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// binDir finds the newest PostgreSQL server's bin directory.
func binDir(t testing.TB) string {
	t.Helper()
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(d string) int { v, _ := strconv.Atoi(filepath.Base(filepath.Dir(d))); return v }
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

// FreePort returns a loopback port nothing listens on.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

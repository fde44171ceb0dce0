// Package pgtest starts a throwaway PostgreSQL server for tests: a cluster
// made with initdb in a temporary directory, listening on a free loopback
// port, run as a non-root user when the tests run as root (initdb refuses
// root), and stopped when the test ends. Fault tests stop, restart, pause and
// resume it.
//
// Without the PostgreSQL binaries the test is skipped, except when the
// environment has CI=true, where it fails.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/probekit/probes/internal/testenv/proctest"
)

// Server is a running throwaway PostgreSQL server.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cred    *syscall.Credential
	proc    proctest.Proc
	logPath string
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := findBin()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("pgtest: %v (CI=true: PostgreSQL is required)", err)
		}
		t.Skipf("pgtest: %v; install PostgreSQL to run this test", err)
	}
	s := &Server{t: t, bin: bin}
	root := t.TempDir()
	s.dir = filepath.Join(root, "data")
	s.logPath = filepath.Join(root, "postgres.log")
	if os.Geteuid() == 0 {
		s.cred, err = proctest.Unprivileged("postgres", "nobody")
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		// The temporary directories are private to root: let the server's
		// user in.
		for d := root; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Chown(root, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", s.dir, "-U", "postgres",
		"--auth=trust", "--encoding=UTF8", "--no-sync", "--no-instructions")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	s.port = proctest.FreePort(t)
	t.Cleanup(s.stop) // first, so that a start that times out still stops it
	s.StartAgain()
	return s
}

// URL is a connection string for the server, as the user postgres with the
// given password (trust authentication ignores it).
func (s *Server) URL(password string) string {
	return fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, s.port)
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// StartAgain starts the server after Stop, on the same port and data, and
// waits until it accepts connections.
func (s *Server) StartAgain() {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, "postgres"), "-D", s.dir, "-p", strconv.Itoa(s.port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	if err := s.proc.Start(cmd, s.logPath); err != nil {
		s.t.Fatalf("pgtest: postgres: %v", err)
	}
	connects := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, s.URL(""))
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := s.proc.WaitReady(connects, s.logPath, 30*time.Second); err != nil {
		s.t.Fatalf("pgtest: postgres: %v", err)
	}
}

// Stop shuts the server down (fast mode: open connections are closed) and
// waits until it has exited.
func (s *Server) Stop() {
	s.t.Helper()
	if !s.shutdown() {
		s.t.Fatal("pgtest: postgres did not stop within 30s")
	}
}

// shutdown asks the postmaster for a fast shutdown (SIGINT) and reports
// whether it exited within 30s.
func (s *Server) shutdown() bool { return s.proc.Stop(syscall.SIGINT, true, 30*time.Second) }

// Pause freezes the server and its backends (SIGSTOP), so that queries and
// pings hang instead of failing, and returns once every one is stopped.
// Backends run in sessions of their own, so a process group would not
// reach them: each is signalled.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.proc.Pause(true); err != nil {
		s.t.Fatalf("pgtest: %v", err)
	}
}

// Resume undoes Pause.
func (s *Server) Resume() {
	if err := s.proc.Resume(true); err != nil {
		s.t.Errorf("pgtest: %v", err)
	}
}

func (s *Server) stop() { s.proc.Cleanup(syscall.SIGINT, true, 30*time.Second) }

// findBin returns the directory holding initdb and postgres: PATH first,
// then the newest /usr/lib/postgresql/*/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real
		}
		if _, err := os.Stat(filepath.Join(filepath.Dir(p), "postgres")); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 { // "/usr/lib/postgresql/9.6/bin" is older than ".../16/bin"
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("no initdb and postgres in PATH or /usr/lib/postgresql/*/bin")
}

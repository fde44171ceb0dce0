// Package mariadbtest starts a throwaway MariaDB server for tests: a data
// directory made by mariadb-install-db in a temporary directory, mariadbd
// on a free loopback port with its unix socket beside the data, run as the
// mysql user when the tests run as root, with grant tables on (so
// passwords count), and stopped when the test ends. Fault tests stop,
// restart, pause and resume it.
//
// Start creates the database "app" and the user "app", who may use it and
// nothing else: without SUPER, max_connections bounds it.
//
// Without the MariaDB binaries the test is skipped, except when the
// environment has CI=true, where it fails.
package mariadbtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"github.com/probekit/probes/internal/testenv/proctest"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	password string
	maxConns int
}

// Password sets the password of the user "app". Default "app-pw".
func Password(pw string) Option { return func(c *config) { c.password = pw } }

// MaxConnections sets max_connections (MariaDB's least is 10). Default:
// MariaDB's, 151.
func MaxConnections(n int) Option { return func(c *config) { c.maxConns = n } }

// Server is a running throwaway MariaDB server.
type Server struct {
	t       testing.TB
	dir     string
	port    int
	cfg     config
	cred    *syscall.Credential
	logPath string
	proc    proctest.Proc
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	for _, bin := range []string{"mariadb-install-db", "mariadbd"} {
		if _, err := lookPath(bin); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("mariadbtest: no %s (CI=true: MariaDB is required)", bin)
			}
			t.Skipf("mariadbtest: no %s in PATH or /usr/sbin; install MariaDB (Debian: mariadb-server) to run this test", bin)
		}
	}
	s := &Server{t: t, cfg: config{password: "app-pw"}}
	for _, o := range opts {
		o(&s.cfg)
	}
	// Not t.TempDir: a unix socket's path must stay under 108 bytes.
	dir, err := os.MkdirTemp("", "mariadbtest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	s.dir = dir
	s.logPath = filepath.Join(dir, "mariadbd.log")
	if os.Geteuid() == 0 {
		if s.cred, err = proctest.Unprivileged("mysql", "nobody"); err != nil {
			t.Fatalf("mariadbtest: %v", err)
		}
		if err := os.Chown(dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	install := s.command("mariadb-install-db", "--no-defaults", "--datadir="+s.data(),
		"--auth-root-authentication-method=normal", "--skip-test-db")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("mariadbtest: mariadb-install-db: %v\n%s", err, out)
	}
	s.port = proctest.FreePort(t)
	t.Cleanup(s.stop)
	s.StartAgain()
	for _, stmt := range []string{
		"CREATE DATABASE app",
		fmt.Sprintf("CREATE USER 'app'@'%%' IDENTIFIED BY '%s'", s.cfg.password),
		"GRANT ALL ON app.* TO 'app'@'%'",
	} {
		s.mustExec(stmt)
	}
	return s
}

func (s *Server) data() string   { return filepath.Join(s.dir, "data") }
func (s *Server) socket() string { return filepath.Join(s.dir, "mysqld.sock") }

func (s *Server) command(name string, args ...string) *exec.Cmd {
	path, _ := lookPath(name)
	cmd := exec.Command(path, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	return cmd
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// DSN is a go-sql-driver/mysql data source name for the database "app",
// over TCP, as the user "app" with the given password.
func (s *Server) DSN(password string) string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr, cfg.DBName = "app", password, "tcp", s.Addr(), "app"
	cfg.Timeout = time.Second
	return cfg.FormatDSN()
}

// mustExec runs stmt as root over the unix socket, failing the test on
// error.
func (s *Server) mustExec(stmt string) {
	s.t.Helper()
	if err := s.exec(stmt); err != nil {
		s.t.Fatalf("mariadbtest: %s: %v", stmt, err)
	}
}

func (s *Server) exec(stmt string) error {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", s.socket(), time.Second
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return err
	}
	db := sql.OpenDB(conn)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err = db.ExecContext(ctx, stmt)
	return err
}

// StartAgain starts the server after Stop, on the same port and data, and
// waits until it accepts connections.
func (s *Server) StartAgain() {
	s.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + s.data(), "--port=" + strconv.Itoa(s.port),
		"--bind-address=127.0.0.1", "--socket=" + s.socket(), "--pid-file=" + filepath.Join(s.dir, "mariadbd.pid"),
		"--skip-name-resolve", "--skip-log-bin", "--innodb-buffer-pool-size=16M", "--innodb-flush-log-at-trx-commit=0"}
	if s.cfg.maxConns > 0 {
		args = append(args, "--max-connections="+strconv.Itoa(s.cfg.maxConns))
	}
	cmd := s.command("mariadbd", args...)
	if err := s.proc.Start(cmd, s.logPath); err != nil {
		s.t.Fatalf("mariadbtest: mariadbd: %v", err)
	}
	if err := s.proc.WaitReady(func() error { return s.exec("SELECT 1") }, s.logPath, 60*time.Second); err != nil {
		s.t.Fatalf("mariadbtest: mariadbd: %v", err)
	}
}

// Stop shuts the server down (SIGTERM) and waits until it has exited.
func (s *Server) Stop() {
	s.t.Helper()
	if !s.shutdown() {
		s.t.Fatal("mariadbtest: mariadbd did not stop within 60s")
	}
}

func (s *Server) shutdown() bool { return s.proc.Stop(syscall.SIGTERM, false, 60*time.Second) }

// Pause freezes the server (SIGSTOP): the kernel still accepts connections
// for it, and requests hang instead of failing. It returns once the
// process is stopped.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.proc.Pause(false); err != nil {
		s.t.Fatalf("mariadbtest: %v", err)
	}
}

// Resume undoes Pause.
func (s *Server) Resume() {
	if err := s.proc.Resume(false); err != nil {
		s.t.Errorf("mariadbtest: %v", err)
	}
}

func (s *Server) stop() { s.proc.Cleanup(syscall.SIGTERM, false, 60*time.Second) }

// lookPath finds name in PATH or /usr/sbin (Debian's mariadbd is there,
// outside a normal user's PATH).
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join("/usr/sbin", name)
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// RootDSN is a go-sql-driver/mysql data source name for root over the
// unix socket: root has SUPER, so MariaDB keeps a connection for it beyond
// max_connections.
func (s *Server) RootDSN() string {
	cfg := mysql.NewConfig()
	cfg.User, cfg.Net, cfg.Addr, cfg.Timeout = "root", "unix", s.socket(), time.Second
	return cfg.FormatDSN()
}

// Package redistest starts a throwaway Redis server for tests: redis-server
// from PATH in a temporary directory, on a free loopback port, without
// snapshots (--save ""), with DEBUG allowed from loopback, optionally with a password, and stopped when the
// test ends. Fault tests stop, restart, pause and resume it, and start
// replicas of it.
//
// Without redis-server the test is skipped, except when the environment has
// CI=true, where it fails.
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes/internal/testenv/proctest"
)

// Option configures a Server.
type Option func(*config)

type config struct {
	password string
	master   *Server
}

// Password makes the server require pw (requirepass). Default: none.
func Password(pw string) Option { return func(c *config) { c.password = pw } }

// ReplicaOf makes the server a replica of master (with master's password).
func ReplicaOf(master *Server) Option { return func(c *config) { c.master = master } }

// Server is a running throwaway Redis server.
type Server struct {
	t       testing.TB
	bin     string
	dir     string
	port    int
	cfg     config
	logPath string
	proc    proctest.Proc
}

// Start starts a server for t and stops it when t ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("redistest: no redis-server in PATH (CI=true: Redis is required)")
		}
		t.Skipf("redistest: no redis-server in PATH; install Redis (Debian: redis-server) to run this test")
	}
	s := &Server{t: t, bin: bin, dir: t.TempDir()}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.logPath = filepath.Join(s.dir, "redis.log")
	s.port = proctest.FreePort(t)
	t.Cleanup(s.stop)
	s.StartAgain()
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// StartAgain starts the server after Stop, on the same port and directory
// (loading dump.rdb if a SAVE wrote one), with args added to this start's
// command line, and waits until it answers, if only with LOADING.
func (s *Server) StartAgain(args ...string) {
	s.t.Helper()
	line := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no",
		"--enable-debug-command", "local"}
	if s.cfg.password != "" {
		line = append(line, "--requirepass", s.cfg.password)
	}
	if m := s.cfg.master; m != nil {
		line = append(line, "--replicaof", "127.0.0.1", strconv.Itoa(m.port))
		if m.cfg.password != "" {
			line = append(line, "--masterauth", m.cfg.password)
		}
	}
	line = append(line, args...)
	cmd := exec.Command(s.bin, line...)
	cmd.Dir = s.dir
	if err := s.proc.Start(cmd, s.logPath); err != nil {
		s.t.Fatalf("redistest: redis-server: %v", err)
	}
	answers := func() error {
		reply, err := s.Try("PING")
		if err == nil && reply != "PONG" && !strings.HasPrefix(reply, "LOADING") {
			err = fmt.Errorf("PING answered %q", reply)
		}
		return err
	}
	if err := s.proc.WaitReady(answers, s.logPath, 30*time.Second); err != nil {
		s.t.Fatalf("redistest: redis-server: %v", err)
	}
}

// Do sends one command over a connection of its own (authenticated when
// the server has a password) and returns the reply's first line, or the
// whole bulk string; an error reply is returned as text, with its prefix.
// It fails the test when the server cannot be reached.
func (s *Server) Do(args ...string) string {
	s.t.Helper()
	reply, err := s.Try(args...)
	if err != nil {
		s.t.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

// Try is Do returning the transport error instead of failing the test, for
// use off the test's goroutine.
func (s *Server) Try(args ...string) (string, error) {
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return "", err
	}
	r := bufio.NewReader(conn)
	if s.cfg.password != "" {
		if reply, err := exchange(conn, r, "AUTH", s.cfg.password); err != nil || reply != "OK" {
			return reply, err
		}
	}
	return exchange(conn, r, args...)
}

// exchange writes one command in RESP and reads its reply.
func exchange(w io.Writer, r *bufio.Reader, args ...string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return "", err
	}
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', '-', ':':
		return line[1:], nil
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line, nil
}

// Info returns field of the INFO section (such as "loading" of
// "persistence"), "" when the server does not report it.
func (s *Server) Info(section, field string) string {
	s.t.Helper()
	for _, line := range strings.Split(s.Do("INFO", section), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok && k == field {
			return v
		}
	}
	return ""
}

// Stop shuts the server down (SIGTERM: no snapshot is saved) and waits
// until it has exited.
func (s *Server) Stop() {
	s.t.Helper()
	if !s.shutdown() {
		s.t.Fatal("redistest: redis-server did not stop within 30s")
	}
}

func (s *Server) shutdown() bool { return s.proc.Stop(syscall.SIGTERM, false, 30*time.Second) }

// Pause freezes the server (SIGSTOP): the kernel still accepts connections
// for it, and requests hang instead of failing. It returns once the
// process is stopped.
func (s *Server) Pause() {
	s.t.Helper()
	if err := s.proc.Pause(false); err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
}

// Resume undoes Pause.
func (s *Server) Resume() {
	if err := s.proc.Resume(false); err != nil {
		s.t.Errorf("redistest: %v", err)
	}
}

func (s *Server) stop() { s.proc.Cleanup(syscall.SIGTERM, false, 30*time.Second) }

// Conn is one connection to the server, kept open: it holds a client slot
// (see maxclients) and can send commands after the server stops taking new
// connections.
type Conn struct {
	t    testing.TB
	conn net.Conn
	r    *bufio.Reader
}

// Dial opens a Conn, authenticated when the server has a password, and
// closes it when the test ends.
func (s *Server) Dial() *Conn {
	s.t.Helper()
	conn, err := net.DialTimeout("tcp", s.Addr(), time.Second)
	if err != nil {
		s.t.Fatalf("redistest: %v", err)
	}
	s.t.Cleanup(func() { conn.Close() })
	c := &Conn{t: s.t, conn: conn, r: bufio.NewReader(conn)}
	if s.cfg.password != "" {
		if reply := c.Do("AUTH", s.cfg.password); reply != "OK" {
			s.t.Fatalf("redistest: AUTH: %s", reply)
		}
	}
	return c
}

// Do sends one command over c and returns its reply as Server.Do does.
func (c *Conn) Do(args ...string) string {
	c.t.Helper()
	if err := c.conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		c.t.Fatal(err)
	}
	reply, err := exchange(c.conn, c.r, args...)
	if err != nil {
		c.t.Fatalf("redistest: %s: %v", strings.Join(args, " "), err)
	}
	return reply
}

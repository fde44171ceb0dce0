// Package dnstest starts a throwaway DNS server for tests: Debian's
// dnsmasq, in the foreground, on a free loopback port (UDP and TCP), with
// no configuration file, no upstream servers and no /etc/hosts, answering
// only the records the test gives. It is stopped when the test ends.
//
// Without dnsmasq the test is skipped, except when the environment has
// CI=true, where it fails.
package dnstest

import (
	"context"
	"errors"
	"fmt"
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

// upName is the name Start asks until the server answers.
const upName = "up.dnstest.invalid"

// Record is a record the server answers, or a zone it is the authority of.
type Record struct{ args []string }

// Host answers name with an A (or AAAA) record for each of ips.
func Host(name string, ips ...string) Record {
	var r Record
	for _, ip := range ips {
		r.args = append(r.args, "--host-record="+name+","+ip)
	}
	return r
}

// SRV answers name (such as _probes._tcp.svc.test) with an SRV record of
// target and port. Give target an address with Host.
func SRV(name, target string, port int) Record {
	return Record{args: []string{fmt.Sprintf("--srv-host=%s,%s,%d", name, target, port)}}
}

// Zone makes the server the authority of domain: a name in it that no
// record gives is answered NXDOMAIN (no such host), where it would
// otherwise be refused for want of an upstream server.
func Zone(domain string) Record {
	return Record{args: []string{"--local=/" + strings.Trim(domain, ".") + "/"}}
}

// Server is a running dnsmasq.
type Server struct {
	addr string
	proc proctest.Proc
}

// Addr is the server's host:port, for a resolver's Dial.
func (s *Server) Addr() string { return s.addr }

// Resolver returns a resolver that asks the server only.
func (s *Server) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.addr)
	}}
}

// Start starts dnsmasq with records for t, waits until it answers, and
// stops it when t ends.
func Start(t testing.TB, records ...Record) *Server {
	t.Helper()
	bin, err := find()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("dnstest: %v (CI=true: dnsmasq is required)", err)
		}
		t.Skipf("dnstest: %v; install dnsmasq to run this test", err)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("dnstest: %v", err)
	}
	s := &Server{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	args := []string{
		"--keep-in-foreground", // no fork: the test owns the process
		"--conf-file=/dev/null", "--no-resolv", "--no-hosts", "--no-poll",
		"--listen-address=127.0.0.1", "--bind-interfaces", "--port=" + strconv.Itoa(port),
		"--pid-file=", "--log-facility=-", "--log-queries", "--cache-size=0",
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=nobody") // it drops root once bound, to a user that surely exists
	}
	// A name of its own to ask until it answers.
	args = append(args, "--host-record="+upName+",127.0.0.1")
	for _, r := range records {
		args = append(args, r.args...)
	}
	logPath := filepath.Join(t.TempDir(), "dnsmasq.log")
	t.Cleanup(func() { s.proc.Cleanup(syscall.SIGTERM, false, 5*time.Second) })
	if err := s.proc.Start(exec.Command(bin, args...), logPath); err != nil {
		t.Fatalf("dnstest: dnsmasq: %v", err)
	}
	answers := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		_, err := s.Resolver().LookupIPAddr(ctx, upName)
		return err
	}
	if err := s.proc.WaitReady(answers, logPath, 10*time.Second); err != nil {
		t.Fatalf("dnstest: dnsmasq: %v", err)
	}
	return s
}

// find returns dnsmasq's path: PATH, then /usr/sbin (not in a user's PATH
// on Debian).
func find() (string, error) {
	if p, err := exec.LookPath("dnsmasq"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/dnsmasq"
	if fi, err := os.Stat(sbin); err == nil && fi.Mode()&0o111 != 0 {
		return sbin, nil
	}
	return "", errors.New("no dnsmasq in PATH or /usr/sbin")
}

// freePort returns a loopback port free for both UDP and TCP now.
func freePort() (int, error) {
	for range 20 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		tl, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		u.Close()
		if err == nil {
			tl.Close()
			return port, nil
		}
	}
	return 0, errors.New("no loopback port free for both UDP and TCP")
}

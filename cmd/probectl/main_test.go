package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/internal/testutil"
	"github.com/probekit/probes/readiness"
)

// TestMain runs probectl itself when PROBECTL_MAIN is set, so that a test
// can run the real command as another user; otherwise the tests.
func TestMain(m *testing.M) {
	if os.Getenv("PROBECTL_MAIN") == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
	}
	if socket := os.Getenv("PROBECTL_HOLD"); socket != "" {
		os.Exit(hold(socket))
	}
	goleak.VerifyTestMain(m)
}

// service is a Ready lifecycle with a failing-free readiness gate and its
// admin socket in dir.
func service(t *testing.T, dir string) (*probes.Lifecycle, string) {
	t.Helper()
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	h, err := admin.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "admin.sock")
	ln, err := admin.ListenUnix(socket)
	if err != nil {
		t.Fatal(err)
	}
	peer, err := h.Serving(ln)
	if err != nil {
		t.Fatal(err)
	}
	testutil.ServePeer(t, peer)
	return lc, socket
}

func probectl(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, func(string) string { return "" }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestCordonStatusUncordon(t *testing.T) {
	lc, socket := service(t, t.TempDir())
	code, out, errOut := probectl("-socket", socket, "cordon", "-reason", "disk swap", "-for", "2m")
	if code != 0 || !strings.Contains(out, "cordoned: disk swap (lifts by itself at ") {
		t.Fatalf("cordon: %d %q %q", code, out, errOut)
	}
	if c, ok := lc.Cordoned(); !ok || c.Reason != "disk swap" || c.Until.Sub(c.Since) != 2*time.Minute {
		t.Fatalf("after probectl cordon: %+v %v", c, ok)
	}
	code, out, _ = probectl("-socket", socket, "status")
	for _, want := range []string{"phase   ready since ", "cordon  disk swap (until ", "readiness   fail", "cordoned: disk swap"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = probectl("-socket", socket, "status", "-json")
	var st admin.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.Cordon == nil || st.Cordon.Reason != "disk swap" {
		t.Errorf("status -json: %d %v %s", code, err, out)
	}
	if code, out, _ := probectl("-socket", socket, "uncordon"); code != 0 || out != "uncordoned (was: disk swap)\n" {
		t.Errorf("uncordon: %d %q", code, out)
	}
	if code, out, _ := probectl("-socket", socket, "uncordon"); code != 0 || !strings.Contains(out, "not cordoned") {
		t.Errorf("a second uncordon: %d %q", code, out)
	}
	var env []string
	getenv := func(k string) string { env = append(env, k); return map[string]string{"ADMIN_SOCKET": socket}[k] }
	var sink bytes.Buffer
	if code := run(context.Background(), []string{"status"}, getenv, &sink, &sink); code != 0 {
		t.Errorf("status through $ADMIN_SOCKET: %d %s", code, sink.String())
	}
}

func TestExitCodes(t *testing.T) {
	_, socket := service(t, t.TempDir())
	cases := []struct {
		name string
		args []string
		want int
		says string
	}{
		{"no command", []string{"-socket", socket}, 2, "usage"},
		{"an unknown command", []string{"-socket", socket, "drain"}, 2, `unknown command "drain"`},
		{"no socket", []string{"status"}, 2, "no socket"},
		{"a socket nobody listens on", []string{"-socket", filepath.Join(t.TempDir(), "gone.sock"), "status"}, 2, "cannot reach"},
		{"cordon without a reason", []string{"-socket", socket, "cordon"}, 2, "-reason is required"},
		{"a bad flag", []string{"-socket", socket, "cordon", "-for", "soon", "-reason", "x"}, 2, "invalid value"},
		{"a reason the service refuses", []string{"-socket", socket, "cordon", "-reason", "two\nlines"}, 1, "refused (400): probes: cordon reason: unprintable"},
		{"a limit the service refuses", []string{"-socket", socket, "cordon", "-reason", "x", "-for", "1000h"}, 1, "refused (400)"},
		{"a zero timeout", []string{"-socket", socket, "-timeout", "0s", "status"}, 2, "-timeout"},
	}
	for _, c := range cases {
		code, out, errOut := probectl(c.args...)
		if code != c.want || !strings.Contains(out+errOut, c.says) {
			t.Errorf("%s: exit %d, %q %q; want %d saying %q", c.name, code, out, errOut, c.want, c.says)
		}
	}
}

// The real command, run as nobody against a socket whose mode lets
// nobody connect, is refused by the peer-credential check: exit 1.
func TestNobodyIsRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a command as nobody")
	}
	// A directory nobody can enter, holding a copy of this binary and
	// the socket.
	dir, err := os.MkdirTemp("", "probectl-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	lc, socket := service(t, dir)
	bin := filepath.Join(dir, "probectl")
	copyFile(t, os.Args[0], bin)
	as := func(uid uint32, args ...string) (int, string) {
		cmd := exec.Command(bin, append([]string{"-socket", socket}, args...)...)
		cmd.Env = []string{"PROBECTL_MAIN=1"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return code, string(out)
	}
	// With the socket's own mode (0600) the file system refuses nobody.
	if code, out := as(65534, "cordon", "-reason", "x"); code != 2 || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody on a 0600 socket: exit %d %q; want 2, permission denied", code, out)
	}
	// Opened to everyone, the socket's peer check still refuses nobody.
	if err := os.Chmod(socket, 0o666); err != nil {
		t.Fatal(err)
	}
	if code, out := as(65534, "cordon", "-reason", "x"); code != 1 || !strings.Contains(out, "refused (403)") {
		t.Errorf("nobody on a 0666 socket: exit %d %q; want 1, refused (403)", code, out)
	}
	if code, out := as(65534, "status"); code != 1 {
		t.Errorf("nobody reading the status: exit %d %q; want 1", code, out)
	}
	if _, ok := lc.Cordoned(); ok {
		t.Fatal("nobody cordoned the service")
	}
	// nobody holding and reopening 100 connections cannot starve root.
	holder := exec.Command(bin)
	holder.Env = []string{"PROBECTL_HOLD=" + socket}
	holder.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, err := holder.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(stdout).ReadString('\n'); err != nil {
		t.Fatalf("the holder did not start: %v", err)
	}
	for i := range 5 {
		began := time.Now()
		if code, out := as(0, "-timeout", "2s", "status"); code != 0 {
			t.Errorf("root's status %d while nobody holds connections: exit %d %q", i, code, out)
		}
		t.Logf("root's status %d while nobody holds connections: %s", i, time.Since(began).Round(time.Millisecond))
	}
	stdin.Close()
	waited := time.Now()
	defer func() { t.Logf("the holder stopped in %s", time.Since(waited).Round(time.Millisecond)) }()
	if err := holder.Wait(); err != nil {
		t.Errorf("the holder: %v", err)
	}
	if code, out := as(0, "cordon", "-reason", "root may", "-for", "1m"); code != 0 {
		t.Errorf("root: exit %d %q", code, out)
	}
	if _, ok := lc.Cordoned(); !ok {
		t.Error("root's cordon did not take")
	}
}

// hold opens 100 connections to socket, reopening each as it is closed,
// sending nothing, until its standard input closes: a peer that tries to
// take every slot of the admin socket.
func hold(socket string) int {
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	for range 100 {
		go func() {
			for {
				c, err := net.Dial("unix", socket)
				if err == nil {
					io.Copy(io.Discard, c) // until the service closes it
					c.Close()
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	os.Stdout.WriteString("holding\n")
	<-stop
	return 0
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

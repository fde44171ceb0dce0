package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/admin"
	"github.com/probekit/probes/internal/testenv/testutil"
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
	return lc, serve(t, lc, dir)
}

// serve serves lc's admin handler on a socket in dir until the test ends,
// and returns the socket's path.
func serve(t *testing.T, lc *probes.Lifecycle, dir string) string {
	t.Helper()
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
	return socket
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
	for _, want := range []string{"phase   ready since ", "cordon  disk swap (until ", " left)", "status  warn: ", "cordoned: disk swap", "by      uid "} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if !hasRow(out, "readiness", "fail") {
		t.Errorf("status lacks readiness failing:\n%s", out)
	}
	code, out, _ = probectl("-socket", socket, "status", "-json")
	var st struct {
		Status string
		Gates  map[string]string
		Cordon *struct{ Reason string }
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil || code != 0 || st.Status != "warn" || st.Gates["readiness"] != "fail" ||
		st.Cordon == nil || st.Cordon.Reason != "disk swap" {
		t.Errorf("status -json: %d %v %s", code, err, out)
	}
	if code, out, _ := probectl("-socket", socket, "uncordon"); code != 0 || !strings.HasPrefix(out, "uncordoned (was: disk swap, set by uid ") {
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

// A failing service's status is an answer, not a refusal: the deep view
// answers 503, and probectl prints it and exits 0, the check's error
// included (the admin socket's readers are authorised).
func TestStatusOfAFailingService(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		return errors.New("connection refused")
	}), probes.Local(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "db failed once", func() bool { c, _ := ready.Report().Check("db"); return !c.Time.IsZero() })
	socket := serve(t, lc, t.TempDir())
	code, out, errOut := probectl("-socket", socket, "status")
	for _, want := range []string{"status  fail: ", "failing: readiness/db"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status: exit %d, lacks %q:\n%s%s", code, want, out, errOut)
		}
	}
	for _, want := range [][]string{{"readiness", "fail"}, {"readiness/db", "fail", "0s", "connection", "refused"}} {
		if !hasRow(out, want...) {
			t.Errorf("status lacks the row %q:\n%s", want, out)
		}
	}
	code, out, errOut = probectl("-socket", socket, "status", "-json")
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != 0 || doc["status"] != "fail" || !strings.Contains(out, "connection refused") {
		t.Errorf("status -json: exit %d %v:\n%s%s", code, err, out, errOut)
	}
}

// hasRow reports whether out has a line of exactly these fields.
func hasRow(out string, fields ...string) bool {
	for line := range strings.Lines(out) {
		if slices.Equal(strings.Fields(line), fields) {
			return true
		}
	}
	return false
}

// fake serves one fixed answer on a Unix socket until the test ends.
func fake(t *testing.T, code int, ctype, body string) string {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "fake.sock")
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(code)
		io.WriteString(w, body)
	})}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Close(); <-done })
	return socket
}

// Which answers to GET /status probectl status takes for the status, and
// which for a refusal or an answer it cannot read.
func TestStatusAnswers(t *testing.T) {
	const deep = `{"status":"fail","phase":"ready","gates":{"readiness":"fail"}}`
	for _, tt := range []struct {
		name  string
		code  int
		ctype string
		body  string
		want  int
		says  string
	}{
		{"the deep view passing", 200, "application/health+json", `{"status":"pass","phase":"ready"}`, 0, "status  pass"},
		{"the deep view failing", 503, "application/health+json", deep, 0, "status  fail"},
		{"the socket busy", 503, "application/json", `{"error":"busy: every admin connection is in use; try again"}`, 1, "refused (503): busy"},
		{"a peer refused", 403, "application/json", `{"error":"refused: this peer may not use the admin socket"}`, 1, "refused (403)"},
		{"a 503 of another kind", 503, "text/plain", "overloaded", 1, "refused (503): overloaded"},
		{"the admin status of old", 200, "application/json", `{"phase":"ready","gates":[]}`, 2, "not a health+json deep view"},
		{"not JSON", 200, "application/health+json", "ok", 2, "not a health+json deep view"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			socket := fake(t, tt.code, tt.ctype, tt.body)
			code, out, errOut := probectl("-socket", socket, "status")
			if code != tt.want || !strings.Contains(out+errOut, tt.says) {
				t.Errorf("got exit %d, %q %q; want %d saying %q", code, out, errOut, tt.want, tt.says)
			}
		})
	}
	socket := fake(t, 503, "application/health+json", deep)
	if code, out, _ := probectl("-socket", socket, "status", "-json"); code != 0 || out != deep {
		t.Errorf("status -json: got exit %d, %q; want 0 and the document as received, %q", code, out, deep)
	}
}

// The table shows each check under its gate with its status, since when,
// whether it flaps and its output, and a task's progress; whatever the
// service sent is escaped, never obeyed.
func TestPrintStatus(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	const doc = `{
		"status": "fail",
		"notes": ["phase: ready", "cordoned: disk swap (until 2025-03-01T12:30:00Z)", "failing: readiness/db"],
		"phase": "ready", "since": "2025-03-01T11:00:00Z",
		"gates": {"readiness": "fail", "startup": "pass", "liveness": "pass"},
		"cordon": {"reason": "disk swap", "since": "2025-03-01T11:50:00Z", "until": "2025-03-01T12:30:00Z"},
		"checks": {
			"readiness/db:responseTime": [{"gate": "readiness", "status": "fail", "since": "2025-03-01T11:59:00Z", "flapping": true, "output": "refused\u001b[2J"}],
			"readiness/db:connections": [{"gate": "readiness", "status": "fail", "observedValue": 3, "observedUnit": "conns", "since": "2025-03-01T11:59:00Z", "flapping": true, "output": "refused\u001b[2J"}],
			"liveness/loop:responseTime": [{"gate": "liveness", "status": "pass", "since": "2025-03-01T11:00:00Z"}],
			"startup/cache:progress": [{"gate": "startup", "status": "warn", "observedValue": 40, "observedUnit": "%"}],
			"mail:responseTime": [{"gate": "readiness", "status": "pass"}]
		}
	}`
	var dv deepView
	if err := json.Unmarshal([]byte(doc), &dv); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	printStatus(&b, &dv, now)
	got := b.String()
	want := `phase   ready since 2025-03-01T11:00:00Z (1h0m0s)
cordon  disk swap (until 2025-03-01T12:30:00Z, 30m0s left)
status  fail: phase: ready; cordoned: disk swap (until 2025-03-01T12:30:00Z); failing: readiness/db

GATE/CHECK        STATUS           SINCE   DETAIL
startup           pass
  startup/cache   warn (40%)
liveness          pass
  liveness/loop   pass             1h0m0s
readiness         fail
  readiness/db    fail (flapping)  1m0s    refused\x1b[2J
  readiness/mail  pass
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// -for takes days, up to the longest cordon (seven days).
func TestCordonForDays(t *testing.T) {
	lc, socket := service(t, t.TempDir())
	for _, tt := range []struct {
		limit string
		want  time.Duration
	}{
		{"7d", probes.MaxCordon},
		{"1d12h", 36 * time.Hour},
	} {
		t.Run(tt.limit, func(t *testing.T) {
			if code, out, errOut := probectl("-socket", socket, "cordon", "-reason", "disk swap", "-for", tt.limit); code != 0 {
				t.Fatalf("cordon -for %s: %d %q %q", tt.limit, code, out, errOut)
			}
			if c, ok := lc.Cordoned(); !ok || c.Until.Sub(c.Since) != tt.want {
				t.Errorf("after cordon -for %s: got %+v (cordoned %t), want %s", tt.limit, c, ok, tt.want)
			}
		})
	}
}

// A service that keeps a state directory says how many restarts it had
// and how the last instance ended; status prints it under the cordon.
func TestPrintStatusRestarts(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		name, doc, want string
	}{
		{"broken", `{"status":"pass","phase":"ready","restarts":2,"lastEnd":{"ended":"broken","at":"2025-03-01T11:58:00Z","cause":"warm-up deadline 2m0s missed\u001b[2J"}}`,
			"restarts  2: the last broken at 2025-03-01T11:58:00Z (2m0s ago): warm-up deadline 2m0s missed\\x1b[2J\n"},
		{"killed", `{"status":"pass","phase":"ready","restarts":1,"lastEnd":{"ended":"without a word"}}`,
			"restarts  1: the last ended without a word\n"},
		{"none", `{"status":"pass","phase":"ready"}`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var dv deepView
			if err := json.Unmarshal([]byte(tt.doc), &dv); err != nil {
				t.Fatal(err)
			}
			var b bytes.Buffer
			printStatus(&b, &dv, now)
			got := b.String()
			if tt.want == "" {
				if strings.Contains(got, "restarts") {
					t.Errorf("no restarts, yet:\n%s", got)
				}
				return
			}
			if !strings.Contains(got, tt.want) {
				t.Errorf("got\n%s\nwant a line %q", got, tt.want)
			}
		})
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
		{"days over the maximum", []string{"-socket", socket, "cordon", "-reason", "x", "-for", "8d"}, 1, "at most 168h0m0s"},
		{"a unit it does not know", []string{"-socket", socket, "cordon", "-for", "1w", "-reason", "x"}, 2, "invalid value"},
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

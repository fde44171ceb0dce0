//go:build linux

package main

// probe run's tests run this test binary twice over: as probe run (the
// environment says PROBE_TEST_AS=probe), and as the child it stands in
// front of (PROBE_TEST_AS=child), a small program the test drives through
// its stdin and hears from on its stdout, both passed through probe run.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
)

const helperEnv = "PROBE_TEST_AS"

// asHelper runs this binary as probe run or as its child when the
// environment says so.
func asHelper() (int, bool) {
	switch os.Getenv(helperEnv) {
	case "probe":
		os.Setenv(helperEnv, "child") // for the child it starts
		return run(os.Args[1:], os.Stdout), true
	case "child":
		return testChild(os.Args[1:]), true
	}
	return 0, false
}

// testChild is the child. Its argument says what it does on SIGTERM or
// SIGINT: "exit:N" prints the signal and exits N, "ignore" prints it and
// goes on, "default" leaves the signal's default (death). It prints
// "started PID", every signal it gets ("signal hangup"), and after each
// command read from stdin "done COMMAND":
//
//	http ADDR    serve /health (200) and /live (200, 500 once sick) on ADDR
//	tcp ADDR     accept connections on ADDR
//	touch PATH   create the file PATH
//	sick         /live answers 500 from now on
//	orphan       start a grandchild that outlives its parent; print "orphan PID"
//	exit N       exit with code N
//	kill N       kill itself with signal N
func testChild(args []string) int {
	onTerm := "exit:0"
	if len(args) > 0 {
		onTerm = args[0]
	}
	var mu sync.Mutex
	say := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Printf(format+"\n", a...)
	}
	notify := []os.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}
	if onTerm != "default" {
		notify = append(notify, syscall.SIGTERM, syscall.SIGINT)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, notify...)
	go func() {
		for s := range sigs {
			say("signal %s", s)
			if s != syscall.SIGTERM && s != syscall.SIGINT {
				continue
			}
			if code, ok := strings.CutPrefix(onTerm, "exit:"); ok {
				n, _ := strconv.Atoi(code)
				os.Exit(n)
			}
		}
	}()
	var sick atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/live", func(w http.ResponseWriter, r *http.Request) {
		if sick.Load() {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	say("started %d", os.Getpid())
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		arg := ""
		if len(f) > 1 {
			arg = f[1]
		}
		switch f[0] {
		case "http", "tcp":
			ln, err := net.Listen("tcp", arg)
			if err != nil {
				say("error %v", err)
				continue
			}
			if f[0] == "http" {
				go http.Serve(ln, mux) //nolint:errcheck // until the process ends
			} else {
				go func() {
					for {
						c, err := ln.Accept()
						if err != nil {
							return
						}
						c.Close()
					}
				}()
			}
		case "touch":
			if err := os.WriteFile(arg, nil, 0o644); err != nil {
				say("error %v", err)
			}
		case "sick":
			sick.Store(true)
		case "orphan":
			out, err := exec.Command("sh", "-c", "sleep 300 >/dev/null 2>&1 & echo $!").Output()
			if err != nil {
				say("error %v", err)
				continue
			}
			say("orphan %s", strings.TrimSpace(string(out)))
		case "exit":
			n, _ := strconv.Atoi(arg)
			os.Exit(n)
		case "kill":
			n, _ := strconv.Atoi(arg)
			syscall.Kill(os.Getpid(), syscall.Signal(n))
		}
		say("done %s", f[0])
	}
	select {} // stdin closed: wait for a signal
}

// wrapped is probe run started by a test, with the child behind it.
type wrapped struct {
	t        *testing.T
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	lines    chan string // the child's stdout, line by line
	stderr   *syncBuffer // probe run's log and the child's stderr
	probe    string      // base URL of the probe listener
	termLog  string      // the -termination-log file
	exited   chan struct{}
	code     int // once exited
	childPID int // from the child's "started" line
}

// syncBuffer is a strings.Builder for two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startRun starts probe run with flags (and -probe-addr on a free port)
// in front of the test child with childArg, and waits for the child's
// "started" line.
func startRun(t *testing.T, flags []string, childArg string) *wrapped {
	t.Helper()
	return startRunUnder(t, nil, flags, childArg)
}

// startRunUnder is startRun with probe run started by the command under
// (unshare ...). Under one, the child's pid is not the test's to signal:
// ending the command must end probe run and the child.
func startRunUnder(t *testing.T, under []string, flags []string, childArg string) *wrapped {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probeAddr := testutil.FreeAddr(t)
	// Never the default: it would be /dev/termination-log in a pod.
	termLog := filepath.Join(t.TempDir(), "termination-log")
	args := append([]string{"run", "-probe-addr", probeAddr, "-termination-log", termLog}, flags...)
	args = append(args, "--", self, childArg)
	w := &wrapped{t: t, lines: make(chan string, 100), stderr: &syncBuffer{}, probe: "http://" + probeAddr, termLog: termLog, exited: make(chan struct{})}
	argv := append(slices.Clone(under), self)
	w.cmd = exec.Command(argv[0], append(argv[1:], args...)...)
	// Under -race, a process waits a second at exit for reports; these
	// two have none to wait for.
	w.cmd.Env = append(os.Environ(), helperEnv+"=probe", "GORACE=atexit_sleep_ms=0")
	w.cmd.Stderr = w.stderr
	if w.stdin, err = w.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := w.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	read := make(chan struct{})
	go func() {
		defer close(read)
		defer close(w.lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.lines <- sc.Text()
		}
	}()
	go func() {
		<-read // Wait closes stdout: read it all first
		w.cmd.Wait()
		w.code = w.cmd.ProcessState.ExitCode()
		close(w.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-w.exited:
		default:
			w.cmd.Process.Kill()
			if w.childPID > 0 {
				syscall.Kill(-w.childPID, syscall.SIGKILL)
			}
			<-w.exited
		}
		if t.Failed() {
			t.Logf("probe run's stderr:\n%s", w.stderr.String())
		}
	})
	line := w.next("started")
	if len(under) == 0 {
		w.childPID, _ = strconv.Atoi(strings.TrimPrefix(line, "started "))
	}
	return w
}

// next waits for the child's next line that starts with prefix, skipping
// others, and returns it.
func (w *wrapped) next(prefix string) string {
	w.t.Helper()
	deadline := time.NewTimer(testutil.Deadline)
	defer deadline.Stop()
	for {
		select {
		case line, ok := <-w.lines:
			if !ok {
				w.t.Fatalf("the child's output ended before a line %q", prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-deadline.C:
			w.t.Fatalf("no line %q from the child within %s", prefix, testutil.Deadline)
		}
	}
}

// write writes a command to the child.
func (w *wrapped) write(command string) {
	w.t.Helper()
	if _, err := io.WriteString(w.stdin, command+"\n"); err != nil {
		w.t.Fatal(err)
	}
}

// send writes a command to the child and waits for it to be done.
func (w *wrapped) send(command string) {
	w.t.Helper()
	w.write(command)
	word, _, _ := strings.Cut(command, " ")
	if word != "exit" && word != "kill" {
		w.next("done " + word)
	}
}

// signal sends sig to probe run.
func (w *wrapped) signal(sig syscall.Signal) {
	w.t.Helper()
	if err := w.cmd.Process.Signal(sig); err != nil {
		w.t.Fatal(err)
	}
}

// wait waits for probe run to exit and returns its exit code.
func (w *wrapped) wait() int {
	w.t.Helper()
	select {
	case <-w.exited:
		return w.code
	case <-time.After(testutil.Deadline):
		w.t.Fatalf("probe run still running after %s", testutil.Deadline)
		return 0
	}
}

// cause returns the first line of the termination message, once probe
// run has exited.
func (w *wrapped) cause() string {
	w.t.Helper()
	b, err := os.ReadFile(w.termLog)
	if err != nil {
		w.t.Fatalf("no termination message: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	return first
}

// wantCause fails the test unless the termination message's first line
// holds every one of parts.
func (w *wrapped) wantCause(parts ...string) {
	w.t.Helper()
	first := w.cause()
	for _, p := range parts {
		if !strings.Contains(first, p) {
			b, _ := os.ReadFile(w.termLog)
			w.t.Errorf("the termination message's first line lacks %q:\n%s", p, b)
			return
		}
	}
}

var probeClient = &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// status is the probe listener's answer to path, 0 when it does not answer.
func (w *wrapped) status(path string) int {
	res, err := probeClient.Get(w.probe + path)
	if err != nil {
		return 0
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// eventually waits until path answers want.
func (w *wrapped) eventually(path string, want int) {
	w.t.Helper()
	testutil.Eventually(w.t, fmt.Sprintf("%s answers %d", path, want), func() bool { return w.status(path) == want })
}

// Startup passes, and readiness with it, once the child answers its -ready
// check, by HTTP, TCP or a command; until then both fail and liveness
// passes. The wrapper exits with the child's code.
func TestRunReady(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ready")
	addr := testutil.FreeAddr(t)
	tests := []struct {
		name, ready, command string
	}{
		{"http", "http://" + addr + "/health", "http " + addr},
		{"tcp", "tcp://" + addr, "tcp " + addr},
		{"exec", "exec:sh -c 'test -e " + file + "'", "touch " + file},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := startRun(t, []string{"-ready", tt.ready, "-drain", "0"}, "exit:0")
			testutil.Eventually(t, "the probe listener answers", func() bool { return w.status("/startupz") != 0 })
			for path, want := range map[string]int{"/startupz": 503, "/readyz": 503, "/livez": 200} {
				if got := w.status(path); got != want {
					t.Errorf("before the child is ready: %s answers %d, want %d", path, got, want)
				}
			}
			w.send(tt.command)
			w.eventually("/startupz", 200)
			if got := w.status("/readyz"); got != 200 {
				t.Errorf("startup passes, readiness answers %d; want 200 at once", got)
			}
			w.send("exit 3")
			if code := w.wait(); code != 3 {
				t.Errorf("exit code %d, want the child's 3", code)
			}
			w.wantCause(`broken: background work "child" failed: the child exited with code 3`)
		})
	}
}

// inProcess assembles probe run, with flags, in this process in front of
// a shell that exits 4 once a line is written to feed; nothing runs until
// w.run.
func inProcess(t *testing.T, flags ...string) (w *wrapper, feed *os.File) {
	t.Helper()
	args := append([]string{"-probe-addr", testutil.FreeAddr(t), "-termination-log", "-"}, flags...)
	o, code, ok := parseRun(append(args, "--", "sh", "-c", "read line; exit 4"), io.Discard)
	if !ok {
		t.Fatalf("parseRun: exit %d", code)
	}
	w, err := newWrapper(o, nil)
	if err != nil {
		t.Fatal(err)
	}
	stdin, feed, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); feed.Close() })
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devnull.Close() })
	w.stdin, w.stdout, w.stderr = stdin, devnull, devnull
	return w, feed
}

// Liveness fails once the child has exited: the lifecycle is Broken, and
// the stop that follows skips the drain.
func TestRunLivenessFailsOnceTheChildExits(t *testing.T) {
	w, feed := inProcess(t, "-drain", "1h")
	o := w.o
	// Held in the listener of the move to Broken, the stop cannot begin
	// before the probe has been asked.
	live := make(chan int, 1)
	w.a.Lifecycle.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Broken {
			res, err := probeClient.Get("http://" + o.probeAddr + "/livez")
			if err != nil {
				live <- 0
				return
			}
			res.Body.Close()
			live <- res.StatusCode
		}
	})
	exit := make(chan int, 1)
	go func() { exit <- w.run(context.Background(), false) }()
	<-w.started
	testutil.Eventually(t, "startup passes", func() bool { return w.a.Startup.Report().Status() == probes.Pass })
	feed.WriteString("go\n")
	if got := <-live; got != 503 {
		t.Errorf("once the child has exited, /livez answers %d; want 503", got)
	}
	select {
	case code := <-exit:
		if code != 4 {
			t.Errorf("exit code %d, want the child's 4", code)
		}
	case <-time.After(testutil.Deadline):
		t.Fatalf("probe run still running %s after the child exited; want the drain (1h) skipped", testutil.Deadline)
	}
}

// The child check runs every -interval, not more often, and the child's
// exit still fails it at once: the exit triggers it.
func TestRunChildCheckTriggeredByTheExit(t *testing.T) {
	w, feed := inProcess(t, "-interval", "1h")
	child := func() probes.Result {
		for _, r := range w.a.Liveness.Report().Checks {
			if r.Name == aliveCheck {
				return r
			}
		}
		t.Fatalf("no %q check in liveness", aliveCheck)
		return probes.Result{}
	}
	// Held in the listener of the move to Broken, the stop cannot end the
	// runner before the triggered execution has been seen.
	failed := make(chan probes.Result, 1)
	w.a.Lifecycle.Subscribe(func(tr probes.Transition) {
		if tr.To != probes.Broken {
			return
		}
		deadline := time.Now().Add(testutil.Deadline)
		r := child()
		for r.Status == probes.Pass && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
			r = child()
		}
		failed <- r
	})
	exit := make(chan int, 1)
	go func() { exit <- w.run(context.Background(), false) }()
	<-w.started
	testutil.Eventually(t, "startup passes", func() bool { return w.a.Startup.Report().Status() == probes.Pass })
	if r := child(); r.Interval != time.Hour || r.Status != probes.Pass {
		t.Errorf("child check before the exit: every %s, %s; want every -interval (1h), pass", r.Interval, r.Status)
	}
	feed.WriteString("go\n")
	if r := <-failed; r.Status != probes.Fail || !strings.Contains(fmt.Sprint(r.Err), "exited with code 4") {
		t.Errorf("child check once the child has exited: %s (%v); want fail, exited with code 4", r.Status, r.Err)
	}
	select {
	case code := <-exit:
		if code != 4 {
			t.Errorf("exit code %d, want the child's 4", code)
		}
	case <-time.After(testutil.Deadline):
		t.Fatalf("probe run still running %s after the child exited", testutil.Deadline)
	}
}

// -live checks count only once startup has passed, and fail liveness after
// -live-failures failures in a row.
func TestRunLiveChecks(t *testing.T) {
	addr := testutil.FreeAddr(t)
	w := startRun(t, []string{"-ready", "tcp://" + addr, "-live", "http://" + addr + "/live", "-live-failures", "2",
		"-interval", "50ms", "-drain", "0"}, "exit:0")
	testutil.Eventually(t, "the probe listener answers", func() bool { return w.status("/livez") != 0 })
	if got := w.status("/livez"); got != 200 {
		t.Errorf("during the warm-up, with the -live check unanswered, /livez answers %d; want 200", got)
	}
	w.send("http " + addr)
	w.eventually("/readyz", 200)
	if got := w.status("/livez"); got != 200 {
		t.Errorf("ready: /livez answers %d, want 200", got)
	}
	w.send("sick")
	w.eventually("/livez", 503)
	w.signal(syscall.SIGTERM)
	if code := w.wait(); code != 0 {
		t.Errorf("exit code %d, want the child's 0", code)
	}
	w.wantCause("restarted by the kubelet: SIGTERM while liveness fails", `check "http-127.0.0.1-`, "failing since", "status 500")
}

// SIGTERM: readiness fails at once, the drain runs, and only then does the
// child get the signal; the wrapper exits with the child's code.
func TestRunSIGTERM(t *testing.T) {
	const drain = time.Second
	addr := testutil.FreeAddr(t)
	w := startRun(t, []string{"-ready", "tcp://" + addr, "-drain", drain.String()}, "exit:7")
	w.send("tcp " + addr)
	w.eventually("/readyz", 200)
	sent := time.Now()
	w.signal(syscall.SIGTERM)
	w.eventually("/readyz", 503)
	select {
	case line := <-w.lines:
		t.Errorf("readiness just failed and the child already said %q; want the drain first", line)
	default:
	}
	if got := w.status("/livez"); got != 200 {
		t.Errorf("during the drain /livez answers %d, want 200", got)
	}
	w.next("signal terminated")
	if took := time.Since(sent); took < drain {
		t.Errorf("the child got SIGTERM %s after probe run did; want it after the %s drain", took, drain)
	}
	if code := w.wait(); code != 7 {
		t.Errorf("exit code %d, want the child's 7", code)
	}
	w.wantCause("stopped by SIGTERM while ready and live: a stop from outside")
}

// A second SIGTERM cuts the drain short.
func TestRunSecondSignal(t *testing.T) {
	addr := testutil.FreeAddr(t)
	w := startRun(t, []string{"-ready", "tcp://" + addr, "-drain", "1h"}, "exit:0")
	w.send("tcp " + addr)
	w.eventually("/readyz", 200)
	w.signal(syscall.SIGINT)
	w.eventually("/readyz", 503)
	w.signal(syscall.SIGTERM)
	w.next("signal interrupt") // the first signal is the one the child gets
	if code := w.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
	// The second signal ends the hour's drain: cut short once it has
	// begun, or skipped when it comes in the moment between readiness
	// failing and the drain's start (the server's subscribers run then).
	log := w.stderr.String()
	skipped := regexp.MustCompile(`msg="drain skipped" .*reason="signal terminated again"`)
	if !strings.Contains(log, "drain cut short") && !skipped.MatchString(log) {
		t.Errorf("the log does not say the second signal ended the drain:\n%s", log)
	}
}

// The child exiting during the drain ends it: nothing is left to serve.
// A further SIGTERM once the child has been signalled goes to its group.
func TestRunStopRaces(t *testing.T) {
	t.Run("the child exits during the drain", func(t *testing.T) {
		w := startRun(t, []string{"-drain", "1h"}, "exit:0")
		w.eventually("/readyz", 200)
		w.signal(syscall.SIGTERM)
		w.eventually("/readyz", 503)
		w.write("exit 6")
		if code := w.wait(); code != 6 {
			t.Errorf("exit code %d, want the child's 6", code)
		}
		if !strings.Contains(w.stderr.String(), "drain cut short") {
			t.Errorf("the log does not say the drain was cut short:\n%s", w.stderr.String())
		}
	})
	t.Run("a further signal during the stop", func(t *testing.T) {
		w := startRun(t, []string{"-drain", "0", "-stop-timeout", "1h"}, "ignore")
		w.eventually("/readyz", 200)
		w.signal(syscall.SIGTERM)
		w.next("signal terminated")
		w.signal(syscall.SIGTERM)
		w.next("signal terminated")
		w.write("exit 0")
		if code := w.wait(); code != 0 {
			t.Errorf("exit code %d, want the child's 0", code)
		}
	})
}

// A probe listener that cannot be bound fails probe run with 125 before
// the child starts.
func TestRunCannotBind(t *testing.T) {
	ln := testutil.Listen(t)
	file := filepath.Join(t.TempDir(), "started")
	var stderr strings.Builder
	code := runCommand([]string{"-probe-addr", ln.Addr().String(), "--", "touch", file}, io.Discard, &stderr)
	if code != exitWrapper {
		t.Errorf("exit code %d, want %d\n%s", code, exitWrapper, stderr.String())
	}
	if _, err := os.Stat(file); err == nil {
		t.Error("the child ran, with nothing to probe it")
	}
}

// A child killed by a signal makes the wrapper exit 128+n, whether it
// died of its own accord or of the stop's signal; one that ignores the
// stop's signal is killed at -stop-timeout.
func TestRunKilledBySignal(t *testing.T) {
	t.Run("on its own", func(t *testing.T) {
		w := startRun(t, []string{"-drain", "0"}, "exit:0")
		w.eventually("/readyz", 200)
		w.send("kill 9")
		if code := w.wait(); code != 128+9 {
			t.Errorf("exit code %d, want 137", code)
		}
		w.wantCause(`background work "child" failed: the child killed by signal 9 (killed)`)
	})
	t.Run("by SIGTERM", func(t *testing.T) {
		w := startRun(t, []string{"-drain", "0"}, "default")
		w.eventually("/readyz", 200)
		w.signal(syscall.SIGTERM)
		if code := w.wait(); code != 128+15 {
			t.Errorf("exit code %d, want 143", code)
		}
	})
	t.Run("at the stop timeout", func(t *testing.T) {
		w := startRun(t, []string{"-drain", "0", "-stop-timeout", "200ms"}, "ignore")
		w.eventually("/readyz", 200)
		w.signal(syscall.SIGTERM)
		w.next("signal terminated")
		if code := w.wait(); code != 128+9 {
			t.Errorf("exit code %d, want 137", code)
		}
		if !strings.Contains(w.stderr.String(), "SIGKILL") {
			t.Errorf("the log does not mention the SIGKILL:\n%s", w.stderr.String())
		}
		w.wantCause("stopped by SIGTERM while ready and live")
	})
}

// SIGHUP, SIGUSR1, SIGUSR2 and SIGWINCH go to the child as they come.
func TestRunForwardsSignals(t *testing.T) {
	w := startRun(t, []string{"-drain", "0"}, "exit:0")
	w.eventually("/readyz", 200)
	for _, sig := range []syscall.Signal{syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH} {
		w.signal(sig)
		w.next("signal " + sig.String())
	}
	if got := w.status("/readyz"); got != 200 {
		t.Errorf("after the forwarded signals /readyz answers %d, want 200", got)
	}
	w.signal(syscall.SIGTERM)
	if code := w.wait(); code != 0 {
		t.Errorf("exit code %d, want 0", code)
	}
}

// As a subreaper (as PID 1) the wrapper reaps the orphans handed to it,
// its exec checks still see their own exit status, and the child's exit
// code is kept.
func TestRunReapsOrphans(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ready")
	w := startRun(t, []string{"-subreaper", "-ready", "exec:test -e " + file, "-interval", "50ms", "-drain", "0"}, "exit:0")
	w.send("touch " + file)
	w.eventually("/readyz", 200)
	w.write("orphan")
	pid, err := strconv.Atoi(strings.TrimPrefix(w.next("orphan "), "orphan "))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	testutil.Eventually(t, "the orphan handed to probe run", func() bool {
		_, ppid, ok := procState(pid)
		return ok && ppid == w.cmd.Process.Pid
	})
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the orphan reaped", func() bool {
		_, _, ok := procState(pid)
		return !ok
	})
	if got := w.status("/readyz"); got != 200 {
		t.Errorf("while reaping, /readyz answers %d; want 200: the exec check must see its own status", got)
	}
	w.send("exit 5")
	if code := w.wait(); code != 5 {
		t.Errorf("exit code %d, want the child's 5", code)
	}
}

// procState returns the state and parent of pid from /proc, and false once
// the process is gone.
func procState(pid int) (state string, ppid int, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, false
	}
	// pid (comm) state ppid ...: comm may hold spaces and parentheses.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 2 {
		return "", 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	return fields[0], ppid, true
}

// Past -warmup-deadline with the child not ready, the wrapper goes Broken,
// stops the child and exits 124.
func TestRunDeadline(t *testing.T) {
	w := startRun(t, []string{"-ready", "tcp://" + testutil.FreeAddr(t), "-warmup-deadline", "300ms", "-drain", "0"}, "exit:0")
	w.next("signal terminated")
	if code := w.wait(); code != exitDeadline {
		t.Errorf("exit code %d, want %d", code, exitDeadline)
	}
	if !strings.Contains(w.stderr.String(), "warm-up deadline") {
		t.Errorf("the log does not mention the deadline:\n%s", w.stderr.String())
	}
	w.wantCause("broken: warm-up deadline 300ms missed", `task "ready" still running (0%)`)
}

// A command that cannot be started: 127 when it is not found, 126 when it
// cannot be run.
func TestRunCannotStart(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "script")
	if err := os.WriteFile(notExec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		cmd  string
		want int
	}{
		{"not found", "probe-run-test-no-such-command", exitNotFound},
		{"no such file", filepath.Join(t.TempDir(), "missing"), exitNotFound},
		{"not executable", notExec, exitCannotRun},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			code := runCommand([]string{"-probe-addr", testutil.FreeAddr(t), "--", tt.cmd}, io.Discard, &stderr)
			if code != tt.want {
				t.Errorf("exit code %d, want %d\n%s", code, tt.want, stderr.String())
			}
		})
	}
}

// Flags that cannot run anything exit 125 with a line that says why.
func TestRunFlags(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", []string{"-ready", "tcp://127.0.0.1:1"}, "no command"},
		{"bad check", []string{"-ready", "ftp://x", "--", "true"}, "want http://host:port/path, tcp://host:port or exec:CMD ARGS"},
		{"tcp without a port", []string{"-ready", "tcp://localhost", "--", "true"}, "want tcp://host:port"},
		{"exec without a command", []string{"-live", "exec: ", "--", "true"}, "want exec:CMD ARGS"},
		{"open quote", []string{"-ready", "exec:sh -c 'x", "--", "true"}, "is not closed"},
		{"zero every", []string{"-every", "0s", "--", "true"}, "-every 0s: must be positive"},
		{"negative drain", []string{"-drain", "-1s", "--", "true"}, "-drain -1s: must not be negative"},
		{"zero live failures", []string{"-live-failures", "0", "--", "true"}, "-live-failures 0"},
		{"both printers", []string{"-print-systemd", "-print-kubernetes", "-image", "x", "--", "true"}, "give one"},
		{"kubernetes without an image", []string{"-print-kubernetes", "--", "true"}, "needs -image"},
		{"unknown flag", []string{"-bogus", "--", "true"}, "flag provided but not defined"},
		{"readers", []string{"-readers", "all", "--", "true"}, `-readers "all": want none or loopback`},
		{"missing state directory", []string{"-state-dir", "/nonexistent/state", "--", "true"}, "-state-dir: history: StateDir(\"/nonexistent/state\")"},
		{"bad probe address", []string{"-probe-addr", "nope", "--", "true"}, `-probe-addr: "nope" is not host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			code := runCommand(tt.args, io.Discard, &stderr)
			if code != exitWrapper || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("got %d %q, want %d and %q", code, stderr.String(), exitWrapper, tt.want)
			}
		})
	}
}

func TestSplitWords(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"pg_isready -h localhost", []string{"pg_isready", "-h", "localhost"}},
		{"  a\tb  ", []string{"a", "b"}},
		{`sh -c 'test -e /tmp/x && echo "y"'`, []string{"sh", "-c", `test -e /tmp/x && echo "y"`}},
		{`a "b \"c\" \\ d" e`, []string{"a", `b "c" \ d`, "e"}},
		{`a\ b c`, []string{"a b", "c"}},
		{`''`, []string{""}},
		{"", nil},
	}
	for _, tt := range tests {
		got, err := splitWords(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("splitWords(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// Words quoted in '...' split back to themselves.
func FuzzSplitWords(f *testing.F) {
	f.Add("pg_isready -h localhost", "x")
	f.Add(`a "b" \c`, "'")
	f.Fuzz(func(t *testing.T, a, b string) {
		if _, err := splitWords(a); err != nil && !strings.Contains(err.Error(), "not closed") && !strings.Contains(err.Error(), "ends") {
			t.Errorf("splitWords(%q): %v", a, err)
		}
		words := []string{a, b}
		var quoted []string
		for _, w := range words {
			quoted = append(quoted, "'"+strings.ReplaceAll(w, "'", `'\''`)+"'")
		}
		got, err := splitWords(strings.Join(quoted, " "))
		if err != nil || !slices.Equal(got, words) {
			t.Errorf("splitWords of %q quoted: got %q, %v", words, got, err)
		}
	})
}

func TestCheckName(t *testing.T) {
	tests := []struct{ spec, want string }{
		{"http://127.0.0.1:8000/health", "http-127.0.0.1-8000"},
		{"https://[::1]:8443/", "https-1-8443"},
		{"tcp://localhost:6379", "tcp-localhost-6379"},
		{"exec:/usr/bin/pg_isready -h x", "exec-pg_isready"},
	}
	for _, tt := range tests {
		name, _, err := parseCheck(tt.spec, nil)
		if err != nil || name != tt.want || !probes.ValidName(name) {
			t.Errorf("parseCheck(%q): got %q, %v; want %q, a valid name", tt.spec, name, err, tt.want)
		}
	}
	taken := map[string]bool{}
	if a, b := unique("tcp-x", taken), unique("tcp-x", taken); a != "tcp-x" || b != "tcp-x-2" {
		t.Errorf("unique: got %q, %q; want tcp-x, tcp-x-2", a, b)
	}
}

// With -state-dir, the next probe run there lists this one: the deep view
// counts the restart and says how it ended and why (to loopback, an
// authorised reader), and the page's /history lists it.
func TestRunStateDir(t *testing.T) {
	dir := t.TempDir()
	first := startRun(t, []string{"-state-dir", dir, "-drain", "0"}, "exit:0")
	first.eventually("/readyz", 200)
	first.send("exit 3")
	if code := first.wait(); code != 3 {
		t.Fatalf("exit code %d, want the child's 3", code)
	}

	second := startRun(t, []string{"-state-dir", dir, "-drain", "0", "-readers", "loopback"}, "exit:0")
	second.eventually("/readyz", 200)
	res, err := probeClient.Get(second.probe + "/healthz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var deep struct {
		Restarts int `json:"restarts"`
		LastEnd  struct {
			Ended, Cause string
		} `json:"lastEnd"`
	}
	if err := json.NewDecoder(res.Body).Decode(&deep); err != nil {
		t.Fatal(err)
	}
	if deep.Restarts != 1 || deep.LastEnd.Ended != "broken" || !strings.Contains(deep.LastEnd.Cause, "the child exited with code 3") {
		t.Errorf("the deep view after a restart: restarts %d, last end %+v; want 1, broken, the child's exit code 3", deep.Restarts, deep.LastEnd)
	}
	hist, err := probeClient.Get(second.probe + "/history")
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Body.Close()
	b, err := io.ReadAll(hist.Body)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "the child exited with code 3") {
		t.Errorf("/history does not list the previous instance's cause:\n%.2000s", b)
	}
	second.send("exit 0")
	second.wait()

	// Anonymous readers learn that it restarted and how, not why.
	third := startRun(t, []string{"-state-dir", dir, "-drain", "0"}, "exit:0")
	third.eventually("/readyz", 200)
	anon, err := probeClient.Get(third.probe + "/healthz?verbose")
	if err != nil {
		t.Fatal(err)
	}
	defer anon.Body.Close()
	deep.LastEnd.Cause = ""
	if err := json.NewDecoder(anon.Body).Decode(&deep); err != nil {
		t.Fatal(err)
	}
	if deep.Restarts != 2 || deep.LastEnd.Ended != "broken" || deep.LastEnd.Cause != "" {
		t.Errorf("the deep view to an anonymous reader: restarts %d, last end %+v; want 2, broken, no cause", deep.Restarts, deep.LastEnd)
	}
	third.send("exit 0")
	third.wait()
}

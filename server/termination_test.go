package server_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// termFile returns the path of a new, empty termination log.
func termFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "termination-log")
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func readMessage(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func firstLine(msg string) string {
	line, _, _ := strings.Cut(msg, "\n")
	return line
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Ino
}

// serveUntil runs srv.Run(ctx) and waits until base answers, so that Run
// has registered its signals before the test sends one.
func serveUntil(t *testing.T, ctx context.Context, srv *server.Server, base string) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Eventually(t, "serving", func() bool {
		res, err := client.Get(base)
		if err == nil {
			res.Body.Close()
		}
		return err == nil
	})
	return done
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(testutil.Deadline):
		t.Fatal("Run did not return")
		return nil
	}
}

func sendSignal(t *testing.T) {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
}

// exitCode is the exit status of a service whose Run returned err: 1 for
// an error, as the example's, 0 otherwise.
func exitCode(err error) int {
	if err != nil {
		return 1
	}
	return 0
}

// described renders msg as kubectl describe pod shows the last state of
// a container that exited with code, through the same tab writer settings
// and lines as kubectl's describeStatus.
func described(msg string, code int, started, finished time.Time) string {
	reason := "Completed"
	if code != 0 {
		reason = "Error"
	}
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "    Last State:\tTerminated\n")
	fmt.Fprintf(w, "      Reason:\t%s\n", reason)
	fmt.Fprintf(w, "      Message:\t%s\n", msg)
	fmt.Fprintf(w, "      Exit Code:\t%d\n", code)
	fmt.Fprintf(w, "      Started:\t%s\n", started.Format(time.RFC1123Z))
	fmt.Fprintf(w, "      Finished:\t%s\n", finished.Format(time.RFC1123Z))
	w.Flush()
	return b.String()
}

// A stop from outside: the message holds its cause while the drain still
// runs, so that a SIGKILL at the grace period leaves it, and Run writes it
// again when it returns, over the same file, with how the stop ended.
func TestTerminationMessageStop(t *testing.T) {
	path := termFile(t)
	ino := inode(t, path)
	began := time.Now()
	s := start(t, server.DrainDelay(time.Hour), server.Signals(syscall.SIGUSR2), server.TerminationLog(path))
	const want = "stopped by signal user defined signal 2 while ready and live: a stop from outside"

	sendSignal(t)
	testutil.Eventually(t, "the message written as the drain begins", func() bool { return readMessage(t, path) != "" })
	if got := readMessage(t, path); firstLine(got) != want {
		t.Errorf("while draining: got first line %q, want %q", firstLine(got), want)
	}
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	sendSignal(t) // cuts the hour-long drain short
	err := wait(t, s.done)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	msg := readMessage(t, path)
	t.Logf("\n%s", described(msg, exitCode(err), began, time.Now()))
	lines := strings.Split(msg, "\n")
	if lines[0] != want {
		t.Errorf("after Run: got first line %q, want %q", lines[0], want)
	}
	// Newest first: how Run ended, the phase moves of the stop, the cut.
	var order []string
	for _, l := range lines[1:] {
		for _, w := range []string{"Run returned after a ", "phase draining -> stopped", "drain cut short by signal user defined signal 2", "phase ready -> draining: the cause above", "phase warming -> ready"} {
			if strings.Contains(l, w) {
				order = append(order, w)
			}
		}
	}
	if got, want := strings.Join(order, " | "), "Run returned after a  | phase draining -> stopped | drain cut short by signal user defined signal 2 | phase ready -> draining: the cause above"; got != want {
		t.Errorf("transitions: got %q, want %q\n%s", got, want, msg)
	}
	if !strings.HasSuffix(lines[1], " stop: clean") {
		t.Errorf("how Run ended: got %q, want a clean stop", lines[1])
	}
	if got := inode(t, path); got != ino {
		t.Errorf("inode after the last write: got %d, want %d (written in place, not replaced)", got, ino)
	}
}

// Each cause of a stop has its first line, naming what failed, when and
// why, with secrets masked.
func TestTerminationMessageCauses(t *testing.T) {
	type setup struct {
		srv     *server.Server
		ctx     context.Context
		base    string // "" when Run returns before serving
		trigger func() // what makes it stop, once serving; nil when it stops by itself
	}
	newServer := func(t *testing.T, lc *probes.Lifecycle, path string, opts ...server.Option) (*server.Server, string) {
		ln := testutil.Listen(t)
		srv, err := server.New(&http.Server{}, lc, append([]server.Option{server.Listener(ln), server.DrainDelay(0),
			server.Signals(syscall.SIGUSR2), server.TerminationLog(path)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return srv, "http://" + ln.Addr().String()
	}
	tests := []struct {
		name  string
		build func(t *testing.T, path string) setup
		want  string // the first line's start
		has   string // and what else it holds
	}{
		{"liveness fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			live, err := liveness.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			if err := live.Add("worker", probes.CheckFunc(func(context.Context) error {
				return errors.New("no tick for 12s; queue token=Zq7tok")
			}), probes.Every(5*time.Millisecond), probes.FailureThreshold(1)); err != nil {
				t.Fatal(err)
			}
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base, trigger: func() {
				testutil.Eventually(t, "liveness failing", func() bool { return live.Report().Status() == probes.Fail })
				sendSignal(t)
			}}
		}, `restarted by the kubelet: signal user defined signal 2 while liveness fails: check "worker" failing since `, ": no tick for 12s; queue token=xxxxx"},

		{"during warm-up", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			warm, err := startup.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			loading := make(chan struct{})
			if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
				p.Set(0.45)
				close(loading)
				<-ctx.Done()
				return ctx.Err()
			}); err != nil {
				t.Fatal(err)
			}
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base, trigger: func() {
				<-loading
				testutil.Eventually(t, "progress shown", func() bool { return warm.Report().Progress() >= 0.45 })
				sendSignal(t)
			}}
		}, "stopped by signal user defined signal 2 during warm-up (warm-up 45%: cache 45%): ", "the startup probe"},

		{"warm-up deadline", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			warm, err := startup.New(lc, startup.Deadline(200*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
				p.Set(0.45)
				<-ctx.Done()
				return ctx.Err()
			}); err != nil {
				t.Fatal(err)
			}
			if err := warm.Task("schema", func(context.Context, *startup.Progress) error {
				return errors.New("connect: postgres://app:Zq7pw@db/items: connection refused")
			}); err != nil {
				t.Fatal(err)
			}
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base}
		}, `broken: warm-up deadline 200ms missed: task "cache" `, `45%`},

		{"background work fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			fail := failingWork(t, lc, "refresher", errors.New("lost its queue: password=Zq7pass"))
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base, trigger: fail}
		}, `broken: background work "refresher" failed: lost its queue: password=xxxxx`, ""},

		{"background work panics", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			fail := make(chan struct{})
			if err := lc.Go("refresher", func(ctx context.Context) error {
				select {
				case <-fail:
					panic("index out of range [3] with length 3")
				case <-ctx.Done():
					return ctx.Err()
				}
			}); err != nil {
				t.Fatal(err)
			}
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base, trigger: func() { close(fail) }}
		}, `broken: background work "refresher" panicked: index out of range [3] with length 3`, ""},

		{"marked broken", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			return setup{srv: srv, base: base, trigger: func() {
				if err := lc.MarkBroken(errors.New("cache corrupt: checksum mismatch in segment 7")); err != nil {
					t.Fatal(err)
				}
			}}
		}, "broken: cache corrupt: checksum mismatch in segment 7", ""},

		{"broken before Run", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			if err := lc.MarkBroken(errors.New("bad config")); err != nil {
				t.Fatal(err)
			}
			srv, _ := newServer(t, lc, path)
			return setup{srv: srv}
		}, "broken: the lifecycle was Broken before Run", ""},

		{"serve fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			ln := &failingListener{Listener: testutil.Listen(t), fail: make(chan struct{}),
				err: errors.New("accept: lost postgres://app:Zq7pw@db/items")}
			srv, err := server.New(&http.Server{}, lc, server.Listener(ln), server.DrainDelay(0), server.Signals(), server.TerminationLog(path))
			if err != nil {
				t.Fatal(err)
			}
			return setup{srv: srv, base: "http://" + ln.Addr().String(), trigger: func() { close(ln.fail) }}
		}, "failed: the HTTP server's Serve returned: accept: lost postgres://app:xxxxx@db/items", ""},

		{"probe listener fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			pln := &failingListener{Listener: testutil.Listen(t), fail: make(chan struct{}), err: errors.New("accept: too many open files")}
			srv, base := newServer(t, lc, path, server.ProbeListener(pln, http.NewServeMux()))
			return setup{srv: srv, base: base, trigger: func() { close(pln.fail) }}
		}, "failed: the probe listener's Serve returned: accept: too many open files", ""},

		{"a peer fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			p := &stoppingPeer{fail: make(chan struct{}), done: make(chan struct{})}
			srv, base := newServer(t, lc, path, server.Also("grpc", p))
			return setup{srv: srv, base: base, trigger: func() { close(p.fail) }}
		}, "failed: grpc stopped serving: transport: listener closed", ""},

		{"context cancelled", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			ctx, cancel := context.WithCancel(context.Background())
			t.Cleanup(cancel)
			return setup{srv: srv, ctx: ctx, base: base, trigger: func() { cancel() }}
		}, "stopped: the context was cancelled: the service's own stop", ""},

		{"context cancelled with a cause", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path)
			ctx, cancel := context.WithCancelCause(context.Background())
			t.Cleanup(func() { cancel(nil) })
			return setup{srv: srv, ctx: ctx, base: base, trigger: func() { cancel(errors.New("config reloaded")) }}
		}, "stopped: the context was cancelled (config reloaded): the service's own stop", ""},

		{"the program's own signal handling (SignalStop)", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path, server.Signals())
			ctx, cancel := context.WithCancelCause(context.Background())
			t.Cleanup(func() { cancel(nil) })
			return setup{srv: srv, ctx: ctx, base: base, trigger: func() { cancel(fmt.Errorf("the wrapper: %w", &server.SignalStop{Signal: syscall.SIGTERM})) }}
		}, "stopped by SIGTERM while ready and live: a stop from outside (a rolling update, a scale-in, an eviction)", ""},

		{"signal.NotifyContext's signal", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			testutil.Ready(t, lc)
			srv, base := newServer(t, lc, path, server.Signals())
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGUSR2)
			t.Cleanup(stop)
			return setup{srv: srv, ctx: ctx, base: base, trigger: func() { sendSignal(t) }}
		}, "stopped by signal user defined signal 2 while ready and live: a stop from outside", ""},

		{"bind fails", func(t *testing.T, path string) setup {
			lc := probes.NewLifecycle()
			taken := testutil.Listen(t)
			srv, err := server.New(nil, lc, server.ProbeAddr(taken.Addr().String(), http.NewServeMux()), server.Signals(), server.TerminationLog(path))
			if err != nil {
				t.Fatal(err)
			}
			return setup{srv: srv}
		}, "failed before serving: server: probe listener: listen tcp ", "address already in use"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := termFile(t)
			began := time.Now()
			s := tt.build(t, path)
			ctx := s.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			var done <-chan error
			if s.base != "" {
				done = serveUntil(t, ctx, s.srv, s.base)
			} else {
				d := make(chan error, 1)
				d <- s.srv.Run(ctx)
				done = d
			}
			if s.trigger != nil {
				s.trigger()
			}
			err := wait(t, done)
			msg := readMessage(t, path)
			t.Logf("Run: %v\n%s", err, described(msg, exitCode(err), began, time.Now()))
			got := firstLine(msg)
			if !strings.HasPrefix(got, tt.want) || !strings.Contains(got, tt.has) {
				t.Errorf("first line:\n got %q\nwant %q, holding %q", got, tt.want, tt.has)
			}
			if strings.Contains(msg, "Zq7") {
				t.Errorf("the message holds a secret:\n%s", msg)
			}
			if len(msg) > 4096 {
				t.Errorf("the message is %d bytes, more than 4096", len(msg))
			}
		})
	}
}

// stoppingPeer serves until fail is closed, then returns an error, as a
// gRPC server whose listener closed under it would.
type stoppingPeer struct {
	fail, done chan struct{}
	closed     atomic.Bool
}

func (p *stoppingPeer) Serve() error {
	<-p.fail
	return errors.New("transport: listener closed")
}

func (p *stoppingPeer) Shutdown(context.Context) error { return nil }
func (p *stoppingPeer) Close() error                   { p.closed.Store(true); return nil }

// TerminationLog("") writes nothing; a path that cannot be written is
// logged, and the stop goes on as ever; a path with a NUL byte is refused.
func TestTerminationLogOption(t *testing.T) {
	if _, err := server.New(&http.Server{}, probes.NewLifecycle(), server.TerminationLog("a\x00b")); err == nil || !strings.Contains(err.Error(), "TerminationLog") {
		t.Errorf("New with a NUL in the path: got %v, want an error naming TerminationLog", err)
	}

	lc := probes.NewLifecycle()
	testutil.Ready(t, lc)
	core, logs := observer.New(zap.DebugLevel)
	missing := filepath.Join(t.TempDir(), "no", "such", "dir", "termination-log")
	srv := bare(t, lc, server.TerminationLog(missing), server.Logger(zap.New(core)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Run(ctx); err != nil {
		t.Errorf("Run with a path it cannot write: got %v, want nil", err)
	}
	if n := logs.FilterMessage("cannot write the termination message").Len(); n != 2 {
		t.Errorf("got %d warnings, want 2: one a write", n)
	}

	dir := t.TempDir()
	lc = probes.NewLifecycle()
	testutil.Ready(t, lc)
	srv = bare(t, lc, server.TerminationLog(""))
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("TerminationLog(\"\") wrote %v", entries)
	}
}

// The environment variables that make the test binary a child process,
// and say where it writes its termination message.
const (
	childEnv     = "PROBES_SERVER_TEST_CHILD"
	childPathEnv = "PROBES_SERVER_TEST_TERMLOG"
)

// child is the test binary run as a child process, a service stopped by
// real signals: it warms up (a task "cache"), serves the probes on
// loopback, prints "serving ADDR", and runs with the default signals until
// they stop it, it is killed, or its mode ends it. The modes:
//
//   - stop: a 100ms drain;
//   - drain: an hour's drain, for a SIGKILL to cut;
//   - liveness: a liveness check "worker" that fails;
//   - warming: a warm-up that stays at 45% (it prints "warming" once there);
//   - panic: a listener of the drain that panics on Run's goroutine, and
//     a context done from the start.
func child(mode string) int {
	lc := probes.NewLifecycle()
	live, err := liveness.New(lc)
	if err != nil {
		return fail(err)
	}
	if _, err := readiness.New(lc); err != nil {
		return fail(err)
	}
	warm, err := startup.New(lc)
	if err != nil {
		return fail(err)
	}
	if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		if mode == "warming" {
			p.Set(0.45)
			fmt.Println("warming")
			<-ctx.Done()
			return ctx.Err()
		}
		p.Set(1)
		return nil
	}); err != nil {
		return fail(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		return fail(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	opts := []server.Option{server.Listener(ln), server.TerminationLog(os.Getenv(childPathEnv)), server.DrainDelay(100 * time.Millisecond)}
	ctx := context.Background()
	switch mode {
	case "drain":
		opts = append(opts, server.DrainDelay(time.Hour))
	case "liveness":
		if err := live.Add("worker", probes.CheckFunc(func(context.Context) error {
			return errors.New("no heartbeat for 12s: the loop is stuck")
		}), probes.Every(20*time.Millisecond), probes.FailureThreshold(3)); err != nil {
			return fail(err)
		}
	case "panic":
		lc.Subscribe(func(t probes.Transition) {
			if t.To == probes.Draining {
				panic("listener of the drain: assignment to entry in nil map")
			}
		})
		c, cancel := context.WithCancel(ctx)
		cancel()
		ctx = c
	}
	srv, err := server.New(&http.Server{Handler: mux}, lc, opts...)
	if err != nil {
		return fail(err)
	}
	fmt.Printf("serving %s\n", ln.Addr())
	if err := srv.Run(ctx); err != nil {
		return fail(err)
	}
	return 0
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, err)
	return 1
}

// childProcess is the test binary run as a child.
type childProcess struct {
	cmd    *exec.Cmd
	out    *bufio.Reader
	base   string
	stderr bytes.Buffer
	began  time.Time
}

// startChild runs the test binary as a child in mode, writing its
// termination message to path, and returns it once it serves.
func startChild(t *testing.T, mode, path string) *childProcess {
	t.Helper()
	c := &childProcess{cmd: exec.Command(os.Args[0], "-test.run=^$"), began: time.Now()}
	// The race detector's pause at exit would only slow the test down.
	c.cmd.Env = append(os.Environ(), childEnv+"="+mode, childPathEnv+"="+path, "GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0")
	c.cmd.Stderr = &c.stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.cmd.Process.Kill() //nolint:errcheck // gone already when the test went well
		c.cmd.Wait()         //nolint:errcheck
	})
	c.out = bufio.NewReader(out)
	addr, ok := strings.CutPrefix(c.line(t), "serving ")
	if !ok {
		t.Fatalf("child: want serving ADDR first\n%s", c.stderr.String())
	}
	c.base = "http://" + addr
	return c
}

// line reads the child's next line of output.
func (c *childProcess) line(t *testing.T) string {
	t.Helper()
	line, err := c.out.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v\n%s", err, c.stderr.String())
	}
	return strings.TrimSpace(line)
}

// until waits until the child's path answers code.
func (c *childProcess) until(t *testing.T, path string, code int) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%s answering %d", path, code), func() bool {
		res, err := client.Get(c.base + path)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == code
	})
}

func (c *childProcess) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := c.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// exit waits for the child and returns its exit status, 128 and the
// signal's number when a signal killed it, as a container runtime says.
func (c *childProcess) exit(t *testing.T) int {
	t.Helper()
	c.cmd.Wait() //nolint:errcheck // the status says it
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		t.Fatalf("child: %v", c.cmd.ProcessState)
	case ws.Signaled():
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// Real signals, to a service in a process of its own: the message says
// what the kubelet's SIGTERM meant, and with how the stop ended.
func TestTerminationMessageSIGTERM(t *testing.T) {
	for _, tt := range []struct {
		mode  string
		await func(t *testing.T, c *childProcess)
		code  int
		want  string // the first line's start
	}{
		{"stop", func(t *testing.T, c *childProcess) { c.until(t, "/readyz", 200) }, 0,
			"stopped by SIGTERM while ready and live: a stop from outside (a rolling update, a scale-in, an eviction)"},
		{"liveness", func(t *testing.T, c *childProcess) {
			// As the kubelet does, though faster: a probe every 100ms, and
			// the restart after 3 failures in a row.
			for range 3 {
				c.until(t, "/livez", 503)
				time.Sleep(100 * time.Millisecond)
			}
		}, 0,
			`restarted by the kubelet: SIGTERM while liveness fails: check "worker" failing since `},
		{"warming", func(t *testing.T, c *childProcess) {
			if l := c.line(t); l != "warming" {
				t.Fatalf("child: got %q, want warming", l)
			}
		}, 0, "stopped by SIGTERM during warm-up (warm-up 45%: cache 45%): the kubelet's restart once the startup probe has failed failureThreshold times, or a stop from outside"},
	} {
		t.Run(tt.mode, func(t *testing.T) {
			path := termFile(t)
			c := startChild(t, tt.mode, path)
			tt.await(t, c)
			c.signal(t, syscall.SIGTERM)
			code := c.exit(t)
			msg := readMessage(t, path)
			t.Logf("\n%s", described(msg, code, c.began, time.Now()))
			if code != tt.code {
				t.Errorf("exit status %d, want %d\n%s", code, tt.code, c.stderr.String())
			}
			if got := firstLine(msg); !strings.HasPrefix(got, tt.want) {
				t.Errorf("first line:\n got %q\nwant %q", got, tt.want)
			}
			if !strings.Contains(msg, "Run returned after a ") {
				t.Errorf("no line on how the stop ended:\n%s", msg)
			}
		})
	}
}

// The message written as the stop begins survives a SIGKILL in the middle
// of the drain, as the kubelet sends at the end of the grace period.
func TestTerminationMessageSurvivesSIGKILL(t *testing.T) {
	path := termFile(t)
	c := startChild(t, "drain", path)
	c.until(t, "/readyz", 200)
	c.signal(t, syscall.SIGTERM)
	testutil.Eventually(t, "the message written", func() bool { return readMessage(t, path) != "" })
	c.signal(t, syscall.SIGKILL)
	if code := c.exit(t); code != 128+int(syscall.SIGKILL) {
		t.Fatalf("child: exit status %d, want killed by SIGKILL\n%s", code, c.stderr.String())
	}
	msg := readMessage(t, path)
	t.Logf("\n%s", described(msg, 128+int(syscall.SIGKILL), c.began, time.Now()))
	const want = "stopped by SIGTERM while ready and live: a stop from outside (a rolling update, a scale-in, an eviction)"
	if got := firstLine(msg); got != want {
		t.Errorf("after SIGKILL: got first line %q, want %q", got, want)
	}
	if !strings.Contains(msg, "phase warming -> ready: warm-up done") {
		t.Errorf("the transitions before the stop are missing:\n%s", msg)
	}
}

// A panic on Run's goroutine (here a listener of the lifecycle's moves,
// which runs on the goroutine that moves it) takes the process down, but
// leaves its message first, with the stop that had begun.
func TestTerminationMessagePanicOnRunsGoroutine(t *testing.T) {
	path := termFile(t)
	c := startChild(t, "panic", path)
	if code := c.exit(t); code != 2 || !strings.Contains(c.stderr.String(), "panic: listener of the drain") {
		t.Fatalf("child: exit status %d, want the 2 of a panic\n%s", code, c.stderr.String())
	}
	msg := readMessage(t, path)
	t.Logf("\n%s", described(msg, 2, c.began, time.Now()))
	if got, want := firstLine(msg), "panicked on Server.Run's goroutine: listener of the drain: assignment to entry in nil map"; got != want {
		t.Errorf("first line: got %q, want %q", got, want)
	}
	if !strings.Contains(msg, "the stop had begun: stopped: the context was cancelled") {
		t.Errorf("the message does not say which stop had begun:\n%s", msg)
	}
}

package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
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

// client makes a fresh connection per request, as the kubelet does.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func get(t *testing.T, url string) (int, http.Header) {
	t.Helper()
	res, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck
	res.Body.Close()
	return res.StatusCode, res.Header
}

type service struct {
	lc       *probes.Lifecycle
	base     string
	entered  chan struct{} // a /slow request has arrived
	release  chan struct{} // lets /slow requests finish: close it with free
	free     func()        // closes release, once
	done     chan error    // Run's result
	cancel   context.CancelFunc
	logs     *observer.ObservedLogs
	handlers server.Handlers
	srv      *server.Server
}

// start runs a ready service on loopback with a /slow route that blocks
// until release is closed.
func start(t *testing.T, opts ...server.Option) *service {
	t.Helper()
	return startWith(t, nil, opts...)
}

// startWith is start with options that need the probe handlers.
func startWith(t *testing.T, withHandlers func(server.Handlers) []server.Option, opts ...server.Option) *service {
	t.Helper()
	core, logs := observer.New(zap.DebugLevel)
	s := &service{
		lc: probes.NewLifecycle(), entered: make(chan struct{}, 10), release: make(chan struct{}),
		done: make(chan error, 1), logs: logs,
	}
	s.free = sync.OnceFunc(func() { close(s.release) })
	if _, err := liveness.New(s.lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(s.lc); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	var err error
	if s.handlers, err = server.Register(mux, s.lc); err != nil {
		t.Fatal(err)
	}
	if withHandlers != nil {
		opts = append(opts, withHandlers(s.handlers)...)
	}
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		s.entered <- struct{}{}
		<-s.release
		io.WriteString(w, "done")
	})
	mux.HandleFunc("/fast", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "fast") })
	mux.Handle("/metrics", server.Monitoring(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up 1\n")
	})))
	mux.Handle("/metrics/slow", server.Monitoring(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.entered <- struct{}{}
		<-s.release
		io.WriteString(w, "up 1\n")
	})))
	ln := testutil.Listen(t)
	s.base = "http://" + ln.Addr().String()
	opts = append([]server.Option{server.Listener(ln), server.Logger(zap.New(core))}, opts...)
	srv, err := server.New(&http.Server{Handler: mux}, s.lc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	testutil.Ready(t, s.lc)
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	exited := make(chan struct{})
	go func() { s.done <- srv.Run(ctx); close(exited) }()
	t.Cleanup(func() {
		// Owned even when the test stops early: end Run and its requests.
		cancel()
		s.free()
		select {
		case <-exited:
		case <-time.After(testutil.Deadline):
			t.Error("Run still running at the end of the test")
		}
	})
	testutil.Eventually(t, "service ready", func() bool {
		res, err := client.Get(s.base + "/readyz")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	return s
}

// bare returns a server for lc on a loopback listener, with no drain and no
// signals: for tests about the shutdown's order, not the drain.
func bare(t *testing.T, lc *probes.Lifecycle, opts ...server.Option) *server.Server {
	t.Helper()
	ln := testutil.Listen(t)
	srv, err := server.New(&http.Server{}, lc, append([]server.Option{server.Listener(ln), server.DrainDelay(0), server.Signals()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return srv
}

func TestGracefulShutdown(t *testing.T) {
	s := start(t, server.DrainDelay(time.Hour), server.Signals(syscall.SIGUSR2))

	// The very next probe after the move to Draining must fail: ask from
	// inside the transition, right after the gates have re-rendered.
	nextProbe := make(chan int, 1)
	s.lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Draining {
			res, err := client.Get(s.base + "/readyz")
			if err != nil {
				nextProbe <- -1
				return
			}
			res.Body.Close()
			nextProbe <- res.StatusCode
		}
	})

	slow := make(chan string, 1)
	go func() {
		res, err := client.Get(s.base + "/slow")
		if err != nil {
			slow <- "error: " + err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		slow <- res.Status + " " + string(b)
	}()
	<-s.entered

	s.cancel()
	if code := <-nextProbe; code != 503 {
		t.Errorf("first readiness probe after the transition: got %d, want 503", code)
	}
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	if code, _ := get(t, s.base+"/livez"); code != 200 {
		t.Errorf("liveness while draining: got %d, want 200", code)
	}
	// Late requests are still served, and told to close their connection.
	req, _ := http.NewRequest(http.MethodGet, s.base+"/fast", nil)
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatalf("request while draining: %v", err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || !res.Close {
		t.Errorf("request while draining: got %d, Connection close %v; want 200 and close", res.StatusCode, res.Close)
	}

	// A second signal cuts the hour-long drain short; the in-flight
	// request still completes before Run returns.
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "drain cut short", func() bool { return s.logs.FilterMessage("drain cut short").Len() == 1 })
	s.free()
	if got := <-slow; got != "200 OK done" {
		t.Errorf("in-flight request: got %q, want 200 done", got)
	}
	if err := <-s.done; err != nil {
		t.Errorf("Run: got %v, want nil", err)
	}
	if p := s.lc.Phase(); p != probes.Stopped {
		t.Errorf("phase after Run: got %s, want stopped", p)
	}
	var moves []string
	for _, e := range s.logs.FilterMessage("phase changed").All() {
		m := e.ContextMap()
		moves = append(moves, m["from"].(string)+">"+m["to"].(string))
	}
	if got := strings.Join(moves, " "); got != "ready>draining draining>stopped" {
		t.Errorf("logged transitions: got %q", got)
	}
}

func TestShutdownTimeout(t *testing.T) {
	s := start(t, server.DrainDelay(0), server.ShutdownTimeout(50*time.Millisecond), server.Signals())
	defer s.free()
	go func() {
		if res, err := client.Get(s.base + "/slow"); err == nil {
			res.Body.Close()
		}
	}()
	<-s.entered
	s.cancel()
	err := <-s.done
	if err == nil || !strings.Contains(err.Error(), "shutdown timeout 50ms: 1 requests cut") || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run: got %v, want a shutdown timeout error", err)
	}
	if p := s.lc.Phase(); p != probes.Stopped {
		t.Errorf("phase: got %s, want stopped", p)
	}
}

func TestRunListenError(t *testing.T) {
	lc := probes.NewLifecycle()
	srv, err := server.New(&http.Server{Addr: "127.0.0.1:-1"}, lc, server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "server: ") {
		t.Errorf("Run: got %v, want a listen error", err)
	}
	if lc.Phase() != probes.Cold {
		t.Errorf("phase: got %s, want cold", lc.Phase())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		name string
		opt  server.Option
		want string
	}{
		{"negative drain", server.DrainDelay(-time.Second), "DrainDelay(-1s)"},
		{"zero shutdown timeout", server.ShutdownTimeout(0), "ShutdownTimeout(0s)"},
		{"nil listener", server.Listener(nil), "Listener(nil)"},
		{"probed without handler", server.DrainUntilProbed(nil, 2, time.Second), "DrainUntilProbed(nil, 2, 1s)"},
		{"probed zero times", server.DrainUntilProbed(&server.Handler{}, 0, time.Second), "n must be at least 1"},
		{"probed no max", server.DrainUntilProbed(&server.Handler{}, 1, 0), "max must be positive"},
		{"first bad option named", server.DrainDelay(-time.Second), "server: DrainDelay(-1s)"},
		{"hook without name", server.OnDrain("", time.Second, func(context.Context) error { return nil }), `OnDrain("", 1s, fn)`},
		{"hook without timeout", server.AfterClose("flush", 0, func(context.Context) error { return nil }), `AfterClose("flush", 0s, fn)`},
		{"hook without function", server.AfterClose("flush", time.Second, nil), `AfterClose("flush", 1s, nil)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := server.New(&http.Server{}, probes.NewLifecycle(), tt.opt)
			if err == nil || srv != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error naming %s", srv, err, tt.want)
			}
		})
	}
	if _, err := server.New(nil, probes.NewLifecycle()); err == nil {
		t.Error("New(nil, ...): got nil error")
	}
}

func TestLogsVerdictChanges(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	healthy := make(chan bool, 1)
	healthy <- false
	state := false
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		select {
		case state = <-healthy:
		default:
		}
		if !state {
			return errors.New("dial postgres://app:hunter2@db: refused")
		}
		return nil
	}), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	srv := bare(t, lc, server.Logger(zap.New(core)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Eventually(t, "failure logged", func() bool { return logs.FilterMessage("check verdict changed").Len() >= 1 })
	healthy <- true
	testutil.Eventually(t, "recovery logged", func() bool { return logs.FilterMessage("check verdict changed").Len() >= 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	entries := logs.FilterMessage("check verdict changed").All()
	first, second := entries[0].ContextMap(), entries[1].ContextMap()
	if first["check"] != "db" || first["to"] != "fail" || second["to"] != "pass" || second["from"] != "fail" {
		t.Errorf("logged %v then %v; want db to fail, then fail to pass", first, second)
	}
	if msg, _ := first["error"].(string); !strings.Contains(msg, "refused") || strings.Contains(msg, "hunter2") {
		t.Errorf("logged error %q: want the reason without the password", msg)
	}
}

// Only real changes of a check's verdict are logged: at start-up a
// self-check, which passes until its first result, is not logged passing
// "from pass to pass"; a readiness check, failing until then, is logged
// passing once; a self-check that fails later is logged.
func TestLogsOnlyRealVerdictChanges(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	lc := probes.NewLifecycle()
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var wedged atomic.Bool
	self := probes.CheckFunc(func(context.Context) error {
		if wedged.Load() {
			return errors.New("wedged")
		}
		return nil
	})
	if err := live.Add("self", self, probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	// A heartbeat made as its goroutine starts, after Run has begun.
	if err := lc.Go("worker", func(ctx context.Context) error {
		beat, err := live.Heartbeat("worker", time.Second)
		if err != nil {
			return err
		}
		for {
			beat.Tick()
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Millisecond):
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	srv := bare(t, lc, server.Logger(zap.New(core)))
	testutil.Background(t, srv.Run)
	testutil.Ready(t, lc)
	testutil.Eventually(t, "every check has a result", func() bool {
		for _, g := range []probes.Gate{live, ready} {
			rep := g.Report()
			for _, c := range rep.Checks {
				if c.Time.IsZero() {
					return false
				}
			}
			if len(rep.Checks) == 0 {
				return false
			}
		}
		_, ok := live.Report().Check("worker")
		return ok
	})
	wedged.Store(true)
	testutil.Eventually(t, "the wedged self-check logged", func() bool {
		for _, e := range logs.FilterMessage("check verdict changed").All() {
			if e.ContextMap()["check"] == "self" {
				return true
			}
		}
		return false
	})
	var got []string
	for _, e := range logs.FilterMessage("check verdict changed").All() {
		m := e.ContextMap()
		got = append(got, fmt.Sprintf("%v: %v to %v", m["check"], m["from"], m["to"]))
	}
	// db's first pass is news (readiness stood at fail before it), but
	// not a change from an earlier result: no "from".
	want := []string{"db: <nil> to pass", "self: pass to fail"}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}

func TestDrainKeepsIdleConnections(t *testing.T) {
	s := start(t, server.DrainDelay(time.Hour), server.Signals(syscall.SIGUSR2))
	keepAlive := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 10 * time.Second}
	defer keepAlive.CloseIdleConnections()
	do := func() (*http.Response, bool) {
		t.Helper()
		reused := false
		trace := &httptrace.ClientTrace{GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused }}
		req, _ := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace), http.MethodGet, s.base+"/fast", nil)
		res, err := keepAlive.Do(req)
		if err != nil {
			t.Fatalf("GET /fast: %v", err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		res.Body.Close()
		return res, reused
	}
	if res, _ := do(); res.Close {
		t.Fatal("Connection: close before the drain")
	}
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	// The idle connection from before the drain still works, and the answer
	// on it asks the client to close it.
	res, reused := do()
	if !reused || res.StatusCode != 200 || !res.Close {
		t.Errorf("request on the idle connection while draining: reused %v, %d, close %v; want reused, 200, close",
			reused, res.StatusCode, res.Close)
	}
	s.free()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
}

func TestDrainUntilProbed(t *testing.T) {
	s := startWith(t, func(h server.Handlers) []server.Option {
		// A DrainDelay given after it does not switch the probe-aware drain off.
		return []server.Option{server.DrainUntilProbed(h.Readiness, 3, time.Hour), server.DrainDelay(0), server.DrainQuiet(50 * time.Millisecond), server.Signals()}
	})
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	// Two failing answers are not enough; the drain goes on serving.
	for range 2 {
		if code, _ := get(t, s.base+"/readyz"); code != 503 {
			t.Fatalf("readiness while draining: got %d", code)
		}
	}
	if code, _ := get(t, s.base+"/fast"); code != 200 {
		t.Errorf("API after two failing probes: got %d, want 200 (still draining)", code)
	}
	if s.lc.Phase() != probes.Draining {
		t.Fatalf("phase after two failing probes: got %s, want draining", s.lc.Phase())
	}
	// The third ends it, long before the hour-long maximum.
	if code, _ := get(t, s.base+"/readyz"); code != 503 {
		t.Fatalf("readiness while draining: got %d", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if n := s.logs.FilterMessage("drain over: readiness seen failing and application requests stopped").Len(); n != 1 {
		t.Errorf("logged the probe-aware end %d times, want 1", n)
	}
}

func TestDrainUntilProbedMaximum(t *testing.T) {
	s := startWith(t, func(h server.Handlers) []server.Option {
		return []server.Option{server.DrainUntilProbed(h.Readiness, 3, 20*time.Millisecond), server.Signals()}
	})
	s.cancel() // nobody probes: the maximum ends the drain
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if n := s.logs.FilterMessage("drain over: probe-aware drain reached its maximum").Len(); n != 1 {
		t.Errorf("logged the maximum %d times, want 1", n)
	}
}

func TestShutdownHooks(t *testing.T) {
	var (
		mu             sync.Mutex // hooks run on goroutines of their own
		phaseOnDrain   probes.Phase
		dialAfterClose error
		phaseAfter     probes.Phase
		order          []string
		s              *service
	)
	note := func(name string) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, name)
	}
	s = start(t, server.DrainDelay(0), server.Signals(),
		server.OnDrain("deregister", time.Second, func(context.Context) error {
			note("deregister")
			phaseOnDrain = s.lc.Phase()
			return nil
		}),
		server.OnDrain("stuck", 20*time.Millisecond, func(ctx context.Context) error {
			note("stuck")
			<-ctx.Done()
			return ctx.Err()
		}),
		server.AfterClose("close-pool", time.Second, func(context.Context) error {
			note("close-pool")
			phaseAfter = s.lc.Phase()
			_, dialAfterClose = net.DialTimeout("tcp", strings.TrimPrefix(s.base, "http://"), time.Second)
			return errors.New("pool close failed: password=hunter2")
		}),
	)
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v (hooks must not fail the shutdown)", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ","); got != "deregister,stuck,close-pool" {
		t.Errorf("hook order: %s", got)
	}
	if phaseOnDrain != probes.Draining {
		t.Errorf("OnDrain ran in phase %s, want draining", phaseOnDrain)
	}
	if dialAfterClose == nil || phaseAfter != probes.Draining {
		t.Errorf("AfterClose: dial error %v in phase %s; want the listener closed, before Stopped", dialAfterClose, phaseAfter)
	}
	failed := s.logs.FilterMessage("shutdown hook failed").All()
	if len(failed) != 2 {
		t.Fatalf("failed hooks logged: %d, want 2 (the stuck one and the failing one)", len(failed))
	}
	if msg := failed[1].ContextMap()["error"].(string); strings.Contains(msg, "hunter2") {
		t.Errorf("hook error logged with its password: %s", msg)
	}
}

// AfterClose runs only once background work (here a warm-up task that
// takes a moment to wind down) has returned, and Run returns after it.
func TestAfterCloseAfterBackgroundWork(t *testing.T) {
	lc := probes.NewLifecycle()
	var taskDone, hookSawTaskDone atomic.Bool
	if err := lc.Go("worker", func(ctx context.Context) error {
		<-ctx.Done()
		time.Sleep(30 * time.Millisecond) // winds down slowly, but honours ctx
		taskDone.Store(true)
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	srv := bare(t, lc, server.AfterClose("pool", time.Second, func(context.Context) error {
		hookSawTaskDone.Store(taskDone.Load())
		return nil
	}))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := srv.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if !hookSawTaskDone.Load() {
		t.Error("AfterClose ran while background work was still running")
	}
}

// Background work that fails is loud: the lifecycle breaks (every gate
// fails), the server shuts down, and Run returns the error.
func TestBackgroundFailureStopsTheServer(t *testing.T) {
	lc := probes.NewLifecycle()
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	fail := failingWork(t, lc, "refresher", errors.New("refresher lost its queue: password=hunter2"))
	testutil.Ready(t, lc)
	srv := bare(t, lc)
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	fail()
	err = <-done
	if err == nil || !strings.Contains(err.Error(), "refresher") {
		t.Fatalf("Run: got %v, want the background failure", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Run's error holds the password: %v", err)
	}
	if lc.Phase() != probes.Broken || live.Report().Status() != probes.Fail {
		t.Errorf("after the failure: phase %s, liveness %s; want broken and failing", lc.Phase(), live.Report().Status())
	}
}

// The gates Register serves are the gates Run runs: a liveness heartbeat
// mounted on the router is evaluated without any further call.
func TestServedGatesRun(t *testing.T) {
	s := start(t, server.DrainDelay(0), server.Signals())
	defer func() { s.free(); s.cancel(); <-s.done }()
	if code, _ := get(t, s.base+"/livez"); code != 200 {
		t.Errorf("liveness: got %d, want 200", code)
	}
}

// failingListener accepts until fail is closed, then returns err from Accept
// as a listener whose socket broke would.
type failingListener struct {
	net.Listener
	fail chan struct{}
	err  error
}

func (l *failingListener) Accept() (net.Conn, error) {
	select {
	case <-l.fail:
		return nil, l.err
	default:
	}
	type result struct {
		c   net.Conn
		err error
	}
	got := make(chan result, 1)
	go func() { c, err := l.Listener.Accept(); got <- result{c, err} }()
	select {
	case r := <-got:
		return r.c, r.err
	case <-l.fail:
		l.Listener.Close() // ends the Accept above
		if r := <-got; r.c != nil {
			r.c.Close()
		}
		return nil, l.err
	}
}

// A listener that fails under the server still gets the whole shutdown:
// the drain, the hooks, the move to Stopped; and the error Run returns has
// its secrets masked, as every log line has.
func TestServeFailureShutsDown(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	ln := &failingListener{Listener: testutil.Listen(t), fail: make(chan struct{}),
		err: errors.New("accept: lost postgres://app:s3cret@db/items")}
	var drained, closed atomic.Bool
	srv, err := server.New(&http.Server{}, lc, server.Listener(ln), server.DrainDelay(0), server.Signals(),
		server.OnDrain("deregister", time.Second, func(context.Context) error { drained.Store(true); return nil }),
		server.AfterClose("pool", time.Second, func(context.Context) error { closed.Store(true); return nil }))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()
	close(ln.fail)
	select {
	case err = <-done:
	case <-time.After(testutil.Deadline):
		t.Fatal("Run did not return after its listener failed")
	}
	if err == nil || !strings.Contains(err.Error(), "accept: lost") {
		t.Errorf("Run: got %v, want the listener's failure", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("Run's error holds the password: %v", err)
	}
	if !drained.Load() || !closed.Load() {
		t.Errorf("hooks after a serve failure: OnDrain ran %v, AfterClose ran %v; want both", drained.Load(), closed.Load())
	}
	if lc.Phase() != probes.Stopped {
		t.Errorf("phase after a serve failure: got %s, want stopped", lc.Phase())
	}
}

// A SIGTERM during the first warm-up skips the drain: the service was never
// in rotation, so there is nothing for a balancer to notice, and what the
// warm-up refused meanwhile are not late requests.
func TestShutdownDuringWarmUpSkipsTheDrain(t *testing.T) {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	loading := make(chan struct{})
	if err := warm.Task("cache", func(ctx context.Context, _ *startup.Progress) error {
		close(loading)
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	mux.Handle("/api", server.WarmupGuard(lc, time.Second)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})))
	ln := testutil.Listen(t)
	base := "http://" + ln.Addr().String()
	srv, err := server.New(&http.Server{Handler: mux}, lc, server.Listener(ln), server.DrainDelay(time.Hour), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	<-loading
	if code, _ := get(t, base+"/api"); code != 503 {
		t.Errorf("application route during warm-up: got %d, want 503", code)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(testutil.Deadline):
		t.Fatal("Run still draining a service that was never ready")
	}
	if st := srv.Stats(); !st.DrainBegan.IsZero() || st.LateRequests != 0 {
		t.Errorf("stats: drain began %v with %d late requests; want no drain", st.DrainBegan, st.LateRequests)
	}
}

// A gate's verdict change names the checks behind it: readiness going warn
// for a shared dependency says which one.
func TestGateLogNamesTheChecks(t *testing.T) {
	core, logs := observer.New(zap.DebugLevel)
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("refused")
		}
		return nil
	}), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	srv := bare(t, lc, server.Logger(zap.New(core)))
	testutil.Background(t, srv.Run)
	testutil.Eventually(t, "db passing", func() bool { c, _ := ready.Report().Check("db"); return c.Status == probes.Pass })
	down.Store(true)
	testutil.Eventually(t, "readiness warning logged", func() bool {
		for _, e := range logs.FilterMessage("gate verdict changed").All() {
			if m := e.ContextMap(); m["to"] == "warn" {
				return fmt.Sprint(m["warning"]) == "[db]"
			}
		}
		return false
	})
}

// Stop saturates rather than wrap for extreme settings.
func TestTimingsStopSaturates(t *testing.T) {
	tm := server.Timings{Drain: math.MaxInt64 / 2, ShutdownTimeout: math.MaxInt64 / 2, AfterClose: time.Hour}
	if got := tm.Stop(); got != math.MaxInt64 {
		t.Errorf("Stop of extreme timings: got %s, want the longest duration", got)
	}
	if got, want := (server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 10 * time.Second}).Stop(), 18*time.Second; got != want {
		t.Errorf("Stop: got %s, want %s", got, want)
	}
}

// TestSlog: a service that logs through log/slog gets the server's lines,
// structured, in its own handler.
func TestSlog(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	h := slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil)
	lc := probes.NewLifecycle()
	srv := bare(t, lc, server.Slog(slog.New(h)))
	readyThenStop(t, srv, lc)
	mu.Lock()
	defer mu.Unlock()
	var moved bool
	for line := range strings.SplitSeq(strings.TrimSpace(buf.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("a line that is not slog's JSON: %q: %v", line, err)
		}
		if rec["msg"] == "phase changed" && rec["to"] == "draining" && rec["level"] == "INFO" {
			moved = true
		}
	}
	if !moved {
		t.Errorf("no INFO line \"phase changed\" with to=draining among:\n%s", buf.String())
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestIdentity: the lifecycle's identity is in every body (serviceId,
// releaseId), the deep view's verbose body names the instance, for
// anonymous readers too, and the server's log lines carry it; Service's
// own fields win.
func TestIdentity(t *testing.T) {
	t.Setenv("POD_NAME", "shop-7d9f-x2k")
	t.Setenv("NODE_NAME", "node-a")
	lc := probes.NewLifecycle(probes.Identify(probes.Identity{Service: "shop", Release: "1.4.2"}))
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, server.Service(server.Info{Version: "1", ReleaseID: "1.4.2+dirty"})); err != nil {
		t.Fatal(err)
	}
	read := func(path string) map[string]any {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", path, nil)
		req.RemoteAddr = "192.0.2.7:4000" // anonymous under the default policy
		mux.ServeHTTP(rec, req)
		var b map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
			t.Fatalf("%s: %v: %s", path, err, rec.Body)
		}
		return b
	}
	for _, path := range []string{"/readyz", "/healthz?verbose"} {
		b := read(path)
		if b["serviceId"] != "shop" || b["releaseId"] != "1.4.2+dirty" || b["version"] != "1" {
			t.Errorf("%s: serviceId %v, releaseId %v, version %v; want shop, Service's 1.4.2+dirty, 1", path, b["serviceId"], b["releaseId"], b["version"])
		}
	}
	if b := read("/healthz?verbose"); b["instance"] != "shop-7d9f-x2k" {
		t.Errorf("deep view's instance %v, want the pod's name", b["instance"])
	}
	if b := read("/readyz"); b["instance"] != nil {
		t.Errorf("a probe body carries the instance %v; only the deep view does", b["instance"])
	}

	core, logs := observer.New(zap.DebugLevel)
	srv := bare(t, lc, server.Logger(zap.New(core)))
	readyThenStop(t, srv, lc)
	entries := logs.All()
	if len(entries) == 0 {
		t.Fatal("no log lines")
	}
	for _, e := range entries {
		m := e.ContextMap()
		if m["service"] != "shop" || m["instance"] != "shop-7d9f-x2k" || m["node"] != "node-a" || m["release"] != "1.4.2" {
			t.Errorf("log line %q without the identity: %v", e.Message, m)
		}
	}
}

// readyThenStop runs srv until lc is ready, then stops it cleanly.
func readyThenStop(t *testing.T, srv *server.Server, lc *probes.Lifecycle) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Ready(t, lc)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// failingWork adds background work named name to lc that waits until the
// returned function is called, then fails with err (or returns when the
// lifecycle stops first).
func failingWork(t *testing.T, lc *probes.Lifecycle, name string, err error) func() {
	t.Helper()
	fail := make(chan struct{})
	if e := lc.Go(name, func(ctx context.Context) error {
		select {
		case <-fail:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}); e != nil {
		t.Fatal(e)
	}
	return sync.OnceFunc(func() { close(fail) })
}

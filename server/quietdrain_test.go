package server_test

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/probekit/probes"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

const (
	quietOver = "drain over: application requests stopped"
	quietMax  = "drain over: quiet drain reached its maximum"
)

func TestDrainUntilQuietRejects(t *testing.T) {
	h := &server.Handler{}
	tests := []struct {
		name string
		opts []server.Option
		want string
	}{
		{"zero quiet", []server.Option{server.DrainUntilQuiet(0, time.Second, time.Minute)}, "DrainUntilQuiet(0s, 1s, 1m0s): quiet must be positive"},
		{"negative quiet", []server.Option{server.DrainUntilQuiet(-time.Second, 0, time.Minute)}, "DrainUntilQuiet(-1s, 0s, 1m0s): quiet"},
		{"negative min", []server.Option{server.DrainUntilQuiet(time.Second, -time.Second, time.Minute)}, "min must not be negative"},
		{"max below min", []server.Option{server.DrainUntilQuiet(time.Second, 10*time.Second, 5*time.Second)}, "max must not be less than min"},
		{"max below quiet", []server.Option{server.DrainUntilQuiet(10*time.Second, 0, 5*time.Second)}, "max must not be less than quiet"},
		{"zero max", []server.Option{server.DrainUntilQuiet(time.Second, 0, 0)}, "DrainUntilQuiet(1s, 0s, 0s)"},
		{"with DrainUntilProbed", []server.Option{server.DrainUntilQuiet(time.Second, 0, time.Minute), server.DrainUntilProbed(h, 3, time.Minute)},
			"server: DrainUntilQuiet and DrainUntilProbed"},
		{"with DrainUntilProbed first", []server.Option{server.DrainUntilProbed(h, 3, time.Minute), server.DrainUntilQuiet(time.Second, 0, time.Minute)},
			"DrainUntilQuiet and DrainUntilProbed"},
		{"with DrainQuiet", []server.Option{server.DrainQuiet(time.Second), server.DrainUntilQuiet(time.Second, 0, time.Minute)},
			"DrainUntilQuiet and DrainQuiet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, err := server.New(&http.Server{}, probes.NewLifecycle(), tt.opts...)
			if err == nil || srv != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error naming %s", srv, err, tt.want)
			}
		})
	}
}

// DrainUntilQuiet takes the place of DrainDelay whatever the order, and
// says its bounds in Timings.
func TestDrainUntilQuietTimings(t *testing.T) {
	for _, opts := range [][]server.Option{
		{server.DrainDelay(time.Second), server.DrainUntilQuiet(2*time.Second, 8*time.Second, time.Minute)},
		{server.DrainUntilQuiet(2*time.Second, 8*time.Second, time.Minute), server.DrainDelay(time.Second)},
	} {
		srv, err := server.New(&http.Server{}, probes.NewLifecycle(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		tm := srv.Timings()
		if tm.Drain != time.Minute || tm.DrainQuiet != 2*time.Second || tm.DrainMin != 8*time.Second || tm.DrainProbes != 0 {
			t.Errorf("Timings: got drain %s, quiet %s, min %s, probes %d; want 1m0s, 2s, 8s, 0",
				tm.Drain, tm.DrainQuiet, tm.DrainMin, tm.DrainProbes)
		}
	}
}

// drainEnd is when the drain ended, by the server's own account.
func drainEnd(t *testing.T, srv *server.Server) time.Time {
	t.Helper()
	st := srv.Stats()
	if st.DrainBegan.IsZero() || st.Drain == 0 {
		t.Fatalf("no drain recorded: %+v", st)
	}
	return st.DrainBegan.Add(st.Drain)
}

// With no traffic at all, the drain lasts its minimum (longer than the
// quiet period here), far from its maximum.
func TestDrainUntilQuietNoTraffic(t *testing.T) {
	const minimum = 200 * time.Millisecond
	s := start(t, server.DrainUntilQuiet(20*time.Millisecond, minimum, time.Hour), server.Signals())
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	if code, _ := get(t, s.base+"/readyz"); code != 503 {
		t.Errorf("readiness while draining: got %d, want 503", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	st := s.srv.Stats()
	if st.Drain < minimum || st.Drain > testutil.Deadline {
		t.Errorf("drain lasted %s; want at least the minimum %s and far below the maximum", st.Drain, minimum)
	}
	if n := s.logs.FilterMessage(quietOver).Len(); n != 1 {
		t.Errorf("logged the quiet end %d times, want 1", n)
	}
	if st.LateRequests != 0 {
		t.Errorf("late requests: got %d, want 0 (the readiness probe is not one)", st.LateRequests)
	}
}

// Application requests that keep arriving hold the drain; once they stop,
// it ends a quiet period after the last one.
func TestDrainUntilQuietHeldByTraffic(t *testing.T) {
	const quiet = 300 * time.Millisecond
	s := start(t, server.DrainUntilQuiet(quiet, 0, time.Hour), server.Signals())
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	began := s.srv.Stats().DrainBegan
	// Traffic for three quiet periods: without it the drain would be over
	// after one. Every request is served, so the listener is still open.
	var last time.Time
	n := 0
	for time.Since(began) < 3*quiet {
		last = time.Now()
		if code, _ := get(t, s.base+"/fast"); code != 200 {
			t.Fatalf("API while draining: got %d, want 200", code)
		}
		n++
	}
	if p := s.lc.Phase(); p != probes.Draining {
		t.Fatalf("phase while traffic keeps arriving: got %s, want draining", p)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if end, want := drainEnd(t, s.srv), last.Add(quiet); end.Before(want) {
		t.Errorf("drain ended at %s, before the last request's arrival plus the quiet period (%s)", end, want)
	}
	if got := s.srv.Stats().LateRequests; got != uint64(n) {
		t.Errorf("late requests: got %d, want %d", got, n)
	}
	if c := s.logs.FilterMessage(quietOver).Len(); c != 1 {
		t.Errorf("logged the quiet end %d times, want 1", c)
	}
}

// An application request that arrived during the drain and is still in
// flight holds it, to the maximum; then the shutdown lets it finish.
func TestDrainUntilQuietMaximum(t *testing.T) {
	const maximum = 300 * time.Millisecond
	s := start(t, server.DrainUntilQuiet(10*time.Millisecond, 0, maximum), server.Signals())
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	answered := make(chan int, 1)
	go func() { answered <- status(s.base + "/slow") }()
	<-s.entered
	testutil.Eventually(t, "the maximum ending the drain", func() bool { return s.logs.FilterMessage(quietMax).Len() == 1 })
	s.free()
	if code := <-answered; code != 200 {
		t.Errorf("request in flight through the drain: got %d, want 200", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if d := s.srv.Stats().Drain; d < maximum {
		t.Errorf("drain lasted %s, less than its maximum %s with a request in flight", d, maximum)
	}
	if n := s.logs.FilterMessage(quietOver).Len(); n != 0 {
		t.Errorf("logged a quiet end %d times with a request in flight", n)
	}
}

// Probers and monitors are not traffic: probes on the probe listener and on
// the application's, the deep view, a /metrics scrape, and a status page
// stream held open through the drain neither hold it nor count as late.
func TestDrainUntilQuietIgnoresProbesAndMonitoring(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	hist, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	page, err := history.NewPage(lc, hist)
	if err != nil {
		t.Fatal(err)
	}
	defer page.Close()
	app := http.NewServeMux()
	if _, err := server.Register(app, lc, server.Browsers(page)); err != nil {
		t.Fatal(err)
	}
	app.Handle("/metrics", server.Monitoring(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "up 1\n")
	})))
	probeMux := http.NewServeMux()
	if _, err := server.Register(probeMux, lc); err != nil {
		t.Fatal(err)
	}
	core, logs := observer.New(zap.DebugLevel)
	ln, probeLn := testutil.Listen(t), testutil.Listen(t)
	base, probeBase := "http://"+ln.Addr().String(), "http://"+probeLn.Addr().String()
	const quiet = 300 * time.Millisecond
	srv, err := server.New(&http.Server{Handler: app}, lc, server.Listener(ln), server.ProbeListener(probeLn, probeMux),
		server.DrainUntilQuiet(quiet, 0, time.Hour), server.Signals(), server.Logger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Eventually(t, "ready", func() bool { return status(base+"/readyz") == 200 })

	cancel()
	testutil.Eventually(t, "draining", func() bool { return lc.Phase() == probes.Draining })
	// A page opened during the drain streams until the page closes.
	req, _ := http.NewRequest(http.MethodGet, base+"/healthz", nil)
	req.Header.Set("Accept", "text/event-stream")
	stream, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if ct := stream.Header.Get("Content-Type"); stream.StatusCode != 200 || ct != "text/event-stream" {
		t.Fatalf("stream: got %d %s, want 200 text/event-stream", stream.StatusCode, ct)
	}
	if _, err := bufio.NewReader(stream.Body).ReadString('\n'); err != nil {
		t.Fatalf("stream: %v", err)
	}
	// Probers and monitors keep asking until the drain is over.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		urls := []string{base + "/readyz", base + "/livez", base + "/healthz", base + "/metrics", probeBase + "/readyz"}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			status(urls[i%len(urls)])
		}
	}()
	var runErr error
	testutil.Returns(t, testutil.Deadline, func() { runErr = <-done })
	close(stop)
	wg.Wait()
	if runErr != nil {
		t.Fatal(runErr)
	}
	if n := logs.FilterMessage(quietOver).Len(); n != 1 {
		t.Errorf("logged the quiet end %d times, want 1", n)
	}
	if st := srv.Stats(); st.LateRequests != 0 {
		t.Errorf("late requests: got %d, want 0 (probes and monitoring are not traffic)", st.LateRequests)
	}
}

// A stop that arrives while a request is in flight: the request, which
// arrived before the drain, does not hold it, and the shutdown lets it
// finish.
func TestDrainUntilQuietStopDuringRequest(t *testing.T) {
	s := start(t, server.DrainUntilQuiet(20*time.Millisecond, 20*time.Millisecond, time.Hour), server.Signals())
	answered := make(chan int, 1)
	go func() { answered <- status(s.base + "/slow") }()
	<-s.entered
	s.cancel()
	testutil.Eventually(t, "the drain ending with the request in flight", func() bool { return s.logs.FilterMessage(quietOver).Len() == 1 })
	select {
	case code := <-answered:
		t.Fatalf("request answered %d before it was let finish", code)
	default:
	}
	s.free()
	if code := <-answered; code != 200 {
		t.Errorf("request in flight at the stop: got %d, want 200", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if st := s.srv.Stats(); st.LateRequests != 0 || st.CutRequests != 0 {
		t.Errorf("late %d, cut %d; want 0, 0", st.LateRequests, st.CutRequests)
	}
}

// A second signal cuts a quiet drain short, even while a late request
// holds it, and that request still finishes.
func TestDrainUntilQuietSecondSignal(t *testing.T) {
	s := start(t, server.DrainUntilQuiet(time.Hour, time.Hour, time.Hour), server.Signals(syscall.SIGUSR2))
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	answered := make(chan int, 1)
	go func() { answered <- status(s.base + "/slow") }()
	<-s.entered
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "the drain cut short", func() bool { return s.logs.FilterMessage("drain cut short").Len() == 1 })
	s.free()
	if code := <-answered; code != 200 {
		t.Errorf("late request in flight at the second signal: got %d, want 200", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if st := s.srv.Stats(); st.LateRequests != 1 || st.CutRequests != 0 {
		t.Errorf("late %d, cut %d; want 1, 0", st.LateRequests, st.CutRequests)
	}
}

// EndDrain cuts a drain short, as a second signal does, and before the
// shutdown makes it skip the drain.
func TestEndDrain(t *testing.T) {
	t.Run("during the drain", func(t *testing.T) {
		s := start(t, server.DrainDelay(time.Hour), server.Signals())
		s.cancel()
		testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
		s.srv.EndDrain("the child exited")
		s.srv.EndDrain("a second call does nothing")
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
		cut := s.logs.FilterMessage("drain cut short").All()
		if len(cut) != 1 || cut[0].ContextMap()["reason"] != "the child exited" {
			t.Errorf("got %v, want one line: drain cut short, reason the child exited", cut)
		}
	})
	t.Run("before the shutdown", func(t *testing.T) {
		s := start(t, server.DrainDelay(time.Hour), server.Signals())
		s.srv.EndDrain("the child exited")
		s.cancel()
		if err := <-s.done; err != nil {
			t.Fatal(err)
		}
		skipped := s.logs.FilterMessage("drain skipped").All()
		if len(skipped) != 1 || skipped[0].ContextMap()["reason"] != "the child exited" {
			t.Errorf("got %v, want one line: drain skipped, reason the child exited", skipped)
		}
		if st := s.srv.Stats(); st.DrainBegan.IsZero() {
			t.Errorf("DrainBegan is zero; want readiness to have failed for the stop")
		}
	})
}

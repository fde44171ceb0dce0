package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// A flood of requests that are not what a prober sends (a query string, a
// check's own path, a body) does not end a probe-aware drain: it runs to
// its maximum.
func TestDrainNotEndedByQueries(t *testing.T) {
	s := startWith(t, func(h server.Handlers) []server.Option {
		return []server.Option{server.DrainUntilProbed(h.Readiness, 3, 300*time.Millisecond), server.Signals()}
	})
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	for i := range 30 {
		url := s.base + []string{"/readyz?foo", "/readyz?verbose", "/readyz?exclude=x", "/readyz/nothing", "/healthz"}[i%5]
		if code := status(url); code < 200 {
			t.Fatalf("GET %s while draining: %d", url, code)
		}
		if i%10 == 0 {
			post(t, s.base+"/readyz", "x")
		}
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if n := s.logs.FilterMessage("drain over: probe-aware drain reached its maximum").Len(); n != 1 {
		t.Errorf("the drain ended early: logged reaching the maximum %d times, want 1", n)
	}
	if st := s.srv.Stats(); st.LateRequests != 0 {
		t.Errorf("probe requests counted as late application requests: %+v", st)
	}
}

// A scrape of a Monitoring endpoint, however frequent, neither counts as a
// late request nor keeps the drain from seeing its quiet period.
func TestMonitoringIsNotTraffic(t *testing.T) {
	s := startWith(t, func(h server.Handlers) []server.Option {
		return []server.Option{server.DrainUntilProbed(h.Readiness, 1, time.Hour), server.DrainQuiet(200 * time.Millisecond), server.Signals()}
	})
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	if code := status(s.base + "/readyz"); code != 503 {
		t.Fatalf("readiness while draining: %d", code)
	}
	scrapes := 0
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-deadline:
			t.Fatalf("%d scrapes kept the drain going", scrapes)
		case err := <-s.done:
			if err != nil {
				t.Fatal(err)
			}
			if scrapes < 2 {
				t.Fatalf("only %d scrapes during the drain; the test proves nothing", scrapes)
			}
			if st := s.srv.Stats(); st.LateRequests != 0 {
				t.Errorf("%d scrapes counted as %d late requests", scrapes, st.LateRequests)
			}
			return
		default:
		}
		if code := status(s.base + "/metrics"); code == 200 {
			scrapes++
		}
	}
}

// A scrape still in flight does not hold a probe-aware drain either.
func TestSlowScrapeDoesNotHoldTheDrain(t *testing.T) {
	s := startWith(t, func(h server.Handlers) []server.Option {
		return []server.Option{server.DrainUntilProbed(h.Readiness, 1, time.Hour), server.DrainQuiet(100 * time.Millisecond), server.Signals()}
	})
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	scrape := make(chan int, 1)
	go func() { scrape <- status(s.base + "/metrics/slow") }()
	<-s.entered
	if code := status(s.base + "/readyz"); code != 503 {
		t.Fatalf("readiness while draining: %d", code)
	}
	testutil.Eventually(t, "the drain over with the scrape in flight", func() bool {
		return s.logs.FilterMessageSnippet("drain over").Len() == 1
	})
	s.free()
	if code := <-scrape; code != 200 {
		t.Errorf("the scrape: %d", code)
	}
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
	if st := s.srv.Stats(); st.LateRequests != 0 {
		t.Errorf("the scrape counted as a late request: %+v", st)
	}
}

func post(t *testing.T, url, body string) {
	t.Helper()
	res, err := client.Post(url, "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck
	res.Body.Close()
}

// Once the probers have seen readiness fail, the drain still waits until
// application requests stop for the quiet period, and counts them.
func TestDrainWaitsForQuiet(t *testing.T) {
	// Long enough that a loopback request under the race detector always
	// comes within it of the one before.
	const quiet = time.Second
	s := startWith(t, func(h server.Handlers) []server.Option {
		return []server.Option{server.DrainUntilProbed(h.Readiness, 1, time.Hour), server.DrainQuiet(quiet), server.Signals()}
	})
	s.cancel()
	testutil.Eventually(t, "draining", func() bool { return s.lc.Phase() == probes.Draining })
	if code, _ := get(t, s.base+"/fast"); code != 200 {
		t.Fatalf("application request while draining: got %d", code)
	}
	if code, _ := get(t, s.base+"/readyz"); code != 503 {
		t.Fatalf("readiness while draining: got %d", code)
	}
	// Application requests keep coming, each well within the quiet period
	// of the one before: the drain goes on.
	const after = 8
	for range after {
		if code, _ := get(t, s.base+"/fast"); code != 200 {
			t.Fatalf("application request while draining: got %d, want 200", code)
		}
	}
	// A request in flight holds the drain, however long it takes.
	slow := make(chan int, 1)
	go func() { slow <- status(s.base + "/slow") }()
	<-s.entered
	waitQuiet := time.NewTimer(2 * quiet)
	defer waitQuiet.Stop()
	select {
	case err := <-s.done:
		t.Fatalf("the drain ended with a request in flight: %v", err)
	case <-waitQuiet.C:
	}
	s.free()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the drain did not end once requests stopped")
	}
	if code := <-slow; code != 200 {
		t.Errorf("the request held through the drain: %d, want 200", code)
	}
	st := s.srv.Stats()
	if want := uint64(1 + after + 1); st.LateRequests != want || st.AfterProbed != after+1 {
		t.Errorf("late requests %d (after probed %d), want %d (%d): probes must not count", st.LateRequests, st.AfterProbed, want, after+1)
	}
	if st.DrainBegan.IsZero() || st.Drain < 2*quiet {
		t.Errorf("drain stats: %+v", st)
	}
	if n := s.logs.FilterMessage("readiness seen failing").Len(); n != 1 {
		t.Errorf("logged the probers' count %d times, want 1", n)
	}
}

// rawRequest sends head and a part of a body on a fresh connection and
// returns the connection and a reader of its answers.
func rawRequest(t *testing.T, base, head string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := io.WriteString(conn, head); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

// A probe answers at once though the body it announced never arrives, and
// a connection whose body never arrives does not make Run fail.
func TestHalfSentBody(t *testing.T) {
	s := start(t, server.DrainDelay(0), server.ShutdownTimeout(300*time.Millisecond), server.Signals())
	for _, path := range []string{"/livez", "/readyz", "/readyz/nothing"} {
		conn, br := rawRequest(t, s.base, "POST "+path+" HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc")
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("POST %s with a body half sent: %v (want an answer at once)", path, err)
		}
		io.Copy(io.Discard, res.Body) //nolint:errcheck
		res.Body.Close()
		if res.StatusCode != 405 || !res.Close {
			t.Errorf("POST %s: %d, close %v; want 405 and the connection closed", path, res.StatusCode, res.Close)
		}
		// The server closes its end at once, not after a read timeout.
		conn.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("POST %s: after the answer, read %v; want EOF (the server closed)", path, err)
		}
	}
	conn, br := rawRequest(t, s.base, "GET /readyz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if res, err := http.ReadResponse(br, nil); err != nil || res.StatusCode != 200 {
		t.Fatalf("GET /readyz with a chunked body half sent: %v, %v", res, err)
	}

	// An application handler that does not read the body has answered, as
	// far as it knows; net/http still waits for the body. Shutdown closes
	// the connection at its timeout, and Run does not fail for it.
	rawRequest(t, s.base, "POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc")
	<-s.entered
	s.free()
	began := time.Now()
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatalf("Run: %v; want nil (no request was cut)", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if st := s.srv.Stats(); st.CutRequests != 0 {
		t.Errorf("cut requests: %d, want 0", st.CutRequests)
	}
}

func TestConnectionDefaults(t *testing.T) {
	lc := probes.NewLifecycle()
	hs := &http.Server{ReadTimeout: time.Minute}
	if _, err := server.New(hs, lc); err != nil {
		t.Fatal(err)
	}
	if hs.ReadHeaderTimeout != server.DefaultReadHeaderTimeout || hs.ReadTimeout != time.Minute ||
		hs.IdleTimeout != server.DefaultIdleTimeout || hs.MaxHeaderBytes != server.DefaultMaxHeaderBytes || hs.WriteTimeout != 0 {
		t.Errorf("settings after New: header %s, read %s, idle %s, header bytes %d, write %s",
			hs.ReadHeaderTimeout, hs.ReadTimeout, hs.IdleTimeout, hs.MaxHeaderBytes, hs.WriteTimeout)
	}
	for _, o := range []server.Option{server.MaxConns(-1), server.DrainQuiet(-time.Second), server.ProbeListener(nil, http.NotFoundHandler())} {
		if _, err := server.New(&http.Server{}, lc, o); err == nil {
			t.Error("New accepted an invalid option")
		}
	}
	_, err := server.New(&http.Server{}, lc, server.ProbeListener(testutil.Listen(t), nil))
	if err == nil || !strings.Contains(err.Error(), "ProbeListener") {
		t.Errorf("ProbeListener(ln, nil): %v, want an error naming the option", err)
	}
}

// Beyond MaxConns, a new connection is closed at once; below it again, one
// is served.
func TestMaxConns(t *testing.T) {
	s := start(t, server.MaxConns(3), server.DrainDelay(0), server.Signals())
	var held []net.Conn
	for range 3 {
		// Retried: the connections of start's readiness polls count until
		// the server has seen them close.
		testutil.Eventually(t, "a kept-alive connection", func() bool {
			conn, br := rawRequest(t, s.base, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				conn.Close()
				return false
			}
			res.Body.Close()
			held = append(held, conn) // idle, kept alive
			return true
		})
	}
	conn, _ := rawRequest(t, s.base, "GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := conn.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a connection beyond MaxConns was served: read %d bytes, %v", n, err)
	}
	if st := s.srv.Stats(); st.RefusedConns < 1 {
		t.Errorf("refused connections: %d", st.RefusedConns)
	}
	held[0].Close()
	testutil.Eventually(t, "a connection served again", func() bool {
		res, err := client.Get(s.base + "/fast")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 200
	})
	s.cancel()
	if err := <-s.done; err != nil {
		t.Fatal(err)
	}
}

// With a probe listener, probes answer there from the start to the end of
// a shutdown, apart from the application's listener, and close last.
func TestProbeListener(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	probeMux := http.NewServeMux()
	if _, err := server.Register(probeMux, lc); err != nil {
		t.Fatal(err)
	}
	app := http.NewServeMux()
	entered, release := make(chan struct{}), make(chan struct{})
	app.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
	})
	appLn, probeLn := testutil.Listen(t), testutil.Listen(t)
	appURL, probeURL := "http://"+appLn.Addr().String(), "http://"+probeLn.Addr().String()
	srv, err := server.New(&http.Server{Handler: app}, lc, server.Listener(appLn),
		server.ProbeListener(probeLn, probeMux), server.DrainDelay(0), server.ShutdownTimeout(5*time.Second), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	testutil.Eventually(t, "probe listener serving", func() bool { return status(probeURL+"/readyz") == 200 })
	if code := status(appURL + "/readyz"); code != 404 {
		t.Errorf("/readyz on the application listener: %d, want 404", code)
	}
	go status(appURL + "/slow")
	<-entered
	cancel()
	// The application listener is shutting down, waiting for /slow; the
	// probe listener still answers, honestly.
	testutil.Eventually(t, "draining", func() bool { return lc.Phase() == probes.Draining })
	if code := status(probeURL + "/readyz"); code != 503 {
		t.Errorf("readiness on the probe listener while draining: %d, want 503", code)
	}
	if code := status(probeURL + "/livez"); code != 200 {
		t.Errorf("liveness on the probe listener while draining: %d, want 200", code)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.DialTimeout("tcp", probeLn.Addr().String(), time.Second); err == nil {
		t.Error("the probe listener is still open after Run")
	}
}

// status returns the status code of a GET, or -1 when it fails.
func status(url string) int {
	res, err := client.Get(url)
	if err != nil {
		return -1
	}
	io.Copy(io.Discard, res.Body) //nolint:errcheck
	res.Body.Close()
	return res.StatusCode
}

// Many clients at random moments: never more than max requests in the
// handler, every refusal is a 503 with Retry-After, and the check warns
// once anything was refused.
func TestShedderInterleavings(t *testing.T) {
	const max = 3
	shed, err := server.NewShedder(max)
	if err != nil {
		t.Fatal(err)
	}
	if err := shed.Check(context.Background()); err != nil {
		t.Fatalf("check before any refusal: %v", err)
	}
	var in, peak atomic.Int64
	entered, release := make(chan struct{}), make(chan struct{})
	h := shed.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hold" {
			entered <- struct{}{}
			<-release
			return
		}
		n := in.Add(1)
		defer in.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // hold the slot a random while
	}))
	var wg sync.WaitGroup
	var ok, refused atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/api", nil))
				switch {
				case rec.Code == 200:
					ok.Add(1)
				case rec.Code == 503 && rec.Header().Get("Retry-After") == "1":
					refused.Add(1)
				default:
					t.Errorf("answer %d, Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
				}
			}
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > max {
		t.Errorf("%d requests in flight at once, max %d", p, max)
	}
	if shed.InFlight() != 0 || ok.Load()+refused.Load() != 16*200 || uint64(refused.Load()) != shed.Shed() {
		t.Errorf("in flight %d, ok %d, refused %d, Shed %d", shed.InFlight(), ok.Load(), refused.Load(), shed.Shed())
	}
	// Whatever the interleavings refused: with every slot held, the next
	// request is refused, and the check warns with the count.
	var held sync.WaitGroup
	for range max {
		held.Go(func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/hold", nil)) })
		<-entered
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api", nil))
	close(release)
	held.Wait()
	if rec.Code != 503 {
		t.Errorf("a request with every slot held: %d, want 503", rec.Code)
	}
	err = shed.Check(context.Background())
	if !errors.Is(err, probes.ErrWarn) || !strings.Contains(err.Error(), fmt.Sprint(shed.Shed())) {
		t.Errorf("check after refusals: %v, want a warning with the count", err)
	}
}

func TestNewShedderRejectsBadBounds(t *testing.T) {
	for _, n := range []int{0, -1} {
		if _, err := server.NewShedder(n); err == nil || !strings.Contains(err.Error(), "NewShedder") {
			t.Errorf("NewShedder(%d): %v", n, err)
		}
	}
}

// Everything that can hang at once, hangs: an OnDrain hook, a request, work
// that ignores its context, an AfterClose hook. Run still returns within
// Timings().Stop(), the bound the platform's kill timeout is computed from.
func TestWorstCaseStopIsBounded(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	hook := func(context.Context) error { <-block; return nil }
	s := startWith(t, nil,
		server.DrainDelay(200*time.Millisecond), server.ShutdownTimeout(300*time.Millisecond),
		server.OnDrain("stuck", 100*time.Millisecond, hook), server.AfterClose("stuck", 100*time.Millisecond, hook))
	bound := s.srv.Timings().Stop()
	// The OnDrain hook runs inside the drain: the longer of the two counts.
	if want := 200*time.Millisecond + 300*time.Millisecond + 100*time.Millisecond + 3*time.Second; bound != want {
		t.Fatalf("Timings().Stop() = %s, want %s", bound, want)
	}
	if err := s.lc.Go("deaf", func(context.Context) error { <-block; return nil }); err != nil {
		t.Fatal(err)
	}
	slow := make(chan int, 1)
	go func() { slow <- status(s.base + "/slow") }()
	<-s.entered
	began := time.Now()
	s.cancel()
	select {
	case err := <-s.done:
		if took := time.Since(began); took > bound {
			t.Errorf("Run returned after %s, beyond Timings().Stop() = %s", took, bound)
		}
		if err == nil || !strings.Contains(err.Error(), "1 requests cut") {
			t.Errorf("Run: %v, want the cut request reported", err)
		}
	case <-time.After(bound + 5*time.Second):
		t.Fatalf("Run did not return within %s", bound+5*time.Second)
	}
	s.free()
	<-slow
}

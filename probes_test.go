package probes_test

// End-to-end behaviour of the whole: lifecycle, gates and server together,
// over real HTTP on loopback.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// noKeepAlive makes a new connection per request, as the kubelet does.
var noKeepAlive = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

type answer struct {
	code   int
	status string // health+json status, "" if the body is not JSON
	body   string
	header http.Header
}

// textProbe GETs url in the Kubernetes text form and returns the body.
func textProbe(t *testing.T, url string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/plain")
	res, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

func probe(t *testing.T, url string) answer {
	t.Helper()
	res, err := noKeepAlive.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var doc struct{ Status string }
	_ = json.Unmarshal(b, &doc)
	return answer{code: res.StatusCode, status: doc.Status, body: string(b), header: res.Header}
}

// TestSlowCache is the problem this project exists for: a service whose
// cache loads slowly must look alive but not ready while it loads, ready
// after, and stop taking traffic before it stops listening.
func TestSlowCache(t *testing.T) {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	step := make(chan struct{})
	if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		p.Set(0.5)
		select {
		case <-step:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, ready := gates(t, lc)
	if err := ready.Add("upstream", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(10*time.Millisecond)); err != nil {
		t.Fatal(err)
	}

	entered, release := make(chan struct{}, 1), make(chan struct{})
	r := chi.NewRouter()
	if _, err := server.Register(r, lc); err != nil {
		t.Fatal(err)
	}
	r.Route("/api", func(r chi.Router) {
		r.Use(server.WarmupGuard(lc, time.Second))
		r.Get("/items/{id}", func(w http.ResponseWriter, r *http.Request) {
			if chi.URLParam(r, "id") == "slow" {
				entered <- struct{}{}
				<-release
			}
			io.WriteString(w, `{"id":1}`)
		})
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	srv, err := server.New(&http.Server{Handler: r}, lc, server.Listener(ln), server.DrainDelay(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()

	// While the cache loads.
	testutil.Eventually(t, "warm-up at 50%", func() bool {
		return strings.Contains(probe(t, base+"/startupz").body, "warm-up 50%")
	})
	for _, c := range []struct {
		path string
		code int
	}{{"/livez", 200}, {"/readyz", 503}, {"/startupz", 503}, {"/api/items/1", 503}} {
		if a := probe(t, base+c.path); a.code != c.code {
			t.Errorf("while loading, %s: got %d, want %d", c.path, a.code, c.code)
		}
	}
	if ra := probe(t, base+"/api/items/1").header.Get("Retry-After"); ra == "" {
		t.Error("API while loading: no Retry-After")
	}
	// A task still loading is in progress, not failed.
	if a := probe(t, base+"/startupz?verbose"); !strings.Contains(a.body, `"cache:progress":[{"componentType":"component","observedValue":50,"observedUnit":"%","status":"warn"`) {
		t.Errorf("verbose startup while loading: %s, want the cache in progress (warn)", a.body)
	}

	// After it has loaded.
	close(step)
	testutil.Eventually(t, "ready", func() bool { return probe(t, base+"/readyz").code == 200 })
	for _, path := range []string{"/livez", "/readyz", "/startupz", "/api/items/1"} {
		if a := probe(t, base+path); a.code != 200 {
			t.Errorf("after loading, %s: got %d, want 200", path, a.code)
		}
	}

	// SIGTERM with a request in flight.
	inflight := make(chan int, 1)
	go func() {
		res, err := noKeepAlive.Get(base + "/api/items/slow")
		if err != nil {
			inflight <- -1
			return
		}
		res.Body.Close()
		inflight <- res.StatusCode
	}()
	<-entered
	firstProbe := make(chan int, 1)
	lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Draining {
			res, err := noKeepAlive.Get(base + "/readyz")
			if err != nil {
				firstProbe <- -1
				return
			}
			res.Body.Close()
			firstProbe <- res.StatusCode
		}
	})
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := <-firstProbe; code != 503 {
		t.Errorf("first readiness probe after SIGTERM: got %d, want 503", code)
	}
	if a := probe(t, base+"/livez"); a.code != 200 {
		t.Errorf("liveness while draining: got %d, want 200", a.code)
	}
	if a := probe(t, base+"/startupz"); a.code != 200 {
		t.Errorf("startup while draining: got %d, want 200", a.code)
	}
	// A second SIGTERM ends the drain; the in-flight request still completes.
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	close(release)
	if code := <-inflight; code != 200 {
		t.Errorf("in-flight request: got %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if lc.Phase() != probes.Stopped {
		t.Errorf("phase: got %s, want stopped", lc.Phase())
	}
}

// TestPhaseGateTable checks every row of the phase x gate table of the
// design over HTTP, with the handlers built before the moves, so that every
// answer comes from a pushed (or version-checked) re-render.
func TestPhaseGateTable(t *testing.T) {
	const (
		allPass     = "all checks pass"
		criticalBad = "a critical dependency fails"
		optionalBad = "a non-critical dependency fails"
	)
	type verdicts struct{ startup, liveness, readiness string }
	tests := []struct {
		name   string
		moves  []string // "Start" and "MarkReady" are the warm-up's own
		checks string
		want   verdicts
	}{
		{"warming", []string{"Start"}, allPass, verdicts{"fail", "pass", "fail"}},
		{"warming again after a rewarm (latched)", []string{"Start", "MarkReady", "Rewarm"}, allPass, verdicts{"pass", "pass", "fail"}},
		{"ready", []string{"Start", "MarkReady"}, allPass, verdicts{"pass", "pass", "pass"}},
		{"ready, critical dependency down", []string{"Start", "MarkReady"}, criticalBad, verdicts{"pass", "pass", "fail"}},
		{"ready, non-critical dependency down", []string{"Start", "MarkReady"}, optionalBad, verdicts{"pass", "pass", "warn"}},
		{"draining", []string{"Start", "MarkReady", "Drain"}, allPass, verdicts{"pass", "pass", "fail"}},
		{"draining before ever ready", []string{"Start", "Drain"}, allPass, verdicts{"fail", "pass", "fail"}},
		{"stopped", []string{"Start", "MarkReady", "Drain", "Stop"}, allPass, verdicts{"pass", "pass", "fail"}},
		{"stopped before ever ready", []string{"Start", "Drain", "Stop"}, allPass, verdicts{"fail", "pass", "fail"}},
		{"broken", []string{"Start", "MarkReady", "MarkBroken"}, allPass, verdicts{"fail", "fail", "fail"}},
		{"broken while warming", []string{"Start", "MarkBroken"}, allPass, verdicts{"fail", "fail", "fail"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			warm, err := startup.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			loaded := make(chan struct{})
			if err := warm.Task("cache", func(ctx context.Context, _ *startup.Progress) error {
				select {
				case <-loaded:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}); err != nil {
				t.Fatal(err)
			}
			live, ready := gates(t, lc)
			var critical, optional error
			switch tt.checks {
			case criticalBad:
				critical = errors.New("refused")
			case optionalBad:
				optional = errors.New("refused")
			}
			fixed := func(err error) probes.Checker {
				return probes.CheckFunc(func(context.Context) error { return err })
			}
			if err := ready.Add("db", fixed(critical), probes.Every(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if err := ready.Add("search", fixed(optional), probes.Every(time.Millisecond), probes.NonCritical()); err != nil {
				t.Fatal(err)
			}
			if _, err := live.Heartbeat("worker", time.Hour); err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			if _, err := server.Register(mux, lc); err != nil {
				t.Fatal(err)
			}
			ts := httptest.NewServer(mux)
			defer ts.Close()

			testutil.Background(t, lc.Run)
			testutil.Eventually(t, "every check ran", func() bool {
				for _, g := range []probes.Gate{live, ready} {
					for _, c := range g.Report().Checks {
						if c.Time.IsZero() {
							return false
						}
					}
				}
				return true
			})
			for _, m := range tt.moves {
				switch m {
				case "Start":
					testutil.Eventually(t, "warming", func() bool { return lc.Phase() == probes.Warming })
				case "MarkReady":
					close(loaded)
					testutil.Eventually(t, "ready", func() bool { return lc.Phase() == probes.Ready })
				default:
					if err := move(lc, m); err != nil {
						t.Fatalf("%s: %v", m, err)
					}
				}
			}
			got := verdicts{
				startup:   probe(t, ts.URL+"/startupz").status,
				liveness:  probe(t, ts.URL+"/livez").status,
				readiness: probe(t, ts.URL+"/readyz").status,
			}
			if got != tt.want {
				t.Errorf("phase %s: got %+v, want %+v", lc.Phase(), got, tt.want)
			}
			for path, st := range map[string]string{"/startupz": got.startup, "/livez": got.liveness, "/readyz": got.readiness} {
				want := 503
				if st == "pass" || st == "warn" {
					want = 200
				}
				if a := probe(t, ts.URL+path); a.code != want {
					t.Errorf("%s: status %s with HTTP %d, want %d", path, st, a.code, want)
				}
			}
		})
	}
}

// gates builds the liveness and readiness gates of lc.
func gates(t *testing.T, lc *probes.Lifecycle) (*liveness.Gate, *readiness.Gate) {
	t.Helper()
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	return live, ready
}

// serve mounts lc's gates on a test server, with opts.
func serve(t *testing.T, lc *probes.Lifecycle, opts ...server.HandlerOption) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc, opts...); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

// TestHerd: a thousand concurrent probe requests run no check at all; they
// read the verdict the background schedule produced.
func TestHerd(t *testing.T) {
	lc := probes.NewLifecycle()
	_, ready := gates(t, lc)
	var runs atomic.Int64
	slow := probes.CheckFunc(func(ctx context.Context) error {
		runs.Add(1)
		time.Sleep(20 * time.Millisecond) // a dependency that takes its time
		return nil
	})
	if err := ready.Add("db", slow, probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "first check done", func() bool {
		c, _ := ready.Report().Check("db")
		return c.Status == probes.Pass
	})
	testutil.Ready(t, lc)
	ts := serve(t, lc)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1000}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()

	const herd = 1000
	before := runs.Load()
	start := make(chan struct{})
	codes := make(chan int, herd)
	for range herd {
		go func() {
			<-start
			res, err := client.Get(ts.URL + "/readyz")
			if err != nil {
				codes <- -1
				return
			}
			io.Copy(io.Discard, res.Body) //nolint:errcheck
			res.Body.Close()
			codes <- res.StatusCode
		}()
	}
	close(start)
	for range herd {
		if code := <-codes; code != 200 {
			t.Fatalf("a probe in the herd got %d, want 200", code)
		}
	}
	if extra := runs.Load() - before; extra != 0 {
		t.Errorf("the herd caused %d check executions, want 0", extra)
	}
}

// TestNonCriticalWarn: a failing non-critical dependency gives warn with
// HTTP 200, and its reason only in the authorised detail view.
func TestNonCriticalWarn(t *testing.T) {
	lc := probes.NewLifecycle(probes.Readers(func(r *http.Request) bool { return r.Header.Get("Authorization") == "Bearer ops" }))
	_, ready := gates(t, lc)
	if err := ready.Add("search", probes.CheckFunc(func(context.Context) error {
		return errors.New("index rebuilding")
	}), probes.NonCritical(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "check ran", func() bool {
		c, _ := ready.Report().Check("search")
		return !c.Time.IsZero()
	})
	testutil.Ready(t, lc)
	ts := serve(t, lc)

	if a := probe(t, ts.URL+"/readyz?verbose"); a.code != 200 || a.status != "warn" || strings.Contains(a.body, "index rebuilding") {
		t.Errorf("public view: %d %s; want 200 warn without the reason", a.code, a.body)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/readyz?verbose", nil)
	req.Header.Set("Authorization", "Bearer ops")
	res, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), `"output":"index rebuilding"`) {
		t.Errorf("authorised view: %d %s; want 200 with the reason", res.StatusCode, body)
	}
}

// A move is visible in the very next answer when it returns, even while
// another goroutine is still delivering an earlier move to a slow listener.
func TestMoveVisibleDespiteSlowListener(t *testing.T) {
	lc := probes.NewLifecycle()
	_, _ = gates(t, lc)
	ts := serve(t, lc)
	testutil.Ready(t, lc)
	if a := probe(t, ts.URL+"/readyz"); a.code != 200 {
		t.Fatalf("ready: got %d", a.code)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	lc.Subscribe(func(tr probes.Transition) {
		if tr.Reason == "slow" {
			close(entered)
			<-release
		}
	})
	rewarmed := make(chan error, 1)
	go func() { rewarmed <- lc.Rewarm("slow") }() // its delivery blocks
	<-entered
	// These return at once: their delivery waits behind the slow listener.
	if err := lc.MarkReady(); err != nil {
		t.Fatal(err)
	}
	if a := probe(t, ts.URL+"/readyz"); a.code != 200 {
		t.Errorf("after MarkReady returned: got %d, want 200", a.code)
	}
	if err := lc.Drain("SIGTERM"); err != nil {
		t.Fatal(err)
	}
	if a := probe(t, ts.URL+"/readyz"); a.code != 503 || !strings.Contains(a.body, "draining") {
		t.Errorf("after Drain returned: got %d %s, want 503 draining", a.code, a.body)
	}
	close(release)
	if err := <-rewarmed; err != nil {
		t.Fatal(err)
	}
}

// TestInterleavings: goroutines make random legal and illegal moves while
// others probe all three gates; every answer given while no move happened
// agrees with the table for the phase that held before the request.
func TestInterleavings(t *testing.T) {
	for seed := range int64(4) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			lc := probes.NewLifecycle()
			if _, err := startup.New(lc); err != nil {
				t.Fatal(err)
			}
			_, _ = gates(t, lc)
			mux := http.NewServeMux()
			if _, err := server.Register(mux, lc); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			moves := []string{"Start", "MarkReady", "Rewarm", "Drain", "Stop", "MarkBroken"}
			for w := range 3 {
				rng := rand.New(rand.NewPCG(uint64(seed), uint64(w)))
				wg.Go(func() {
					for i := 0; i < 300; i++ {
						m := moves[rng.IntN(len(moves))]
						if m == "MarkBroken" && rng.IntN(20) != 0 {
							continue // rarely: it ends the game
						}
						_ = move(lc, m)
						if lc.Phase() == probes.Broken {
							// Start over on a fresh lifecycle would need new
							// handlers; keep probing the terminal phase.
							break
						}
					}
				})
			}
			var checked, mismatches atomic.Int64
			for range 3 {
				wg.Go(func() {
					for {
						select {
						case <-stop:
							return
						default:
						}
						for _, k := range []probes.Kind{probes.Startup, probes.Liveness, probes.Readiness} {
							v0, p0, s0 := lc.Version(), lc.Phase(), lc.Started()
							rec := httptest.NewRecorder()
							mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, server.Path(k), nil))
							if lc.Version() != v0 {
								continue // a move raced the request: either answer is honest
							}
							want, _ := probes.Verdict(k, p0, s0)
							if got := rec.Code; got != map[bool]int{true: 200, false: 503}[want.OK()] {
								mismatches.Add(1)
								t.Errorf("%s in %s (started %v): got %d, want %s", k, p0, s0, got, want)
							}
							checked.Add(1)
						}
					}
				})
			}
			testutil.Eventually(t, "enough answers checked", func() bool { return checked.Load() > 3000 || mismatches.Load() > 0 })
			close(stop)
			wg.Wait()
		})
	}
}

// TestSharedDependency is fleet safety end to end: when a dependency the
// fleet shares fails, readiness keeps the instance in rotation (warn,
// naming it), the routes that need it fail fast with 503 and Retry-After,
// the others serve, and the deep view and a named group tell monitors the
// truth. When it returns, everything recovers without a restart.
func TestSharedDependency(t *testing.T) {
	lc := probes.NewLifecycle()
	live, ready := gates(t, lc)
	var down atomic.Bool
	db := probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("dial tcp 10.0.0.7:5432: connection refused")
		}
		return nil
	})
	if err := ready.Add("postgres", db, probes.Every(5*time.Millisecond), probes.ComponentType("datastore")); err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("sidecar", probes.CheckFunc(func(context.Context) error { return nil }), probes.Local(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := live.Add("loop", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}

	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	group, err := probes.NewGroup(lc, "db", "postgres")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Mount(mux, "/health/db", group); err != nil {
		t.Fatal(err)
	}
	needsDB, err := server.Needs(ready, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	var stockCalls atomic.Int64
	mux.Handle("/api/stock/{id}", needsDB(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		stockCalls.Add(1)
		fmt.Fprintln(w, "42")
	})))
	mux.HandleFunc("/api/items/{id}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "item") })
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)

	testutil.Eventually(t, "all pass", func() bool { return probe(t, ts.URL+"/healthz").status == "pass" })
	if a := probe(t, ts.URL+"/api/stock/1"); a.code != 200 {
		t.Fatalf("guarded route with the database up: %d %s", a.code, a.body)
	}

	down.Store(true)
	testutil.Eventually(t, "the outage is seen", func() bool { return probe(t, ts.URL+"/healthz").code == 503 })
	calls := stockCalls.Load()
	for _, tt := range []struct {
		path   string
		code   int
		has    []string
		lacks  []string
		header map[string]string
	}{
		{path: "/readyz", code: 200, has: []string{`"status":"warn"`, `"warning: postgres"`}},
		// The check's own path answers its own verdict: PostgreSQL is down.
		{path: "/readyz/postgres", code: 503, has: []string{`"status":"fail"`}},
		{path: "/livez", code: 200},
		{path: "/healthz", code: 503, has: []string{`"status":"fail"`, `"failing: readiness/postgres"`}, lacks: []string{"10.0.0.7"}},
		{path: "/healthz?verbose", code: 503, has: []string{`"readiness/postgres:responseTime"`, `"readiness/sidecar:responseTime"`, `"liveness/loop:responseTime"`}},
		{path: "/healthz/readiness/postgres", code: 503},
		{path: "/healthz/liveness/loop", code: 200},
		{path: "/healthz/postgres", code: 404},
		{path: "/health/db", code: 503, has: []string{`"failing: postgres"`}},
		{path: "/health/db?verbose", code: 503, lacks: []string{"sidecar", "loop"}},
		{path: "/health/db/sidecar", code: 404},
		{path: "/api/items/1", code: 200, has: []string{"item"}},
		{path: "/api/stock/1", code: 503, has: []string{"needs postgres"}, lacks: []string{"10.0.0.7"},
			header: map[string]string{"Retry-After": "1", "Cache-Control": "no-store"}},
	} {
		a := probe(t, ts.URL+tt.path)
		if a.code != tt.code {
			t.Errorf("%s during the outage: %d %s, want %d", tt.path, a.code, a.body, tt.code)
		}
		if tt.path == "/readyz" {
			text := textProbe(t, ts.URL+"/readyz?verbose")
			if !strings.Contains(text, "[+]postgres warn: failing, shared by the fleet") || !strings.HasSuffix(text, "readyz check passed\n") {
				t.Errorf("text form during the outage:\n%s\nwant the shared failure as a warning and a pass", text)
			}
		}
		for _, s := range tt.has {
			if !strings.Contains(a.body, s) {
				t.Errorf("%s during the outage: %s, want %s", tt.path, a.body, s)
			}
		}
		for _, s := range tt.lacks {
			if strings.Contains(a.body, s) {
				t.Errorf("%s during the outage: %s holds %s", tt.path, a.body, s)
			}
		}
		for k, v := range tt.header {
			if got := a.header.Get(k); got != v {
				t.Errorf("%s during the outage: %s: %q, want %q", tt.path, k, got, v)
			}
		}
	}
	if got := stockCalls.Load(); got != calls {
		t.Errorf("the guarded handler ran %d times during the outage; want 0", got-calls)
	}

	down.Store(false)
	testutil.Eventually(t, "recovered", func() bool {
		return probe(t, ts.URL+"/healthz").status == "pass" && probe(t, ts.URL+"/api/stock/1").code == 200
	})
	if a := probe(t, ts.URL+"/readyz"); a.status != "pass" {
		t.Errorf("/readyz after the outage: %s", a.body)
	}
}

// The guard's answer follows the check through random flips while
// requests race it: whenever the gate did not change during a request, the
// answer is the verdict of that moment.
func TestNeedsUnderFlips(t *testing.T) {
	lc := probes.NewLifecycle()
	_, ready := gates(t, lc)
	var down atomic.Bool
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if down.Load() {
			return errors.New("down")
		}
		return nil
	}), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	needs, err := server.Needs(ready, "db")
	if err != nil {
		t.Fatal(err)
	}
	h := needs(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)

	stop := make(chan struct{})
	flipped := make(chan struct{})
	go func() {
		defer close(flipped)
		for {
			select {
			case <-stop:
				return
			default:
				down.Store(rand.IntN(2) == 0)
				time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
			}
		}
	}()
	var wrong, checked atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for range 3000 {
				before := ready.Version()
				c, _ := ready.Report().Check("db")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api", nil))
				if ready.Version() != before {
					continue // changed meanwhile: either answer is honest
				}
				checked.Add(1)
				if (rec.Code == http.StatusServiceUnavailable) != (c.Status == probes.Fail) {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	<-flipped
	if n := wrong.Load(); n > 0 {
		t.Errorf("%d of %d answers disagreed with the verdict that held throughout their request", n, checked.Load())
	}
	if checked.Load() == 0 {
		t.Error("no request ran without a change: the test checked nothing")
	}
}

func TestGroupAndGuardRefuseBadInput(t *testing.T) {
	lc := probes.NewLifecycle()
	live, ready := gates(t, lc)
	ok := probes.CheckFunc(func(context.Context) error { return nil })
	for _, add := range []func() error{
		func() error { return ready.Add("postgres", ok) },
		func() error { return ready.Add("cache", ok) },
		func() error { return live.Add("cache", ok) }, // same name in two gates
	} {
		if err := add(); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"nil lifecycle", second(probes.NewGroup(nil, "db")), "NewGroup(nil)"},
		{"bad name", second(probes.NewGroup(lc, "a/b", "postgres")), `NewGroup("a/b")`},
		{"unknown check", second(probes.NewGroup(lc, "db", "postgress")), `no check or task "postgress"`},
		{"ambiguous check", second(probes.NewGroup(lc, "c", "cache")), `"cache" is a check of both`},
		{"guard: nil gate", second(server.Needs(nil, "x")), "Needs(nil)"},
		{"guard: no check", second(server.Needs(ready)), "at least one check"},
		{"guard: unknown check", second(server.Needs(ready, "postgress")), `no check "postgress"`},
		{"mount: bad path", second(server.Mount(http.NewServeMux(), "health/db/", ready)), `Mount("health/db/")`},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error with %q", tt.name, tt.err, tt.want)
		}
	}
	if _, err := probes.NewGroup(lc, "db", "postgres"); err != nil {
		t.Errorf("a group over a check the gates do not share: %v", err)
	}

	// The deep view names every check by its canonical name, so a name two
	// gates use never clashes.
	deep, err := probes.NewGroup(lc, "healthz")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range deep.Report().Checks {
		got = append(got, c.Name)
	}
	if want := "[liveness/cache readiness/cache readiness/postgres]"; fmt.Sprint(got) != want {
		t.Errorf("deep view names: %v, want %s", got, want)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatalf("Register with a name in two gates: %v", err)
	}
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz/readiness/cache", nil))
	if rec.Code == http.StatusNotFound {
		t.Errorf("/healthz/readiness/cache: 404")
	}

	// A service with a /healthz of its own moves the deep view or leaves it out.
	for _, path := range []string{"", "/health/deep"} {
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
		hs, err := server.Register(mux, lc, server.DeepView(path))
		if err != nil {
			t.Fatalf("DeepView(%q): %v", path, err)
		}
		if (hs.Health != nil) != (path != "") {
			t.Errorf("DeepView(%q): deep view handler %v", path, hs.Health)
		}
		if path != "" {
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
			if !strings.Contains(rec.Body.String(), `"status"`) {
				t.Errorf("DeepView(%q): %d %s", path, rec.Code, rec.Body)
			}
		}
	}
}

func second[T any](_ T, err error) error { return err }

// TestScriptedStart watches a start from outside, as a kubelet would: from
// the moment the probe listener is bound, liveness never fails, though its
// self-checks have not run yet and the cache is still loading.
func TestScriptedStart(t *testing.T) {
	for run := range 10 {
		lc := probes.NewLifecycle()
		warm, err := startup.New(lc)
		if err != nil {
			t.Fatal(err)
		}
		if err := warm.Task("cache", func(ctx context.Context, _ *startup.Progress) error {
			<-ctx.Done()
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		live, _ := gates(t, lc)
		if _, err := live.Heartbeat("worker", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := live.Add("self", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
			t.Fatal(err)
		}
		probeMux := http.NewServeMux()
		if _, err := server.Register(probeMux, lc); err != nil {
			t.Fatal(err)
		}
		probeLn := testutil.Listen(t)
		srv, err := server.New(&http.Server{Handler: http.NewServeMux()}, lc, server.Listener(testutil.Listen(t)),
			server.ProbeListener(probeLn, probeMux), server.Signals())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		url := "http://" + probeLn.Addr().String() + "/livez"
		var answers, fails int
		for end := time.Now().Add(100 * time.Millisecond); time.Now().Before(end); {
			res, err := noKeepAlive.Get(url)
			if err != nil {
				continue // the listener is bound, but Run may not serve yet: a queued connection
			}
			res.Body.Close()
			answers++
			if res.StatusCode != 200 {
				fails++
			}
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if answers == 0 || fails > 0 {
			t.Fatalf("start %d: %d of %d liveness answers in the first 100 ms failed; want some answers and no failure", run, fails, answers)
		}
	}
}

// Package bench runs the same probe scenarios against probes and four other
// Go health-check libraries, each configured the way its own documentation
// recommends for a readiness endpoint.
package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gosundheit "github.com/AppsFlyer/go-sundheit"
	sundheitchecks "github.com/AppsFlyer/go-sundheit/checks"
	sundheithttp "github.com/AppsFlyer/go-sundheit/http"
	alexhealth "github.com/alexliesenfeld/health"
	hfhealth "github.com/hellofresh/health-go/v5"
	"github.com/heptiolabs/healthcheck"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

const (
	// interval is the schedule of background checks: long enough that no
	// scheduled run happens while a benchmark is timed, so the only runs are
	// the first one and whatever a probe request itself causes.
	interval = time.Minute
	// timeout bounds one check execution, set alike wherever a library has
	// the knob.
	timeout = time.Second
	// herdSize is the number of concurrent probes of BenchmarkHerd.
	herdSize = 1000
	// slowCheck is how long the single check of BenchmarkHerd takes.
	slowCheck = 20 * time.Millisecond
	// readyWithin bounds the wait for first results and for shutdowns.
	readyWithin = 10 * time.Second
)

type checkFunc = func(context.Context) error

// A lib builds one library's readiness endpoint with one check per element of
// checks (named dep0, dep1, ...), returns its handler, and registers with
// b.Cleanup whatever stops its background goroutines.
type lib struct {
	name  string
	serve func(b *testing.B, checks []checkFunc) http.Handler
}

var libs = []lib{
	{"probes", serveProbes},
	{"alexliesenfeld", serveAlexliesenfeld},
	{"heptiolabs", serveHeptiolabs},
	{"hellofresh", serveHellofresh},
	{"sundheit", serveSundheit},
}

func checkName(i int) string { return fmt.Sprintf("dep%d", i) }

// serveProbes: this library, in its only mode. Checks run in the background
// on their own schedule (probes.Every); a verdict change re-renders the
// bodies, and a probe request loads the pre-rendered answer and writes it.
func serveProbes(b *testing.B, checks []checkFunc) http.Handler {
	lc := probes.NewLifecycle()
	g, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	for i, c := range checks {
		if err := g.Add(checkName(i), probes.CheckFunc(c), probes.Every(interval), probes.Timeout(timeout)); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = lc.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	// Every verdict change re-renders the handler's bodies, on the goroutine
	// of the check that made it: n checks passing for the first time are n
	// renders, which could still be finishing while timing starts. As in
	// server/bench_test.go, let every check run first, then build the handler
	// (one render) once the gate is Ready.
	waitFor(b, "probes checks to run", func() bool {
		for _, c := range g.Report().Checks {
			if c.Time.IsZero() {
				return false
			}
		}
		return true
	})
	if err := lc.Start(); err != nil {
		b.Fatal(err)
	}
	if err := lc.MarkReady(); err != nil {
		b.Fatal(err)
	}
	h, err := server.NewHandler(g)
	if err != nil {
		b.Fatal(err)
	}
	return h
}

// serveAlexliesenfeld: github.com/alexliesenfeld/health with periodic checks
// (WithPeriodicCheck), the mode its README recommends for anything but small
// applications: checks run on a schedule in the background and the handler
// returns the last results. The synchronous mode (WithCheck) would run checks
// on requests, behind a 1 s result cache. Every request still calls
// Checker.Check, which holds the checker's mutex while it builds the result,
// and the handler marshals the JSON body on each request.
func serveAlexliesenfeld(b *testing.B, checks []checkFunc) http.Handler {
	opts := []alexhealth.CheckerOption{alexhealth.WithTimeout(timeout)}
	for i, c := range checks {
		opts = append(opts, alexhealth.WithPeriodicCheck(interval, 0, alexhealth.Check{
			Name:    checkName(i),
			Timeout: timeout,
			Check:   c,
		}))
	}
	ck := alexhealth.NewChecker(opts...) // starts the periodic checks
	b.Cleanup(ck.Stop)                   // cancels them and waits for their goroutines
	return alexhealth.NewHandler(ck)
}

// serveHeptiolabs: github.com/heptiolabs/healthcheck (archived) with every
// readiness check wrapped in AsyncWithContext, the asynchronous mode its README
// offers for checks that should not add latency to the endpoint (AsyncWithContext
// rather than Async so that the goroutine can be stopped), and Timeout inside
// it. The handler is ReadyEndpoint, the documented handler for /ready alone.
// A request still calls every wrapped check, each of which takes and puts back
// its last result through a one-slot channel, so readers of one check are
// serialised; the default body is "{}\n".
func serveHeptiolabs(b *testing.B, checks []checkFunc) http.Handler {
	h := healthcheck.NewHandler()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel) // each background loop returns at its next select
	for i, c := range checks {
		check := healthcheck.Timeout(func() error { return c(context.Background()) }, timeout)
		h.AddReadinessCheck(checkName(i), healthcheck.AsyncWithContext(ctx, check, interval))
	}
	return http.HandlerFunc(h.ReadyEndpoint)
}

// serveHellofresh: github.com/hellofresh/health-go/v5 in its only mode,
// synchronous: Handler runs every registered check on each request (Measure,
// at most NumCPU checks at once) and marshals the result. Measure holds the
// container's mutex for the whole run, so concurrent requests queue behind
// each other. There is no background goroutine to stop.
func serveHellofresh(b *testing.B, checks []checkFunc) http.Handler {
	h, err := hfhealth.New()
	if err != nil {
		b.Fatal(err)
	}
	for i, c := range checks {
		if err := h.Register(hfhealth.Config{Name: checkName(i), Timeout: timeout, Check: c}); err != nil {
			b.Fatal(err)
		}
	}
	return h.Handler()
}

// serveSundheit: github.com/AppsFlyer/go-sundheit in its only mode: every check
// registered with RegisterCheck runs in its own goroutine (InitialDelay 0,
// ExecutionPeriod, ExecutionTimeout as in its README), and HandleHealthJSON
// copies the results map under a read lock and encodes it (indented JSON, the
// default long form) on each request.
func serveSundheit(b *testing.B, checks []checkFunc) http.Handler {
	h := gosundheit.New()
	for i, c := range checks {
		err := h.RegisterCheck(&sundheitchecks.CustomCheck{
			CheckName: checkName(i),
			CheckFunc: func(ctx context.Context) (any, error) { return nil, c(ctx) },
		}, gosundheit.InitialDelay(0), gosundheit.ExecutionPeriod(interval), gosundheit.ExecutionTimeout(timeout))
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Cleanup(func() {
		h.DeregisterAll()
		// A check's goroutine removes its result as it stops: wait for all.
		waitFor(b, "go-sundheit checks to stop", func() bool {
			res, _ := h.Results()
			return len(res) == 0
		})
	})
	return sundheithttp.HandleHealthJSON(h)
}

// waitFor polls cond every millisecond until it holds, failing the benchmark
// after readyWithin.
func waitFor(b *testing.B, what string, cond func() bool) {
	b.Helper()
	for deadline := time.Now().Add(readyWithin); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("timed out waiting for %s", what)
		}
	}
}

// counted returns n checks that each count their executions in execs[i], and
// then sleep for d (when d > 0) and pass.
func counted(n int, d time.Duration) ([]checkFunc, []*atomic.Int64) {
	checks := make([]checkFunc, n)
	execs := make([]*atomic.Int64, n)
	for i := range n {
		e := new(atomic.Int64)
		execs[i] = e
		checks[i] = func(context.Context) error {
			e.Add(1)
			if d > 0 {
				time.Sleep(d) // a slow dependency
			}
			return nil
		}
	}
	return checks, execs
}

func probeRequest() *http.Request { return httptest.NewRequest(http.MethodGet, "/readyz", nil) }

// waitReady polls h until every check has run at least once and h answers
// 200, so that the first results are cached before timing starts. (A library
// that runs checks on requests gets them run by the polling request itself.)
func waitReady(b *testing.B, l lib, h http.Handler, execs []*atomic.Int64) {
	b.Helper()
	waitFor(b, l.name+" to answer 200 with every check run", func() bool {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, probeRequest())
		for _, e := range execs {
			if e.Load() == 0 {
				return false
			}
		}
		return rec.Code == http.StatusOK
	})
}

// BenchmarkProbe is one readiness probe (GET, default body) served into an
// httptest.ResponseRecorder, with 1, 10 and 100 registered checks that pass at
// once and whose first results are in. lib=baseline is a bare net/http
// handler writing 200 "ok", measured the same way.
func BenchmarkProbe(b *testing.B) {
	b.Run("lib=baseline", func(b *testing.B) {
		h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusOK)
			w.Write([]byte("ok")) //nolint:errcheck
		})
		req := probeRequest()
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(httptest.NewRecorder(), req)
		}
	})
	for _, l := range libs {
		for _, n := range []int{1, 10, 100} {
			b.Run(fmt.Sprintf("lib=%s/checks=%d", l.name, n), func(b *testing.B) {
				checks, execs := counted(n, 0)
				h := l.serve(b, checks)
				waitReady(b, l, h, execs)
				req := probeRequest()
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		}
	}
}

// BenchmarkHerd releases 1,000 goroutines at once (a closed channel), each
// doing one GET on the readiness handler, with one registered check that
// takes 20 ms. One op is one whole herd. It reports the check executions the
// herd caused beyond those done before it (extra-execs/op) and the wall time
// of the herd (herd-ms/op). A library that runs checks on requests takes
// seconds per herd here: run it with -benchtime 1x.
func BenchmarkHerd(b *testing.B) {
	for _, l := range libs {
		b.Run("lib="+l.name, func(b *testing.B) {
			checks, execs := counted(1, slowCheck)
			h := l.serve(b, checks)
			waitReady(b, l, h, execs)
			var extra int64
			var herd time.Duration
			var non200 atomic.Int64
			b.ResetTimer()
			for range b.N {
				b.StopTimer()
				start := make(chan struct{})
				var wg sync.WaitGroup
				for range herdSize {
					req, rec := probeRequest(), httptest.NewRecorder()
					wg.Go(func() {
						<-start
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							non200.Add(1)
						}
					})
				}
				before := execs[0].Load()
				b.StartTimer()
				t0 := time.Now()
				close(start)
				wg.Wait()
				herd += time.Since(t0)
				b.StopTimer()
				extra += execs[0].Load() - before
			}
			b.ReportMetric(float64(extra)/float64(b.N), "extra-execs/op")
			b.ReportMetric(herd.Seconds()*1000/float64(b.N), "herd-ms/op")
			if n := non200.Load(); n > 0 {
				b.Errorf("%d of %d probes did not answer 200", n, b.N*herdSize)
			}
		})
	}
}

// BenchmarkIdleGoroutines counts the goroutines a library keeps while
// nothing happens, with 1 and 100 registered checks (goroutines/op; the
// timed loop is empty).
func BenchmarkIdleGoroutines(b *testing.B) {
	for _, l := range libs {
		for _, n := range []int{1, 100} {
			b.Run(fmt.Sprintf("lib=%s/checks=%d", l.name, n), func(b *testing.B) {
				base := runtime.NumGoroutine()
				checks, execs := counted(n, 0)
				h := l.serve(b, checks)
				waitReady(b, l, h, execs)
				// Goroutines of finished executions may still be on their
				// way out: take the least count over a few samples.
				least := runtime.NumGoroutine()
				for range 50 {
					time.Sleep(time.Millisecond)
					least = min(least, runtime.NumGoroutine())
				}
				for b.Loop() {
				}
				b.ReportMetric(float64(least-base), "goroutines")
			})
		}
	}
}

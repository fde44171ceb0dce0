package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// BenchmarkBaseline is a bare net/http handler writing 200 "ok": the yardstick
// the probe benchmarks are quoted against.
func BenchmarkBaseline(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok")) //nolint:errcheck
	})
	serve(b, "recorder", h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	serve(b, "discard", h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
}

// BenchmarkBaselineHeaders is the baseline with what the probe contract
// requires of every answer: Content-Type, Cache-Control and a health+json
// body of the same size as a probe's. It separates the cost of the contract
// from the cost of the framework.
func BenchmarkBaselineHeaders(b *testing.B) {
	body := []byte(`{"status":"pass","notes":["phase: ready"]}` + "\n")
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/health+json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck
	})
	serve(b, "recorder", h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	serve(b, "discard", h, httptest.NewRequest(http.MethodGet, "/readyz", nil))
}

// discardWriter is a ResponseWriter that keeps nothing, reusing one header
// map: what is left is the handler's own cost.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// serve times h answering req, into a new httptest.ResponseRecorder per
// request ("recorder") or into one reused discarding writer ("discard").
func serve(b *testing.B, how string, h http.Handler, req *http.Request) {
	b.Run(how, func(b *testing.B) {
		b.ReportAllocs()
		if how == "recorder" {
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
			return
		}
		w := &discardWriter{h: http.Header{}}
		for b.Loop() {
			h.ServeHTTP(w, req)
		}
	})
}

// gate builds a Ready lifecycle whose gate of the given kind has n passing
// checks (warm-up tasks for startup), all run once, and returns the gate.
func gate(b *testing.B, kind string, n int) probes.Gate {
	lc := probes.NewLifecycle()
	var g probes.Gate
	switch kind {
	case "startup":
		warm, err := startup.New(lc)
		if err != nil {
			b.Fatal(err)
		}
		for i := range n {
			if err := warm.Task(fmt.Sprintf("task%d", i), func(context.Context, *startup.Progress) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		g = warm
	case "liveness":
		live, err := liveness.New(lc)
		if err != nil {
			b.Fatal(err)
		}
		g = addChecks(b, live, "self", n)
	default:
		ready, err := readiness.New(lc)
		if err != nil {
			b.Fatal(err)
		}
		g = addChecks(b, ready, "dep", n)
	}
	testutil.Background(b, lc.Run)
	ranAll(b, g)
	if kind == "startup" {
		testutil.Eventually(b, "warm", func() bool { return lc.Phase() == probes.Ready })
	} else {
		testutil.Ready(b, lc)
	}
	return g
}

// checkedGate is what liveness and readiness gates share.
type checkedGate interface {
	probes.Gate
	Add(name string, c probes.Checker, opts ...probes.CheckOption) error
}

// addChecks gives g n passing checks.
func addChecks(b *testing.B, g checkedGate, prefix string, n int) probes.Gate {
	pass := probes.CheckFunc(func(context.Context) error { return nil })
	for i := range n {
		if err := g.Add(fmt.Sprintf("%s%d", prefix, i), pass, probes.Every(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	return g
}

func ranAll(b *testing.B, g probes.Gate) {
	testutil.Eventually(b, "every check ran", func() bool {
		for _, c := range g.Report().Checks {
			if c.Time.IsZero() {
				return false
			}
		}
		return true
	})
}

// BenchmarkProbe is a probe request on each gate with 1, 10 and 100 checks:
// the default health+json body, the ?verbose text form, and HEAD.
func BenchmarkProbe(b *testing.B) {
	for _, kind := range []string{"startup", "liveness", "readiness"} {
		path := map[string]string{"startup": "startupz", "liveness": "livez", "readiness": "readyz"}[kind]
		for _, n := range []int{1, 10, 100} {
			g := gate(b, kind, n)
			h := newHandler(g)
			one := "task0"
			if kind != "startup" {
				one = g.Report().Checks[0].Name
			}
			for _, v := range []struct {
				name, method, query, accept, check string
			}{
				{"json", http.MethodGet, "", "", ""},
				{"kubelet", http.MethodGet, "", "*/*", ""},
				{"text-verbose", http.MethodGet, "?verbose", "text/plain", ""},
				{"json-verbose", http.MethodGet, "?verbose", "", ""},
				{"check", http.MethodGet, "", "*/*", one},
				{"head", http.MethodHead, "", "", ""},
			} {
				req := httptest.NewRequest(v.method, "/"+path+v.query, nil)
				if v.accept != "" {
					req.Header.Set("Accept", v.accept)
				}
				if v.name == "kubelet" {
					req.Header.Set("User-Agent", "kube-probe/1.34")
				}
				if v.check != "" {
					req.SetPathValue("check", v.check)
				}
				rec := httptest.NewRecorder()
				if h.ServeHTTP(rec, req); rec.Code != http.StatusOK {
					b.Fatalf("%s %s: got %d, want 200", kind, v.name, rec.Code)
				}
				b.Run(fmt.Sprintf("gate=%s/checks=%d/%s", kind, n, v.name), func(b *testing.B) {
					serve(b, "recorder", h, req)
					serve(b, "discard", h, req)
				})
			}
		}
	}
}

// BenchmarkProbeHungDependency is a readiness probe while one dependency
// hangs (it ignores its context, so the runner reports it failing every
// millisecond), next to the same probe with the dependency healthy.
func BenchmarkProbeHungDependency(b *testing.B) {
	for _, hung := range []bool{false, true} {
		lc := probes.NewLifecycle()
		r, err := readiness.New(lc)
		if err != nil {
			b.Fatal(err)
		}
		release := make(chan struct{})
		dep := probes.CheckFunc(func(context.Context) error {
			if hung {
				<-release
			}
			return nil
		})
		if err := r.Add("db", dep, probes.Every(time.Millisecond), probes.Timeout(time.Millisecond)); err != nil {
			b.Fatal(err)
		}
		testutil.Background(b, lc.Run)
		b.Cleanup(func() { close(release) }) // before the runner stops
		ranAll(b, r)
		testutil.Ready(b, lc)
		want := http.StatusOK
		if hung {
			want = http.StatusServiceUnavailable
		}
		h := newHandler(r)
		req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
		testutil.Eventually(b, "verdict settled", func() bool {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			return rec.Code == want
		})
		b.Run(fmt.Sprintf("hung=%v", hung), func(b *testing.B) { serve(b, "recorder", h, req) })
	}
}

// BenchmarkPhaseChangeVisible is the time from a phase change to the
// moment the next probe answer shows it, both ways.
func BenchmarkPhaseChangeVisible(b *testing.B) {
	lc := probes.NewLifecycle()
	g, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	h := newHandler(g)
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	if err := lc.Start(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := lc.MarkReady(); err != nil {
			b.Fatal(err)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("after MarkReady: got %d", rec.Code)
		}
		if err := lc.Rewarm("bench"); err != nil {
			b.Fatal(err)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusServiceUnavailable {
			b.Fatalf("after Rewarm: got %d", rec.Code)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/change")
}

// BenchmarkCheckResultVisible is the time from a check returning a changed
// result to the first probe answer that shows it (ns/visible): recording the
// result, applying the thresholds, re-rendering and the probe itself. ns/op
// adds the trigger's scheduling and the check's own run.
func BenchmarkCheckResultVisible(b *testing.B) {
	lc := probes.NewLifecycle()
	var down atomic.Bool
	var returned atomic.Int64 // when the check last returned, in ns since start
	start := time.Now()
	dep := probes.CheckFunc(func(context.Context) error {
		defer func() { returned.Store(int64(time.Since(start))) }()
		if down.Load() {
			return fmt.Errorf("refused")
		}
		return nil
	})
	core, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	if err := core.Add("db", dep, probes.Every(time.Hour), probes.Local()); err != nil { // local: its failure fails readiness
		b.Fatal(err)
	}
	testutil.Background(b, lc.Run)
	testutil.Ready(b, lc)
	h := newHandler(core)
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	code := func() int {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	testutil.Eventually(b, "first result", func() bool { return code() == http.StatusOK })
	var lag time.Duration
	for b.Loop() {
		want := http.StatusServiceUnavailable
		if down.Load() {
			want = http.StatusOK
		}
		down.Store(!down.Load())
		core.Trigger("db")
		for code() != want {
		}
		lag += time.Since(start) - time.Duration(returned.Load())
	}
	b.ReportMetric(float64(lag.Nanoseconds())/float64(b.N), "ns/visible")
}

// BenchmarkProbeRegistered is the kubelet's readiness probe and a monitor's
// deep view through the handlers Register mounts: the readiness path reads
// the gate through the lifecycle's view (probes.Lifecycle.View), the deep
// view through the group over every gate. Compare BenchmarkProbe, which
// serves the gate itself, and BenchmarkBaselineHeaders.
func BenchmarkProbeRegistered(b *testing.B) {
	g := gate(b, "readiness", 10)
	hs, err := server.Register(http.NewServeMux(), g.Lifecycle())
	if err != nil {
		b.Fatal(err)
	}
	for _, v := range []struct {
		name string
		h    http.Handler
		path string
	}{{"readyz", hs.Readiness, "/readyz"}, {"healthz", hs.Health, "/healthz"}} {
		req := httptest.NewRequest(http.MethodGet, v.path, nil)
		req.Header.Set("Accept", "*/*")
		b.Run(v.name, func(b *testing.B) {
			serve(b, "recorder", v.h, req)
			serve(b, "discard", v.h, req)
		})
	}
}

// BenchmarkNeeds times a route that answers 200 alone ("unguarded") and
// behind a Needs guard on a passing readiness check ("guarded"), into a
// discarding writer, with a request whose context can be cancelled as a
// server's is. The difference is what the guard costs a request it lets
// through.
func BenchmarkNeeds(b *testing.B) {
	ctype, body := []string{"application/json"}, []byte(`{"id":7,"name":"item 7"}`+"\n")
	route := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header()["Content-Type"] = ctype
		w.WriteHeader(http.StatusOK)
		w.Write(body) //nolint:errcheck
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/api/items/7", nil)
	serve(b, "unguarded", route, req)
	needs, err := server.Needs(gate(b, "readiness", 1), "dep0")
	if err != nil {
		b.Fatal(err)
	}
	serve(b, "guarded", needs(route), req)
}

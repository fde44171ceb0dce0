package server_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// BenchmarkBaseline is a bare net/http handler writing 200 "ok": the yardstick
// the probe benchmarks are quoted against.
func BenchmarkBaseline(b *testing.B) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		w.Write([]byte("ok")) //nolint:errcheck
	})
	req := httptest.NewRequest(http.MethodGet, "/readyz", nil)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

// readyGate returns a Ready readiness gate with n passing checks that have
// all run, and stops it when the benchmark ends.
func readyGate(b *testing.B, n int) *readiness.Gate {
	lc := probes.NewLifecycle()
	g := readiness.New(lc)
	for i := range n {
		if err := g.Add(fmt.Sprintf("dep%d", i), probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = g.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		ran := 0
		for _, c := range g.Report().Checks {
			if !c.Time.IsZero() {
				ran++
			}
		}
		if ran == n {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("checks did not run")
		}
	}
	if err := lc.Start(); err != nil {
		b.Fatal(err)
	}
	if err := lc.MarkReady(); err != nil {
		b.Fatal(err)
	}
	return g
}

func BenchmarkProbe(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		g := readyGate(b, n)
		h := server.NewHandler(g, "readyz")
		for _, v := range []struct {
			name, method, target, accept string
		}{
			{"json", http.MethodGet, "/readyz", ""},
			{"head", http.MethodHead, "/readyz", ""},
			{"text-verbose", http.MethodGet, "/readyz?verbose", "text/plain"},
		} {
			b.Run(fmt.Sprintf("checks=%d/%s", n, v.name), func(b *testing.B) {
				req := httptest.NewRequest(v.method, v.target, nil)
				if v.accept != "" {
					req.Header.Set("Accept", v.accept)
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("got %d, want 200", rec.Code)
				}
				b.ReportAllocs()
				for b.Loop() {
					h.ServeHTTP(httptest.NewRecorder(), req)
				}
			})
		}
	}
}

// BenchmarkVerdictVisible measures the time from a phase change to the
// moment the next probe answer shows it.
func BenchmarkVerdictVisible(b *testing.B) {
	lc := probes.NewLifecycle()
	g := readiness.New(lc)
	h := server.NewHandler(g, "readyz")
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
}

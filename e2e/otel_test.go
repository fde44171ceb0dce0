//go:build e2e

package e2e

import (
	"context"
	"errors"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/otelprobes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/startup"
)

// A real Prometheus scrapes the OpenTelemetry Prometheus exporter, fed by
// otelprobes in this test process, through a warm-up with progress, ready,
// a failing shared dependency and a drain; every value is read back through
// Prometheus's query API under the exporter's names.
func TestOtelExporterSeenByPrometheus(t *testing.T) {
	need(t, "prometheus")
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	progress := make(chan float64)
	if err := warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		for f := range progress {
			p.Set(f)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := live.Add("self", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var dbErr atomic.Pointer[error]
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error {
		if e := dbErr.Load(); e != nil {
			return *e
		}
		return nil
	}), probes.Every(50*time.Millisecond)); err != nil {
		t.Fatal(err)
	}

	// The service's own telemetry: an SDK MeterProvider whose reader is the
	// Prometheus exporter, on a registry of its own, served on loopback.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := otelprobes.Register(mp, lc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	ln := testutil.Listen(t)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("metrics server: %v", err)
		}
		http.DefaultClient.CloseIdleConnections()
	})
	testutil.Background(t, lc.Run)
	finish := sync.OnceFunc(func() { close(progress) })
	t.Cleanup(finish) // the task ends even if the test stops early; runs before Run's cancel
	target := ln.Addr().String()
	logNames(t, "http://"+target+"/metrics")

	prom := startPrometheus(t, target)
	prom.eventually(t, `probes_phase{phase="warming",otel_scope_name="github.com/probekit/probes/otelprobes"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="startup",status="fail"}`, 1)
	progress <- 0.5
	prom.eventually(t, `probes_warmup_progress_ratio`, 0.5)
	prom.eventually(t, `probes_warmup_task_progress_ratio{task="cache"}`, 0.5)

	finish()
	prom.eventually(t, `probes_phase{phase="ready"}`, 1)
	prom.eventually(t, `probes_phase{phase="warming"}`, 0)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="pass"}`, 1)
	prom.eventually(t, `probes_transitions_total{from="warming",to="ready"}`, 1)
	if v := prom.increase(t, `probes_transitions_total{from="warming",to="ready"}`); v != 1 {
		t.Errorf(`increase(probes_transitions_total{from="warming",to="ready"}[1m]) = %v, want 1`, v)
	}
	testutil.Eventually(t, "passing executions of db counted", func() bool {
		v, ok := prom.query(t, `probes_check_executions_total{gate="readiness",check="db",status="pass"}`, 0)
		return ok && v >= 3
	})
	if v, ok := prom.query(t, `probes_check_duration_seconds_count{gate="readiness",check="db"}`, 0); !ok || v < 3 {
		t.Errorf("duration samples of the db check: %v (present %v)", v, ok)
	} else {
		t.Logf("probes_check_duration_seconds_count{check=\"db\"} seen by Prometheus: %v", v)
	}
	if v, ok := prom.query(t, `time() - probes_check_last_result_timestamp_seconds{check="db"}`, 0); !ok || v > 15 {
		t.Errorf("age of the db check's last result: %v s (present %v)", v, ok)
	}

	// The shared database fails: its check fails, readiness only warns.
	fail := errors.New("connection refused")
	dbErr.Store(&fail)
	prom.eventually(t, `probes_check_status{gate="readiness",check="db",status="fail"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="warn"}`, 1)
	testutil.Eventually(t, "failed executions of db counted", func() bool {
		v, ok := prom.query(t, `increase(probes_check_executions_total{check="db",status="fail"}[1m])`, 0)
		return ok && v > 0
	})

	if err := lc.Drain("SIGTERM"); err != nil {
		t.Fatal(err)
	}
	prom.eventually(t, `probes_phase{phase="draining"}`, 1)
	prom.eventually(t, `probes_gate_status{gate="readiness",status="fail"}`, 1)
	prom.eventually(t, `probes_transitions_total{from="ready",to="draining"}`, 1)
}

// logNames logs the names of the probes_ families the exporter serves.
func logNames(t *testing.T, url string) {
	t.Helper()
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^# TYPE (probes_\S+) (\S+)`).FindAllStringSubmatch(getBody(t, url), -1) {
		names = append(names, m[1]+" "+m[2])
	}
	slices.Sort(names)
	t.Logf("the exporter serves %d probes_ families:", len(names))
	for _, n := range names {
		t.Log("  " + n)
	}
}

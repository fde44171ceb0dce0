// Package exporttest holds what the tests of both metric exporters (package
// metrics, and package otelprobes through the OpenTelemetry Prometheus
// exporter) assert alike, by the Prometheus names they share.
package exporttest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/startup"
)

// GatesBuiltAfter builds the three gates on lc, whose exporter serving g is
// registered already: a warm-up task "cache", a liveness check "self" that
// passes and a readiness check "db" that fails, both every 5 ms. It runs lc
// until it is ready and each check has run twice, stops it, and asserts
// that g serves those gates' and checks' series, each execution counted
// once.
func GatesBuiltAfter(t *testing.T, lc *probes.Lifecycle, g prometheus.Gatherer) {
	t.Helper()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, warm.Task("cache", func(context.Context, *startup.Progress) error { return nil }))
	live, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, live.Add("self", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(5*time.Millisecond)))
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return errors.New("refused") }), probes.Every(5*time.Millisecond)))
	var db, self atomic.Int64 // executions, as other listeners hear them
	defer ready.OnExecution(func(probes.Execution) { db.Add(1) })()
	defer live.OnExecution(func(probes.Execution) { self.Add(1) })()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop) // owned even when the test stops early
	testutil.Eventually(t, "ready with executions of both checks", func() bool {
		return lc.Phase() == probes.Ready && db.Load() >= 2 && self.Load() >= 2
	})
	stop()

	tests := []struct {
		name   string
		metric string
		labels []string
		want   float64
	}{
		{"startup passes", "probes_gate_status", []string{"gate", "startup", "status", "pass"}, 1},
		{"liveness passes", "probes_gate_status", []string{"gate", "liveness", "status", "pass"}, 1},
		{"readiness fails", "probes_gate_status", []string{"gate", "readiness", "status", "fail"}, 1},
		{"db fails", "probes_check_status", []string{"gate", "readiness", "check", "db", "status", "fail"}, 1},
		{"self passes", "probes_check_status", []string{"gate", "liveness", "check", "self", "status", "pass"}, 1},
		{"db's passes", "probes_check_executions_total", []string{"gate", "readiness", "check", "db", "status", "pass"}, 0},
		{"db's failures", "probes_check_executions_total", []string{"gate", "readiness", "check", "db", "status", "fail"}, float64(db.Load())},
		{"db's durations", "probes_check_duration_seconds", []string{"gate", "readiness", "check", "db"}, float64(db.Load())},
		{"self's passes", "probes_check_executions_total", []string{"gate", "liveness", "check", "self", "status", "pass"}, float64(self.Load())},
		{"the task", "probes_warmup_task_progress_ratio", []string{"task", "cache"}, 1},
		{"the warm-up", "probes_warmup_progress_ratio", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Value(t, g, tt.metric, tt.labels...)
			if !ok || got != tt.want {
				t.Errorf("%s%v = %v (present %v), want %v", tt.metric, tt.labels, got, ok, tt.want)
			}
		})
	}
}

// Value returns the value of the first series of name in g whose labels
// hold every name/value pair of labels (the sample count of a histogram),
// and whether there is one.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			if !holds(have, labels) {
				continue
			}
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func holds(have map[string]string, pairs []string) bool {
	for i := 0; i+1 < len(pairs); i += 2 {
		if v, ok := have[pairs[i]]; !ok || v != pairs[i+1] {
			return false
		}
	}
	return true
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

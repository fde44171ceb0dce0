// Package exporttest holds what the tests of both metric exporters (package
// metrics, and package otelprobes through the OpenTelemetry Prometheus
// exporter) assert alike, by the Prometheus names they share.
package exporttest

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

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

// Secret is the cause Past gives the instance before: no series may show it.
const Secret = "s3cr3t-token-9f2c"

// Past asserts what the exporter that register puts on a new lifecycle
// serves of the instances before it (probes.Past): probes_restarts always,
// 0 without a past; probes_last_end{ended} at 1 and
// probes_last_end_timestamp_seconds only when an instance ran before, the
// timestamp only when its end was written; each as the latest SetPast says
// at the scrape; and never the cause, which holds Secret, in any name,
// label or help text.
func Past(t *testing.T, register func(t *testing.T, lc *probes.Lifecycle) prometheus.Gatherer) {
	t.Helper()
	end := time.Unix(1_700_000_000, 250_000_000)
	tests := []struct {
		name     string
		past     *probes.Past // nil: SetPast is never called
		restarts float64
		ended    string  // "": no probes_last_end
		at       float64 // 0: no probes_last_end_timestamp_seconds
	}{
		{"no past", nil, 0, "", 0},
		{"a first instance", &probes.Past{}, 0, "", 0},
		{"after a clean stop", &probes.Past{Restarts: 1, Ended: probes.EndedStopped, End: end, Cause: "SIGTERM " + Secret}, 1, probes.EndedStopped, 1_700_000_000.25},
		{"after a break", &probes.Past{Restarts: 3, Ended: probes.EndedBroken, End: end, Cause: "warm-up deadline missed: " + Secret}, 3, probes.EndedBroken, 1_700_000_000.25},
		{"after a closed history", &probes.Past{Restarts: 2, Ended: probes.EndedClosed, End: end}, 2, probes.EndedClosed, 1_700_000_000.25},
		{"after a kill", &probes.Past{Restarts: 7, Ended: probes.EndedSilent, Cause: Secret}, 7, probes.EndedSilent, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			g := register(t, lc)
			if tt.past != nil {
				lc.SetPast(*tt.past)
			}
			if got, ok := Value(t, g, "probes_restarts"); !ok || got != tt.restarts {
				t.Errorf("probes_restarts = %v (present %v), want %v", got, ok, tt.restarts)
			}
			ends := series(t, g, "probes_last_end")
			switch {
			case tt.ended == "" && len(ends) > 0:
				t.Errorf("probes_last_end without an instance before: %v", ends)
			case tt.ended != "" && (len(ends) != 1 || ends[0] != "ended="+tt.ended+" 1"):
				t.Errorf("probes_last_end: got %v, want [ended=%s 1]", ends, tt.ended)
			}
			got, ok := Value(t, g, "probes_last_end_timestamp_seconds")
			if tt.at == 0 && ok {
				t.Errorf("probes_last_end_timestamp_seconds = %v, want none", got)
			}
			if tt.at != 0 && (!ok || got != tt.at) {
				t.Errorf("probes_last_end_timestamp_seconds = %v (present %v), want %v", got, ok, tt.at)
			}
			if text := Text(t, g); strings.Contains(text, Secret) {
				t.Errorf("the cause is served:\n%s", text)
			}
		})
	}

	// Read at each scrape: a later SetPast shows at the next one.
	lc := probes.NewLifecycle()
	g := register(t, lc)
	lc.SetPast(probes.Past{Restarts: 1, Ended: probes.EndedBroken, End: end})
	lc.SetPast(probes.Past{Restarts: 2, Ended: probes.EndedSilent})
	if got, _ := Value(t, g, "probes_restarts"); got != 2 {
		t.Errorf("after a second SetPast, probes_restarts = %v, want 2", got)
	}
	if ends := series(t, g, "probes_last_end"); len(ends) != 1 || ends[0] != "ended=without a word 1" {
		t.Errorf("after a second SetPast, probes_last_end: %v", ends)
	}
	if _, ok := Value(t, g, "probes_last_end_timestamp_seconds"); ok {
		t.Error("after a second SetPast, the first one's end is still served")
	}
}

// series returns the series of name in g as "label=value,... value", the
// exporter's own labels (otel_scope_*) left out.
func series(t testing.TB, g prometheus.Gatherer, name string) []string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				if !strings.HasPrefix(l.GetName(), "otel_") {
					labels = append(labels, l.GetName()+"="+l.GetValue())
				}
			}
			out = append(out, strings.Join(labels, ",")+" "+strconv.FormatFloat(m.GetGauge().GetValue(), 'g', -1, 64))
		}
	}
	return out
}

// Text returns all that g serves, in the text exposition format.
func Text(t testing.TB, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
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

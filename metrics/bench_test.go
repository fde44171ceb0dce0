package metrics_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probekit/probes"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
)

// What counting one check execution costs: the metrics' listener against
// the floor, the same histogram observation and counter increment on
// series client_golang already resolved.
func BenchmarkExecution(b *testing.B) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		b.Fatal(err)
	}
	m, err := metrics.Register(prometheus.NewRegistry(), lc)
	if err != nil {
		b.Fatal(err)
	}
	e := probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Pass, Duration: 700 * time.Microsecond}
	b.Run("metrics", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Observe(e)
		}
	})
	b.Run("floor", func(b *testing.B) {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16)}, []string{"gate", "check"}).WithLabelValues("readiness", "db")
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c"}, []string{"gate", "check", "status"}).WithLabelValues("readiness", "db", "pass")
		b.ReportAllocs()
		for b.Loop() {
			h.Observe(e.Duration.Seconds())
			c.Inc()
		}
	})
}

// One scrape of a service with 100 readiness checks, each with a result.
func BenchmarkScrape100Checks(b *testing.B) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		if err := ready.Add(fmt.Sprintf("dep-%03d", i), probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
			b.Fatal(err)
		}
	}
	reg := prometheus.NewRegistry()
	m, err := metrics.Register(reg, lc)
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100 {
		m.Observe(probes.Execution{Gate: probes.Readiness, Check: fmt.Sprintf("dep-%03d", i), Status: probes.Pass, Duration: time.Millisecond})
	}
	b.Run("metrics", func(b *testing.B) { gather(b, reg) })
	b.Run("floor", func(b *testing.B) { gather(b, sameSeries(100)) })
}

func gather(b *testing.B, g prometheus.Gatherer) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// sameSeries is the floor of a scrape: a registry of plain client_golang
// vectors holding as many series, of the same kinds, as the metrics of a
// lifecycle with n readiness checks.
func sameSeries(n int) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	gauge := func(name string, labels ...string) *prometheus.GaugeVec {
		v := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: name}, labels)
		reg.MustRegister(v)
		return v
	}
	phase := gauge("phase", "phase")
	for p := probes.Cold; p <= probes.Broken; p++ {
		phase.WithLabelValues(p.String()).Set(0)
	}
	gate := gauge("gate", "gate", "status")
	check := gauge("check", "gate", "check", "status")
	perCheck := []*prometheus.GaugeVec{gauge("last", "gate", "check"), gauge("stale", "gate", "check"), gauge("fails", "gate", "check")}
	gauge("warmup").WithLabelValues().Set(1)
	hist := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "h", Help: "h", Buckets: prometheus.ExponentialBuckets(0.0001, 2.5, 16)}, []string{"gate", "check"})
	execs := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "c", Help: "c"}, []string{"gate", "check", "status"})
	moves := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "t", Help: "t"}, []string{"from", "to"})
	reg.MustRegister(hist, execs, moves)
	for i := range 12 {
		moves.WithLabelValues(fmt.Sprint(i), "x").Add(0)
	}
	for s := probes.Fail; s <= probes.Pass; s++ {
		gate.WithLabelValues("readiness", s.String()).Set(0)
	}
	for i := range n {
		name := fmt.Sprintf("dep-%03d", i)
		for s := probes.Fail; s <= probes.Pass; s++ {
			check.WithLabelValues("readiness", name, s.String()).Set(0)
			execs.WithLabelValues("readiness", name, s.String()).Add(0)
		}
		for _, v := range perCheck {
			v.WithLabelValues("readiness", name).Set(0)
		}
		hist.WithLabelValues("readiness", name).Observe(0.001)
	}
	return reg
}

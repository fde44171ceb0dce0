package otelprobes_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
)

// What recording one check execution costs on the SDK: the package's
// listener against the floor, the same histogram Record and counter Add
// with attribute sets built beforehand, on a MeterProvider of its own.
func BenchmarkExecution(b *testing.B) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		b.Fatal(err)
	}
	e := probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Pass, Duration: 700 * time.Microsecond}
	b.Run("otelprobes", func(b *testing.B) {
		m := register(b, newReader(b).mp, lc)
		b.ReportAllocs()
		for b.Loop() {
			m.Observe(e)
		}
	})
	b.Run("floor", func(b *testing.B) {
		meter := newReader(b).mp.Meter("floor")
		h, err := meter.Float64Histogram("h", metric.WithUnit("s"),
			metric.WithExplicitBucketBoundaries(.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
		if err != nil {
			b.Fatal(err)
		}
		c, err := meter.Int64Counter("c", metric.WithUnit("{execution}"))
		if err != nil {
			b.Fatal(err)
		}
		gate, check := attribute.String("gate", "readiness"), attribute.String("check", "db")
		record := []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(gate, check))}
		add := []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(gate, check, attribute.String("status", "pass")))}
		ctx := context.Background()
		b.ReportAllocs()
		for b.Loop() {
			h.Record(ctx, e.Duration.Seconds(), record...)
			c.Add(ctx, 1, add...)
		}
	})
}

// One collection of a service with 100 readiness checks, each with a
// result.
func BenchmarkCollect100Checks(b *testing.B) {
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
	r := newReader(b)
	m := register(b, r.mp, lc)
	for i := range 100 {
		m.Observe(probes.Execution{Gate: probes.Readiness, Check: fmt.Sprintf("dep-%03d", i), Status: probes.Pass, Duration: time.Millisecond})
	}
	var rm metricdata.ResourceMetrics // reused, as exporters do
	b.ReportAllocs()
	for b.Loop() {
		if err := r.Collect(context.Background(), &rm); err != nil {
			b.Fatal(err)
		}
	}
}

package otelprobes_test

import (
	"context"
	"fmt"
	"log"
	"slices"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/probekit/probes"
	"github.com/probekit/probes/otelprobes"
	"github.com/probekit/probes/readiness"
)

func ExampleRegister() {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		log.Fatal(err)
	}
	err = ready.Add("postgres", probes.CheckFunc(func(ctx context.Context) error { return nil }))
	if err != nil {
		log.Fatal(err)
	}

	// A service passes its own MeterProvider, with its exporter's reader;
	// a ManualReader shows what one collection sees.
	rd := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(rd))
	defer mp.Shutdown(context.Background())

	// Register before the lifecycle moves; gates may come before or after.
	m, err := otelprobes.Register(mp, lc)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	if err := lc.Start(); err != nil {
		log.Fatal(err)
	}
	var rm metricdata.ResourceMetrics
	if err := rd.Collect(context.Background(), &rm); err != nil {
		log.Fatal(err)
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, mt := range sm.Metrics {
			switch d := mt.Data.(type) {
			case metricdata.Gauge[int64]:
				if mt.Name != "probes.phase" {
					continue
				}
				for _, p := range d.DataPoints {
					phase, _ := p.Attributes.Value("phase")
					lines = append(lines, fmt.Sprintf("%s{phase=%s} %d", mt.Name, phase.AsString(), p.Value))
				}
			case metricdata.Sum[int64]:
				if mt.Name != "probes.transitions" {
					continue
				}
				for _, p := range d.DataPoints {
					from, _ := p.Attributes.Value("from")
					to, _ := p.Attributes.Value("to")
					if p.Value > 0 {
						lines = append(lines, fmt.Sprintf("%s{from=%s,to=%s} %d %s", mt.Name, from.AsString(), to.AsString(), p.Value, mt.Unit))
					}
				}
			}
		}
	}
	slices.Sort(lines)
	for _, l := range lines {
		fmt.Println(l)
	}
	// Output:
	// probes.phase{phase=broken} 0
	// probes.phase{phase=cold} 0
	// probes.phase{phase=draining} 0
	// probes.phase{phase=ready} 0
	// probes.phase{phase=stopped} 0
	// probes.phase{phase=warming} 1
	// probes.transitions{from=cold,to=warming} 1 {transition}
}

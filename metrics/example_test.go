package metrics_test

import (
	"context"
	"fmt"
	"log"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/probekit/probes"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
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

	// Register before the lifecycle moves; gates may come before or after.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if _, err := metrics.Register(reg, lc); err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	// Monitoring: scrapes during a drain are not application traffic.
	mux.Handle("GET /metrics", server.Monitoring(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})))

	if err := lc.Start(); err != nil {
		log.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		log.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "probes_phase" {
			for _, m := range mf.GetMetric() {
				fmt.Printf("probes_phase{phase=%q} %v\n", m.GetLabel()[0].GetValue(), m.GetGauge().GetValue())
			}
		}
	}
	// Output:
	// probes_phase{phase="broken"} 0
	// probes_phase{phase="cold"} 0
	// probes_phase{phase="draining"} 0
	// probes_phase{phase="ready"} 0
	// probes_phase{phase="stopped"} 0
	// probes_phase{phase="warming"} 1
}

package metrics

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/server"
)

// Registry is what Part registers on and serves from: a
// *prometheus.Registry, such as prometheus.NewRegistry() or
// prometheus.DefaultRegisterer's.
type Registry interface {
	prometheus.Registerer
	prometheus.Gatherer
}

// Part is the assembly's part (app.Part) for Prometheus: it registers the
// lifecycle's metrics on reg (Register, with opts) and the server's figures
// once it is built (Metrics.Server), and serves reg at /metrics on the probe
// listener, as monitoring (it never holds a quiet drain), at most 4 scrapes
// at once and each within 5 s, so that a flood of scrapes cannot take the
// CPU from the application.
func Part(reg Registry, opts ...Option) app.Part {
	return app.NewPart("metrics.Part", func(a *app.App) error {
		if reg == nil {
			return errors.New("metrics: Part(nil): need a registry, such as prometheus.NewRegistry()")
		}
		m, err := Register(reg, a.Lifecycle, opts...)
		if err != nil {
			return err
		}
		a.Monitor("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 5 * time.Second}))
		a.MetricsPath = "/metrics"
		a.Built(func(s *server.Server) error { return m.Server(s) })
		return nil
	})
}

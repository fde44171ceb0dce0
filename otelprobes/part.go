package otelprobes

import (
	"go.opentelemetry.io/otel/metric"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/server"
)

// Part is the assembly's part (app.Part) for OpenTelemetry: it registers the
// lifecycle's instruments on mp (Register, with opts), and the server's
// figures once it is built (Metrics.Server). Exporting them (an OTLP
// exporter, or the Prometheus exporter's handler mounted with
// app.App.Monitor) is the service's MeterProvider's to do.
func Part(mp metric.MeterProvider, opts ...Option) app.Part {
	return app.NewPart("otelprobes.Part", func(a *app.App) error {
		m, err := Register(mp, a.Lifecycle, opts...)
		if err != nil {
			return err
		}
		a.Built(func(s *server.Server) error { return m.Server(s) })
		return nil
	})
}

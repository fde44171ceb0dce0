package otelprobes

import "github.com/probekit/probes"

// Observe records e as the gates' listener does.
func (m *Metrics) Observe(e probes.Execution) { m.observe(e) }

package metrics

import "github.com/probekit/probes"

// Observe counts e as the gate's listener does.
func (m *Metrics) Observe(e probes.Execution) { m.observe(e) }

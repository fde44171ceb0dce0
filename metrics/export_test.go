package metrics

import "github.com/probekit/probes"

// Observe counts e as the metrics' watcher does when the lifecycle tells of
// it.
func (m *Metrics) Observe(e probes.Execution) {
	m.hear(probes.Change{Kind: probes.Executed, Gate: e.Gate, Execution: e})
}

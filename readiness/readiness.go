// Package readiness holds the readiness gate: the only gate that looks at
// dependencies, and the one that flips first during shutdown.
//
// The gate passes only while the lifecycle is Ready and every critical
// dependency check passes; a failing non-critical check gives warn. Draining
// fails it at once. Checks run in the background as work of the lifecycle
// (probes.Lifecycle.Run, which server.Server.Run calls), so a probe request
// never waits on a dependency.
//
// Anything that can block takes a context.Context first. The package uses only
// the standard library.
package readiness

import (
	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/checkgate"
)

// Gate is the readiness gate. Create one with New. Its Add registers a
// dependency check: options set its schedule, timeout, thresholds and
// criticality (see probes.CheckOption for the defaults), and an invalid name
// or option is an error that names it.
type Gate struct {
	*checkgate.Gate
}

var _ probes.Gate = (*Gate)(nil)

// New returns the readiness gate of lc and attaches it to lc. It fails when
// lc is nil or already has a readiness gate.
func New(lc *probes.Lifecycle) (*Gate, error) {
	g, err := checkgate.New(lc, probes.Readiness)
	if err != nil {
		return nil, err
	}
	return &Gate{Gate: g}, nil
}

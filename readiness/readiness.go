// Package readiness holds the readiness gate: the only gate that looks at
// dependencies, and the one that flips first during shutdown.
//
// The gate passes only while the lifecycle is Ready and every critical
// dependency check passes. Draining fails it at once. Checks run in the
// background as work of the lifecycle (probes.Lifecycle.Run, which
// server.Server.Run calls), so a probe request never waits on a dependency.
//
// Every check has a scope, because a balancer acts on the whole fleet:
//
//   - shared (probes.Shared, the default): a dependency every replica shares,
//     such as the primary database. Its failure hits every replica at once,
//     so it makes the gate warn (HTTP 200, the check named) rather than take
//     the whole fleet out of rotation; server.Needs fails the routes that
//     need it, and the deep view (/healthz) fails. Until the check has
//     passed once on this instance its failures count as local, so an
//     instance that never reached the dependency never becomes ready.
//   - local (probes.Local): a fault of this instance only, such as its
//     sidecar or its own wedged pool. It fails the gate, so the balancer
//     moves traffic to replicas that do not share it.
//
// A non-critical check (probes.NonCritical) only warns, whatever its scope.
// A result older than its bound (probes.StaleAfter) counts as failing.
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

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

// Gate is the readiness gate. Create one with New and add dependency
// checks with Add; the lifecycle's Run runs them.
type Gate struct {
	g *checkgate.Gate
}

var _ probes.Gate = (*Gate)(nil)

// New returns the readiness gate of lc and attaches it to lc. It fails when
// lc is nil or already has a readiness gate.
func New(lc *probes.Lifecycle) (*Gate, error) {
	g, err := checkgate.New(lc, probes.Readiness)
	if err != nil {
		return nil, err
	}
	return &Gate{g: g}, nil
}

// Add registers a dependency check under name. Options set its schedule,
// timeout, thresholds, criticality and scope (see probes.CheckOption; shared
// by default). It fails, changing nothing, when name is not
// probes.ValidName or is taken, when c is nil, or with an error naming the
// option when an option is invalid. A check added while the lifecycle runs
// starts at once.
func (g *Gate) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	return g.g.Add(name, c, opts...)
}

// Trigger runs the named check as soon as it may: at once, or after the
// execution in flight, and no sooner than its Recheck wait after the last
// execution began, so that calling it on every failed request costs one
// execution per wait. Call it when the service sees a dependency fail
// before its check has (a query that failed), so that route guards
// (server.Needs) fail the next requests fast. It does nothing for an
// unknown name or before the lifecycle runs.
func (g *Gate) Trigger(name string) { g.g.Trigger(name) }

// OnExecution registers fn to be called after every execution of the
// gate's checks, present and future, in the order they ran, with its own
// outcome (before thresholds) and duration, and returns a function that
// removes it. fn runs on the goroutine that ran the check; it must be quick
// and must not block, or it delays the check's next execution. A panic in
// fn is recovered and dropped. Package metrics counts executions with it.
func (g *Gate) OnExecution(fn func(probes.Execution)) (cancel func()) { return g.g.OnExecution(fn) }

// Kind returns probes.Readiness.
func (g *Gate) Kind() probes.Kind { return g.g.Kind() }

// Lifecycle is the lifecycle the gate is built on.
func (g *Gate) Lifecycle() *probes.Lifecycle { return g.g.Lifecycle() }

// Report returns the gate's state now: the phase's verdict and every
// check's latest result.
func (g *Gate) Report() probes.Report { return g.g.Report() }

// Version grows with every phase move and every change of a check's
// verdict (see probes.Gate).
func (g *Gate) Version() uint64 { return g.g.Version() }

// Revision grows with Version and with every other check result (see
// probes.Gate).
func (g *Gate) Revision() uint64 { return g.g.Revision() }

// Subscribe registers fn to be called after every change of a check's
// verdict or of the lifecycle's phase, on the goroutine that made it, and
// returns a function that removes it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.g.Subscribe(fn) }

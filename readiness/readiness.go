// Package readiness holds the readiness gate: the only gate that looks at
// dependencies, and the one that flips first during shutdown.
//
// The gate passes only while the lifecycle is Ready and every critical
// dependency check passes; a failing non-critical check gives warn. Draining
// fails it at once. Checks run in the background (see probes.Runner), so a
// probe request never waits on a dependency.
//
// Anything that can block takes a context.Context first. The package uses only
// the standard library.
package readiness

import (
	"context"
	"fmt"

	"github.com/probekit/probes"
)

// Gate is the readiness gate. Create one with New.
type Gate struct {
	core *probes.CheckGate
}

// New returns the readiness gate of lc. It panics if lc is nil.
func New(lc *probes.Lifecycle) *Gate {
	if lc == nil {
		panic("readiness: New with a nil *probes.Lifecycle")
	}
	return &Gate{core: probes.NewCheckGate(lc, "readiness", base)}
}

func base(p probes.Phase) (probes.Status, string) {
	switch p {
	case probes.Cold:
		return probes.Fail, "phase: cold; warm-up has not started"
	case probes.Warming:
		return probes.Fail, "phase: warming; not ready until warm-up is done"
	case probes.Ready:
		return probes.Pass, "phase: ready"
	case probes.Draining:
		return probes.Fail, "phase: draining; shutting down, send no new traffic"
	case probes.Broken:
		return probes.Fail, "phase: broken; the process must be restarted"
	}
	return probes.Fail, "phase: " + p.String()
}

// Add registers a dependency check under name. Options set its schedule,
// timeout, thresholds and criticality; see probes.CheckOption for the
// defaults. It returns an error naming the problem when name or an option is
// invalid.
func (g *Gate) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	if err := g.core.Add(name, c, opts...); err != nil {
		return fmt.Errorf("readiness: %w", err)
	}
	return nil
}

// Run executes the checks until ctx is done and returns ctx.Err().
func (g *Gate) Run(ctx context.Context) error { return g.core.Run(ctx) }

// Report returns the gate's current state.
func (g *Gate) Report() probes.Report { return g.core.Report() }

// Subscribe registers fn to be called after every change of a check's verdict
// or of the lifecycle's phase, on the goroutine that made it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.core.Subscribe(fn) }

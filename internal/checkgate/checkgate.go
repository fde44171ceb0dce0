// Package checkgate is the gate over a set of background checks that the
// liveness and readiness gates share.
package checkgate

import (
	"fmt"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/broadcast"
	"github.com/probekit/probes/internal/runner"
	"github.com/probekit/probes/internal/spec"
)

// Gate is a probes.Gate whose verdict is the phase x gate table's, made
// worse by its checks.
type Gate struct {
	kind    probes.Kind
	lc      *probes.Lifecycle
	runner  *runner.Runner
	changes broadcast.B
	execs   broadcast.List[func(probes.Execution)]
}

// New builds the gate of kind k on lc and attaches it, so that lc.Run runs
// its checks.
func New(lc *probes.Lifecycle, k probes.Kind) (*Gate, error) {
	if lc == nil {
		return nil, fmt.Errorf("%s: New(nil): need a *probes.Lifecycle", k)
	}
	g := &Gate{kind: k, lc: lc}
	g.runner = runner.New(lc.Clock(), g.changes.Notify)
	g.runner.OnExecuted(g.executed)
	g.runner.ForGate(k)
	if k == probes.Readiness {
		g.runner.Scopes(spec.Shared, true) // dependencies: see probes.Shared
	} else {
		g.runner.PendingPasses() // self-checks: alive until one fails
	}
	if err := lc.Attach(g, g.runner.Run); err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	lc.Subscribe(func(probes.Transition) { g.changes.Notify() })
	lc.SubscribeCordon(func(probes.CordonChange) { g.changes.Notify() })
	return g, nil
}

// Kind says which gate this is.
func (g *Gate) Kind() probes.Kind { return g.kind }

// Lifecycle is the lifecycle the gate is built on.
func (g *Gate) Lifecycle() *probes.Lifecycle { return g.lc }

// Add registers a check; see runner.Runner.Add.
func (g *Gate) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	if err := g.runner.Add(name, c, opts...); err != nil {
		return fmt.Errorf("%s: %w", g.kind, err)
	}
	return nil
}

// Trigger runs the named check as soon as possible.
func (g *Gate) Trigger(name string) { g.runner.Trigger(name) }

// Report returns the gate's current state.
func (g *Gate) Report() probes.Report {
	r := g.lc.Basis(g.kind).Report(g.kind)
	r.Checks = g.runner.Results()
	return r
}

// Version grows with every phase move and every verdict change, as the
// change becomes visible in Report.
func (g *Gate) Version() uint64 { return g.lc.Version() + g.runner.Version() }

// Revision grows with every phase move and every check result, whether or
// not it changed a verdict.
func (g *Gate) Revision() uint64 { return g.lc.Version() + g.runner.Revision() }

// Subscribe registers fn to be called after every change of a check's
// verdict or of the lifecycle's phase.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.changes.Subscribe(fn) }

// OnExecution registers fn to be called after every execution of the gate's
// checks, present and future, in the order they ran, with its outcome and
// duration, and returns a function that removes it. fn runs on the goroutine
// that ran the check, after the result is recorded; it must be quick and
// must not block, or it delays the check's next execution. A panic in fn is
// recovered and dropped: it never takes the check's schedule or the process
// down. It is how package metrics counts executions as they happen.
func (g *Gate) OnExecution(fn func(probes.Execution)) (cancel func()) { return g.execs.Add(fn) }

func (g *Gate) executed(name string, s probes.Status, d time.Duration) {
	fns := g.execs.Snapshot()
	if len(fns) == 0 {
		return
	}
	e := probes.Execution{Gate: g.kind, Check: name, Status: s, Duration: d}
	for _, fn := range fns {
		deliver(fn, e)
	}
}

func deliver(fn func(probes.Execution), e probes.Execution) {
	defer func() { _ = recover() }()
	fn(e)
}

var _ probes.Gate = (*Gate)(nil)

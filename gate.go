package probes

import "context"

// CheckGate is a gate over a set of background checks whose verdict starts
// from a base that depends on the phase: the shared machinery of the liveness
// and readiness gates. Most code uses those packages instead.
type CheckGate struct {
	name    string
	lc      *Lifecycle
	base    func(Phase) (Status, string)
	runner  *Runner
	changes Broadcast
}

// NewCheckGate returns a gate named name (as in Report.Gate) over lc. base
// gives the verdict and note of a phase before any check is looked at.
func NewCheckGate(lc *Lifecycle, name string, base func(Phase) (Status, string)) *CheckGate {
	g := &CheckGate{name: name, lc: lc, base: base}
	g.runner = NewRunner(lc.Clock(), g.changes.Notify)
	lc.Subscribe(func(Transition) { g.changes.Notify() })
	return g
}

// Add registers a check; see Runner.Add.
func (g *CheckGate) Add(name string, c Checker, opts ...CheckOption) error {
	return g.runner.Add(name, c, opts...)
}

// Run executes the checks until ctx is done; see Runner.Run.
func (g *CheckGate) Run(ctx context.Context) error { return g.runner.Run(ctx) }

// Trigger runs the named check as soon as possible; see Runner.Trigger.
func (g *CheckGate) Trigger(name string) { g.runner.Trigger(name) }

// Report returns the gate's current state.
func (g *CheckGate) Report() Report {
	phase := g.lc.Phase()
	base, note := g.base(phase)
	return Report{
		Gate:   g.name,
		Phase:  phase,
		Base:   base,
		Notes:  []string{note},
		Checks: g.runner.Results(),
	}
}

// Subscribe registers fn to be called after every change of a check's verdict
// or of the lifecycle's phase, on the goroutine that made it.
func (g *CheckGate) Subscribe(fn func()) (cancel func()) { return g.changes.Subscribe(fn) }

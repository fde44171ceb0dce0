package probes

import "time"

// Facts is everything the lifecycle knows at one moment: the one source
// every surface renders (health+json and its text form, the page, history,
// the metrics, gRPC, systemd, the agent line, the admin status): the same
// gate reports, the same lifecycle. Surfaces derive nothing of their own;
// they read these facts, follow Watch, and show what their reader may see
// (Report.For).
type Facts struct {
	// Phase is the lifecycle's phase, and Since when it began (zero before
	// the first move).
	Phase Phase
	Since time.Time
	// Started reports that warm-up has finished at least once.
	Started bool
	// Cordon is the cordon, zero when there is none.
	Cordon Cordon
	// Version grows with every move, cordon change and gate built
	// (Lifecycle.Version).
	Version uint64
	// Gates holds every gate's report, in the order the gates were built:
	// a gate built at any time is here from then on.
	Gates []Report
	// Identity names the service and the instance (Identify).
	Identity Identity
	// Past is what is known of the instances before this one (SetPast).
	Past Past
}

// Facts returns the lifecycle's facts now. Each gate's report is
// consistent in itself (see Basis); the phase above them is read first, so
// a move in between shows in the reports and not yet in Phase.
func (l *Lifecycle) Facts() Facts {
	s := l.state.Load()
	f := Facts{Phase: Phase(s & 0xff), Since: l.Since(), Started: s&startedBit != 0, Version: s >> seqShift, Identity: l.identity, Past: l.Past()}
	if c := l.cordon.Load(); c != nil {
		f.Cordon = *c
	}
	gates := l.gatesNow()
	f.Gates = make([]Report, len(gates))
	for i, g := range gates {
		f.Gates[i] = g.Report()
	}
	return f
}

// Gate returns the report of the gate of kind k, and whether there is one.
func (f *Facts) Gate(k Kind) (Report, bool) {
	for i := range f.Gates {
		if f.Gates[i].Gate == k {
			return f.Gates[i], true
		}
	}
	return Report{}, false
}

// ChangeKind says what a Change is.
type ChangeKind uint8

const (
	// Moved is a phase move: Change.Move holds it.
	Moved ChangeKind = iota + 1
	// CordonChanged is a cordon, an uncordon or a cordon's lifting:
	// Change.Cordon holds it.
	CordonChanged
	// VerdictChanged is the arrival of gate Change.Gate, or a change of its
	// verdict or of one of its
	// checks' verdicts or warm-up progress (what Gate.Subscribe announces).
	VerdictChanged
	// Executed is one finished execution of a check of gate Change.Gate:
	// Change.Execution holds it.
	Executed
)

// Change is one thing that happened to the lifecycle or its gates, as
// Watch delivers it. Kind says which of the other fields holds it.
type Change struct {
	Kind      ChangeKind
	Move      Transition
	Cordon    CordonChange
	Gate      Kind
	Execution Execution
}

// Watch adds fn to the lifecycle's watchers and returns a function that
// removes it. fn hears every later change of the lifecycle and of every
// gate built on it, those built after Watch included: moves and cordon
// changes in order, after the listeners of Subscribe and SubscribeCordon;
// verdict changes on the goroutine that made them; and every check's
// execution, on the goroutine that ran it, without allocating. fn must be
// quick and must not block: every watcher shares the goroutine of the move
// or the check, so a blocked fn holds the move's other listeners, or that
// check's next result and verdict, on every surface. A panic in fn is
// recovered and dropped, silently: fn must report its own failures. After
// cancel returns, fn may still be running a change delivered just before.
//
// Watch is how metrics, history and the page learn of changes: with Facts,
// it is all a surface needs, whatever order things were built in.
func (l *Lifecycle) Watch(fn func(Change)) (cancel func()) { return l.watchers.Add(fn) }

// tell delivers c to every watcher.
func (l *Lifecycle) tell(c Change) {
	for _, fn := range l.watchers.Snapshot() {
		tellOne(fn, c)
	}
}

func tellOne(fn func(Change), c Change) {
	defer func() { _ = recover() }()
	fn(c)
}

// watchGate makes the lifecycle's watchers hear g's changes and, when g
// reports them, its executions; once per gate, for the gate's life.
func (l *Lifecycle) watchGate(g Gate) {
	k := g.Kind()
	g.Subscribe(func() { l.tell(Change{Kind: VerdictChanged, Gate: k}) })
	if ex, ok := g.(interface {
		OnExecution(func(Execution)) (cancel func())
	}); ok {
		ex.OnExecution(func(e Execution) { l.tell(Change{Kind: Executed, Gate: k, Execution: e}) })
	}
	// The gate's arrival is a change of the lifecycle (Version) and of
	// what kind k's view reports.
	l.mu.Lock()
	l.state.Add(1 << seqShift)
	l.mu.Unlock()
	l.tell(Change{Kind: VerdictChanged, Gate: k})
}

// View returns a Gate that answers for kind k (Startup, Liveness or
// Readiness) whatever the order things are built in: it reads the
// lifecycle's gate of kind k whenever there is one, and the phase x gate
// table alone (Basis) until then. A surface built before the gate (the
// probe routes, the agent line) serves it from the moment it is built.
func (l *Lifecycle) View(k Kind) Gate { return &view{lc: l, kind: k} }

// view is what View returns.
type view struct {
	lc   *Lifecycle
	kind Kind
}

func (v *view) Kind() Kind            { return v.kind }
func (v *view) Lifecycle() *Lifecycle { return v.lc }

func (v *view) Report() Report {
	if g := v.lc.Gate(v.kind); g != nil {
		return g.Report()
	}
	return v.lc.Basis(v.kind).Report(v.kind)
}

// Version counts the lifecycle's moves (a gate's arrival among them) and
// the gate's own changes.
func (v *view) Version() uint64 {
	if g := v.lc.Gate(v.kind); g != nil {
		return g.Version()
	}
	return v.lc.Version()
}

func (v *view) Revision() uint64 {
	if g := v.lc.Gate(v.kind); g != nil {
		return g.Revision()
	}
	return v.lc.Version()
}

func (v *view) Subscribe(fn func()) (cancel func()) {
	return v.lc.Watch(func(c Change) {
		if c.Kind == Moved || c.Kind == CordonChanged || c.Kind == VerdictChanged && c.Gate == v.kind {
			fn()
		}
	})
}

package otelprobes

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/buckets"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/readout"
	"github.com/probekit/probes/server"
)

// ScopeName is the instrumentation scope of the meter Register asks the
// MeterProvider for.
const ScopeName = "github.com/probekit/probes/otelprobes"

// Option configures the metrics. An invalid value makes Register fail with
// an error that names the option.
type Option func(*config) error

type config struct {
	buckets []float64
	srv     *server.Server
}

// Buckets sets the explicit bucket boundaries, in seconds, of
// probes.check.duration: at least one, each finite and positive, in
// increasing order. The default is package metrics' default, from 100 µs to
// 10 s (100 µs, 250 µs, 500 µs, 1 ms, 2.5 ms, ... 5 s, 10 s). A View of the
// MeterProvider may still override them.
func Buckets(upper ...float64) Option {
	return func(c *config) error {
		if err := buckets.Check(upper); err != nil {
			return err
		}
		c.buckets = slices.Clone(upper)
		return nil
	}
}

// Server adds what s has seen of its connections and its shutdown
// (server.Stats), read at each collection: refused connections, the drain's
// length, the requests that arrived late during it, and those the shutdown
// timeout cut. Without it (or Metrics.Server) those instruments report
// nothing.
func Server(s *server.Server) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("Server(nil): need a *server.Server")
		}
		c.srv = s
		return nil
	}
}

// Metrics holds the instruments of one lifecycle on one MeterProvider.
// Register creates it; Close stops it.
type Metrics struct {
	lc  *probes.Lifecycle
	srv atomic.Pointer[server.Server]

	duration    metric.Float64Histogram
	executions  metric.Int64Counter
	transitions metric.Int64Counter
	cordons     metric.Int64Counter
	observed    observables

	// Attribute options built once: observing or counting looks up an
	// array or a map, never builds a set.
	phaseOpts [readout.LastPhase + 1][]metric.ObserveOption
	gateOpts  [probes.Readiness + 1][probes.Pass + 1][]metric.ObserveOption
	moveOpts  [readout.LastPhase + 1][readout.LastPhase + 1][]metric.AddOption // nil for a move no lifecycle makes
	causeOpts map[probes.CordonCause][]metric.AddOption                        // cordon changes by cause
	endOpts   map[string][]metric.ObserveOption                                // how the last instance ended (probes.Past.Ended)
	byCheck   *readout.ByCheck[*check]
	tasks     *readout.ByCheck[[]metric.ObserveOption] // by the startup gate and the task's name

	closeOnce sync.Once
	closeErr  error
	cancel    func() // stops the watcher
	reg       metric.Registration
}

// check holds the attribute options of one check, built on first use, so
// that recording an execution allocates nothing.
type check struct {
	record  []metric.RecordOption                   // {gate, check}
	observe []metric.ObserveOption                  // {gate, check}
	add     [probes.Pass + 1][]metric.AddOption     // {gate, check, status} by Status
	status  [probes.Pass + 1][]metric.ObserveOption // the same sets, for probes.check.status
}

// Register creates the instruments of lc on a meter of mp (scope
// ScopeName) and starts recording; pass otel.GetMeterProvider() to use the
// global provider, which Register never reads by itself. Gates and checks
// may be built before or after: every collection reads all that lc has
// then (Lifecycle.Facts), and every execution of every gate's checks is
// recorded, whenever the gate was built (Lifecycle.Watch). Register before
// the lifecycle starts: transitions before it are not counted. Register
// once per lifecycle and provider: a second registration would count every
// execution twice in the same instruments.
//
// The counters of every legal transition start at 0, and those of a
// check's executions from the first collection or execution that sees it
// (callbacks run before the counters are read), so that a rate or an
// increase sees the first of each.
func Register(mp metric.MeterProvider, lc *probes.Lifecycle, opts ...Option) (*Metrics, error) {
	if mp == nil {
		return nil, errors.New("otelprobes: Register(nil, ...): need a metric.MeterProvider (otel.GetMeterProvider() for the global one)")
	}
	if lc == nil {
		return nil, errors.New("otelprobes: Register(mp, nil): need a *probes.Lifecycle")
	}
	cfg := config{buckets: buckets.Default()}
	for _, o := range opts {
		if o == nil { // opt.Apply skips nil; a nil here is a caller's slip
			return nil, errors.New("otelprobes: Register: nil Option")
		}
	}
	if err := opt.Apply("otelprobes", &cfg, opts); err != nil {
		return nil, err
	}
	meter := mp.Meter(ScopeName)
	m := &Metrics{lc: lc}
	if err := m.instruments(meter, cfg.buckets); err != nil {
		return nil, fmt.Errorf("otelprobes: %w", err)
	}
	m.byCheck = readout.NewByCheck(m.newCheck)
	m.tasks = readout.NewByCheck(func(_ probes.Kind, task string) []metric.ObserveOption {
		return observeWith(attribute.String("task", task))
	})
	if cfg.srv != nil {
		m.srv.Store(cfg.srv)
	}
	m.buildOptions()
	reg, err := meter.RegisterCallback(m.collect, m.observed.list()...)
	if err != nil {
		return nil, fmt.Errorf("otelprobes: %w", err)
	}
	m.reg = reg

	ctx := context.Background()
	for from, to := range readout.Moves() {
		m.transitions.Add(ctx, 0, m.moveOpts[from][to]...)
	}
	for _, opts := range m.causeOpts {
		m.cordons.Add(ctx, 0, opts...)
	}
	m.cancel = lc.Watch(m.hear)
	return m, nil
}

// buildOptions builds the attribute options of the fixed sets: phases,
// gates by status, cordon causes, transitions and the ways an instance ends.
func (m *Metrics) buildOptions() {
	m.endOpts = map[string][]metric.ObserveOption{}
	for _, ended := range []string{probes.EndedStopped, probes.EndedBroken, probes.EndedClosed, probes.EndedSilent} {
		m.endOpts[ended] = observeWith(attribute.String("ended", ended))
	}
	for p := range readout.Phases() {
		m.phaseOpts[p] = observeWith(attribute.String("phase", p.String()))
	}
	for k := probes.Startup; k <= probes.Readiness; k++ {
		for s := range readout.Statuses() {
			m.gateOpts[k][s] = observeWith(attribute.String("gate", k.String()), attribute.String("status", s.String()))
		}
	}
	m.causeOpts = map[probes.CordonCause][]metric.AddOption{}
	for _, cause := range probes.CordonCauses() {
		m.causeOpts[cause] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("cause", string(cause))))}
	}
	for from, to := range readout.Moves() {
		set := attribute.NewSet(attribute.String("from", from.String()), attribute.String("to", to.String()))
		m.moveOpts[from][to] = []metric.AddOption{metric.WithAttributeSet(set)}
	}
}

func observeWith(kv ...attribute.KeyValue) []metric.ObserveOption {
	return []metric.ObserveOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// Server makes the metrics include what s has seen of its connections and
// its shutdown from the next collection on, as the Server option does: for a
// service that registers its metrics before it has built its server. It
// fails when s is nil or the metrics have a server already.
func (m *Metrics) Server(s *server.Server) error {
	if s == nil {
		return errors.New("otelprobes: Metrics.Server(nil): need a *server.Server")
	}
	if !m.srv.CompareAndSwap(nil, s) {
		return errors.New("otelprobes: Metrics.Server: the metrics have a server already")
	}
	return nil
}

// Close stops recording: it removes the watcher of executions and
// transitions and unregisters the collection callback, so the observable
// instruments report nothing from the next collection on, while the
// counters and the histogram keep their last values. It returns the
// callback's unregistration error, and is safe to call more than once.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		m.cancel()
		m.closeErr = m.reg.Unregister()
	})
	return m.closeErr
}

// hear records what happened: a move, a cordon change or an execution. It
// runs on the goroutine that made the change or ran the check, after every
// execution: a map read, a histogram record and a counter add, with
// options built before.
func (m *Metrics) hear(c probes.Change) {
	ctx := context.Background()
	switch c.Kind {
	case probes.Moved:
		if t := c.Move; t.From <= readout.LastPhase && t.To <= readout.LastPhase && m.moveOpts[t.From][t.To] != nil {
			m.transitions.Add(ctx, 1, m.moveOpts[t.From][t.To]...)
		}
	case probes.CordonChanged:
		if opts, ok := m.causeOpts[c.Cordon.Cause]; ok {
			m.cordons.Add(ctx, 1, opts...)
		}
	case probes.Executed:
		e := &c.Execution
		k := m.byCheck.Get(e.Gate, e.Check)
		m.duration.Record(ctx, e.Duration.Seconds(), k.record...)
		if e.Status <= probes.Pass {
			m.executions.Add(ctx, 1, k.add[e.Status]...)
		}
	}
}

// newCheck builds the options of the named check, and starts its
// execution counters at 0.
func (m *Metrics) newCheck(gate probes.Kind, name string) *check {
	g, n := attribute.String("gate", gate.String()), attribute.String("check", name)
	pair := metric.WithAttributeSet(attribute.NewSet(g, n))
	c := &check{record: []metric.RecordOption{pair}, observe: []metric.ObserveOption{pair}}
	for s := range readout.Statuses() {
		opt := metric.WithAttributeSet(attribute.NewSet(g, n, attribute.String("status", s.String())))
		c.add[s] = []metric.AddOption{opt}
		c.status[s] = []metric.ObserveOption{opt}
		m.executions.Add(context.Background(), 0, c.add[s]...)
	}
	return c
}

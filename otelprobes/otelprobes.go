package otelprobes

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/buckets"
	"github.com/probekit/probes/internal/opt"
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

// lastPhase is the last phase; the tables by phase are indexed up to it.
const lastPhase = probes.Broken

// Metrics holds the instruments of one lifecycle on one MeterProvider.
// Register creates it; Close stops it.
type Metrics struct {
	lc    *probes.Lifecycle
	gates []probes.Gate
	srv   atomic.Pointer[server.Server]

	duration    metric.Float64Histogram
	executions  metric.Int64Counter
	transitions metric.Int64Counter
	cordons     metric.Int64Counter
	observed    observables

	// Attribute options built once: observing or counting looks up an
	// array, never builds a set.
	phaseOpts [lastPhase + 1][]metric.ObserveOption
	gateOpts  [probes.Readiness + 1][probes.Pass + 1][]metric.ObserveOption
	moveOpts  [lastPhase + 1][lastPhase + 1][]metric.AddOption
	causeOpts map[probes.CordonCause][]metric.AddOption // cordon changes by cause

	mu      sync.Mutex                          // serialises additions to byCheck and tasks
	byCheck atomic.Pointer[map[checkKey]*check] // copied on write
	tasks   atomic.Pointer[map[string][]metric.ObserveOption]

	closeOnce sync.Once
	closeErr  error
	cancels   []func()
	reg       metric.Registration
}

type checkKey struct {
	gate probes.Kind
	name string
}

// check holds the attribute options of one check, built on first use, so
// that recording an execution allocates nothing.
type check struct {
	record  []metric.RecordOption                   // {gate, check}
	observe []metric.ObserveOption                  // {gate, check}
	add     [probes.Pass + 1][]metric.AddOption     // {gate, check, status} by Status
	status  [probes.Pass + 1][]metric.ObserveOption // the same sets, for probes.check.status
}

// executionSource is what a gate offers when its checks run in the
// background: liveness.Gate and readiness.Gate.
type executionSource interface {
	OnExecution(fn func(probes.Execution)) (cancel func())
}

// Register creates the instruments of lc on a meter of mp (scope
// ScopeName) and starts recording; pass otel.GetMeterProvider() to use the
// global provider, which Register never reads by itself. Build the gates
// first: Register records the executions of the gates lc has then (their
// checks added later included) and reads the state of those gates at each
// collection; a gate built later is left out. Register before the lifecycle
// starts: transitions before it are not counted. Register once per lifecycle and provider: a second
// registration would count every execution twice in the same instruments.
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
	m := &Metrics{lc: lc, gates: lc.Gates()}
	if err := m.instruments(meter, cfg.buckets); err != nil {
		return nil, fmt.Errorf("otelprobes: %w", err)
	}
	m.byCheck.Store(&map[checkKey]*check{})
	m.tasks.Store(&map[string][]metric.ObserveOption{})
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
	for _, row := range m.moveOpts {
		for _, opts := range row {
			if opts != nil { // a legal move (buildOptions)
				m.transitions.Add(ctx, 0, opts...)
			}
		}
	}
	for _, opts := range m.causeOpts {
		m.cordons.Add(ctx, 0, opts...)
	}
	m.cancels = append(m.cancels, lc.Subscribe(m.transition), lc.SubscribeCordon(func(c probes.CordonChange) {
		if opts, ok := m.causeOpts[c.Cause]; ok {
			m.cordons.Add(context.Background(), 1, opts...)
		}
	}))
	for _, g := range m.gates {
		if src, ok := g.(executionSource); ok {
			m.cancels = append(m.cancels, src.OnExecution(m.observe))
		}
	}
	return m, nil
}

// buildOptions builds the attribute options of the fixed sets: phases,
// gates by status, and transitions.
func (m *Metrics) buildOptions() {
	for p := probes.Cold; p <= lastPhase; p++ {
		m.phaseOpts[p] = observeWith(attribute.String("phase", p.String()))
	}
	for k := probes.Startup; k <= probes.Readiness; k++ {
		for s := probes.Fail; s <= probes.Pass; s++ {
			m.gateOpts[k][s] = observeWith(attribute.String("gate", k.String()), attribute.String("status", s.String()))
		}
	}
	m.causeOpts = map[probes.CordonCause][]metric.AddOption{}
	for _, cause := range probes.CordonCauses() {
		m.causeOpts[cause] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attribute.String("cause", string(cause))))}
	}
	for from := probes.Cold; from <= lastPhase; from++ {
		for to := probes.Cold; to <= lastPhase; to++ {
			if probes.CanMove(from, to) {
				set := attribute.NewSet(attribute.String("from", from.String()), attribute.String("to", to.String()))
				m.moveOpts[from][to] = []metric.AddOption{metric.WithAttributeSet(set)}
			}
		}
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

// Close stops recording: it removes the execution and transition listeners
// and unregisters the collection callback, so the observable instruments
// report nothing from the next collection on, while the counters and the
// histogram keep their last values. It returns the callback's
// unregistration error, and is safe to call more than once.
func (m *Metrics) Close() error {
	m.closeOnce.Do(func() {
		for _, c := range m.cancels {
			c()
		}
		m.closeErr = m.reg.Unregister()
	})
	return m.closeErr
}

// transition counts one move of the lifecycle.
func (m *Metrics) transition(t probes.Transition) {
	if t.From <= lastPhase && t.To <= lastPhase && m.moveOpts[t.From][t.To] != nil {
		m.transitions.Add(context.Background(), 1, m.moveOpts[t.From][t.To]...)
	}
}

// observe records one execution. It runs on the check's goroutine after
// every execution: a map read, a histogram record and a counter add, with
// options built before.
func (m *Metrics) observe(e probes.Execution) {
	c := m.check(e.Gate, e.Check)
	ctx := context.Background()
	m.duration.Record(ctx, e.Duration.Seconds(), c.record...)
	if e.Status <= probes.Pass {
		m.executions.Add(ctx, 1, c.add[e.Status]...)
	}
}

// check returns the options of the named check, building them (and its
// execution counters, at 0) on first use.
func (m *Metrics) check(gate probes.Kind, name string) *check {
	key := checkKey{gate, name}
	if c, ok := (*m.byCheck.Load())[key]; ok {
		return c
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.byCheck.Load()
	if c, ok := old[key]; ok {
		return c
	}
	g, n := attribute.String("gate", gate.String()), attribute.String("check", name)
	pair := metric.WithAttributeSet(attribute.NewSet(g, n))
	c := &check{record: []metric.RecordOption{pair}, observe: []metric.ObserveOption{pair}}
	for s := probes.Fail; s <= probes.Pass; s++ {
		opt := metric.WithAttributeSet(attribute.NewSet(g, n, attribute.String("status", s.String())))
		c.add[s] = []metric.AddOption{opt}
		c.status[s] = []metric.ObserveOption{opt}
		m.executions.Add(context.Background(), 0, c.add[s]...)
	}
	next := maps.Clone(old)
	next[key] = c
	m.byCheck.Store(&next)
	return c
}

// task returns the options of the named warm-up task, building them on
// first use.
func (m *Metrics) task(name string) []metric.ObserveOption {
	if o, ok := (*m.tasks.Load())[name]; ok {
		return o
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.tasks.Load()
	if o, ok := old[name]; ok {
		return o
	}
	o := observeWith(attribute.String("task", name))
	next := maps.Clone(old)
	next[name] = o
	m.tasks.Store(&next)
	return o
}

package otelprobes

// The instruments, and the callback that reads the state at collection time.

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/readout"
	"github.com/probekit/probes/server"
)

// gauge is how a fact is observed: its instrument's name, unit and
// description, and whether its values are fractions (float64) or counts
// and flags (int64).
type gauge struct {
	name, unit, desc string
	float            bool
}

// gauges are the instruments read at collection time, by the fact they
// show: the one place a fact gets its name.
var gauges = [readout.NumFacts]gauge{
	readout.Phase:    {"probes.phase", "{lifecycle}", "1 for the lifecycle's current phase, 0 for the others.", false},
	readout.Cordoned: {"probes.cordoned", "{lifecycle}", "1 while the instance is cordoned (out of rotation by hand), else 0.", false},
	readout.GateStatus: {"probes.gate.status", "{gate}",
		"1 for the gate's current status (pass, warn, fail), 0 for the others.", false},
	readout.CheckStatus: {"probes.check.status", "{check}",
		"1 for the check's current status after its thresholds, 0 for the others.", false},
	readout.LastResult: {"probes.check.last_result.timestamp", "s",
		"When the check's last result came, in seconds since the epoch; 0 before the first.", true},
	readout.Stale: {"probes.check.stale", "{check}",
		"1 while the check's last result is older than its StaleAfter bound: its schedule has stalled.", false},
	readout.ConsecutiveFailures: {"probes.check.consecutive_failures", "{failure}",
		"Failures of the check since its last pass or warning.", false},
	readout.Flapping: {"probes.check.flapping", "{check}",
		"1 while the check's outcomes keep changing (flap detection with hysteresis), else 0.", false},
	readout.WarmupProgress: {"probes.warmup.progress", "1",
		"Progress of the warm-up, from 0 to 1: the mean of its tasks' progress.", true},
	readout.WarmupDuration: {"probes.warmup.duration", "s",
		"How long the last warm-up has lasted so far, then its length once it ended; 0 before it began.", true},
	readout.TaskProgress: {"probes.warmup.task.progress", "1", "Progress of one warm-up task, from 0 to 1.", true},
	readout.Restarts: {"probes.restarts", "{restart}",
		"Instances that ran before this one with its state directory (history.StateDir); 0 for the first, and without a state directory.", false},
	readout.LastEnd: {"probes.last_end", "{instance}",
		"1, with how the instance before this one ended: stopped, broken, closed or without a word (killed, or its machine went down); no point when none ran before.", false},
	readout.LastEndTime: {"probes.last_end.timestamp", "s",
		"When the instance before this one ended, in seconds since the epoch; no point when none ran before or it ended without a word.", true},
}

// observables are the instruments read by the collection callback.
type observables struct {
	ints   [readout.NumFacts]metric.Int64ObservableGauge   // of the facts observed as int64
	floats [readout.NumFacts]metric.Float64ObservableGauge // of those observed as float64

	refused     metric.Int64ObservableCounter
	drain       metric.Float64ObservableGauge
	late        metric.Int64ObservableCounter
	afterProbed metric.Int64ObservableCounter
	cut         metric.Int64ObservableCounter
}

func (o *observables) list() []metric.Observable {
	var l []metric.Observable
	for f, g := range gauges {
		if g.float {
			l = append(l, o.floats[f])
		} else {
			l = append(l, o.ints[f])
		}
	}
	return append(l, o.refused, o.drain, o.late, o.afterProbed, o.cut)
}

// instruments creates every instrument on meter; the errors of all of them
// are joined.
func (m *Metrics) instruments(meter metric.Meter, buckets []float64) error {
	var errs []error
	keep := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	f64 := func(name, unit, desc string) metric.Float64ObservableGauge {
		g, err := meter.Float64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return g
	}
	count := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return c
	}
	var err error
	m.duration, err = meter.Float64Histogram("probes.check.duration", metric.WithUnit("s"),
		metric.WithDescription("How long executions of the check took; one that timed out counts its timeout."),
		metric.WithExplicitBucketBoundaries(buckets...))
	keep(err)
	m.executions, err = meter.Int64Counter("probes.check.executions", metric.WithUnit("{execution}"),
		metric.WithDescription("Executions of the check by their own outcome (pass, warn, fail), before its thresholds."))
	keep(err)
	m.transitions, err = meter.Int64Counter("probes.transitions", metric.WithUnit("{transition}"),
		metric.WithDescription("Moves of the lifecycle from one phase to another."))
	keep(err)
	m.cordons, err = meter.Int64Counter("probes.cordon.changes", metric.WithUnit("{change}"),
		metric.WithDescription("Changes of the cordon by cause: cordoned, uncordoned, lifted (its time limit ended it)."))
	keep(err)
	ob := &m.observed
	for f, g := range gauges {
		if g.float {
			ob.floats[f] = f64(g.name, g.unit, g.desc)
		} else {
			ob.ints[f], err = meter.Int64ObservableGauge(g.name, metric.WithUnit(g.unit), metric.WithDescription(g.desc))
			keep(err)
		}
	}
	ob.refused = count("probes.refused_connections", "{connection}",
		"Connections the application listener closed at once because it held MaxConns.")
	ob.drain = f64("probes.drain.duration", "s",
		"How long the shutdown's drain has lasted so far, then its length once over; 0 before it began.")
	ob.late = count("probes.drain.late_requests", "{request}",
		"Application requests that arrived after the drain began: the balancers had not noticed yet.")
	ob.afterProbed = count("probes.drain.late_requests.after_probed", "{request}",
		"Late requests that arrived after the probers had seen readiness fail: clients that do not follow the probes.")
	ob.cut = count("probes.shutdown.cut_requests", "{request}", "Requests the shutdown timeout cut off.")
	return errors.Join(errs...)
}

// collect reads the lifecycle's facts once and observes them; it is the
// callback registered for every observable instrument.
func (m *Metrics) collect(_ context.Context, o metric.Observer) error {
	ob := &m.observed
	f := m.lc.Facts()
	readout.Read(&f, m.lc.WarmupLength(), func(r *readout.Reading) {
		opts, ok := m.options(r)
		switch {
		case !ok:
		case gauges[r.Fact].float:
			o.ObserveFloat64(ob.floats[r.Fact], r.Value, opts...)
		default:
			o.ObserveInt64(ob.ints[r.Fact], int64(r.Value), opts...)
		}
	})
	if srv := m.srv.Load(); srv != nil {
		collectServer(o, ob, srv)
	}
	return nil
}

// options returns the attributes of r's point, built before, and false
// for a gate of a kind the metrics have no attributes for.
func (m *Metrics) options(r *readout.Reading) ([]metric.ObserveOption, bool) {
	switch {
	case r.Fact == readout.Phase:
		return m.phaseOpts[r.Phase], true
	case r.Fact == readout.GateStatus:
		if r.Gate > probes.Readiness {
			return nil, false
		}
		return m.gateOpts[r.Gate][r.Status], true
	case r.Fact == readout.CheckStatus:
		return m.byCheck.Get(r.Gate, r.Name).status[r.Status], true // its execution counters exist from its first collection
	case r.Fact.OfCheck():
		return m.byCheck.Get(r.Gate, r.Name).observe, true
	case r.Fact == readout.TaskProgress:
		return m.tasks.Get(probes.Startup, r.Name), true
	case r.Fact == readout.LastEnd:
		if opts, ok := m.endOpts[r.Name]; ok {
			return opts, true
		}
		return observeWith(attribute.String("ended", r.Name)), true // an end this package does not know
	}
	return nil, true
}

func collectServer(o metric.Observer, ob *observables, srv *server.Server) {
	st := srv.Stats()
	o.ObserveInt64(ob.refused, clamp(st.RefusedConns))
	o.ObserveFloat64(ob.drain, readout.Drain(&st).Seconds())
	o.ObserveInt64(ob.late, clamp(st.LateRequests))
	o.ObserveInt64(ob.afterProbed, clamp(st.AfterProbed))
	o.ObserveInt64(ob.cut, st.CutRequests)
}

// clamp converts a count to the int64 the instruments take.
func clamp(n uint64) int64 {
	if n > 1<<63-1 {
		return 1<<63 - 1
	}
	return int64(n)
}

package otelprobes

// The instruments, and the callback that reads the state at collection time.

import (
	"context"
	"errors"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// observables are the instruments read by the collection callback.
type observables struct {
	phase        metric.Int64ObservableGauge
	gate         metric.Int64ObservableGauge
	check        metric.Int64ObservableGauge
	last         metric.Float64ObservableGauge
	stale        metric.Int64ObservableGauge
	fails        metric.Int64ObservableGauge
	flapping     metric.Int64ObservableGauge
	cordoned     metric.Int64ObservableGauge
	warmup       metric.Float64ObservableGauge
	warmDuration metric.Float64ObservableGauge
	task         metric.Float64ObservableGauge

	refused     metric.Int64ObservableCounter
	drain       metric.Float64ObservableGauge
	late        metric.Int64ObservableCounter
	afterProbed metric.Int64ObservableCounter
	cut         metric.Int64ObservableCounter
}

func (o *observables) list() []metric.Observable {
	return []metric.Observable{o.phase, o.gate, o.check, o.last, o.stale, o.fails, o.flapping, o.cordoned, o.warmup, o.warmDuration, o.task,
		o.refused, o.drain, o.late, o.afterProbed, o.cut}
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
	i64 := func(name, unit, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithUnit(unit), metric.WithDescription(desc))
		keep(err)
		return g
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
	m.observed = observables{
		phase: i64("probes.phase", "{lifecycle}", "1 for the lifecycle's current phase, 0 for the others."),
		gate:  i64("probes.gate.status", "{gate}", "1 for the gate's current status (pass, warn, fail), 0 for the others."),
		check: i64("probes.check.status", "{check}", "1 for the check's current status after its thresholds, 0 for the others."),
		last: f64("probes.check.last_result.timestamp", "s",
			"When the check's last result came, in seconds since the epoch; 0 before the first."),
		stale: i64("probes.check.stale", "{check}",
			"1 while the check's last result is older than its StaleAfter bound: its schedule has stalled."),
		fails: i64("probes.check.consecutive_failures", "{failure}", "Failures of the check since its last pass or warning."),
		flapping: i64("probes.check.flapping", "{check}",
			"1 while the check's outcomes keep changing (flap detection with hysteresis), else 0."),
		cordoned: i64("probes.cordoned", "{lifecycle}", "1 while the instance is cordoned (out of rotation by hand), else 0."),
		warmup:   f64("probes.warmup.progress", "1", "Progress of the warm-up, from 0 to 1: the mean of its tasks' progress."),
		warmDuration: f64("probes.warmup.duration", "s",
			"How long the last warm-up has lasted so far, then its length once it ended; 0 before it began."),
		task: f64("probes.warmup.task.progress", "1", "Progress of one warm-up task, from 0 to 1."),

		refused: count("probes.refused_connections", "{connection}",
			"Connections the application listener closed at once because it held MaxConns."),
		drain: f64("probes.drain.duration", "s",
			"How long the shutdown's drain has lasted so far, then its length once over; 0 before it began."),
		late: count("probes.drain.late_requests", "{request}",
			"Application requests that arrived after the drain began: the balancers had not noticed yet."),
		afterProbed: count("probes.drain.late_requests.after_probed", "{request}",
			"Late requests that arrived after the probers had seen readiness fail: clients that do not follow the probes."),
		cut: count("probes.shutdown.cut_requests", "{request}", "Requests the shutdown timeout cut off."),
	}
	return errors.Join(errs...)
}

// collect reads the state now and observes it; it is the callback
// registered for every observable instrument.
func (m *Metrics) collect(_ context.Context, o metric.Observer) error {
	ob := &m.observed
	phase := m.lc.Phase()
	for p := probes.Cold; p <= lastPhase; p++ {
		o.ObserveInt64(ob.phase, flag(p == phase), m.phaseOpts[p]...)
	}
	_, cordoned := m.lc.Cordoned()
	o.ObserveInt64(ob.cordoned, flag(cordoned))
	warmup := float64(flag(m.lc.Started())) // a service with no warm-up tasks
	for _, g := range m.gates {
		r := g.Report()
		kind := g.Kind() // the gate's own word, as Register subscribed it
		if kind > probes.Readiness {
			continue
		}
		status := r.Status()
		for s := probes.Fail; s <= probes.Pass; s++ {
			o.ObserveInt64(ob.gate, flag(s == status), m.gateOpts[kind][s]...)
		}
		for i := range r.Checks {
			m.collectCheck(o, kind, &r.Checks[i])
		}
		for i := range r.Tasks {
			o.ObserveFloat64(ob.task, r.Tasks[i].Progress(), m.task(r.Tasks[i].Name)...)
		}
		if len(r.Tasks) > 0 {
			warmup = r.Progress()
		}
	}
	o.ObserveFloat64(ob.warmup, warmup)
	o.ObserveFloat64(ob.warmDuration, m.lc.WarmupLength().Seconds())
	if srv := m.srv.Load(); srv != nil {
		collectServer(o, ob, srv)
	}
	return nil
}

func (m *Metrics) collectCheck(o metric.Observer, gate probes.Kind, r *probes.Result) {
	ob := &m.observed
	c := m.check(gate, r.Name) // its execution counters exist from its first collection
	for s := probes.Fail; s <= probes.Pass; s++ {
		o.ObserveInt64(ob.check, flag(s == r.Status), c.status[s]...)
	}
	var last float64
	if !r.Time.IsZero() {
		last = float64(r.Time.UnixNano()) / 1e9
	}
	o.ObserveFloat64(ob.last, last, c.observe...)
	o.ObserveInt64(ob.stale, flag(r.Stale), c.observe...)
	o.ObserveInt64(ob.fails, int64(r.ConsecutiveFailures), c.observe...)
	o.ObserveInt64(ob.flapping, flag(r.Flapping), c.observe...)
}

func collectServer(o metric.Observer, ob *observables, srv *server.Server) {
	st := srv.Stats()
	drain := st.Drain
	if drain == 0 && !st.DrainBegan.IsZero() {
		drain = max(time.Since(st.DrainBegan), 0)
	}
	o.ObserveInt64(ob.refused, clamp(st.RefusedConns))
	o.ObserveFloat64(ob.drain, drain.Seconds())
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

func flag(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

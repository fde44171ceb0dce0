// Package metrics exports a lifecycle's phase, its gates, their checks and
// the warm-up as Prometheus metrics, read from the same state the probes
// answer from: nothing is kept in step by hand.
//
// State (the phase, each gate's and check's status, the warm-up's progress,
// the age of each check's last result) is read when Prometheus scrapes, from
// one snapshot of the lifecycle (Lifecycle.Facts). What happens (check
// executions and their durations, phase transitions, cordon changes) is
// counted as it happens, from the lifecycle's one stream of changes
// (Lifecycle.Watch). Both hold every gate, whenever it was built, so gates
// may be built before or after Register. A service that does not import
// this package never compiles client_golang.
//
// Every series is labelled only by names the service chose when it built its
// gates (gates, checks, warm-up tasks) and by the fixed names of phases,
// statuses and ends, so the number of series is bounded by the service's own
// checks; nothing a client sends becomes a label.
//
// The metrics:
//
//	probes_phase{phase}                                      gauge: 1 for the current phase, 0 for the others
//	probes_gate_status{gate,status}                          gauge: 1 for the gate's current status
//	probes_check_status{gate,check,status}                   gauge: 1 for the check's current status
//	probes_check_duration_seconds{gate,check}                histogram of execution times
//	probes_check_executions_total{gate,check,status}         counter of executions by their own outcome
//	probes_check_last_result_timestamp_seconds{gate,check}   gauge: when the last result came, 0 before
//	probes_check_stale{gate,check}                           gauge: 1 while the last result is stale
//	probes_check_consecutive_failures{gate,check}            gauge
//	probes_check_flapping{gate,check}                        gauge: 1 while its outcomes keep changing
//	probes_transitions_total{from,to}                        counter of phase transitions
//	probes_cordoned                                          gauge: 1 while cordoned by hand, else 0
//	probes_cordon_changes_total{cause}                       counter: cordoned, uncordoned, lifted (time limit)
//	probes_warmup_progress_ratio                             gauge: 0 to 1 over the whole warm-up
//	probes_warmup_duration_seconds                           gauge: the warm-up so far, then its length
//	probes_warmup_task_progress_ratio{task}                  gauge: 0 to 1 per warm-up task
//	probes_restarts                                          gauge: instances before this one in its state directory
//	probes_last_end{ended}                                   gauge: 1, labelled with how the last of them ended
//	probes_last_end_timestamp_seconds                        gauge: when it ended
//
// The last three show the past (probes.Past: what package history read of
// the instances before this one in its state directory) as anonymous
// readers may see it: how many there were, how the last ended and when,
// never why (Past.Cause). probes_restarts is there from the first scrape,
// 0 for a first instance and for a service without a state directory,
// which the lifecycle does not tell apart: so changes(probes_restarts[1h])
// sees the first restart and probes_restarts > 3 compares from the start.
// probes_last_end is one series at 1 whose label ended is stopped, broken,
// closed or without a word (killed, or the machine went down), and only
// when an instance ran before: it tells of an end that is over, not a state
// that moves, so it has no 0 series for the ends that did not happen, as
// kube-state-metrics' kube_pod_container_status_last_terminated_reason has
// none. probes_last_end_timestamp_seconds dates that end, absent after an
// end without a word, whose time nobody wrote.
//
// With the Server option, also what the server saw of its connections and
// its shutdown (server.Stats):
//
//	probes_refused_connections_total                         counter: connections refused at MaxConns
//	probes_drain_duration_seconds                            gauge: the drain so far, then its length
//	probes_drain_late_requests_total                         counter: application requests during the drain
//	probes_drain_late_requests_after_probed_total            counter: of them, after the probers had noticed
//	probes_shutdown_cut_requests_total                       counter: requests the shutdown timeout cut
//
// A check's status is its own verdict after its thresholds (what its
// /readyz/{check} path would answer before scope and criticality are
// applied): a failing shared database shows as fail here while readiness,
// which only warns for it, shows warn in probes_gate_status.
package metrics

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/buckets"
	"github.com/probekit/probes/internal/readout"
	"github.com/probekit/probes/server"
)

// Option configures the metrics. An invalid value makes Register fail with
// an error that names the option.
type Option func(*config) error

type config struct {
	buckets []float64
	srv     *server.Server
}

// Buckets sets the upper bounds, in seconds, of the buckets of
// probes_check_duration_seconds: at least one, each finite and positive, in
// increasing order. The default runs from 100 µs to 10 s (100 µs, 250 µs,
// 500 µs, 1 ms, 2.5 ms, ... 5 s, 10 s): a healthy local dependency answers
// in well under a millisecond, and a check's timeout is 1 s by default.
func Buckets(upper ...float64) Option {
	return func(c *config) error {
		if err := buckets.Check(upper); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		c.buckets = slices.Clone(upper)
		return nil
	}
}

// Server adds what s has seen of its connections and its shutdown
// (server.Stats): refused connections, the drain's length, the requests
// that arrived late during it, and those the shutdown timeout cut. A scrape
// sees them while the listener that serves the metrics is open: the drain
// as it goes on, on the application listener (which serves until the drain
// ends); the cut requests only on a listener that outlives the shutdown,
// such as the probe listener, and in the server's log.
func Server(s *server.Server) Option {
	return func(c *config) error {
		if s == nil {
			return errors.New("metrics: Server(nil): need a *server.Server")
		}
		c.srv = s
		return nil
	}
}

// Server makes the metrics include what s has seen of its connections and
// its shutdown from the next scrape on, as the Server option does: for a
// service that mounts /metrics (on its probe listener, say) before it has
// built its server. It fails when s is nil or the metrics have a server
// already.
func (m *Metrics) Server(s *server.Server) error {
	if s == nil {
		return errors.New("metrics: Metrics.Server(nil): need a *server.Server")
	}
	if !m.srv.CompareAndSwap(nil, s) {
		return errors.New("metrics: Metrics.Server: the metrics have a server already")
	}
	return nil
}

// Metrics is the collector of one lifecycle's metrics. Register creates and
// registers it; it is a prometheus.Collector, so Unregister removes it.
type Metrics struct {
	lc  *probes.Lifecycle
	srv atomic.Pointer[server.Server]

	duration    *prometheus.HistogramVec
	executions  *prometheus.CounterVec
	transitions *prometheus.CounterVec
	cordons     *prometheus.CounterVec

	moved   [readout.LastPhase + 1][readout.LastPhase + 1]prometheus.Counter // nil for a move no lifecycle makes
	byCheck *readout.ByCheck[*check]
	cancel  func() // stops the watcher
}

// check holds the series of one check that executions update, so that
// counting an execution looks nothing up in a vector.
type check struct {
	duration   prometheus.Observer
	executions [probes.Pass + 1]prometheus.Counter // by Status
}

// facts are the series read at scrape time, by the fact they show: the
// one place a fact gets its name.
var facts = [readout.NumFacts]*prometheus.Desc{
	readout.Phase: prometheus.NewDesc("probes_phase",
		"1 for the lifecycle's current phase, 0 for the others.", []string{"phase"}, nil),
	readout.Cordoned: prometheus.NewDesc("probes_cordoned",
		"1 while the instance is cordoned (out of rotation by hand), else 0.", nil, nil),
	readout.GateStatus: prometheus.NewDesc("probes_gate_status",
		"1 for the gate's current status (pass, warn, fail), 0 for the others.", []string{"gate", "status"}, nil),
	readout.CheckStatus: prometheus.NewDesc("probes_check_status",
		"1 for the check's current status after its thresholds, 0 for the others.", []string{"gate", "check", "status"}, nil),
	readout.LastResult: prometheus.NewDesc("probes_check_last_result_timestamp_seconds",
		"When the check's last result came, in seconds since the epoch; 0 before the first.", []string{"gate", "check"}, nil),
	readout.Stale: prometheus.NewDesc("probes_check_stale",
		"1 while the check's last result is older than its StaleAfter bound: its schedule has stalled.", []string{"gate", "check"}, nil),
	readout.ConsecutiveFailures: prometheus.NewDesc("probes_check_consecutive_failures",
		"Failures of the check since its last pass or warning.", []string{"gate", "check"}, nil),
	readout.Flapping: prometheus.NewDesc("probes_check_flapping",
		"1 while the check's outcomes keep changing (flap detection with hysteresis), else 0.", []string{"gate", "check"}, nil),
	readout.WarmupProgress: prometheus.NewDesc("probes_warmup_progress_ratio",
		"Progress of the warm-up, from 0 to 1: the mean of its tasks' progress.", nil, nil),
	readout.WarmupDuration: prometheus.NewDesc("probes_warmup_duration_seconds",
		"How long the last warm-up has lasted so far, then its length once it ended; 0 before it began.", nil, nil),
	readout.TaskProgress: prometheus.NewDesc("probes_warmup_task_progress_ratio",
		"Progress of one warm-up task, from 0 to 1.", []string{"task"}, nil),
	readout.Restarts: prometheus.NewDesc("probes_restarts",
		"Instances that ran before this one with its state directory (history.StateDir); 0 for the first, and without a state directory.", nil, nil),
	readout.LastEnd: prometheus.NewDesc("probes_last_end",
		"1, labelled with how the instance before this one ended: stopped, broken, closed or without a word (killed, or its machine went down); absent when none ran before.", []string{"ended"}, nil),
	readout.LastEndTime: prometheus.NewDesc("probes_last_end_timestamp_seconds",
		"When the instance before this one ended, in seconds since the epoch; absent when none ran before or it ended without a word.", nil, nil),
}

// labels appends to buf the label values of r, in the order of its Desc's
// labels.
func labels(buf []string, r *readout.Reading) []string {
	switch {
	case r.Fact == readout.Phase:
		return append(buf, r.Phase.String())
	case r.Fact == readout.GateStatus:
		return append(buf, r.Gate.String(), r.Status.String())
	case r.Fact == readout.CheckStatus:
		return append(buf, r.Gate.String(), r.Name, r.Status.String())
	case r.Fact.OfCheck():
		return append(buf, r.Gate.String(), r.Name)
	case r.Fact == readout.TaskProgress || r.Fact == readout.LastEnd:
		return append(buf, r.Name)
	}
	return buf
}

// The server's series, read at scrape time.
var (
	descInfo = prometheus.NewDesc("probes_info",
		"1, labelled with the service's identity (probes.Identify): service, release, instance and node.", []string{"service", "release", "instance", "node"}, nil)
	descRefused = prometheus.NewDesc("probes_refused_connections_total",
		"Connections the application listener closed at once because it held MaxConns.", nil, nil)
	descDrain = prometheus.NewDesc("probes_drain_duration_seconds",
		"How long the shutdown's drain has lasted so far, then its length once over; 0 before it began.", nil, nil)
	descLate = prometheus.NewDesc("probes_drain_late_requests_total",
		"Application requests that arrived after the drain began: the balancers had not noticed yet.", nil, nil)
	descAfterProbed = prometheus.NewDesc("probes_drain_late_requests_after_probed_total",
		"Late requests that arrived after the probers had seen readiness fail: clients that do not follow the probes.", nil, nil)
	descCut = prometheus.NewDesc("probes_shutdown_cut_requests_total",
		"Requests the shutdown timeout cut off.", nil, nil)
)

// Register creates the metrics of lc and registers them on reg; pass
// prometheus.DefaultRegisterer to use the default registry. Gates and
// checks may be built before or after: every scrape reads all that lc has
// then (Lifecycle.Facts), and every execution of every gate's checks is
// counted, whenever the gate was built (Lifecycle.Watch). Register before
// the lifecycle starts: transitions before it are not counted. For two
// lifecycles in one registry, wrap reg with prometheus.WrapRegistererWith
// and a label that tells them apart.
//
// One scrape reads the lifecycle's facts once, and a transition is counted
// right after it becomes visible: a scrape in the middle of a move may see
// the new phase with the move not yet counted, or a gate's status from just
// before it.
func Register(reg prometheus.Registerer, lc *probes.Lifecycle, opts ...Option) (*Metrics, error) {
	if reg == nil {
		return nil, errors.New("metrics: Register(nil, ...): need a prometheus.Registerer (prometheus.DefaultRegisterer for the default registry)")
	}
	if lc == nil {
		return nil, errors.New("metrics: Register(reg, nil): need a *probes.Lifecycle")
	}
	cfg := config{buckets: buckets.Default()}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("metrics: Register: nil Option")
		}
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	m := &Metrics{
		lc: lc,
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "probes_check_duration_seconds",
			Help:    "How long executions of the check took; one that timed out counts its timeout.",
			Buckets: cfg.buckets,
		}, []string{"gate", "check"}),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probes_check_executions_total",
			Help: "Executions of the check by their own outcome (pass, warn, fail), before its thresholds.",
		}, []string{"gate", "check", "status"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probes_transitions_total",
			Help: "Moves of the lifecycle from one phase to another.",
		}, []string{"from", "to"}),
		cordons: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "probes_cordon_changes_total",
			Help: "Changes of the cordon by cause: cordoned, uncordoned, lifted (its time limit ended it).",
		}, []string{"cause"}),
	}
	// Every cause's and every move's counter exists from the start at 0,
	// so that increase() sees the first of each.
	for _, cause := range probes.CordonCauses() {
		m.cordons.WithLabelValues(string(cause))
	}
	for from, to := range readout.Moves() {
		m.moved[from][to] = m.transitions.WithLabelValues(from.String(), to.String())
	}
	m.byCheck = readout.NewByCheck(m.newCheck)
	if cfg.srv != nil {
		m.srv.Store(cfg.srv)
	}
	m.cancel = lc.Watch(m.hear)
	if err := reg.Register(m); err != nil {
		m.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return m, nil
}

// Close stops counting executions and transitions: their counters and the
// duration histogram keep their last values, while the state read at scrape
// time (phase, statuses, warm-up) stays live. Unregister the Metrics to
// remove them all.
func (m *Metrics) Close() { m.cancel() }

// hear counts what happened: a move, a cordon change or an execution. It
// runs on the goroutine that made the change or ran the check, after every
// execution: a map read, an observation and an increment.
func (m *Metrics) hear(c probes.Change) {
	switch c.Kind {
	case probes.Moved:
		if c.Move.From <= readout.LastPhase && c.Move.To <= readout.LastPhase && m.moved[c.Move.From][c.Move.To] != nil {
			m.moved[c.Move.From][c.Move.To].Inc()
		}
	case probes.CordonChanged:
		m.cordons.WithLabelValues(string(c.Cordon.Cause)).Inc()
	case probes.Executed:
		e := &c.Execution
		s := m.byCheck.Get(e.Gate, e.Check)
		s.duration.Observe(e.Duration.Seconds())
		if e.Status <= probes.Pass {
			s.executions[e.Status].Inc()
		}
	}
}

// newCheck makes the series of the named check.
func (m *Metrics) newCheck(gate probes.Kind, name string) *check {
	g := gate.String()
	c := &check{duration: m.duration.WithLabelValues(g, name)}
	for s := range readout.Statuses() {
		c.executions[s] = m.executions.WithLabelValues(g, name, s.String())
	}
	return c
}

// Describe sends the descriptions of every metric; it is part of
// prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range facts {
		ch <- d
	}
	// Described whether or not a server is known yet: Metrics.Server may
	// add one after registration.
	for _, d := range []*prometheus.Desc{descInfo, descRefused, descDrain, descLate, descAfterProbed, descCut} {
		ch <- d
	}
	m.duration.Describe(ch)
	m.executions.Describe(ch)
	m.transitions.Describe(ch)
	m.cordons.Describe(ch)
}

// Collect reads the lifecycle's facts once and sends every metric; it is
// part of prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	f := m.lc.Facts()
	buf := make([]string, 0, 3) // the most labels a fact has
	readout.Read(&f, m.lc.WarmupLength(), func(r *readout.Reading) {
		if r.Fact == readout.LastResult { // once per check
			m.byCheck.Get(r.Gate, r.Name) // its execution series exist from its first scrape
		}
		buf = labels(buf[:0], r)
		ch <- prometheus.MustNewConstMetric(facts[r.Fact], prometheus.GaugeValue, r.Value, buf...)
	})
	if id := f.Identity; id != (probes.Identity{}) {
		ch <- prometheus.MustNewConstMetric(descInfo, prometheus.GaugeValue, 1, id.Service, id.Release, id.Instance, id.Node)
	}
	if srv := m.srv.Load(); srv != nil {
		collectServer(ch, srv)
	}
	m.duration.Collect(ch)
	m.executions.Collect(ch)
	m.transitions.Collect(ch)
	m.cordons.Collect(ch)
}

func collectServer(ch chan<- prometheus.Metric, srv *server.Server) {
	st := srv.Stats()
	ch <- prometheus.MustNewConstMetric(descRefused, prometheus.CounterValue, float64(st.RefusedConns))
	ch <- prometheus.MustNewConstMetric(descDrain, prometheus.GaugeValue, readout.Drain(&st).Seconds())
	ch <- prometheus.MustNewConstMetric(descLate, prometheus.CounterValue, float64(st.LateRequests))
	ch <- prometheus.MustNewConstMetric(descAfterProbed, prometheus.CounterValue, float64(st.AfterProbed))
	ch <- prometheus.MustNewConstMetric(descCut, prometheus.CounterValue, float64(st.CutRequests))
}

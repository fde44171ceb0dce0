package otelprobes_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/exporttest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/otelprobes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// reader is a ManualReader on a MeterProvider of its own.
type reader struct {
	*sdkmetric.ManualReader
	mp *sdkmetric.MeterProvider
}

func newReader(t testing.TB) *reader {
	t.Helper()
	r := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(r))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	return &reader{r, mp}
}

// collect reads every metric once.
func (r *reader) collect(t testing.TB) []metricdata.Metrics {
	t.Helper()
	all, err := r.gather()
	if err != nil {
		t.Fatal(err)
	}
	return all
}

// gather is collect for a goroutine of the test's own, which must not
// call t.Fatal.
func (r *reader) gather() ([]metricdata.Metrics, error) {
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		return nil, err
	}
	var all []metricdata.Metrics
	for _, sm := range rm.ScopeMetrics {
		all = append(all, sm.Metrics...)
	}
	return all, nil
}

// find returns the metric called name.
func find(ms []metricdata.Metrics, name string) (metricdata.Metrics, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m, true
		}
	}
	return metricdata.Metrics{}, false
}

// value returns the value of the point of name whose attributes hold every
// key=value pair of kv (the sample count for a histogram), and whether
// there is one.
func value(ms []metricdata.Metrics, name string, kv ...string) (float64, bool) {
	m, ok := find(ms, name)
	if !ok {
		return 0, false
	}
	has := func(s attribute.Set) bool {
		for i := 0; i+1 < len(kv); i += 2 {
			v, ok := s.Value(attribute.Key(kv[i]))
			if !ok || v.AsString() != kv[i+1] {
				return false
			}
		}
		return true
	}
	switch d := m.Data.(type) {
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				return float64(p.Value), true
			}
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				return p.Value, true
			}
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				return float64(p.Value), true
			}
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			if has(p.Attributes) {
				return float64(p.Count), true
			}
		}
	}
	return 0, false
}

func (r *reader) is(t *testing.T, want float64, name string, kv ...string) {
	t.Helper()
	if got, ok := value(r.collect(t), name, kv...); !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, kv, got, ok, want)
	}
}

func (r *reader) eventually(t *testing.T, want float64, name string, kv ...string) {
	t.Helper()
	testutil.Eventually(t, fmt.Sprintf("%s%v == %v", name, kv, want), func() bool {
		got, ok := value(r.collect(t), name, kv...)
		return ok && got == want
	})
}

// service is a lifecycle with the three gates: a warm-up task whose progress
// the test sets, a liveness check, and a shared readiness check whose error
// the test sets.
type service struct {
	lc       *probes.Lifecycle
	ready    *readiness.Gate
	progress chan float64 // values for the task's Progress; close to finish
	dbErr    atomic.Pointer[error]
	dbCalls  atomic.Int64 // executions of the db check begun
}

func newService(t *testing.T) *service {
	t.Helper()
	s := &service{lc: probes.NewLifecycle(), progress: make(chan float64)}
	warm, err := startup.New(s.lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, warm.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		for f := range s.progress {
			p.Set(f)
		}
		return nil
	}))
	must(t, warm.Task("schema", func(context.Context, *startup.Progress) error { return nil }))
	live, err := liveness.New(s.lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, live.Add("self", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(5*time.Millisecond)))
	if s.ready, err = readiness.New(s.lc); err != nil {
		t.Fatal(err)
	}
	must(t, s.ready.Add("db", probes.CheckFunc(func(context.Context) error {
		s.dbCalls.Add(1)
		if e := s.dbErr.Load(); e != nil {
			return *e
		}
		return nil
	}), probes.Every(5*time.Millisecond)))
	return s
}

// run runs the lifecycle until the returned function is called or the test
// ends.
func (s *service) run(t *testing.T) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.lc.Run(ctx) }()
	stop = sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stop)
	return stop
}

func register(t testing.TB, mp metric.MeterProvider, lc *probes.Lifecycle, opts ...otelprobes.Option) *otelprobes.Metrics {
	t.Helper()
	m, err := otelprobes.Register(mp, lc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Error(err)
		}
	})
	return m
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A whole life through the instruments: Cold, warming with progress, Ready,
// a failing shared dependency, a drain.
func TestWholeLife(t *testing.T) {
	s := newService(t)
	r := newReader(t)
	register(t, r.mp, s.lc)
	r.is(t, 1, "probes.phase", "phase", "cold")
	r.is(t, 0, "probes.phase", "phase", "warming")
	for _, pair := range [][2]string{{"cold", "warming"}, {"warming", "ready"}, {"ready", "draining"}, {"draining", "stopped"}, {"stopped", "broken"}} {
		r.is(t, 0, "probes.transitions", "from", pair[0], "to", pair[1])
	}
	r.is(t, 0, "probes.check.executions", "gate", "readiness", "check", "db", "status", "fail")
	r.is(t, 0, "probes.check.last_result.timestamp", "gate", "readiness", "check", "db")
	r.is(t, 0, "probes.warmup.progress")

	s.run(t)
	s.progress <- 0.5
	r.eventually(t, 0.75, "probes.warmup.progress") // schema done, cache half
	r.is(t, 1, "probes.phase", "phase", "warming")
	r.is(t, 0.5, "probes.warmup.task.progress", "task", "cache")
	r.is(t, 1, "probes.warmup.task.progress", "task", "schema")
	r.is(t, 1, "probes.gate.status", "gate", "startup", "status", "fail")
	r.is(t, 1, "probes.gate.status", "gate", "liveness", "status", "pass")
	r.is(t, 1, "probes.gate.status", "gate", "readiness", "status", "fail")
	r.is(t, 1, "probes.transitions", "from", "cold", "to", "warming")
	if v, _ := value(r.collect(t), "probes.warmup.duration"); v <= 0 {
		t.Errorf("probes.warmup.duration while warming = %v, want > 0", v)
	}

	close(s.progress)
	r.eventually(t, 1, "probes.phase", "phase", "ready")
	r.is(t, 1, "probes.warmup.progress")
	r.is(t, 1, "probes.transitions", "from", "warming", "to", "ready")
	r.eventually(t, 1, "probes.gate.status", "gate", "readiness", "status", "pass")
	r.is(t, 1, "probes.check.status", "gate", "readiness", "check", "db", "status", "pass")
	r.is(t, 0, "probes.check.status", "gate", "readiness", "check", "db", "status", "fail")
	r.is(t, 0, "probes.check.stale", "gate", "readiness", "check", "db")
	ms := r.collect(t)
	if ts, _ := value(ms, "probes.check.last_result.timestamp", "gate", "readiness", "check", "db"); time.Since(time.Unix(0, int64(ts*1e9))).Abs() > time.Minute {
		t.Errorf("last result timestamp %v is not now", ts)
	}
	if n, _ := value(ms, "probes.check.executions", "gate", "liveness", "check", "self", "status", "pass"); n < 1 {
		t.Errorf("passing executions of the liveness check: %v", n)
	}
	if n, _ := value(ms, "probes.check.duration", "gate", "readiness", "check", "db"); n < 1 {
		t.Errorf("duration samples of the db check: %v", n)
	}

	// The shared database fails: the check fails, readiness only warns.
	fail := errors.New("connection refused")
	s.dbErr.Store(&fail)
	r.eventually(t, 1, "probes.check.status", "gate", "readiness", "check", "db", "status", "fail")
	r.is(t, 1, "probes.gate.status", "gate", "readiness", "status", "warn")
	ms = r.collect(t)
	if n, _ := value(ms, "probes.check.executions", "gate", "readiness", "check", "db", "status", "fail"); n < 1 {
		t.Errorf("failed executions counted: %v", n)
	}
	if n, _ := value(ms, "probes.check.consecutive_failures", "gate", "readiness", "check", "db"); n < 1 {
		t.Errorf("consecutive failures: %v", n)
	}

	must(t, s.lc.Drain("SIGTERM"))
	r.is(t, 1, "probes.phase", "phase", "draining")
	r.is(t, 0, "probes.phase", "phase", "ready")
	r.is(t, 1, "probes.gate.status", "gate", "readiness", "status", "fail")
	r.is(t, 1, "probes.gate.status", "gate", "startup", "status", "pass")
	r.is(t, 1, "probes.transitions", "from", "ready", "to", "draining")
}

// Every instrument has the name, kind and unit the package doc gives it.
func TestInstruments(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })))
	srv, err := server.New(&http.Server{}, lc)
	if err != nil {
		t.Fatal(err)
	}
	lc.SetPast(probes.Past{Restarts: 1, Ended: probes.EndedStopped, End: time.Now()})
	r := newReader(t)
	m := register(t, r.mp, lc, otelprobes.Server(srv))
	m.Observe(probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Pass, Duration: time.Millisecond})
	const gauge, counter, histogram = "gauge", "counter", "histogram"
	want := map[string][2]string{
		"probes.phase":                            {gauge, "{lifecycle}"},
		"probes.gate.status":                      {gauge, "{gate}"},
		"probes.check.status":                     {gauge, "{check}"},
		"probes.check.duration":                   {histogram, "s"},
		"probes.check.executions":                 {counter, "{execution}"},
		"probes.check.last_result.timestamp":      {gauge, "s"},
		"probes.check.stale":                      {gauge, "{check}"},
		"probes.check.consecutive_failures":       {gauge, "{failure}"},
		"probes.check.flapping":                   {gauge, "{check}"},
		"probes.transitions":                      {counter, "{transition}"},
		"probes.cordoned":                         {gauge, "{lifecycle}"},
		"probes.cordon.changes":                   {counter, "{change}"},
		"probes.warmup.progress":                  {gauge, "1"},
		"probes.warmup.duration":                  {gauge, "s"},
		"probes.restarts":                         {gauge, "{restart}"},
		"probes.last_end":                         {gauge, "{instance}"},
		"probes.last_end.timestamp":               {gauge, "s"},
		"probes.refused_connections":              {counter, "{connection}"},
		"probes.drain.duration":                   {gauge, "s"},
		"probes.drain.late_requests":              {counter, "{request}"},
		"probes.drain.late_requests.after_probed": {counter, "{request}"},
		"probes.shutdown.cut_requests":            {counter, "{request}"},
	}
	got := map[string][2]string{}
	for _, m := range r.collect(t) {
		kind := "other"
		switch d := m.Data.(type) {
		case metricdata.Gauge[int64], metricdata.Gauge[float64]:
			kind = gauge
		case metricdata.Sum[int64]:
			if d.IsMonotonic && d.Temporality == metricdata.CumulativeTemporality {
				kind = counter
			}
		case metricdata.Histogram[float64]:
			kind = histogram
		}
		got[m.Name] = [2]string{kind, m.Unit}
		if m.Description == "" {
			t.Errorf("%s has no description", m.Name)
		}
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %v, want %v", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s is not in the table", name)
		}
	}
}

// Executions, their durations and transitions are counted exactly while
// collections, executions and moves race; every collection sees one phase
// and one status per gate and check; and the Prometheus package registered
// on the same lifecycle counts every execution once too.
func TestCountsUnderRaces(t *testing.T) {
	s := newService(t)
	r := newReader(t)
	register(t, r.mp, s.lc)
	reg := prometheus.NewRegistry()
	pm, err := metrics.Register(reg, s.lc)
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	var executed atomic.Int64 // what a third listener hears
	cancelListen := s.ready.OnExecution(func(probes.Execution) { executed.Add(1) })
	defer cancelListen()
	close(s.progress)
	stopRun := s.run(t)
	testutil.Eventually(t, "ready", func() bool { return s.lc.Phase() == probes.Ready })

	var collectors sync.WaitGroup
	stop := make(chan struct{})
	stopCollectors := sync.OnceFunc(func() { close(stop); collectors.Wait() })
	t.Cleanup(stopCollectors)
	for range 3 {
		collectors.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				all, err := r.gather()
				if err != nil {
					t.Error(err)
					return
				}
				checkOneHot(t, all)
			}
		})
	}
	fail := errors.New("flaky")
	rewarms := 0
	for i := range 200 {
		if rand.IntN(2) == 0 {
			s.dbErr.Store(&fail)
		} else {
			s.dbErr.Store(nil)
		}
		if i%20 == 0 {
			must(t, s.lc.Rewarm("reload"))
			must(t, s.lc.MarkReady())
			rewarms++
		}
		// Pace the loop by the check itself: one more execution heard.
		n := executed.Load()
		testutil.Eventually(t, "another execution", func() bool { return executed.Load() > n })
	}
	stopCollectors()
	stopRun()

	ms := r.collect(t)
	var execs float64
	for _, st := range []string{"pass", "warn", "fail"} {
		n, _ := value(ms, "probes.check.executions", "gate", "readiness", "check", "db", "status", st)
		execs += n
	}
	if want := float64(executed.Load()); execs != want || want < 200 {
		t.Errorf("executions counted %v, another listener heard %v", execs, want)
	}
	// Every execution the check saw is counted, but the one the stop may
	// have cut before its outcome was recorded.
	if calls := float64(s.dbCalls.Load()); execs != calls && execs != calls-1 {
		t.Errorf("executions counted %v, the check ran %v times", execs, calls)
	}
	if n, _ := value(ms, "probes.check.duration", "gate", "readiness", "check", "db"); n != execs {
		t.Errorf("duration samples %v, executions %v", n, execs)
	}
	r.is(t, float64(rewarms), "probes.transitions", "from", "ready", "to", "warming")
	r.is(t, float64(rewarms+1), "probes.transitions", "from", "warming", "to", "ready")

	// The Prometheus package, on the same lifecycle, counted the same.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var promExecs float64
	for _, mf := range mfs {
		if mf.GetName() != "probes_check_executions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "check" && l.GetValue() == "db" {
					promExecs += m.GetCounter().GetValue()
				}
			}
		}
	}
	if promExecs != execs {
		t.Errorf("package metrics counted %v executions, otelprobes %v", promExecs, execs)
	}
}

// checkOneHot fails the test unless exactly one point of each one-hot group
// is 1 and the others are 0.
func checkOneHot(t *testing.T, ms []metricdata.Metrics) {
	groups := map[string][]attribute.Key{
		"probes.phase":        nil,
		"probes.gate.status":  {"gate"},
		"probes.check.status": {"gate", "check"},
	}
	for name, group := range groups {
		m, ok := find(ms, name)
		if !ok {
			t.Errorf("no %s", name)
			continue
		}
		ones := map[string]int64{}
		for _, p := range m.Data.(metricdata.Gauge[int64]).DataPoints {
			var key string
			for _, k := range group {
				v, _ := p.Attributes.Value(k)
				key += v.AsString() + "/"
			}
			if p.Value != 0 && p.Value != 1 {
				t.Errorf("%s %v = %v", name, p.Attributes.ToSlice(), p.Value)
			}
			ones[key] += p.Value
		}
		for key, n := range ones {
			if n != 1 {
				t.Errorf("%s{%s}: %d points at 1, want exactly 1", name, key, n)
			}
		}
	}
}

// After Close nothing is counted any more, and the state read at
// collection time is gone; the counters keep their values.
func TestClose(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Millisecond)))
	r := newReader(t)
	m, err := otelprobes.Register(r.mp, lc)
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the metrics, this listener runs after theirs for
	// every execution.
	var heard atomic.Int64
	defer ready.OnExecution(func(probes.Execution) { heard.Add(1) })()
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "executions", func() bool { return heard.Load() >= 3 })
	r.is(t, 1, "probes.phase", "phase", "ready")

	must(t, m.Close())
	must(t, m.Close()) // twice is harmless
	// The execution under way when Close ran may still be recorded; the
	// next one heard is after it.
	h0 := heard.Load()
	testutil.Eventually(t, "two more executions", func() bool { return heard.Load() >= h0+2 })
	before, _ := value(r.collect(t), "probes.check.executions", "check", "db", "status", "pass")
	if before < 3 || before > float64(h0+1) {
		t.Errorf("executions counted by Close: %v, want 3 to %v", before, h0+1)
	}
	h1 := heard.Load()
	testutil.Eventually(t, "five more executions", func() bool { return heard.Load() >= h1+5 })
	must(t, lc.Drain("SIGTERM"))
	ms := r.collect(t)
	if after, _ := value(ms, "probes.check.executions", "check", "db", "status", "pass"); after != before {
		t.Errorf("executions after Close: got %v, want %v as at Close", after, before)
	}
	if n, _ := value(ms, "probes.check.duration", "check", "db"); n != before {
		t.Errorf("duration samples after Close: got %v, want %v", n, before)
	}
	if v, ok := value(ms, "probes.transitions", "from", "ready", "to", "draining"); v != 0 || !ok {
		t.Errorf("drain after Close counted %v (present %v), want 0", v, ok)
	}
	for _, name := range []string{"probes.phase", "probes.gate.status", "probes.check.status", "probes.warmup.progress"} {
		if _, ok := find(ms, name); ok {
			t.Errorf("%s still observed after Close", name)
		}
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	lc := probes.NewLifecycle()
	r := newReader(t)
	tests := []struct {
		name string
		mp   metric.MeterProvider
		lc   *probes.Lifecycle
		opts []otelprobes.Option
		want string
	}{
		{"nil provider", nil, lc, nil, "Register(nil, ...): need a metric.MeterProvider"},
		{"nil lifecycle", r.mp, nil, nil, "Register(mp, nil): need a *probes.Lifecycle"},
		{"nil option", r.mp, lc, []otelprobes.Option{nil}, "nil Option"},
		{"no buckets", r.mp, lc, []otelprobes.Option{otelprobes.Buckets()}, "Buckets(): need at least one"},
		{"NaN bucket", r.mp, lc, []otelprobes.Option{otelprobes.Buckets(0.1, math.NaN())}, "Buckets([0.1 NaN]): bound NaN"},
		{"infinite bucket", r.mp, lc, []otelprobes.Option{otelprobes.Buckets(math.Inf(1))}, "Buckets([+Inf]): bound +Inf"},
		{"negative bucket", r.mp, lc, []otelprobes.Option{otelprobes.Buckets(-1)}, "Buckets([-1]): bound -1"},
		{"decreasing buckets", r.mp, lc, []otelprobes.Option{otelprobes.Buckets(1, 0.5)}, "Buckets([1 0.5]): bounds must increase"},
		{"nil server", r.mp, lc, []otelprobes.Option{otelprobes.Server(nil)}, "Server(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := otelprobes.Register(tt.mp, tt.lc, tt.opts...)
			if err == nil || !strings.HasPrefix(err.Error(), "otelprobes: ") || !strings.Contains(err.Error(), tt.want) || m != nil {
				t.Errorf("got %v, %v; want an error containing %q", m, err, tt.want)
			}
		})
	}
	if ms := r.collect(t); len(ms) != 0 {
		t.Errorf("rejected registrations left %d metrics", len(ms))
	}
	must(t, lc.Start())
	if ms := r.collect(t); len(ms) != 0 {
		t.Errorf("rejected registrations counted a move: %d metrics", len(ms))
	}
}

// Any MeterProvider will do, the API's no-op one included.
func TestNoopProvider(t *testing.T) {
	lc := probes.NewLifecycle()
	m := register(t, noop.NewMeterProvider(), lc)
	m.Observe(probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Pass, Duration: time.Millisecond})
	testutil.Ready(t, lc)
}

// Every move a lifecycle can make has its counter from the start, at 0, so
// that a rate sees the first one; and it counts.
func TestEveryTransitionCounted(t *testing.T) {
	reach := map[probes.Phase][]func(*probes.Lifecycle) error{
		probes.Cold:     nil,
		probes.Warming:  {(*probes.Lifecycle).Start},
		probes.Ready:    {(*probes.Lifecycle).Start, (*probes.Lifecycle).MarkReady},
		probes.Draining: {drain},
		probes.Stopped:  {drain, (*probes.Lifecycle).Stop},
		probes.Broken:   {broken},
	}
	moves := []func(*probes.Lifecycle) error{
		(*probes.Lifecycle).Start, (*probes.Lifecycle).MarkReady, rewarm, drain, (*probes.Lifecycle).Stop, broken,
	}
	legal := 0
	for from, path := range reach {
		for _, move := range moves {
			lc := probes.NewLifecycle()
			for _, step := range path {
				must(t, step(lc))
			}
			r := newReader(t)
			register(t, r.mp, lc)
			if err := move(lc); err != nil {
				continue // not a move from this phase
			}
			legal++
			to := lc.Phase()
			ms := r.collect(t)
			if v, ok := value(ms, "probes.transitions", "from", from.String(), "to", to.String()); v != 1 || !ok {
				t.Errorf("%s to %s counted %v", from, to, v)
			}
			m, _ := find(ms, "probes.transitions")
			if n := len(m.Data.(metricdata.Sum[int64]).DataPoints); n != 12 {
				t.Errorf("after %s to %s: %d transition points, want the 12 legal moves", from, to, n)
			}
		}
	}
	if legal != 12 {
		t.Errorf("%d legal moves, want 12", legal)
	}
}

func drain(lc *probes.Lifecycle) error  { return lc.Drain("SIGTERM") }
func rewarm(lc *probes.Lifecycle) error { return lc.Rewarm("reload") }
func broken(lc *probes.Lifecycle) error { return lc.MarkBroken(errors.New("wedged")) }

// The warm-up's length grows while it runs, stays once it has ended, and
// starts again with a Rewarm; read on the lifecycle's clock.
func TestWarmupDuration(t *testing.T) {
	clock := testutil.NewClock(time.Unix(1_700_000_000, 0))
	lc := probes.NewLifecycle(probes.WithClock(clock))
	r := newReader(t)
	register(t, r.mp, lc)
	steps := []struct {
		move    func(*probes.Lifecycle) error
		advance time.Duration
		want    float64
	}{
		{nil, time.Second, 0}, // Cold: no warm-up yet
		{(*probes.Lifecycle).Start, 5 * time.Second, 5},
		{nil, 2 * time.Second, 7},
		{(*probes.Lifecycle).MarkReady, time.Minute, 7},
		{rewarm, 3 * time.Second, 3},
		{drain, time.Minute, 3}, // cut short by the drain: counted until then
	}
	for i, st := range steps {
		if st.move != nil {
			must(t, st.move(lc))
		}
		clock.Add(st.advance)
		if v, _ := value(r.collect(t), "probes.warmup.duration"); v != st.want {
			t.Errorf("step %d (%s): %v s, want %v", i, lc.Phase(), v, st.want)
		}
	}
}

// The default boundaries are package metrics' and Buckets sets others.
func TestBuckets(t *testing.T) {
	tests := []struct {
		name       string
		opts       []otelprobes.Option
		wantBounds []float64
		wantCounts []uint64
	}{
		{"default", nil,
			[]float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
			[]uint64{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0}},
		{"Buckets(0.5, 2)", []otelprobes.Option{otelprobes.Buckets(0.5, 2)}, []float64{0.5, 2}, []uint64{0, 1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReader(t)
			m := register(t, r.mp, probes.NewLifecycle(), tt.opts...)
			m.Observe(probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Fail, Duration: time.Second})
			h, ok := find(r.collect(t), "probes.check.duration")
			if !ok {
				t.Fatal("no duration histogram")
			}
			p := h.Data.(metricdata.Histogram[float64]).DataPoints[0]
			if !slices.Equal(p.Bounds, tt.wantBounds) || !slices.Equal(p.BucketCounts, tt.wantCounts) {
				t.Errorf("got bounds %v counts %v, want %v %v", p.Bounds, p.BucketCounts, tt.wantBounds, tt.wantCounts)
			}
		})
	}
}

// With the Server option, a collection during the drain sees it go on and
// the late requests arrive; after it, the drain's length.
func TestServerStats(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/api", func(w http.ResponseWriter, r *http.Request) {})
	ln := testutil.Listen(t)
	srv, err := server.New(&http.Server{Handler: mux}, lc, server.Listener(ln), server.DrainDelay(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t)
	register(t, r.mp, lc, otelprobes.Server(srv))
	for _, name := range []string{"probes.drain.duration", "probes.drain.late_requests", "probes.drain.late_requests.after_probed", "probes.shutdown.cut_requests", "probes.refused_connections"} {
		r.is(t, 0, name)
	}
	testutil.Ready(t, lc)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() { done <- srv.Run(ctx); close(exited) }()
	t.Cleanup(func() { cancel(); <-exited }) // owned even when the test stops early
	base := "http://" + ln.Addr().String()
	testutil.Eventually(t, "serving", func() bool { return status(base+"/readyz") == 200 })
	cancel()
	testutil.Eventually(t, "draining", func() bool { return lc.Phase() == probes.Draining })
	if code := status(base + "/api"); code != 200 {
		t.Fatalf("late request: %d", code)
	}
	testutil.Eventually(t, "the drain shows as it goes on", func() bool {
		v, _ := value(r.collect(t), "probes.drain.duration")
		return v > 0
	})
	r.is(t, 1, "probes.drain.late_requests")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := value(r.collect(t), "probes.drain.duration"); v != srv.Stats().Drain.Seconds() || v < 0.3 {
		t.Errorf("drain duration %v, want the drain's length %v (at least the delay)", v, srv.Stats().Drain)
	}
}

func status(url string) int {
	res, err := http.Get(url)
	if err != nil {
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}

// Metrics registered before the server exists get its figures once it is
// handed over.
func TestServerAddedLater(t *testing.T) {
	lc := probes.NewLifecycle()
	r := newReader(t)
	m := register(t, r.mp, lc)
	if _, ok := find(r.collect(t), "probes.drain.duration"); ok {
		t.Error("server figures before any server")
	}
	srv, err := server.New(&http.Server{}, lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Server(srv))
	r.is(t, 0, "probes.drain.duration")
	if err := m.Server(srv); err == nil {
		t.Error("a second Metrics.Server was accepted")
	}
	if err := m.Server(nil); err == nil || !strings.Contains(err.Error(), "Metrics.Server(nil)") {
		t.Errorf("Metrics.Server(nil): %v", err)
	}
}

// A check added after Register is counted from its first execution, and
// its counters exist from the first collection that sees it.
func TestCheckAddedLater(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	r := newReader(t)
	m := register(t, r.mp, lc)
	must(t, ready.Add("late", probes.CheckFunc(func(context.Context) error { return nil })))
	r.is(t, 0, "probes.check.executions", "gate", "readiness", "check", "late", "status", "pass")
	m.Observe(probes.Execution{Gate: probes.Readiness, Check: "late", Status: probes.Warn, Duration: time.Millisecond})
	r.is(t, 1, "probes.check.executions", "gate", "readiness", "check", "late", "status", "warn")
}

// Through the OpenTelemetry Prometheus exporter, every instrument comes out
// under the name, type and labels of its twin in package metrics.
func TestExporterNamesArePackageMetrics(t *testing.T) {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, warm.Task("cache", func(context.Context, *startup.Progress) error { return nil }))
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(5*time.Millisecond)))
	srv, err := server.New(&http.Server{}, lc)
	if err != nil {
		t.Fatal(err)
	}
	lc.SetPast(probes.Past{Restarts: 2, Ended: probes.EndedBroken, End: time.Now(), Cause: "wedged"})
	promReg := prometheus.NewRegistry()
	pm, err := metrics.Register(promReg, lc, metrics.Server(srv))
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	otelReg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(otelReg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	register(t, mp, lc, otelprobes.Server(srv))
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "ready with an execution", func() bool {
		r, _ := ready.Report().Check("db")
		return lc.Phase() == probes.Ready && r.Executions > 0 && !r.Time.IsZero()
	})

	families := func(g prometheus.Gatherer) map[string]string {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, mf := range mfs {
			if !strings.HasPrefix(mf.GetName(), "probes_") {
				continue
			}
			labels := map[string]bool{}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = true
				}
			}
			out[mf.GetName()] = fmt.Sprintf("%s %v", mf.GetType(), slices.Sorted(maps.Keys(labels)))
		}
		return out
	}
	got, want := families(otelReg), families(promReg)
	if len(want) != 23 {
		t.Errorf("package metrics has %d families, want 23", len(want))
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: got %q, want %q", name, got[name], w)
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: the exporter serves it, package metrics does not", name)
		}
	}
}

// Registered before any gate, the instruments show every gate built after
// them, read through the OpenTelemetry Prometheus exporter: each gate's
// status, each check's state and every execution of it, and the warm-up's
// tasks.
func TestGatesBuiltAfterRegister(t *testing.T) {
	lc := probes.NewLifecycle()
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
	if err != nil {
		t.Fatal(err)
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	register(t, mp, lc)
	exporttest.GatesBuiltAfter(t, lc, reg)
}

// The past through the OpenTelemetry Prometheus exporter: the series of
// package metrics, and never the cause.
func TestPast(t *testing.T) {
	exporttest.Past(t, func(t *testing.T, lc *probes.Lifecycle) prometheus.Gatherer {
		reg := prometheus.NewRegistry()
		exporter, err := otelprom.New(otelprom.WithRegisterer(reg), otelprom.WithoutScopeInfo())
		if err != nil {
			t.Fatal(err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
		t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
		register(t, mp, lc)
		return reg
	})
}

// The past's points as an OTLP exporter gets them: probes.restarts with no
// attribute, probes.last_end with ended alone, the timestamp in seconds;
// the cause in no attribute of any point.
func TestPastPoints(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })))
	r := newReader(t)
	register(t, r.mp, lc)
	r.is(t, 0, "probes.restarts")
	ms := r.collect(t)
	for _, name := range []string{"probes.last_end", "probes.last_end.timestamp"} {
		if m, ok := find(ms, name); ok {
			t.Errorf("%s without a past: %+v", name, m.Data)
		}
	}

	lc.SetPast(probes.Past{Restarts: 4, Ended: probes.EndedBroken, End: time.Unix(1_700_000_000, 0), Cause: exporttest.Secret})
	ms = r.collect(t)
	want := map[string]string{
		"probes.restarts":           "[] 4",
		"probes.last_end":           "[ended=broken] 1",
		"probes.last_end.timestamp": "[] 1.7e+09",
	}
	for name, w := range want {
		if got := points(ms, name); len(got) != 1 || got[0] != w {
			t.Errorf("%s: got %v, want [%s]", name, got, w)
		}
	}
	for name, ints := range map[string]bool{"probes.restarts": true, "probes.last_end": true, "probes.last_end.timestamp": false} {
		m, _ := find(ms, name)
		if _, ok := m.Data.(metricdata.Gauge[int64]); ok != ints {
			t.Errorf("%s: %T, want an int64 gauge %v", name, m.Data, ints)
		}
	}
	for _, m := range ms {
		for _, p := range points(ms, m.Name) {
			if strings.Contains(p, exporttest.Secret) {
				t.Errorf("%s has the cause: %s", m.Name, p)
			}
		}
	}

	lc.SetPast(probes.Past{Restarts: 5, Ended: probes.EndedSilent})
	ms = r.collect(t)
	if got := points(ms, "probes.last_end"); len(got) != 1 || got[0] != "[ended=without a word] 1" {
		t.Errorf("probes.last_end after a kill: %v", got)
	}
	if _, ok := find(ms, "probes.last_end.timestamp"); ok {
		t.Error("probes.last_end.timestamp after a kill, whose end nobody wrote")
	}
}

// points returns the points of the metric name as "[key=value ...] value"
// (the sample count of a histogram).
func points(ms []metricdata.Metrics, name string) []string {
	m, ok := find(ms, name)
	if !ok {
		return nil
	}
	attrs := func(s attribute.Set) string {
		var kv []string
		for _, a := range s.ToSlice() {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		return "[" + strings.Join(kv, " ") + "]"
	}
	var out []string
	switch d := m.Data.(type) {
	case metricdata.Gauge[int64]:
		for _, p := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s %v", attrs(p.Attributes), p.Value))
		}
	case metricdata.Gauge[float64]:
		for _, p := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s %v", attrs(p.Attributes), p.Value))
		}
	case metricdata.Sum[int64]:
		for _, p := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s %v", attrs(p.Attributes), p.Value))
		}
	case metricdata.Histogram[float64]:
		for _, p := range d.DataPoints {
			out = append(out, fmt.Sprintf("%s %v", attrs(p.Attributes), p.Count))
		}
	}
	return out
}

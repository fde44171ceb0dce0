package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/exporttest"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/metrics"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// service is a lifecycle with the three gates: a warm-up task whose progress
// the test sets, a liveness check, and a readiness check whose error the
// test sets.
type service struct {
	lc       *probes.Lifecycle
	ready    *readiness.Gate
	reg      *prometheus.Registry
	progress chan float64 // values for the task's Progress; close to finish
	dbErr    atomic.Pointer[error]
	dbCalls  atomic.Int64 // executions of the db check begun
}

func newService(t *testing.T, opts ...metrics.Option) *service {
	t.Helper()
	s := &service{lc: probes.NewLifecycle(), reg: prometheus.NewRegistry(), progress: make(chan float64)}
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
	if _, err := metrics.Register(s.reg, s.lc, opts...); err != nil {
		t.Fatal(err)
	}
	return s
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// value returns the value of the series name{labels}, and whether it exists.
var value = exporttest.Value

func (s *service) is(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	got, ok := value(t, s.reg, name, labels...)
	if !ok || got != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
	}
}

func (s *service) eventually(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	testutil.Eventually(t, name+strings.Join(labels, ","), func() bool {
		got, ok := value(t, s.reg, name, labels...)
		return ok && got == want
	})
}

// A whole life through the metrics: Cold, warming with progress, Ready, a
// dependency failure, a drain.
func TestWholeLife(t *testing.T) {
	s := newService(t)
	s.is(t, 1, "probes_phase", "phase", "cold")
	s.is(t, 0, "probes_phase", "phase", "warming")
	for _, pair := range [][2]string{{"cold", "warming"}, {"warming", "ready"}, {"ready", "draining"}, {"draining", "stopped"}, {"stopped", "broken"}} {
		s.is(t, 0, "probes_transitions_total", "from", pair[0], "to", pair[1])
	}
	s.is(t, 0, "probes_check_executions_total", "gate", "readiness", "check", "db", "status", "fail")
	s.is(t, 0, "probes_check_last_result_timestamp_seconds", "gate", "readiness", "check", "db")
	s.is(t, 0, "probes_warmup_progress_ratio")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.lc.Run(ctx) }()
	defer func() { cancel(); <-done }()

	s.progress <- 0.5
	s.eventually(t, 0.75, "probes_warmup_progress_ratio") // schema done, cache half
	s.is(t, 1, "probes_phase", "phase", "warming")
	s.is(t, 0.5, "probes_warmup_task_progress_ratio", "task", "cache")
	s.is(t, 1, "probes_gate_status", "gate", "startup", "status", "fail")
	s.is(t, 1, "probes_gate_status", "gate", "liveness", "status", "pass")
	s.is(t, 1, "probes_gate_status", "gate", "readiness", "status", "fail")
	s.eventually(t, 1, "probes_transitions_total", "from", "cold", "to", "warming")

	close(s.progress)
	s.eventually(t, 1, "probes_phase", "phase", "ready")
	s.is(t, 1, "probes_warmup_progress_ratio")
	s.eventually(t, 1, "probes_transitions_total", "from", "warming", "to", "ready")
	s.eventually(t, 1, "probes_gate_status", "gate", "readiness", "status", "pass")
	s.is(t, 1, "probes_check_status", "gate", "readiness", "check", "db", "status", "pass")
	if ts, _ := value(t, s.reg, "probes_check_last_result_timestamp_seconds", "gate", "readiness", "check", "db"); time.Since(time.Unix(0, int64(ts*1e9))).Abs() > time.Minute {
		t.Errorf("last result timestamp %v is not now", ts)
	}

	// The shared database fails: the check fails, readiness only warns.
	fail := errors.New("connection refused")
	s.dbErr.Store(&fail)
	s.eventually(t, 1, "probes_check_status", "gate", "readiness", "check", "db", "status", "fail")
	s.is(t, 1, "probes_gate_status", "gate", "readiness", "status", "warn")
	if n, _ := value(t, s.reg, "probes_check_executions_total", "gate", "readiness", "check", "db", "status", "fail"); n < 1 {
		t.Errorf("failed executions counted: %v", n)
	}
	if n, _ := value(t, s.reg, "probes_check_consecutive_failures", "gate", "readiness", "check", "db"); n < 1 {
		t.Errorf("consecutive failures: %v", n)
	}

	must(t, s.lc.Drain("SIGTERM"))
	s.is(t, 1, "probes_phase", "phase", "draining")
	s.is(t, 1, "probes_gate_status", "gate", "readiness", "status", "fail")
	s.is(t, 1, "probes_gate_status", "gate", "startup", "status", "pass")
	s.eventually(t, 1, "probes_transitions_total", "from", "ready", "to", "draining")

	if problems, err := promtest.GatherAndLint(s.reg); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

// Executions, their durations and transitions are counted exactly while
// scrapes, executions and moves race; every scrape sees one phase and one
// status per gate and check.
func TestCountsUnderRaces(t *testing.T) {
	s := newService(t)
	var executed atomic.Int64 // what a second listener hears
	cancelListen := s.ready.OnExecution(func(probes.Execution) { executed.Add(1) })
	defer cancelListen()
	close(s.progress)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.lc.Run(ctx) }()
	stopRun := sync.OnceFunc(func() { cancel(); <-done })
	t.Cleanup(stopRun) // owned even when the test stops early
	testutil.Eventually(t, "ready", func() bool { return s.lc.Phase() == probes.Ready })

	var scrapers sync.WaitGroup
	stop := make(chan struct{})
	stopScrapers := sync.OnceFunc(func() { close(stop); scrapers.Wait() })
	t.Cleanup(stopScrapers)
	for range 3 {
		scrapers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				checkOneHot(t, s.reg)
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
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond) // let executions interleave
	}
	stopScrapers()
	stopRun()

	var execs float64
	for _, st := range []string{"pass", "warn", "fail"} {
		n, _ := value(t, s.reg, "probes_check_executions_total", "gate", "readiness", "check", "db", "status", st)
		execs += n
	}
	if want := float64(executed.Load()); execs != want || want == 0 {
		t.Errorf("executions counted %v, a second listener heard %v", execs, want)
	}
	// Every execution the check saw is counted, but the one the stop may
	// have cut before its outcome was recorded.
	if calls := float64(s.dbCalls.Load()); execs != calls && execs != calls-1 {
		t.Errorf("executions counted %v, the check ran %v times", execs, calls)
	}
	if n, _ := value(t, s.reg, "probes_check_duration_seconds", "gate", "readiness", "check", "db"); n != execs {
		t.Errorf("duration samples %v, executions %v", n, execs)
	}
	s.is(t, float64(rewarms), "probes_transitions_total", "from", "ready", "to", "warming")
	s.is(t, float64(rewarms+1), "probes_transitions_total", "from", "warming", "to", "ready")
}

// checkOneHot fails the test unless exactly one series of each one-hot
// group is 1 and the others are 0.
func checkOneHot(t *testing.T, g prometheus.Gatherer) {
	mfs, err := g.Gather()
	if err != nil {
		t.Error(err)
		return
	}
	for _, mf := range mfs {
		var group []string
		switch mf.GetName() {
		case "probes_phase":
		case "probes_gate_status":
			group = []string{"gate"}
		case "probes_check_status":
			group = []string{"gate", "check"}
		default:
			continue
		}
		ones := map[string]float64{}
		for _, m := range mf.GetMetric() {
			var key string
			for _, l := range m.GetLabel() {
				for _, name := range group {
					if l.GetName() == name {
						key += l.GetValue() + "/"
					}
				}
			}
			v := m.GetGauge().GetValue()
			if v != 0 && v != 1 {
				t.Errorf("%s %v = %v", mf.GetName(), m.GetLabel(), v)
			}
			ones[key] += v
		}
		for key, n := range ones {
			if n != 1 {
				t.Errorf("%s{%s}: %v series at 1, want exactly 1", mf.GetName(), key, n)
			}
		}
	}
}

func TestRegisterRejectsBadInput(t *testing.T) {
	lc := probes.NewLifecycle()
	reg := prometheus.NewRegistry()
	tests := []struct {
		name string
		reg  prometheus.Registerer
		lc   *probes.Lifecycle
		opts []metrics.Option
		want string
	}{
		{"nil registerer", nil, lc, nil, "need a prometheus.Registerer"},
		{"nil lifecycle", reg, nil, nil, "need a *probes.Lifecycle"},
		{"nil option", reg, lc, []metrics.Option{nil}, "nil Option"},
		{"no buckets", reg, lc, []metrics.Option{metrics.Buckets()}, "Buckets(): need at least one"},
		{"NaN bucket", reg, lc, []metrics.Option{metrics.Buckets(0.1, math.NaN())}, "Buckets([0.1 NaN]): bound NaN"},
		{"negative bucket", reg, lc, []metrics.Option{metrics.Buckets(-1)}, "Buckets([-1]): bound -1"},
		{"decreasing buckets", reg, lc, []metrics.Option{metrics.Buckets(1, 0.5)}, "Buckets([1 0.5]): bounds must increase"},
		{"nil server", reg, lc, []metrics.Option{metrics.Server(nil)}, "Server(nil)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := metrics.Register(tt.reg, tt.lc, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) || m != nil {
				t.Errorf("got %v, %v; want an error containing %q", m, err, tt.want)
			}
		})
	}
	if mfs, _ := reg.Gather(); len(mfs) != 0 {
		t.Errorf("rejected registrations left %d families", len(mfs))
	}
	// Twice on one registry: the second fails and counts nothing.
	if _, err := metrics.Register(reg, lc); err != nil {
		t.Fatal(err)
	}
	if _, err := metrics.Register(reg, lc); err == nil || !strings.Contains(err.Error(), "metrics: ") {
		t.Errorf("second registration: %v", err)
	}
	must(t, lc.Start())
	if n, _ := value(t, reg, "probes_transitions_total", "from", "cold", "to", "warming"); n != 1 {
		t.Errorf("cold to warming counted %v times, want 1 (the failed registration must not count)", n)
	}
}

// promtool, the Prometheus project's own checker, finds nothing to say
// about the exposition.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus); CI must install it")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	s := newService(t)
	s.lc.SetPast(probes.Past{Restarts: 3, Ended: probes.EndedBroken, End: time.Now().Add(-time.Minute), Cause: "wedged"}) // the past's series too
	close(s.progress)
	testutil.Background(t, s.lc.Run)
	s.eventually(t, 1, "probes_phase", "phase", "ready")
	s.eventually(t, 1, "probes_check_status", "gate", "readiness", "check", "db", "status", "pass")
	s.is(t, 1, "probes_last_end", "ended", "broken")
	var text strings.Builder
	mfs, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if err := expfmtWrite(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text.String())
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

func expfmtWrite(w *strings.Builder, mf *dto.MetricFamily) error {
	_, err := expfmt.MetricFamilyToText(w, mf)
	return err
}

// With the Server option, a scrape during the drain sees it go on and the
// late requests arrive; after it, the drain's length.
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
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, lc, metrics.Server(srv)); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"probes_drain_duration_seconds", "probes_drain_late_requests_total", "probes_shutdown_cut_requests_total", "probes_refused_connections_total"} {
		if v, ok := value(t, reg, name); !ok || v != 0 {
			t.Errorf("before the drain %s = %v (present %v), want 0", name, v, ok)
		}
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
		v, _ := value(t, reg, "probes_drain_duration_seconds")
		return v > 0
	})
	if v, _ := value(t, reg, "probes_drain_late_requests_total"); v != 1 {
		t.Errorf("late requests %v, want 1", v)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if v, _ := value(t, reg, "probes_drain_duration_seconds"); v != srv.Stats().Drain.Seconds() || v < 0.3 {
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

// Every move a lifecycle can make has its counter from the start, at 0, so
// that increase() sees the first one; and it counts.
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
			reg := prometheus.NewRegistry()
			if _, err := metrics.Register(reg, lc); err != nil {
				t.Fatal(err)
			}
			if err := move(lc); err != nil {
				continue // not a move from this phase
			}
			legal++
			to := lc.Phase()
			if v, ok := value(t, reg, "probes_transitions_total", "from", from.String(), "to", to.String()); v != 1 || !ok {
				t.Errorf("%s to %s counted %v", from, to, v)
			}
			if n := promtest.CollectAndCount(reg, "probes_transitions_total"); n != 12 {
				t.Errorf("after %s to %s: %d transition series, want the 12 legal moves", from, to, n)
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
	reg := prometheus.NewRegistry()
	if _, err := metrics.Register(reg, lc); err != nil {
		t.Fatal(err)
	}
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
		if v, _ := value(t, reg, "probes_warmup_duration_seconds"); v != st.want {
			t.Errorf("step %d (%s): %v s, want %v", i, lc.Phase(), v, st.want)
		}
	}
}

// Buckets sets the histogram's bounds.
func TestBuckets(t *testing.T) {
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil })))
	reg := prometheus.NewRegistry()
	m, err := metrics.Register(reg, lc, metrics.Buckets(0.5, 2))
	if err != nil {
		t.Fatal(err)
	}
	m.Observe(probes.Execution{Gate: probes.Readiness, Check: "db", Status: probes.Fail, Duration: time.Second})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "probes_check_duration_seconds" {
			continue
		}
		h := mf.GetMetric()[0].GetHistogram()
		var got []string
		for _, b := range h.GetBucket() {
			got = append(got, fmt.Sprintf("%v:%d", b.GetUpperBound(), b.GetCumulativeCount()))
		}
		if strings.Join(got, " ") != "0.5:0 2:1" {
			t.Errorf("buckets %v, want 0.5:0 2:1", got)
		}
		return
	}
	t.Error("no duration histogram")
}

// Metrics registered before the server exists get its figures once it is
// handed over: /metrics can be mounted before server.New.
func TestServerAddedLater(t *testing.T) {
	lc := probes.NewLifecycle()
	reg := prometheus.NewPedanticRegistry()
	m, err := metrics.Register(reg, lc)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := value(t, reg, "probes_drain_duration_seconds"); ok {
		t.Error("server figures before any server")
	}
	srv, err := server.New(&http.Server{}, lc)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Server(srv))
	if v, ok := value(t, reg, "probes_drain_duration_seconds"); !ok || v != 0 {
		t.Errorf("probes_drain_duration_seconds after Metrics.Server: %v (present %v), want 0", v, ok)
	}
	if err := m.Server(srv); err == nil {
		t.Error("a second Metrics.Server was accepted")
	}
	if err := m.Server(nil); err == nil {
		t.Error("Metrics.Server(nil) was accepted")
	}
}

// A cordon shows in probes_cordoned while it holds, every change is counted
// by cause, and readiness's gate status follows it.
func TestCordonCounted(t *testing.T) {
	s := newService(t)
	s.is(t, 0, "probes_cordoned")
	for _, cause := range []string{"cordoned", "uncordoned", "lifted"} {
		s.is(t, 0, "probes_cordon_changes_total", "cause", cause)
	}
	testutil.Ready(t, s.lc)
	if _, err := s.lc.Cordon("disk swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	s.is(t, 1, "probes_cordoned")
	s.is(t, 1, "probes_gate_status", "gate", "readiness", "status", "fail")
	s.is(t, 1, "probes_cordon_changes_total", "cause", "cordoned")
	if _, err := s.lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	s.is(t, 0, "probes_cordoned")
	s.is(t, 1, "probes_cordon_changes_total", "cause", "uncordoned")
	if _, err := s.lc.Cordon("short", time.Millisecond); err != nil {
		t.Fatal(err)
	}
	s.eventually(t, 1, "probes_cordon_changes_total", "cause", "lifted")
	s.is(t, 0, "probes_cordoned")
	s.is(t, 2, "probes_cordon_changes_total", "cause", "cordoned")
}

// Registered before any gate, the metrics show every gate built after them:
// each gate's status, each check's state and every execution of it, and the
// warm-up's tasks.
func TestGatesBuiltAfterRegister(t *testing.T) {
	lc := probes.NewLifecycle()
	reg := prometheus.NewRegistry()
	m, err := metrics.Register(reg, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	exporttest.GatesBuiltAfter(t, lc, reg)
}

// TestInfo: probes_info carries the identity, and is absent without one.
func TestInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	lc := probes.NewLifecycle(probes.Identify(probes.Identity{Service: "shop", Release: "1.4.2", Instance: "shop-0", Node: "node-a"}))
	if _, err := metrics.Register(reg, lc); err != nil {
		t.Fatal(err)
	}
	if got, ok := value(t, reg, "probes_info", "service", "shop", "release", "1.4.2", "instance", "shop-0", "node", "node-a"); !ok || got != 1 {
		t.Errorf("probes_info = %v (present %v), want 1 with the identity", got, ok)
	}
	bare := newService(t)
	if _, ok := value(t, bare.reg, "probes_info"); ok {
		t.Error("probes_info without an identity")
	}
}

// TestPast: probes_restarts always, probes_last_end and its timestamp with
// an instance before, never the cause; on a pedantic registry, which checks
// every series against its description.
func TestPast(t *testing.T) {
	exporttest.Past(t, func(t *testing.T, lc *probes.Lifecycle) prometheus.Gatherer {
		reg := prometheus.NewPedanticRegistry()
		m, err := metrics.Register(reg, lc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		return reg
	})
}

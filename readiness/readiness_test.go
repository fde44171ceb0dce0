package readiness_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func TestDependencies(t *testing.T) {
	tests := []struct {
		name     string
		critical error
		optional error
		want     probes.Status
	}{
		{"all pass", nil, nil, probes.Pass},
		{"critical fails", errors.New("refused"), nil, probes.Fail},
		{"non-critical fails: warn", nil, errors.New("refused"), probes.Warn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			g, err := readiness.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			if err := g.Add("db", mustPing(t, pinger{tt.critical}), probes.Every(time.Millisecond)); err != nil {
				t.Fatal(err)
			}
			if err := g.Add("search", mustPing(t, pinger{tt.optional}), probes.Every(time.Millisecond), probes.NonCritical()); err != nil {
				t.Fatal(err)
			}
			testutil.Ready(t, lc)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = lc.Run(ctx) }()
			defer func() { cancel(); <-done }()
			testutil.Eventually(t, "both checks ran", func() bool {
				for _, c := range g.Report().Checks {
					if c.Executions == 0 || c.Time.IsZero() {
						return false
					}
				}
				return true
			})
			if got := g.Report().Status(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			// Draining fails readiness at once, whatever the checks say.
			var seen atomic.Uint32
			seen.Store(99) // no verdict pushed yet
			g.Subscribe(func() { seen.Store(uint32(g.Report().Status())) })
			if err := lc.Drain("SIGTERM"); err != nil {
				t.Fatal(err)
			}
			if got := probes.Status(seen.Load()); got != probes.Fail {
				t.Errorf("pushed verdict on drain: got %s, want fail", got)
			}
		})
	}
}

func mustPing(t *testing.T, p readiness.Pinger) probes.Checker {
	t.Helper()
	c, err := readiness.Ping(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAddNamesTheGate(t *testing.T) {
	g, err := readiness.New(probes.NewLifecycle())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(nil); err == nil {
		t.Error("New(nil): no error")
	}
	if _, err := readiness.Ping(nil); err == nil {
		t.Error("Ping(nil): no error")
	}
	err = g.Add("db", mustPing(t, pinger{}), probes.Timeout(0))
	if err == nil || !strings.HasPrefix(err.Error(), "readiness: ") || !strings.Contains(err.Error(), "Timeout(0s)") {
		t.Errorf("got %v, want a readiness error naming Timeout(0s)", err)
	}
}

// flaky is a dependency whose answer the test sets.
type flaky struct{ err atomic.Pointer[error] }

func (f *flaky) Ping(context.Context) error {
	if p := f.err.Load(); p != nil {
		return *p
	}
	return nil
}

func (f *flaky) set(err error) { f.err.Store(&err) }

// A failing shared dependency warns once it has been reached; a local one
// fails; a shared one never reached fails too, so a replica that cannot
// reach its database at all never becomes ready.
func TestScopes(t *testing.T) {
	down := errors.New("connection refused")
	for _, tt := range []struct {
		name       string
		opts       []probes.CheckOption
		reachFirst bool
		want       probes.Status
	}{
		{"shared by default, reached, then down: warn", nil, true, probes.Warn},
		{"shared, never reached: fail", []probes.CheckOption{probes.Shared()}, false, probes.Fail},
		{"local, reached, then down: fail", []probes.CheckOption{probes.Local()}, true, probes.Fail},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			g, err := readiness.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			dep := &flaky{}
			if !tt.reachFirst {
				dep.set(down)
			}
			if err := g.Add("db", mustPing(t, dep), append(tt.opts, probes.Every(time.Millisecond))...); err != nil {
				t.Fatal(err)
			}
			testutil.Ready(t, lc)
			testutil.Background(t, lc.Run)
			if tt.reachFirst {
				testutil.Eventually(t, "reached", func() bool { return g.Report().Status() == probes.Pass })
				dep.set(down)
			}
			testutil.Eventually(t, "down", func() bool { c, _ := g.Report().Check("db"); return c.Status == probes.Fail })
			if got := g.Report().Status(); got != tt.want {
				t.Errorf("readiness: got %s, want %s", got, tt.want)
			}
		})
	}
}

// OnExecution hears every execution with its own outcome (before the
// thresholds), a timed-out or panicking one as a failure with its duration,
// and a listener that panics neither stops the others nor the schedule.
func TestOnExecution(t *testing.T) {
	const timeout = 20 * time.Millisecond
	outcomes := []func(ctx context.Context) error{
		func(context.Context) error { return nil },
		func(context.Context) error { return fmt.Errorf("lag: %w", probes.ErrWarn) },
		func(context.Context) error { return errors.New("refused") },
		func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() },
		func(context.Context) error { panic("check bug") },
	}
	want := []probes.Status{probes.Pass, probes.Warn, probes.Fail, probes.Fail, probes.Fail}
	var n atomic.Int64
	lc := probes.NewLifecycle()
	g, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	err = g.Add("db", probes.CheckFunc(func(ctx context.Context) error {
		return outcomes[int(n.Add(1)-1)%len(outcomes)](ctx)
	}), probes.Every(time.Millisecond), probes.Timeout(timeout), probes.FailureThreshold(3))
	if err != nil {
		t.Fatal(err)
	}
	g.OnExecution(func(probes.Execution) { panic("listener bug") })
	heard := make(chan probes.Execution, 100)
	stop := g.OnExecution(func(e probes.Execution) {
		select {
		case heard <- e:
		default:
		}
	})
	testutil.Ready(t, lc)
	testutil.Background(t, lc.Run)
	for i, w := range want {
		var e probes.Execution
		select {
		case e = <-heard:
		case <-time.After(10 * time.Second):
			t.Fatalf("execution %d never heard", i)
		}
		if e.Gate != probes.Readiness || e.Check != "db" || e.Status != w {
			t.Errorf("execution %d: %+v, want readiness db %s", i, e, w)
		}
		if i == 3 && e.Duration < timeout {
			t.Errorf("the hung execution took %s, want at least its timeout %s", e.Duration, timeout)
		}
	}
	stop()
	for len(heard) > 0 {
		<-heard
	}
	before := n.Load()
	testutil.Eventually(t, "the schedule goes on", func() bool { return n.Load() > before+3 })
	if len(heard) > 1 { // one delivery may have begun before stop
		t.Errorf("%d executions heard after the listener was removed", len(heard))
	}
}

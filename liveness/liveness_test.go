package liveness_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHeartbeat(t *testing.T) {
	lc := probes.NewLifecycle()
	g, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	hb, err := g.Heartbeat("worker", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "passing while the worker is fresh", func() bool { return g.Report().Status() == probes.Pass })

	// The worker stops ticking: the heartbeat ages past its limit.
	testutil.Eventually(t, "failing once the heartbeat is stale", func() bool {
		r := g.Report()
		c, _ := r.Check("worker")
		return r.Status() == probes.Fail && c.Err != nil && strings.Contains(c.Err.Error(), "no heartbeat for")
	})
	// One tick brings it back at once, without waiting for the schedule.
	hb.Tick()
	testutil.Eventually(t, "passing again after a tick", func() bool { return g.Report().Status() == probes.Pass })
}

func TestPhases(t *testing.T) {
	tests := []struct {
		name  string
		moves func(*probes.Lifecycle) error
		want  probes.Status
	}{
		{"cold", func(*probes.Lifecycle) error { return nil }, probes.Pass},
		{"warming", func(lc *probes.Lifecycle) error { return lc.Start() }, probes.Pass},
		{"draining", func(lc *probes.Lifecycle) error { return lc.Drain("bye") }, probes.Pass},
		{"broken", func(lc *probes.Lifecycle) error { return lc.MarkBroken(errors.New("x")) }, probes.Fail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lc := probes.NewLifecycle()
			g, err := liveness.New(lc)
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.moves(lc); err != nil {
				t.Fatal(err)
			}
			if got := g.Report().Status(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestSelfCheckAndErrors(t *testing.T) {
	lc := probes.NewLifecycle()
	g, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Add("deadlock", probes.CheckFunc(func(context.Context) error { return errors.New("stuck") }),
		probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "self-check failure fails liveness", func() bool { return g.Report().Status() == probes.Fail })

	if _, err := g.Heartbeat("w", 0); err == nil || !strings.Contains(err.Error(), "0s): the limit") {
		t.Errorf("Heartbeat with zero limit: got %v, want an error naming the limit", err)
	}
	if _, err := g.Heartbeat("deadlock", time.Second); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Errorf("Heartbeat with a taken name: got %v", err)
	}
}

func TestHeartbeatOnInjectedClock(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	lc := probes.NewLifecycle(probes.WithClock(clock))
	g, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	// The limit is short so that evaluations (every limit/4 of real time)
	// come quickly; the injected clock alone decides the heartbeat's age.
	hb, err := g.Heartbeat("worker", 40*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "fresh heartbeat passes", func() bool { return g.Report().Status() == probes.Pass })
	clock.Add(39 * time.Millisecond)
	hb.Tick()
	clock.Add(39 * time.Millisecond) // 78ms since start, 39ms since the tick
	if c, _ := g.Report().Check("worker"); c.Status != probes.Pass {
		t.Fatalf("failing within the limit: %+v", c)
	}
	clock.Add(2 * time.Millisecond)
	testutil.Eventually(t, "stale heartbeat fails", func() bool { return g.Report().Status() == probes.Fail })
	hb.Tick()
	testutil.Eventually(t, "tick recovers", func() bool { return g.Report().Status() == probes.Pass })
}

func TestLivenessChecksAreLocal(t *testing.T) {
	g, err := liveness.New(probes.NewLifecycle())
	if err != nil {
		t.Fatal(err)
	}
	err = g.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Shared())
	if err == nil || !strings.Contains(err.Error(), "liveness") || !strings.Contains(err.Error(), "Shared()") {
		t.Errorf("Shared liveness check: got %v, want an error naming the gate and Shared()", err)
	}
}

// Before its first execution a self-check has not failed, so liveness
// passes: the probe listener answers before the first result, and a 503
// then would count towards a restart of a healthy process.
func TestPassesBeforeFirstResult(t *testing.T) {
	lc := probes.NewLifecycle()
	g, err := liveness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Heartbeat("worker", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := g.Add("self", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	r := g.Report()
	if s := r.Status(); s != probes.Pass {
		t.Errorf("liveness before any check ran: got %s, want pass", s)
	}
	for _, c := range r.Checks {
		if c.Status != probes.Pass || c.Err != nil || !c.Time.IsZero() {
			t.Errorf("check %s before its first execution: got %s (err %v, time %v), want pass, no error, no time", c.Name, c.Status, c.Err, c.Time)
		}
	}
}

package probes_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// path drives a new lifecycle through the named moves and fails the test if
// one is refused.
func path(t *testing.T, moves ...string) *probes.Lifecycle {
	t.Helper()
	lc := probes.NewLifecycle()
	for _, m := range moves {
		if err := move(lc, m); err != nil {
			t.Fatalf("setting up with %s: %v", m, err)
		}
	}
	return lc
}

func move(lc *probes.Lifecycle, m string) error {
	switch m {
	case "Start":
		return lc.Start()
	case "MarkReady":
		return lc.MarkReady()
	case "Rewarm":
		return lc.Rewarm("reload")
	case "Drain":
		return lc.Drain("test")
	case "Stop":
		return lc.Stop()
	case "MarkBroken":
		return lc.MarkBroken(errors.New("boom"))
	}
	panic("unknown move " + m)
}

// reach lists the moves that bring a new lifecycle to each phase.
var reach = map[probes.Phase][]string{
	probes.Cold:     nil,
	probes.Warming:  {"Start"},
	probes.Ready:    {"Start", "MarkReady"},
	probes.Draining: {"Start", "MarkReady", "Drain"},
	probes.Stopped:  {"Start", "MarkReady", "Drain", "Stop"},
	probes.Broken:   {"MarkBroken"},
}

func TestLifecycleTransitions(t *testing.T) {
	// want[from][move] is the phase the move leads to; a missing entry is illegal.
	want := map[probes.Phase]map[string]probes.Phase{
		probes.Cold:     {"Start": probes.Warming, "Drain": probes.Draining, "MarkBroken": probes.Broken},
		probes.Warming:  {"MarkReady": probes.Ready, "Drain": probes.Draining, "MarkBroken": probes.Broken},
		probes.Ready:    {"Rewarm": probes.Warming, "Drain": probes.Draining, "MarkBroken": probes.Broken},
		probes.Draining: {"Stop": probes.Stopped, "MarkBroken": probes.Broken},
		probes.Stopped:  {"MarkBroken": probes.Broken},
		probes.Broken:   {},
	}
	moves := []string{"Start", "MarkReady", "Rewarm", "Drain", "Stop", "MarkBroken"}
	// CanMove draws the same edges.
	for from := probes.Cold; from <= probes.Broken; from++ {
		for to := probes.Cold; to <= probes.Broken; to++ {
			edge := false
			for _, target := range want[from] {
				edge = edge || target == to
			}
			if got := probes.CanMove(from, to); got != edge {
				t.Errorf("CanMove(%s, %s) = %v, want %v", from, to, got, edge)
			}
		}
	}
	for from, legal := range want {
		for _, m := range moves {
			t.Run(from.String()+"/"+m, func(t *testing.T) {
				lc := path(t, reach[from]...)
				var got []probes.Transition
				lc.Subscribe(func(tr probes.Transition) { got = append(got, tr) })
				err := move(lc, m)
				to, ok := legal[m]
				if !ok {
					if !errors.Is(err, probes.ErrIllegalTransition) {
						t.Fatalf("%s from %s: got error %v, want ErrIllegalTransition", m, from, err)
					}
					if !strings.Contains(err.Error(), from.String()) {
						t.Errorf("error %q does not name the phase %s", err, from)
					}
					if lc.Phase() != from || len(got) != 0 {
						t.Errorf("illegal move changed something: phase %s, %d transitions", lc.Phase(), len(got))
					}
					return
				}
				if err != nil {
					t.Fatalf("%s from %s: %v", m, from, err)
				}
				if lc.Phase() != to {
					t.Errorf("phase after %s from %s: got %s, want %s", m, from, lc.Phase(), to)
				}
				if len(got) != 1 || got[0].From != from || got[0].To != to {
					t.Errorf("transitions: got %+v, want one %s to %s", got, from, to)
				}
			})
		}
	}
}

func TestLifecycleStartedLatches(t *testing.T) {
	lc := probes.NewLifecycle()
	steps := []struct {
		move string
		want bool
	}{
		{"", false}, {"Start", false}, {"MarkReady", true}, {"Rewarm", true},
		{"MarkReady", true}, {"Drain", true}, {"Stop", true}, {"MarkBroken", true},
	}
	for _, s := range steps {
		if s.move != "" {
			if err := move(lc, s.move); err != nil {
				t.Fatal(err)
			}
		}
		if got := lc.Started(); got != s.want {
			t.Errorf("Started after %q (phase %s): got %v, want %v", s.move, lc.Phase(), got, s.want)
		}
	}
}

func TestLifecycleListeners(t *testing.T) {
	clock := testutil.NewClock(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	lc := probes.NewLifecycle(probes.WithClock(clock))
	var got []probes.Transition
	// A listener that moves the lifecycle itself: its move must be delivered
	// after the one it reacts to, to every listener, without deadlock.
	lc.Subscribe(func(tr probes.Transition) {
		got = append(got, tr)
		if tr.To == probes.Warming {
			if err := lc.MarkReady(); err != nil {
				t.Errorf("MarkReady from a listener: %v", err)
			}
		}
	})
	var second []probes.Phase
	cancel := lc.Subscribe(func(tr probes.Transition) { second = append(second, tr.To) })

	if err := lc.Start(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].To != probes.Warming || got[1].To != probes.Ready {
		t.Fatalf("delivered %+v, want warming then ready", got)
	}
	if !got[0].At.Equal(clock.Now()) || got[0].Reason == "" {
		t.Errorf("transition %+v: want At from the clock and a reason", got[0])
	}
	if len(second) != 2 || second[0] != probes.Warming || second[1] != probes.Ready {
		t.Errorf("second listener saw %v, want [warming ready]", second)
	}

	cancel()
	cause := errors.New("disk gone")
	if err := lc.MarkBroken(cause); err != nil {
		t.Fatal(err)
	}
	if len(second) != 2 {
		t.Errorf("cancelled listener still called: %v", second)
	}
	if last := got[len(got)-1]; last.To != probes.Broken || !errors.Is(last.Err, cause) {
		t.Errorf("broken transition %+v: want Err %v", last, cause)
	}
}

func TestLifecycleConcurrentReads(t *testing.T) {
	lc := probes.NewLifecycle()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				_ = lc.Phase()
				_ = lc.Started()
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			_ = lc.Start()
			_ = lc.MarkReady()
			_ = lc.Rewarm("again")
		}
	})
	wg.Wait()
	if p := lc.Phase(); p != probes.Warming && p != probes.Ready {
		t.Errorf("phase: got %s, want warming or ready", p)
	}
}

// The lifecycle keeps its last warm-up's span: begun at Warming, ended by
// the move out of it, restarted by a Rewarm; its length runs meanwhile.
func TestLifecycleWarmup(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	clock := testutil.NewClock(t0)
	lc := probes.NewLifecycle(probes.WithClock(clock))
	if b, e := lc.Warmup(); !b.IsZero() || !e.IsZero() || lc.WarmupLength() != 0 {
		t.Fatalf("before any warm-up: %v %v %s", b, e, lc.WarmupLength())
	}
	_ = lc.Start()
	clock.Add(3 * time.Second)
	if b, e := lc.Warmup(); !b.Equal(t0) || !e.IsZero() || lc.WarmupLength() != 3*time.Second {
		t.Fatalf("warming: %v %v %s", b, e, lc.WarmupLength())
	}
	_ = lc.MarkReady()
	clock.Add(time.Minute)
	if _, e := lc.Warmup(); !e.Equal(t0.Add(3*time.Second)) || lc.WarmupLength() != 3*time.Second {
		t.Fatalf("ready: ended %v, length %s; want 3s", e, lc.WarmupLength())
	}
	_ = lc.Rewarm("reload")
	clock.Add(time.Second)
	_ = lc.Drain("SIGTERM") // cuts the rewarm short
	if b, _ := lc.Warmup(); !b.Equal(t0.Add(63*time.Second)) || lc.WarmupLength() != time.Second {
		t.Fatalf("a rewarm cut short: began %v, length %s", b, lc.WarmupLength())
	}
}

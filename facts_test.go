package probes_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testutil"
	"github.com/probekit/probes/readiness"
)

// A watcher added before any gate hears the gates built after it: their
// verdicts and executions, beside the moves and cordon changes, in order;
// and Facts lists those gates too.
func TestWatchHearsGatesBuiltLater(t *testing.T) {
	lc := probes.NewLifecycle()
	var mu sync.Mutex
	var got []probes.Change
	lc.Watch(func(c probes.Change) { panic("a watcher that panics loses nothing") })
	cancel := lc.Watch(func(c probes.Change) {
		mu.Lock()
		got = append(got, c)
		mu.Unlock()
	})
	defer cancel()
	if f := lc.Facts(); len(f.Gates) != 0 || f.Phase != probes.Cold {
		t.Fatalf("facts before any gate: %+v", f)
	}

	ready, err := readiness.New(lc) // built after Watch
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Ready(t, lc)
	if _, err := lc.Cordon("swap", time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	seen := func(k probes.ChangeKind) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range got {
			if c.Kind == k && (k != probes.Executed || c.Gate == probes.Readiness && c.Execution.Check == "db") &&
				(k != probes.Rejudged || c.Gate == probes.Readiness) {
				return true
			}
		}
		return false
	}
	testutil.Eventually(t, "db's execution heard", func() bool { return seen(probes.Executed) })
	for _, k := range []probes.ChangeKind{probes.Moved, probes.Recordoned, probes.Rejudged} {
		if !seen(k) {
			t.Errorf("no change of kind %d heard", k)
		}
	}
	mu.Lock()
	var moves []probes.Phase
	var cordons []probes.CordonCause
	for _, c := range got {
		switch c.Kind {
		case probes.Moved:
			moves = append(moves, c.Move.To)
		case probes.Recordoned:
			cordons = append(cordons, c.Cordon.Cause)
		}
	}
	mu.Unlock()
	if len(moves) != 2 || moves[0] != probes.Warming || moves[1] != probes.Ready {
		t.Errorf("moves heard: %v, want warming, ready", moves)
	}
	if len(cordons) != 2 || cordons[0] != probes.CauseCordoned || cordons[1] != probes.CauseUncordoned {
		t.Errorf("cordon changes heard: %v", cordons)
	}
	f := lc.Facts()
	rep, ok := f.Gate(probes.Readiness)
	if !ok || len(f.Gates) != 1 || f.Phase != probes.Ready || !f.Started || !f.Cordon.IsZero() || rep.Status() != probes.Pass {
		t.Errorf("facts: %+v", f)
	}
	if _, ok := f.Gate(probes.Startup); ok {
		t.Error("facts list a startup gate nobody built")
	}
}

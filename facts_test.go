package probes_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/haproxy"
	"github.com/probekit/probes/history"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
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
				(k != probes.VerdictChanged || c.Gate == probes.Readiness) {
				return true
			}
		}
		return false
	}
	testutil.Eventually(t, "db's execution heard", func() bool { return seen(probes.Executed) })
	for _, k := range []probes.ChangeKind{probes.Moved, probes.CordonChanged, probes.VerdictChanged} {
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
		case probes.CordonChanged:
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

// Every surface built before the gates serves them once they are built:
// nothing is silently missing because of the order things were built in.
func TestSurfacesBuiltBeforeTheGates(t *testing.T) {
	lc := probes.NewLifecycle()
	mux := http.NewServeMux()
	if _, err := server.Register(mux, lc); err != nil {
		t.Fatal(err)
	}
	hist, err := history.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer hist.Close()
	mux.Handle("/history", hist.Handler())
	page, err := history.NewPage(lc, hist)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := haproxy.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(mux)
	defer func() { page.Close(); ts.Close() }()

	// Now the gates and their checks.
	warm, err := startup.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := warm.Task("cache", func(context.Context, *startup.Progress) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add("db", probes.CheckFunc(func(context.Context) error { return errors.New("refused") }), probes.Local(), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, lc.Run)
	testutil.Eventually(t, "warm", func() bool { return lc.Phase() == probes.Ready })
	testutil.Eventually(t, "db ran", func() bool { c, _ := ready.Report().Check("db"); return !c.Time.IsZero() })

	for _, tt := range []struct{ path, want string }{
		{"/readyz?verbose", `"db:responseTime"`},
		{"/readyz/db", `"status":"fail"`},
		{"/startupz/cache", `"status":"pass"`},
		{"/healthz?verbose", `"readiness/db:responseTime"`},
		{"/healthz/readiness/db", `"status":"fail"`},
		{"/history", `"readiness/db"`},
	} {
		res, err := http.Get(ts.URL + tt.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("%s: %d %s, want %s", tt.path, res.StatusCode, b, tt.want)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	page.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), `data-check="readiness/db" data-status="fail"`) {
		t.Errorf("the page lacks the db check:\n%s", rec.Body)
	}
	if line := agent.Reply(); line != "down #failing: db" {
		t.Errorf("agent line %q, want down for db", line)
	}
	if _, ok := hist.Check(probes.Readiness, "db"); !ok {
		t.Error("history keeps no series for db")
	}
}

// A gate built after Run has returned is refused and left out: it is never
// in the facts or served, since its checks would never run.
func TestGateAfterRunIsLeftOut(t *testing.T) {
	lc := probes.NewLifecycle()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := lc.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if _, err := readiness.New(lc); !errors.Is(err, probes.ErrLifecycleRan) {
		t.Fatalf("readiness.New after Run: %v, want ErrLifecycleRan", err)
	}
	if g := lc.Gate(probes.Readiness); g != nil || len(lc.Facts().Gates) != 0 {
		t.Errorf("a refused gate is attached: %v, facts %d gates", g, len(lc.Facts().Gates))
	}
}

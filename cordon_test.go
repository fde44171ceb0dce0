package probes_test

import (
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
)

// TestCordonColumn checks the cordon's column of the phase x gate table in
// every phase, for every gate: readiness fails up to Ready, the deep view
// warns, startup and liveness never change, and from Draining on the cordon
// changes nothing.
func TestCordonColumn(t *testing.T) {
	phases := map[probes.Phase][]string{
		probes.Cold:     nil,
		probes.Warming:  {"Start"},
		probes.Ready:    {"Start", "MarkReady"},
		probes.Draining: {"Start", "MarkReady", "Drain"},
		probes.Stopped:  {"Start", "MarkReady", "Drain", "Stop"},
		probes.Broken:   {"Start", "MarkBroken"},
	}
	kinds := []probes.Kind{probes.Startup, probes.Liveness, probes.Readiness, probes.Health}
	for p, moves := range phases {
		for _, k := range kinds {
			lc := path(t, moves...)
			pb := lc.Basis(k)
			plain, plainNotes := pb.Status, pb.Notes
			if _, err := lc.Cordon("disk swap", time.Hour); err != nil {
				t.Fatal(err)
			}
			gb := lc.Basis(k)
			got, notes := gb.Status, gb.Notes
			want := plain
			switch {
			case p > probes.Ready, k == probes.Startup, k == probes.Liveness:
			case k == probes.Readiness:
				want = probes.Fail
			case k == probes.Health:
				want = probes.Worst(plain, probes.Warn)
			}
			if got != want {
				t.Errorf("%s in %s while cordoned: %s, want %s", k, p, got, want)
			}
			mentions := strings.Contains(strings.Join(notes, "; "), "cordoned: disk swap")
			if wantNote := want != plain || (k == probes.Readiness || k == probes.Health) && p <= probes.Ready; mentions != wantNote {
				t.Errorf("%s in %s: notes %q; cordon mentioned %v, want %v", k, p, notes, mentions, wantNote)
			}
			if _, err := lc.Uncordon(); err != nil {
				t.Fatal(err)
			}
			if b := lc.Basis(k); b.Status != plain || len(b.Notes) != len(plainNotes) {
				t.Errorf("%s in %s after uncordon: %s %q, want %s %q", k, p, b.Status, b.Notes, plain, plainNotes)
			}
		}
	}
}

// TestCordonDuringWarmUp: an instance cordoned while it warms stays out of
// rotation once warm, until the cordon goes.
func TestCordonDuringWarmUp(t *testing.T) {
	lc := path(t, "Start")
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Cordon("inspect the cache", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := lc.MarkReady(); err != nil {
		t.Fatal(err)
	}
	rep := ready.Report()
	if rep.Status() != probes.Fail || rep.Cordon.Reason != "inspect the cache" {
		t.Fatalf("warm and cordoned: %s, cordon %+v; want fail with the reason", rep.Status(), rep.Cordon)
	}
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if rep := ready.Report(); rep.Status() != probes.Pass || !rep.Cordon.IsZero() {
		t.Fatalf("uncordoned: %s, cordon %+v; want pass and none", rep.Status(), rep.Cordon)
	}
}

// TestUncordonNeverShortensADrain: cordon and uncordon during a drain leave
// the phase and readiness as the drain set them.
func TestUncordonNeverShortensADrain(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	if _, err := lc.Cordon("before shutdown", time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := lc.Drain("SIGTERM"); err != nil {
		t.Fatalf("a drain while cordoned: %v", err)
	}
	if _, err := lc.Uncordon(); err != nil {
		t.Fatal(err)
	}
	if s := lc.Basis(probes.Readiness).Status; lc.Phase() != probes.Draining || s != probes.Fail {
		t.Fatalf("after uncordon in a drain: %s, readiness %s; want draining, fail", lc.Phase(), s)
	}
	if _, err := lc.Uncordon(); err != probes.ErrNotCordoned {
		t.Fatalf("a second uncordon: %v, want ErrNotCordoned", err)
	}
}

// TestCordonLiftsByItself: the time limit ends the cordon, listeners hear
// "lifted", readiness passes again, and Version moved with both changes.
func TestCordonLiftsByItself(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	changes := make(chan probes.CordonChange, 4)
	defer lc.SubscribeCordon(func(c probes.CordonChange) { changes <- c })()
	v := lc.Version()
	ch, err := lc.Cordon("short look", 30*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c := ch.Cordon
	if got := c.Until.Sub(c.Since); got != 30*time.Millisecond {
		t.Fatalf("Until - Since = %s, want the limit", got)
	}
	for _, want := range []probes.CordonCause{probes.CauseCordoned, probes.CauseLifted} {
		select {
		case ch := <-changes:
			if ch.Cause != want {
				t.Fatalf("change %+v, want cause %q", ch, want)
			}
			if want == "lifted" && (ch.Was.Reason != "short look" || !ch.Cordon.IsZero()) {
				t.Fatalf("lifted: %+v", ch)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no %q change", want)
		}
	}
	if _, ok := lc.Cordoned(); ok {
		t.Fatal("still cordoned after the limit")
	}
	if s := lc.Basis(probes.Readiness).Status; s != probes.Pass {
		t.Fatalf("readiness after the limit: %s", s)
	}
	if got := lc.Version(); got != v+2 {
		t.Fatalf("Version moved by %d, want 2", got-v)
	}
}

// TestCordonLimitStopsWithTheService: once Stopped, the cordon's time
// limit no longer fires, so no listener hears from a lifecycle that is over.
func TestCordonLimitStopsWithTheService(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	heard := make(chan probes.CordonChange, 2)
	defer lc.SubscribeCordon(func(c probes.CordonChange) { heard <- c })()
	if _, err := lc.Cordon("last look", 30*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	<-heard // the cordon itself
	for _, m := range []string{"Drain", "Stop"} {
		if err := move(lc, m); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case c := <-heard:
		t.Fatalf("after Stop the limit still fired: %+v", c)
	case <-time.After(200 * time.Millisecond): // well past the 30 ms limit
	}
	if _, ok := lc.Cordoned(); !ok {
		t.Error("Stop lifted the cordon; it should stay as it was")
	}
}

// TestCordonReplacedLimit: a second cordon replaces the first, and the
// first one's limit does not lift the second.
func TestCordonReplacedLimit(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	lifted := make(chan struct{}, 4)
	defer lc.SubscribeCordon(func(c probes.CordonChange) {
		if c.Cause == probes.CauseLifted {
			lifted <- struct{}{}
		}
	})()
	if _, err := lc.Cordon("first", 20*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if _, err := lc.Cordon("second", 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if c, ok := lc.Cordoned(); !ok || c.Reason != "second" {
		t.Fatalf("Cordoned() = %+v %v, want the second", c, ok)
	}
	if ch, err := lc.Cordon("third", 200*time.Millisecond); err != nil || ch.Was.Reason != "second" || ch.Cordon.Reason != "third" {
		t.Fatalf("a third cordon: %+v %v; want it to say it replaced the second", ch, err)
	}
	select {
	case <-lifted:
	case <-time.After(5 * time.Second):
		t.Fatal("the second cordon never lifted")
	}
	if c, ok := lc.Cordoned(); ok {
		t.Fatalf("still cordoned: %+v", c)
	}
	select {
	case <-lifted:
		t.Fatal("lifted twice: the first limit fired too")
	default:
	}
}

func TestCordonRefusesBadInput(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	reasons := map[string]string{
		"":                       "empty",
		"   ":                    "blank",
		strings.Repeat("x", 201): "201 bytes",
		"two\nlines":             "unprintable",
		"a\rb":                   "unprintable",
		"tab\there":              "unprintable",
		"\x1b[31mred":            "unprintable",
		"nul\x00":                "unprintable",
		"sep\u2028arator":        "unprintable",
		"bad \xff utf-8":         "UTF-8",
		"del\x7f":                "unprintable",
	}
	for reason, want := range reasons {
		if _, err := lc.Cordon(reason, time.Minute); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Cordon(%q): %v, want an error saying %q", reason, err, want)
		}
	}
	for _, d := range []time.Duration{0, -time.Second, probes.MaxCordon + 1} {
		if _, err := lc.Cordon("ok", d); err == nil || !strings.Contains(err.Error(), "time limit") {
			t.Errorf("Cordon for %s: %v, want an error about the time limit", d, err)
		}
	}
	if _, ok := lc.Cordoned(); ok {
		t.Fatal("a refused cordon took effect")
	}
	for _, ok := range []string{"disk swap on sdb", "über 10% — ok", strings.Repeat("é", 100)} {
		if _, err := lc.Cordon(ok, time.Minute); err != nil {
			t.Errorf("Cordon(%q): %v", ok, err)
		}
	}
}

// TestCordonRandomInterleaving races cordons, uncordons, short limits and
// readers, then checks that the listeners heard one consistent story:
// every change starts from where the one before ended, and the last one is
// the state left.
func TestCordonRandomInterleaving(t *testing.T) {
	lc := path(t, "Start", "MarkReady")
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var heard []probes.CordonChange
	defer lc.SubscribeCordon(func(c probes.CordonChange) {
		mu.Lock()
		heard = append(heard, c)
		mu.Unlock()
		// A listener that reads the lifecycle must not deadlock it.
		lc.Cordoned()
	})()
	v0 := lc.Version()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(g), 7))
			for range 200 {
				switch r.IntN(4) {
				case 0:
					_, _ = lc.Cordon("r", time.Duration(1+r.IntN(3))*time.Millisecond)
				case 1:
					_, _ = lc.Cordon("long", time.Hour)
				case 2:
					_, _ = lc.Uncordon()
				case 3:
					if rep := ready.Report(); rep.Status() == probes.Pass && !rep.Cordon.IsZero() {
						t.Error("readiness passed while the report shows a cordon")
					}
				}
			}
		}()
	}
	wg.Wait()
	_, _ = lc.Uncordon() // the last word, so that no limit is left to fire
	testutil.Eventually(t, "every change heard once", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return uint64(len(heard)) == lc.Version()-v0
	})
	mu.Lock()
	defer mu.Unlock()
	var was probes.Cordon
	for i, c := range heard {
		if c.Was != was {
			t.Fatalf("change %d (%s) starts from %+v; the one before ended at %+v", i, c.Cause, c.Was, was)
		}
		was = c.Cordon
	}
	if !was.IsZero() {
		t.Fatalf("the last change left %+v, but the lifecycle is not cordoned", was)
	}
	if s := ready.Report().Status(); s != probes.Pass {
		t.Fatalf("readiness after the last uncordon: %s", s)
	}
}

// TestCordonAndDrainInterleaving races cordons and uncordons with a drain
// that comes at a random moment: once the drain has begun, readiness never
// passes again, whatever the cordon does.
func TestCordonAndDrainInterleaving(t *testing.T) {
	for seed := range uint64(20) {
		lc := path(t, "Start", "MarkReady")
		ready, err := readiness.New(lc)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var drained sync.WaitGroup
		drained.Add(1)
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(seed, uint64(g)))
				for range 300 {
					if r.IntN(2) == 0 {
						_, _ = lc.Cordon("x", time.Hour)
					} else {
						_, _ = lc.Uncordon()
					}
				}
			}()
		}
		go func() {
			defer drained.Done()
			r := rand.New(rand.NewPCG(seed, 99))
			for range r.IntN(300) {
				_ = ready.Report()
			}
			if err := lc.Drain("SIGTERM"); err != nil {
				t.Error(err)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 600 {
				wasDraining := lc.Phase() == probes.Draining
				if s := ready.Report().Status(); wasDraining && s != probes.Fail {
					t.Errorf("seed %d: readiness %s after the drain began", seed, s)
					return
				}
			}
		}()
		wg.Wait()
		drained.Wait()
		_, _ = lc.Uncordon()
		if rep := ready.Report(); rep.Phase != probes.Draining || rep.Status() != probes.Fail {
			t.Fatalf("seed %d: at the end %s, readiness %s; want draining, fail", seed, rep.Phase, rep.Status())
		}
	}
}

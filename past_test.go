package probes_test

import (
	"testing"
	"time"

	"github.com/probekit/probes"
)

// The past is the deep view's fact, read by every audience but for its
// cause, and a change every rendering sees.
func TestPast(t *testing.T) {
	lc := probes.NewLifecycle()
	if !lc.Past().IsZero() || !lc.Basis(probes.Health).Past.IsZero() {
		t.Fatalf("a new lifecycle's past: %+v", lc.Past())
	}
	v := lc.Version()
	past := probes.Past{Restarts: 3, Ended: probes.EndedBroken, End: time.Unix(1, 0), Cause: "warm-up deadline missed"}
	lc.SetPast(past)
	if lc.Version() == v {
		t.Error("SetPast left the version as it was: renderings would not show it")
	}
	if got := lc.Facts().Past; got != past {
		t.Errorf("Facts().Past: got %+v, want %+v", got, past)
	}
	deep := lc.Basis(probes.Health).Report(probes.Health)
	if deep.Past != past || !deep.HasReasons() {
		t.Errorf("the deep view's report: past %+v, reasons %v; want %+v with a reason", deep.Past, deep.HasReasons(), past)
	}
	if got := deep.For(probes.Anonymous).Past; got.Cause != "" || got.Restarts != 3 || got.Ended != probes.EndedBroken || got.Clean() {
		t.Errorf("the deep view for anonymous readers: past %+v; want the restarts and the end without the cause", got)
	}
	if got := deep.For(probes.Authorized).Past; got != past {
		t.Errorf("the deep view for authorised readers: past %+v, want %+v", got, past)
	}
	if r := lc.Basis(probes.Readiness).Report(probes.Readiness); !r.Past.IsZero() {
		t.Errorf("readiness's report carries the past: %+v", r.Past)
	}
}

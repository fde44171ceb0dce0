package fleet

// A round: every instance asked once, and the failing checks classified.

import (
	"cmp"
	"context"
	"math"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/probekit/probes/internal/printable"
)

// MaxFaults bounds the faults a round lists; the others are counted
// (Round.MoreFaults).
const MaxFaults = 64

// Scopes of a fault.
const (
	FleetWide = "fleet-wide"
	Local     = "local"
)

// Round is the fleet as one round of requests found it.
type Round struct {
	// At is when the round began.
	At time.Time `json:"at"`
	// Instances are every instance asked, sorted by address.
	Instances []Instance `json:"instances"`
	// FleetWide and Local name the failing checks ("<gate>/<name>") of each
	// scope in Faults, the most widespread first.
	FleetWide []string `json:"fleetWide"`
	Local     []string `json:"local"`
	// Faults are the same checks with their counts: at most MaxFaults,
	// the fleet-wide first, then the most widespread.
	Faults []Fault `json:"faults"`
	// MoreFaults counts the failing checks beyond MaxFaults, of which
	// MoreFleetWide are fleet-wide.
	MoreFaults    int `json:"moreFaults"`
	MoreFleetWide int `json:"moreFleetWide"`
	// Reachable counts the instances that answered.
	Reachable int `json:"reachable"`
	// Took is how long the round took, in milliseconds.
	Took float64 `json:"tookMs"`
	// Error says why discovery failed this round ("" when it did not); the
	// instances are then those of the round before.
	Error string `json:"error,omitempty"`
	// Truncated says the DNS answer that listed the instances was cut
	// short: more instances exist than were asked. Such a round is never
	// all well.
	Truncated bool `json:"truncated"`
	// Warnings say what makes the round incomplete, one line each, such as
	// "discovery: answer truncated, 1819 of more instances listed".
	Warnings []string `json:"warnings"`
}

// Fault is one failing check across the fleet.
type Fault struct {
	// Check is "<gate>/<name>".
	Check string `json:"check"`
	// Scope is FleetWide or Local.
	Scope string `json:"scope"`
	// Failing is on how many instances it fails, of Of that answered.
	Failing int `json:"failing"`
	Of      int `json:"of"`
}

// OK reports whether every instance is reachable and ready with no
// failing check, and every instance was asked (discovery neither failed
// nor was cut short).
func (r *Round) OK() bool {
	if r.Truncated {
		return false
	}
	for i := range r.Instances {
		if !r.Instances[i].healthy() {
			return false
		}
	}
	return len(r.Instances) > 0 && r.Error == ""
}

// round asks every target once and classifies the faults.
func round(ctx context.Context, p *poller, targets []target, share float64) Round {
	began := time.Now()
	r := Round{At: began.UTC(), Instances: p.ask(ctx, targets), Warnings: []string{}}
	r.Took = float64(time.Since(began).Microseconds()) / 1000
	sortInstances(r.Instances)
	classify(&r, share)
	return r
}

// classify fills in the faults: a check failing on at least share of the
// reachable instances, and on at least two, is fleet-wide; any other
// failing check is local. It counts the failing checks each instance
// kept (at most MaxChecks).
func classify(r *Round, share float64) {
	counts := map[string]int{}
	r.Reachable = 0
	for i := range r.Instances {
		if r.Instances[i].Reachable {
			r.Reachable++
		}
		for _, c := range r.Instances[i].Failing {
			counts[c]++
		}
	}
	r.Faults, r.FleetWide, r.Local = []Fault{}, []string{}, []string{}
	need := max(2, int(math.Ceil(share*float64(r.Reachable)-1e-9)))
	for c, n := range counts {
		f := Fault{Check: c, Scope: Local, Failing: n, Of: r.Reachable}
		if n >= need {
			f.Scope = FleetWide
		}
		r.Faults = append(r.Faults, f)
	}
	slices.SortFunc(r.Faults, func(a, b Fault) int {
		if a.Scope != b.Scope {
			return cmp.Compare(a.Scope, b.Scope) // "fleet-wide" before "local"
		}
		return cmp.Or(cmp.Compare(b.Failing, a.Failing), cmp.Compare(a.Check, b.Check))
	})
	r.MoreFaults, r.MoreFleetWide = 0, 0
	if len(r.Faults) > MaxFaults {
		for _, f := range r.Faults[MaxFaults:] {
			if f.Scope == FleetWide {
				r.MoreFleetWide++
			}
		}
		r.MoreFaults = len(r.Faults) - MaxFaults
		r.Faults = slices.Clip(r.Faults[:MaxFaults])
	}
	for _, f := range r.Faults {
		if f.Scope == FleetWide {
			r.FleetWide = append(r.FleetWide, f.Check)
		} else {
			r.Local = append(r.Local, f.Check)
		}
	}
}

// sortInstances sorts by address: IP and port numerically first
// (127.0.0.10 after 127.0.0.9), then names.
func sortInstances(ins []Instance) {
	slices.SortFunc(ins, func(a, b Instance) int {
		pa, ea := netip.ParseAddrPort(a.Address)
		pb, eb := netip.ParseAddrPort(b.Address)
		switch {
		case ea == nil && eb == nil:
			return pa.Compare(pb)
		case ea == nil:
			return -1
		case eb == nil:
			return 1
		}
		return strings.Compare(a.Address, b.Address)
	})
}

// clean makes text from an instance safe to print and to keep: control
// and formatting characters (escape sequences, bidi overrides) and invalid
// UTF-8 are escaped (package printable), and it is cut to maxText bytes.
func clean(s string) string { return printable.Escape(s, maxText) }

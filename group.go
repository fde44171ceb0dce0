package probes

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Group reports chosen checks of every gate built on a lifecycle, for
// monitors rather than for the platform: the deep view (/healthz, all
// checks) and named groups over a subset, as Spring Boot's health groups
// and ASP.NET Core's tags do. It runs nothing; its checks run in their own
// gates, and it reads their results.
//
// A group's verdict is the Health row of the phase x gate table made worse
// by its checks, each counted as if it were local: a failing critical check
// fails the group whatever its scope, because a monitor wants to hear about
// a shared database that is down even though readiness only warns. Warm-up
// tasks are listed too (with their own paths), and count through the phase.
type Group struct {
	lc    *Lifecycle
	name  string
	gates []Gate
	only  map[string]bool // nil: every check and task
}

var _ Gate = (*Group)(nil)

// Lifecycle is the lifecycle the group reads.
func (g *Group) Lifecycle() *Lifecycle { return g.lc }

// NewGroup returns the group called name (a ValidName, used in text
// answers, such as "healthz") over the named checks and tasks of lc's
// gates, or over all of them, present and future, when checks is empty.
// Each named check must exist, in one gate only. Build it after the gates
// and their checks. In a group over all checks, a name that two gates use
// is shown qualified by its gate ("startup.stock", "readiness.stock").
func NewGroup(lc *Lifecycle, name string, checks ...string) (*Group, error) {
	if lc == nil {
		return nil, errors.New("probes: NewGroup(nil): need a *Lifecycle")
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("probes: NewGroup(%q): use 1 to 63 letters, digits, '-', '_' or '.'", name)
	}
	g := &Group{lc: lc, name: name, gates: lc.Gates()}
	seen := make(map[string]string) // check or task name: its gate
	for _, gate := range g.gates {
		rep := gate.Report()
		for _, n := range names(&rep) {
			if other, dup := seen[n]; dup && slices.Contains(checks, n) {
				return nil, fmt.Errorf("probes: group %q: %q is a check of both %s and %s; rename one", name, n, other, gate.Kind())
			}
			seen[n] = gate.Kind().String()
		}
	}
	if len(checks) == 0 {
		return g, nil
	}
	g.only = make(map[string]bool, len(checks))
	for _, n := range checks {
		if _, ok := seen[n]; !ok {
			return nil, fmt.Errorf("probes: group %q: no check or task %q in any gate (have: %s)", name, n, strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
		}
		g.only[n] = true
	}
	return g, nil
}

func names(r *Report) []string {
	out := make([]string, 0, len(r.Checks)+len(r.Tasks))
	for i := range r.Checks {
		out = append(out, r.Checks[i].Name)
	}
	for i := range r.Tasks {
		out = append(out, r.Tasks[i].Name)
	}
	return out
}

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Kind is Health.
func (g *Group) Kind() Kind { return Health }

// Report returns the group's checks and tasks now, each check marked local
// (see Group), sorted by name.
func (g *Group) Report() Report {
	rep := g.lc.Basis(Health).Report(Health)
	reports := make([]Report, len(g.gates))
	uses := make(map[string]int)
	for i, gate := range g.gates {
		reports[i] = gate.Report()
		for _, n := range names(&reports[i]) {
			uses[n]++
		}
		if g.only == nil {
			rep.Gates = append(rep.Gates, GateStatus{Gate: gate.Kind(), Status: reports[i].Status()})
		}
	}
	name := func(k Kind, n string) string {
		if uses[n] > 1 {
			return k.String() + "." + n
		}
		return n
	}
	for i, r := range reports {
		for _, c := range r.Checks {
			if g.only == nil || g.only[c.Name] {
				c.Shared = false
				c.Name = name(g.gates[i].Kind(), c.Name)
				rep.Checks = append(rep.Checks, c)
			}
		}
		for _, t := range r.Tasks {
			if g.only == nil || g.only[t.Name] {
				t.Name = name(g.gates[i].Kind(), t.Name)
				rep.Tasks = append(rep.Tasks, t)
			}
		}
	}
	slices.SortStableFunc(rep.Checks, func(a, b Result) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(rep.Tasks, func(a, b TaskState) int { return strings.Compare(a.Name, b.Name) })
	return rep
}

// Version grows with every phase move and every verdict change of the
// gates it reads.
func (g *Group) Version() uint64 {
	v := g.lc.Version()
	for _, gate := range g.gates {
		v += gate.Version()
	}
	return v
}

// Revision grows with Version and with every result of the gates it reads.
func (g *Group) Revision() uint64 {
	v := g.lc.Version()
	for _, gate := range g.gates {
		v += gate.Revision()
	}
	return v
}

// Subscribe registers fn to be called after every change of the gates it
// reads (and of the phase and the cordon), and returns a function that
// removes it.
func (g *Group) Subscribe(fn func()) (cancel func()) {
	cancels := make([]func(), 0, len(g.gates)+2)
	cancels = append(cancels, g.lc.Subscribe(func(Transition) { fn() }),
		g.lc.SubscribeCordon(func(CordonChange) { fn() }))
	for _, gate := range g.gates {
		cancels = append(cancels, gate.Subscribe(fn))
	}
	return func() {
		for _, c := range cancels {
			c()
		}
	}
}

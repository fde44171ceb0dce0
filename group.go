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
	lc   *Lifecycle
	name string
	only map[string]Kind // the named checks and tasks, with their gates; nil: every one of every gate
}

var _ Gate = (*Group)(nil)

// Lifecycle is the lifecycle the group reads.
func (g *Group) Lifecycle() *Lifecycle { return g.lc }

// NewGroup returns the group called name (a ValidName, used in text
// answers, such as "healthz") over the named checks and tasks of lc's
// gates, or over all of them, present and future, when checks is empty.
// Each named check must exist, in one gate only, when the group is built.
// A group over all checks names each by its canonical name (CheckName:
// "readiness/postgres"), so that two gates' checks of one name never clash.
func NewGroup(lc *Lifecycle, name string, checks ...string) (*Group, error) {
	if lc == nil {
		return nil, errors.New("probes: NewGroup(nil): need a *Lifecycle")
	}
	if !ValidName(name) {
		return nil, fmt.Errorf("probes: NewGroup(%q): use 1 to 63 letters, digits, '-', '_' or '.'", name)
	}
	g := &Group{lc: lc, name: name}
	if len(checks) == 0 {
		return g, nil
	}
	seen := make(map[string]Kind) // check or task name: its gate
	for _, gate := range lc.Gates() {
		rep := gate.Report()
		for _, n := range names(&rep) {
			if other, dup := seen[n]; dup && slices.Contains(checks, n) {
				return nil, fmt.Errorf("probes: group %q: %q is a check of both %s and %s; rename one", name, n, other, gate.Kind())
			}
			seen[n] = gate.Kind()
		}
	}
	g.only = make(map[string]Kind, len(checks))
	for _, n := range checks {
		k, ok := seen[n]
		if !ok {
			return nil, fmt.Errorf("probes: group %q: no check or task %q in any gate (have: %s)", name, n, strings.Join(slices.Sorted(maps.Keys(seen)), ", "))
		}
		g.only[n] = k
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

// Named reports whether the group reads named checks, rather than every
// check of every gate.
func (g *Group) Named() bool { return g.only != nil }

// Name returns the group's name.
func (g *Group) Name() string { return g.name }

// Kind is Health.
func (g *Group) Kind() Kind { return Health }

// Report returns the group's checks and tasks now, each check marked local
// (see Group), sorted by name. In a group over every check, each is named
// by its canonical name, "<gate>/<check>" ("readiness/postgres",
// "startup/cache"), the name history, the page and the metrics use; in a
// group over named checks, by its own name.
func (g *Group) Report() Report {
	rep := g.lc.Basis(Health).Report(Health)
	for _, gate := range g.lc.gatesNow() {
		r := gate.Report()
		if g.only == nil {
			rep.Gates = append(rep.Gates, GateStatus{Gate: gate.Kind(), Status: r.Status()})
		}
		for _, c := range r.Checks {
			if g.includes(gate.Kind(), c.Name) {
				c.Shared = false
				c.Name = g.named(gate.Kind(), c.Name)
				rep.Checks = append(rep.Checks, c)
			}
		}
		for _, t := range r.Tasks {
			if g.includes(gate.Kind(), t.Name) {
				t.Name = g.named(gate.Kind(), t.Name)
				rep.Tasks = append(rep.Tasks, t)
			}
		}
	}
	slices.SortStableFunc(rep.Checks, func(a, b Result) int { return strings.Compare(a.Name, b.Name) })
	slices.SortStableFunc(rep.Tasks, func(a, b TaskState) int { return strings.Compare(a.Name, b.Name) })
	return rep
}

// includes reports whether the group reads check or task name of gate k.
func (g *Group) includes(k Kind, name string) bool {
	if g.only == nil {
		return true
	}
	have, ok := g.only[name]
	return ok && have == k
}

// named is the name a check or task of gate k goes by in the group.
func (g *Group) named(k Kind, name string) string {
	if g.only != nil {
		return name
	}
	return CheckName(k, name)
}

// CheckName is the canonical name of check (or warm-up task) name of gate
// k: "<gate>/<name>", such as "readiness/postgres". Every document that
// lists the checks of more than one gate (the deep view, history, the page,
// the fleet view) names them so; a gate's own answers (/readyz/postgres)
// and the metrics' gate and check labels say the same in their own shape.
func CheckName(k Kind, name string) string { return k.String() + "/" + name }

// Version grows with every phase move (a gate built among them) and every
// verdict change of the gates it reads.
func (g *Group) Version() uint64 {
	v := g.lc.Version()
	for _, gate := range g.lc.gatesNow() {
		v += gate.Version()
	}
	return v
}

// Revision grows with Version and with every result of the gates it reads.
func (g *Group) Revision() uint64 {
	v := g.lc.Version()
	for _, gate := range g.lc.gatesNow() {
		v += gate.Revision()
	}
	return v
}

// Subscribe registers fn to be called after every change of the gates it
// reads, those built later included (and of the phase and the cordon),
// and returns a function that removes it.
func (g *Group) Subscribe(fn func()) (cancel func()) {
	return g.lc.Watch(func(c Change) {
		if c.Kind != Executed {
			fn()
		}
	})
}

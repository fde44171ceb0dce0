// Package readout is what the metric exporters (package metrics for
// Prometheus, package otelprobes for OpenTelemetry) export, read from a
// lifecycle's facts in one walk. Each value comes as a Reading: the fact it
// is and what tells its series apart. An exporter maps each fact to a name
// of its own (probes_phase, probes.phase) and nothing more: neither walks
// the gates, and no value is derived twice.
package readout

import (
	"iter"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// Fact is one kind of value the exporters export.
type Fact uint8

// The facts, and what tells their series apart (the Reading fields they
// set besides Value). A one-hot fact is 1 for the series that holds and 0
// for the others.
const (
	// Phase is one-hot over the phases: by Phase.
	Phase Fact = iota
	// Cordoned is 1 while the instance is cordoned, else 0.
	Cordoned
	// GateStatus is one-hot over a gate's statuses: by Gate and Status.
	GateStatus
	// CheckStatus is one-hot over a check's statuses after its thresholds:
	// by Gate, Name and Status.
	CheckStatus
	// LastResult is when a check's last result came, in seconds since the
	// epoch, 0 before the first: by Gate and Name.
	LastResult
	// Stale is 1 while a check's last result is stale: by Gate and Name.
	Stale
	// ConsecutiveFailures counts a check's failures since its last pass or
	// warning: by Gate and Name.
	ConsecutiveFailures
	// Flapping is 1 while a check's outcomes keep changing: by Gate and
	// Name.
	Flapping
	// WarmupProgress is the whole warm-up's progress, from 0 to 1: the
	// startup gate's (Report.Progress) when it has tasks, else 1 once the
	// lifecycle has started and 0 before.
	WarmupProgress
	// WarmupDuration is how long the last warm-up has lasted, in seconds
	// (Lifecycle.WarmupLength).
	WarmupDuration
	// TaskProgress is one warm-up task's progress, from 0 to 1: by Name.
	TaskProgress
	// Restarts counts the instances that ran before this one in its state
	// directory (Past.Restarts). It is read always, 0 without a past: the
	// facts cannot tell a first instance from one that keeps no state
	// directory, and a series there from the first scrape shows the first
	// restart as a change.
	Restarts
	// LastEnd is 1, by Name: how the last of those instances ended
	// (Past.Ended: stopped, broken, closed, without a word). Only when
	// there was one.
	LastEnd
	// LastEndTime is when the last of them ended, in seconds since the
	// epoch (Past.End). Only when that is known: not after an end without
	// a word.
	LastEndTime

	// NumFacts is the number of facts: a table by Fact has this length.
	NumFacts
)

// OfCheck reports whether f is a fact of one check: its series are told
// apart by Gate and Name.
func (f Fact) OfCheck() bool { return f >= CheckStatus && f <= Flapping }

// Reading is one value of one fact.
type Reading struct {
	Fact   Fact
	Phase  probes.Phase  // of Phase
	Gate   probes.Kind   // of GateStatus and of a check's facts
	Status probes.Status // of GateStatus and CheckStatus
	Name   string        // the check's, the task's for TaskProgress, how the last instance ended for LastEnd
	Value  float64
}

// LastPhase is the last phase: Phases and Moves go up to it.
const LastPhase = probes.Broken

// Phases are every phase, in order.
func Phases() iter.Seq[probes.Phase] {
	return func(yield func(probes.Phase) bool) {
		for p := probes.Cold; p <= LastPhase; p++ {
			if !yield(p) {
				return
			}
		}
	}
}

// Statuses are every status, from fail to pass.
func Statuses() iter.Seq[probes.Status] {
	return func(yield func(probes.Status) bool) {
		for s := probes.Fail; s <= probes.Pass; s++ {
			if !yield(s) {
				return
			}
		}
	}
}

// Moves are every move a lifecycle can make (probes.CanMove), from and to:
// the transitions whose counters start at 0.
func Moves() iter.Seq2[probes.Phase, probes.Phase] {
	return func(yield func(from, to probes.Phase) bool) {
		for from := range Phases() {
			for to := range Phases() {
				if probes.CanMove(from, to) && !yield(from, to) {
					return
				}
			}
		}
	}
}

// Read calls emit with every reading of f, gate by gate in f's order and
// each gate's checks and tasks in report order; warmup is the lifecycle's
// WarmupLength, read with f. The Reading emit receives is reused: emit
// must not keep it.
func Read(f *probes.Facts, warmup time.Duration, emit func(*Reading)) {
	var r Reading
	put := func(fact Fact, v float64) {
		r.Fact, r.Value = fact, v
		emit(&r)
	}
	for p := range Phases() {
		r.Phase = p
		put(Phase, flag(p == f.Phase))
	}
	put(Cordoned, flag(!f.Cordon.IsZero()))
	// The past as anonymous readers see it: never its cause.
	past := f.Past.For(probes.Anonymous)
	put(Restarts, float64(past.Restarts))
	if !past.End.IsZero() {
		put(LastEndTime, seconds(past.End))
	}
	if past.Ended != "" {
		r.Name = past.Ended
		put(LastEnd, 1)
	}
	progress := flag(f.Started) // a service with no warm-up tasks
	for i := range f.Gates {
		g := &f.Gates[i]
		r.Gate, r.Name = g.Gate, ""
		status := g.Status()
		for s := range Statuses() {
			r.Status = s
			put(GateStatus, flag(s == status))
		}
		for j := range g.Checks {
			c := &g.Checks[j]
			r.Name = c.Name
			for s := range Statuses() {
				r.Status = s
				put(CheckStatus, flag(s == c.Status))
			}
			var last float64
			if !c.Time.IsZero() {
				last = seconds(c.Time)
			}
			put(LastResult, last)
			put(Stale, flag(c.Stale))
			put(ConsecutiveFailures, float64(c.ConsecutiveFailures))
			put(Flapping, flag(c.Flapping))
		}
		for j := range g.Tasks {
			r.Name = g.Tasks[j].Name
			put(TaskProgress, g.Tasks[j].Progress())
		}
		if len(g.Tasks) > 0 {
			progress = g.Progress()
		}
	}
	put(WarmupProgress, progress)
	put(WarmupDuration, warmup.Seconds())
}

// Drain is how long st's drain has lasted: its length once over, the time
// since it began while it goes on, 0 before.
func Drain(st *server.Stats) time.Duration {
	if st.Drain == 0 && !st.DrainBegan.IsZero() {
		return max(time.Since(st.DrainBegan), 0)
	}
	return st.Drain
}

// seconds is t in seconds since the epoch, the whole seconds and the
// fraction converted apart: float64(t.UnixNano())/1e9 rounds twice.
func seconds(t time.Time) float64 { return float64(t.Unix()) + float64(t.Nanosecond())/1e9 }

func flag(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ByCheck holds one value per check (or per name of a gate, such as a
// warm-up task), made on first use by the function given to NewByCheck.
// Get takes no lock once the value exists, so that recording an execution
// looks up a map and nothing more. It is safe for concurrent use.
type ByCheck[V any] struct {
	build func(gate probes.Kind, name string) V
	mu    sync.Mutex                     // serialises additions
	m     atomic.Pointer[map[checkKey]V] // copied on write
}

type checkKey struct {
	gate probes.Kind
	name string
}

// NewByCheck returns an empty ByCheck whose values build makes; build runs
// once per check, under a lock.
func NewByCheck[V any](build func(gate probes.Kind, name string) V) *ByCheck[V] {
	b := &ByCheck[V]{build: build}
	b.m.Store(&map[checkKey]V{})
	return b
}

// Get returns the value of the named check of gate, making it on first use.
func (b *ByCheck[V]) Get(gate probes.Kind, name string) V {
	key := checkKey{gate, name}
	if v, ok := (*b.m.Load())[key]; ok {
		return v
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.m.Load()
	if v, ok := old[key]; ok {
		return v
	}
	v := b.build(gate, name)
	next := maps.Clone(old)
	next[key] = v
	b.m.Store(&next)
	return v
}

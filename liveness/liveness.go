// Package liveness holds the liveness gate: it asks only whether this process
// itself is healthy, never whether a dependency is, so that a database outage
// does not restart every pod.
//
// The gate passes in every phase but Broken, as long as its self-checks pass.
// Self-checks are things like heartbeats of critical goroutines (a worker loop
// that must tick at least every N seconds) added with Heartbeat, or any
// in-process check added with Add. The checks run as background work of the
// lifecycle (probes.Lifecycle.Run, which server.Server.Run calls).
//
// Its checks are local by definition (they watch this process), so Add
// refuses probes.Shared. A result older than its bound (probes.StaleAfter)
// counts as failing, so a stalled heartbeat check cannot keep passing.
//
// The package uses only the standard library.
package liveness

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/checkgate"
)

// Gate is the liveness gate. Create one with New and add self-checks with
// Heartbeat or Add; the lifecycle's Run runs them.
type Gate struct {
	g  *checkgate.Gate
	lc *probes.Lifecycle
}

var _ probes.Gate = (*Gate)(nil)

// New returns the liveness gate of lc and attaches it to lc. It fails when
// lc is nil or already has a liveness gate.
func New(lc *probes.Lifecycle) (*Gate, error) {
	g, err := checkgate.New(lc, probes.Liveness)
	if err != nil {
		return nil, err
	}
	return &Gate{g: g, lc: lc}, nil
}

// Add registers a self-check under name. It must not look at other
// services: a liveness failure restarts the process, which cures nothing
// elsewhere, so Add refuses probes.Shared. Options set its schedule,
// timeout and thresholds (see probes.CheckOption). It fails, changing
// nothing, when name is not probes.ValidName or is taken, when c is nil, or
// with an error naming the option when an option is invalid. Until its
// first execution ends, a self-check passes: it has not failed.
func (g *Gate) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	return g.g.Add(name, c, opts...)
}

// Trigger runs the named check as soon as it may: at once, or after the
// execution in flight, and no sooner than its Recheck wait after the last
// execution began. It does nothing for an unknown name or before the
// lifecycle runs.
func (g *Gate) Trigger(name string) { g.g.Trigger(name) }

// OnExecution registers fn to be called after every execution of the
// gate's checks, in the order they ran, with its own outcome and duration,
// and returns a function that removes it; see readiness.Gate.OnExecution.
func (g *Gate) OnExecution(fn func(probes.Execution)) (cancel func()) { return g.g.OnExecution(fn) }

// Kind returns probes.Liveness.
func (g *Gate) Kind() probes.Kind { return g.g.Kind() }

// Lifecycle is the lifecycle the gate is built on.
func (g *Gate) Lifecycle() *probes.Lifecycle { return g.g.Lifecycle() }

// Report returns the gate's state now: the phase's verdict and every
// self-check's latest result.
func (g *Gate) Report() probes.Report { return g.g.Report() }

// Version grows with every phase move and every change of a check's
// verdict (see probes.Gate).
func (g *Gate) Version() uint64 { return g.g.Version() }

// Revision grows with Version and with every other check result (see
// probes.Gate).
func (g *Gate) Revision() uint64 { return g.g.Revision() }

// Subscribe registers fn to be called after every change of a check's
// verdict or of the lifecycle's phase, on the goroutine that made it, and
// returns a function that removes it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.g.Subscribe(fn) }

// Heartbeat registers a self-check that fails when the returned Heartbeat has
// not ticked for longer than limit. The goroutine it watches calls Tick in its
// loop. The limit starts counting now, so create the heartbeat when its
// goroutine starts, not before a long warm-up. The check is evaluated every
// limit/4, and again soon after a Tick that follows a failure (within a
// tenth of that). Ages are measured on
// the monotonic clock: a wall-clock step does not fail it. Verbose bodies
// show the age of the last tick ("<name>:age", in seconds).
func (g *Gate) Heartbeat(name string, limit time.Duration) (*Heartbeat, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("liveness: Heartbeat(%q, %s): the limit must be positive", name, limit)
	}
	h := &Heartbeat{clock: g.lc.Clock(), gate: g, name: name, limit: limit}
	h.base = h.clock.Now()
	err := g.Add(name, probes.CheckFunc(h.check),
		probes.Every(max(limit/4, time.Millisecond)), probes.ComponentType("system"), probes.Untimed())
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Heartbeat is the liveness signal of one critical goroutine. Tick is cheap
// and safe for concurrent use.
type Heartbeat struct {
	clock   probes.Clock
	gate    *Gate
	name    string
	limit   time.Duration
	base    time.Time    // creation; its monotonic reading makes ages immune to clock steps
	last    atomic.Int64 // time of the last Tick, as nanoseconds since base
	failing atomic.Bool
}

// Tick records that the watched goroutine is alive.
func (h *Heartbeat) Tick() {
	h.last.Store(int64(h.clock.Now().Sub(h.base)))
	if h.failing.Load() {
		h.gate.Trigger(h.name)
	}
}

func (h *Heartbeat) check(ctx context.Context) error {
	age := h.clock.Now().Sub(h.base) - time.Duration(h.last.Load())
	probes.Observe(ctx, probes.Observation{Measurement: "age", Value: age.Seconds(), Unit: "s"})
	if age > h.limit {
		h.failing.Store(true)
		return fmt.Errorf("no heartbeat for %s (limit %s)", age.Round(time.Millisecond), h.limit)
	}
	h.failing.Store(false)
	return nil
}

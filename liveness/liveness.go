// Package liveness holds the liveness gate: it asks only whether this process
// itself is healthy, never whether a dependency is, so that a database outage
// does not restart every pod.
//
// The gate passes in every phase but Broken, as long as its self-checks pass.
// Self-checks are things like heartbeats of critical goroutines (a worker loop
// that must tick at least every N seconds) added with Heartbeat, or any
// in-process check added with Add.
//
// The package uses only the standard library.
package liveness

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
)

// Gate is the liveness gate. Create one with New.
type Gate struct {
	lc   *probes.Lifecycle
	core *probes.CheckGate
}

// New returns the liveness gate of lc. It panics if lc is nil.
func New(lc *probes.Lifecycle) *Gate {
	if lc == nil {
		panic("liveness: New with a nil *probes.Lifecycle")
	}
	return &Gate{lc: lc, core: probes.NewCheckGate(lc, "liveness", base)}
}

func base(p probes.Phase) (probes.Status, string) {
	if p == probes.Broken {
		return probes.Fail, "phase: broken; the process must be restarted"
	}
	return probes.Pass, "phase: " + p.String()
}

// Add registers a self-check under name. It must not look at other services:
// a liveness failure restarts the process, which cures nothing elsewhere. It
// returns an error naming the problem when name or an option is invalid.
func (g *Gate) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	if err := g.core.Add(name, c, opts...); err != nil {
		return fmt.Errorf("liveness: %w", err)
	}
	return nil
}

// Heartbeat registers a self-check that fails when the returned Heartbeat has
// not ticked for longer than limit. The goroutine it watches calls Tick in its
// loop. The limit starts counting now, so create the heartbeat when its
// goroutine starts, not before a long warm-up. The check is evaluated every
// limit/4, and at once on a Tick that follows a failure. Ages are measured on
// the monotonic clock: a wall-clock step does not fail it.
func (g *Gate) Heartbeat(name string, limit time.Duration) (*Heartbeat, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("liveness: heartbeat %q: limit %s must be positive", name, limit)
	}
	h := &Heartbeat{clock: g.lc.Clock(), gate: g.core, name: name, limit: limit}
	h.base = h.clock.Now()
	err := g.Add(name, probes.CheckFunc(h.check),
		probes.Every(max(limit/4, time.Millisecond)), probes.ComponentType("system"))
	if err != nil {
		return nil, err
	}
	return h, nil
}

// Run executes the self-checks until ctx is done and returns ctx.Err().
func (g *Gate) Run(ctx context.Context) error { return g.core.Run(ctx) }

// Report returns the gate's current state.
func (g *Gate) Report() probes.Report { return g.core.Report() }

// Subscribe registers fn to be called after every change of a check's verdict
// or of the lifecycle's phase, on the goroutine that made it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.core.Subscribe(fn) }

// Heartbeat is the liveness signal of one critical goroutine. Tick is cheap
// and safe for concurrent use.
type Heartbeat struct {
	clock   probes.Clock
	gate    *probes.CheckGate
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

func (h *Heartbeat) check(context.Context) error {
	age := h.clock.Now().Sub(h.base) - time.Duration(h.last.Load())
	if age > h.limit {
		h.failing.Store(true)
		return fmt.Errorf("no heartbeat for %s (limit %s)", age.Round(time.Millisecond), h.limit)
	}
	h.failing.Store(false)
	return nil
}

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

// Gate is the liveness gate. Create one with New. Its Add registers a
// self-check, which must not look at other services: a liveness failure
// restarts the process, which cures nothing elsewhere. An invalid name or
// option is an error that names it; see probes.CheckOption for the options
// and their defaults.
type Gate struct {
	*checkgate.Gate
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
	return &Gate{Gate: g, lc: lc}, nil
}

// Heartbeat registers a self-check that fails when the returned Heartbeat has
// not ticked for longer than limit. The goroutine it watches calls Tick in its
// loop. The limit starts counting now, so create the heartbeat when its
// goroutine starts, not before a long warm-up. The check is evaluated every
// limit/4, and at once on a Tick that follows a failure. Ages are measured on
// the monotonic clock: a wall-clock step does not fail it. Verbose bodies
// show the age of the last tick ("<name>:age", in seconds).
func (g *Gate) Heartbeat(name string, limit time.Duration) (*Heartbeat, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("liveness: Heartbeat(%q, %s): the limit must be positive", name, limit)
	}
	h := &Heartbeat{clock: g.lc.Clock(), gate: g.Gate, name: name, limit: limit}
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
	gate    *checkgate.Gate
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

package server

// What a Server says of how long it takes to stop, and what it has seen.

import (
	"math"
	"time"
)

// Timings is what a Server's configuration says about how long it takes to
// stop: what the platform's kill timeout (terminationGracePeriodSeconds,
// systemd's TimeoutStopSec) and readiness probe must fit. Package deployspec
// turns it into probe specs.
type Timings struct {
	// Drain is the fixed drain (DrainDelay), or DrainUntilProbed's or
	// DrainUntilQuiet's maximum.
	Drain time.Duration
	// DrainProbes is DrainUntilProbed's count of failing readiness
	// answers; 0 for a fixed drain.
	DrainProbes int
	// DrainQuiet is how long a probe-aware drain waits without application
	// requests once the probers have seen readiness fail, or the quiet
	// period of DrainUntilQuiet.
	DrainQuiet time.Duration
	// DrainMin is DrainUntilQuiet's minimum; 0 for the other drains.
	DrainMin time.Duration
	// ShutdownTimeout bounds the HTTP (and peer) shutdown and the wait for
	// background work together.
	ShutdownTimeout time.Duration
	// OnDrain and AfterClose are the sums of the hooks' timeouts.
	OnDrain, AfterClose time.Duration
}

// Stop is the longest a shutdown can take, from the signal to Run's
// return: the drain (the OnDrain hooks run inside it, so the longer of the
// two), the shutdown timeout, the AfterClose hooks, and the three
// one-second bounds (the handlers of cut requests, background work that
// ignores its context, the probe listener).
// The sum saturates at the longest time.Duration instead of wrapping.
func (t Timings) Stop() time.Duration {
	var sum time.Duration
	for _, d := range []time.Duration{max(t.OnDrain, t.Drain), t.ShutdownTimeout, t.AfterClose, cutHandlersGrace, backgroundGrace, probeCloseGrace} {
		if d > math.MaxInt64-sum {
			return math.MaxInt64
		}
		sum += d
	}
	return sum
}

// Timings returns what the Server's options say about how long it takes to
// stop.
func (s *Server) Timings() Timings {
	t := Timings{Drain: s.cfg.drainDelay, ShutdownTimeout: s.cfg.shutdownTimeout}
	if s.cfg.probed != nil {
		t.Drain, t.DrainProbes, t.DrainQuiet = s.cfg.probedMax, s.cfg.probedN, s.cfg.drainQuiet
	}
	if q := s.cfg.quiet; q != nil {
		t.Drain, t.DrainQuiet, t.DrainMin = q.max, q.quiet, q.min
	}
	for _, h := range s.cfg.onDrain {
		t.OnDrain += h.timeout
	}
	for _, h := range s.cfg.afterClose {
		t.AfterClose += h.timeout
	}
	return t
}

// Stats is what a Server has seen of its connections and its shutdown.
type Stats struct {
	// RefusedConns counts connections closed at once because the
	// application listener held MaxConns.
	RefusedConns uint64
	// DrainBegan is when readiness began failing for the shutdown; zero
	// before, and for a shutdown of a service that was never ready, which
	// skips the drain.
	DrainBegan time.Time
	// Drain is how long the drain lasted; zero until it is over.
	Drain time.Duration
	// LateRequests counts application requests that arrived after the
	// drain began: the balancers had not noticed yet. Many of them, or
	// any AfterProbed, say the drain is too short for the balancers.
	LateRequests uint64
	// AfterProbed counts the late requests that arrived after a
	// probe-aware drain had seen readiness fail as often as it wanted: a
	// client that does not follow the probes (or a prober that does not
	// matter was counted).
	AfterProbed uint64
	// CutRequests counts requests the shutdown timeout cut off.
	CutRequests int64
}

// Stats returns what the Server has seen so far. It may be called at any
// time, from any goroutine.
func (s *Server) Stats() Stats {
	st := Stats{
		LateRequests: s.drained.n.Load(),
		AfterProbed:  s.drained.afterProbed.Load(),
		CutRequests:  s.drained.cut.Load(),
		Drain:        time.Duration(s.drained.took.Load()),
	}
	if s.conns != nil {
		st.RefusedConns = s.conns.Refused()
	}
	if ns := s.drained.began.Load(); ns != 0 {
		st.DrainBegan = time.Unix(0, ns)
	}
	return st
}

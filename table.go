package probes

import "fmt"

// Kind names one of the three gates.
type Kind uint8

const (
	// Startup passes once warm-up has finished, and stays passed.
	Startup Kind = iota
	// Liveness asks only whether the process itself is healthy.
	Liveness
	// Readiness asks whether the service should get traffic now.
	Readiness
	// Health is no gate of its own: it is the deep view and the named
	// groups (see Group), which report checks of every gate to monitors.
	Health
)

// String returns "startup", "liveness" or "readiness".
func (k Kind) String() string {
	switch k {
	case Startup:
		return "startup"
	case Liveness:
		return "liveness"
	case Readiness:
		return "readiness"
	case Health:
		return "health"
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// verdict is the one phase x gate table: what gate k answers in phase p
// before it looks at any check or task, with a note that says why. started
// reports whether the lifecycle has been Ready at least once (the startup
// latch). Every gate and every surface (HTTP, systemd, ...) reads this table
// and no other.
//
//	phase     startup             liveness  readiness
//	Cold      fail                pass      fail
//	Warming   fail; pass if started (a Rewarm)  pass  fail
//	Ready     pass                pass      pass
//	Draining  pass if started     pass      fail
//	Stopped   pass if started     pass      fail
//	Broken    fail                fail      fail
//
// The cordon (Lifecycle.Cordon) adds a column that Lifecycle.Basis
// applies: while cordoned in Cold, Warming or Ready, readiness fails and
// the deep view warns; startup and liveness, and every gate from Draining
// on, answer as without it.
//
// Health, the deep view for monitors, passes in Ready, warns in every other
// phase but Broken (a warm-up or a drain is no outage), and fails in
// Broken; its checks decide the rest.
//
// Startup in Draining or Stopped passes only if warm-up had finished: a
// service stopped halfway through its warm-up never started, and saying
// otherwise would tell systemd or the kubelet a lie that nothing needs.
func (k Kind) verdict(p Phase, started bool) (Status, string) {
	if p == Broken {
		return Fail, "phase: broken; the process must be restarted"
	}
	switch k {
	case Startup:
		switch {
		case started:
			return Pass, "phase: " + p.String()
		case p == Cold:
			return Fail, "phase: cold; warm-up has not started"
		case p == Warming:
			return Fail, "phase: warming"
		}
		return Fail, "phase: " + p.String() + "; stopped before warm-up finished"
	case Liveness:
		if p <= Broken {
			return Pass, "phase: " + p.String()
		}
	case Readiness:
		switch p {
		case Ready:
			return Pass, "phase: ready"
		case Cold:
			return Fail, "phase: cold; warm-up has not started"
		case Warming:
			return Fail, "phase: warming; not ready until warm-up is done"
		case Draining:
			return Fail, "phase: draining; shutting down, send no new traffic"
		case Stopped:
			return Fail, "phase: stopped"
		}
	case Health:
		if p == Ready {
			return Pass, "phase: ready"
		}
		if p < Broken {
			return Warn, "phase: " + p.String()
		}
	}
	return Fail, "phase: " + p.String()
}

// Serves reports whether application routes may answer in phase p: in Ready,
// and while Draining or Stopped only if warm-up had finished (late requests
// during a drain are served; a service that never finished warming never
// serves). server.WarmupGuard applies it.
func Serves(p Phase, started bool) bool {
	switch p {
	case Ready:
		return true
	case Draining, Stopped:
		return started
	}
	return false
}

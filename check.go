package probes

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/probekit/probes/internal/spec"
)

// Checker is one named health check. Check returns nil when healthy, an error
// wrapping ErrWarn for a warning, and any other error for a failure. It must
// honour ctx: the runner cancels it at the check's timeout.
type Checker interface {
	Check(ctx context.Context) error
}

// CheckFunc turns a function into a Checker.
type CheckFunc func(ctx context.Context) error

// Check calls f(ctx).
func (f CheckFunc) Check(ctx context.Context) error { return f(ctx) }

// Defaults of the check options.
const (
	// DefaultInterval is how often a check runs: 5s.
	DefaultInterval = spec.DefaultInterval
	// DefaultTimeout bounds one execution: 1s.
	DefaultTimeout = spec.DefaultTimeout
	// DefaultFailureThreshold is how many failures in a row flip a
	// passing check: 1.
	DefaultFailureThreshold = spec.DefaultFailureThreshold
	// DefaultSuccessThreshold is how many passes in a row flip a failing
	// check back: 1.
	DefaultSuccessThreshold = spec.DefaultSuccessThreshold
)

// CheckOption configures one check: Every, Timeout, FailureThreshold,
// SuccessThreshold, NonCritical, ComponentType, Untimed, Shared, Local,
// StaleAfter and Recheck make one, and the set is closed. An invalid value
// makes the gate's Add return an error that names the option; a nil
// CheckOption does nothing.
type CheckOption interface {
	checkOption()
}

// checkOpt is every CheckOption; the gates apply it through spec.Applier.
type checkOpt func(*spec.Check) error

func (checkOpt) checkOption() {}

// ApplyCheck sets what the option sets in c.
func (o checkOpt) ApplyCheck(c *spec.Check) error { return o(c) }

var _ spec.Applier = checkOpt(nil)

func checkOption(f func(*spec.Check) error) CheckOption { return checkOpt(f) }

// Every sets how often the check runs, counted from the start of one execution
// to the start of the next. Default DefaultInterval (5s).
func Every(d time.Duration) CheckOption {
	return positive("Every", "interval", d, func(c *spec.Check) *time.Duration { return &c.Interval })
}

// positive is an option that sets a duration which must be positive.
func positive(option, what string, d time.Duration, field func(*spec.Check) *time.Duration) CheckOption {
	return checkOption(func(c *spec.Check) error {
		if d <= 0 {
			return fmt.Errorf("%s(%s): the %s must be positive", option, d, what)
		}
		*field(c) = d
		return nil
	})
}

// Timeout bounds one execution; past it the execution is reported failing and
// its context is cancelled. Default DefaultTimeout (1s).
func Timeout(d time.Duration) CheckOption {
	return positive("Timeout", "timeout", d, func(c *spec.Check) *time.Duration { return &c.Timeout })
}

// FailureThreshold sets how many consecutive failures flip a passing check to
// fail. Default 1. The first result always decides at once.
func FailureThreshold(n int) CheckOption {
	return checkOption(func(c *spec.Check) error {
		if n < 1 {
			return fmt.Errorf("FailureThreshold(%d): the threshold must be at least 1", n)
		}
		c.FailThreshold = n
		return nil
	})
}

// SuccessThreshold sets how many consecutive passes flip a failing check back.
// Default 1.
func SuccessThreshold(n int) CheckOption {
	return checkOption(func(c *spec.Check) error {
		if n < 1 {
			return fmt.Errorf("SuccessThreshold(%d): the threshold must be at least 1", n)
		}
		c.PassThreshold = n
		return nil
	})
}

// NonCritical makes a failure of the check a warning for its gate: the gate
// answers warn (HTTP 200) instead of fail. Checks are critical by default.
func NonCritical() CheckOption {
	return checkOption(func(c *spec.Check) error { c.Critical = false; return nil })
}

// ComponentType sets the health+json componentType of the check, such as
// "datastore" or "system". Default "component".
func ComponentType(t string) CheckOption {
	return checkOption(func(c *spec.Check) error {
		if t == "" {
			return fmt.Errorf("ComponentType(%q): need a type", t)
		}
		c.ComponentType = t
		return nil
	})
}

// Untimed leaves the check's execution time out of verbose bodies, for a
// check whose execution time means nothing, such as a heartbeat, which
// observes what matters (the age of its last tick) with Observe instead.
func Untimed() CheckOption {
	return checkOption(func(c *spec.Check) error { c.Untimed = true; return nil })
}

// Shared declares the check a dependency that the whole fleet shares, such
// as the primary database or a shared upstream: when it fails, it fails for
// every replica at once, and taking them all out of rotation would turn a
// partial outage into a total one. A failing shared check makes readiness
// warn (HTTP 200, the check named in the notes) instead of fail; route
// guards (server.Needs) fail the routes that need it, and the deep view
// (/healthz) still fails. Until the check has passed once on this
// instance, its failures count as local, so a replica that never reached
// the dependency (a wrong address in a new release) never becomes ready.
//
// Readiness checks are shared by default; liveness checks are local by
// definition and refuse Shared.
func Shared() CheckOption {
	return checkOption(func(c *spec.Check) error { c.Scope = spec.Shared; return nil })
}

// Local declares the check local to this instance, such as its own sidecar,
// a local disk or its own connection pool being wedged: when it fails,
// readiness fails and the balancer moves traffic to the other replicas,
// which do not share the fault.
func Local() CheckOption {
	return checkOption(func(c *spec.Check) error { c.Scope = spec.Local; return nil })
}

// StaleAfter sets how old the check's last result may grow before it counts
// as failing, so that a stalled check can never leave an old pass standing.
// It must be at least twice the interval plus the timeout (results of a
// healthy check can be that far apart). Default three intervals plus the
// timeout. A stale shared check fails readiness like a local one: a
// stalled schedule is this instance's own fault.
func StaleAfter(d time.Duration) CheckOption {
	return positive("StaleAfter", "bound", d, func(c *spec.Check) *time.Duration { return &c.StaleAfter })
}

// Recheck sets how soon a failing check runs again: after d rather than
// its interval, doubling after each further failure up to the interval,
// and back to d after a pass that has not yet flipped it back (see
// SuccessThreshold). A dependency that returns is seen within about d, so
// a 0.2 s database restart is not five seconds of failing readiness and
// 503s, while one that stays down costs at most a few executions more per
// outage (log2 of interval/d) before the check settles at its interval.
// Only a failing verdict speeds the check up; failures below the
// FailureThreshold keep the interval, so thresholds mean what they say.
// d also bounds Trigger: a check runs no sooner than d after its last
// execution began. Default a tenth of the interval, at most 1s; 0 turns
// the speed-up off (Trigger still waits the default).
func Recheck(d time.Duration) CheckOption {
	return checkOption(func(c *spec.Check) error {
		if d < 0 {
			return fmt.Errorf("Recheck(%s): must not be negative", d)
		}
		c.Recheck, c.RecheckSet = d, true
		return nil
	})
}

// ValidName reports whether name can name a check or task: 1 to 63 characters
// of lower- or upper-case letters, digits, '-', '_' and '.', so that it fits in
// a URL path segment and a health+json key unchanged.
func ValidName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for i := 0; i < len(name); i++ {
		b := name[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || strings.IndexByte("-_.", b) >= 0) {
			return false
		}
	}
	return true
}

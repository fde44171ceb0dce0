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
	DefaultInterval         = spec.DefaultInterval
	DefaultTimeout          = spec.DefaultTimeout
	DefaultFailureThreshold = spec.DefaultFailureThreshold
	DefaultSuccessThreshold = spec.DefaultSuccessThreshold
)

// CheckOption configures one check. An invalid value makes the gate's Add
// return an error that names the option.
type CheckOption func(*spec.Check) error

// Every sets how often the check runs, counted from the start of one execution
// to the start of the next. Default DefaultInterval (5s).
func Every(d time.Duration) CheckOption {
	return func(c *spec.Check) error {
		if d <= 0 {
			return fmt.Errorf("Every(%s): the interval must be positive", d)
		}
		c.Interval = d
		return nil
	}
}

// Timeout bounds one execution; past it the execution is reported failing and
// its context is cancelled. Default DefaultTimeout (1s).
func Timeout(d time.Duration) CheckOption {
	return func(c *spec.Check) error {
		if d <= 0 {
			return fmt.Errorf("Timeout(%s): the timeout must be positive", d)
		}
		c.Timeout = d
		return nil
	}
}

// FailureThreshold sets how many consecutive failures flip a passing check to
// fail. Default 1. The first result always decides at once.
func FailureThreshold(n int) CheckOption {
	return func(c *spec.Check) error {
		if n < 1 {
			return fmt.Errorf("FailureThreshold(%d): the threshold must be at least 1", n)
		}
		c.FailThreshold = n
		return nil
	}
}

// SuccessThreshold sets how many consecutive passes flip a failing check back.
// Default 1.
func SuccessThreshold(n int) CheckOption {
	return func(c *spec.Check) error {
		if n < 1 {
			return fmt.Errorf("SuccessThreshold(%d): the threshold must be at least 1", n)
		}
		c.PassThreshold = n
		return nil
	}
}

// NonCritical makes a failure of the check a warning for its gate: the gate
// answers warn (HTTP 200) instead of fail. Checks are critical by default.
func NonCritical() CheckOption {
	return func(c *spec.Check) error { c.Critical = false; return nil }
}

// ComponentType sets the health+json componentType of the check, such as
// "datastore" or "system". Default "component".
func ComponentType(t string) CheckOption {
	return func(c *spec.Check) error {
		if t == "" {
			return fmt.Errorf("ComponentType(%q): need a type", t)
		}
		c.ComponentType = t
		return nil
	}
}

// Untimed leaves the check's execution time out of verbose bodies, for a
// check whose execution time means nothing, such as a heartbeat, which
// observes what matters (the age of its last tick) with Observe instead.
func Untimed() CheckOption {
	return func(c *spec.Check) error { c.Untimed = true; return nil }
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

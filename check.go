package probes

import (
	"context"
	"fmt"
	"strings"
	"time"
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
	DefaultInterval         = 5 * time.Second
	DefaultTimeout          = time.Second
	DefaultFailureThreshold = 1
	DefaultSuccessThreshold = 1
)

// CheckOption configures one check. Invalid values make Add return an error
// that names the option.
type CheckOption interface {
	applyCheck(*checkConfig)
}

type checkOptionFunc func(*checkConfig)

func (f checkOptionFunc) applyCheck(c *checkConfig) { f(c) }

type checkConfig struct {
	interval      time.Duration
	timeout       time.Duration
	failThreshold int
	passThreshold int
	critical      bool
	componentType string
	err           error
}

func (c *checkConfig) fail(format string, args ...any) {
	if c.err == nil {
		c.err = fmt.Errorf("probes: "+format, args...)
	}
}

// Every sets how often the check runs, counted from the start of one execution
// to the start of the next. Default DefaultInterval (5s).
func Every(d time.Duration) CheckOption {
	return checkOptionFunc(func(c *checkConfig) {
		if d <= 0 {
			c.fail("Every(%s): the interval must be positive", d)
		}
		c.interval = d
	})
}

// Timeout bounds one execution; past it the execution is reported failing and
// its context is cancelled. Default DefaultTimeout (1s).
func Timeout(d time.Duration) CheckOption {
	return checkOptionFunc(func(c *checkConfig) {
		if d <= 0 {
			c.fail("Timeout(%s): the timeout must be positive", d)
		}
		c.timeout = d
	})
}

// FailureThreshold sets how many consecutive failures flip a passing check to
// fail. Default 1. The first result always decides at once.
func FailureThreshold(n int) CheckOption {
	return checkOptionFunc(func(c *checkConfig) {
		if n < 1 {
			c.fail("FailureThreshold(%d): the threshold must be at least 1", n)
		}
		c.failThreshold = n
	})
}

// SuccessThreshold sets how many consecutive passes flip a failing check back.
// Default 1.
func SuccessThreshold(n int) CheckOption {
	return checkOptionFunc(func(c *checkConfig) {
		if n < 1 {
			c.fail("SuccessThreshold(%d): the threshold must be at least 1", n)
		}
		c.passThreshold = n
	})
}

// NonCritical makes a failure of the check a warning for its gate: the gate
// answers warn (HTTP 200) instead of fail. Checks are critical by default.
func NonCritical() CheckOption {
	return checkOptionFunc(func(c *checkConfig) { c.critical = false })
}

// ComponentType sets the health+json componentType of the check, such as
// "datastore" or "system". Default "component".
func ComponentType(t string) CheckOption {
	return checkOptionFunc(func(c *checkConfig) { c.componentType = t })
}

func newCheckConfig(opts []CheckOption) (checkConfig, error) {
	c := checkConfig{
		interval:      DefaultInterval,
		timeout:       DefaultTimeout,
		failThreshold: DefaultFailureThreshold,
		passThreshold: DefaultSuccessThreshold,
		critical:      true,
		componentType: "component",
	}
	for _, o := range opts {
		if o != nil {
			o.applyCheck(&c)
		}
	}
	return c, c.err
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

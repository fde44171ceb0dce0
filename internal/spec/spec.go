// Package spec holds the settings of one check, as the check options in
// package probes set them and the runner reads them.
package spec

import (
	"fmt"
	"sync"
	"time"
)

// Defaults of a check's settings.
const (
	DefaultInterval         = 5 * time.Second
	DefaultTimeout          = time.Second
	DefaultFailureThreshold = 1
	DefaultSuccessThreshold = 1
)

// Check is the settings of one check.
type Check struct {
	Interval      time.Duration
	Timeout       time.Duration
	FailThreshold int
	PassThreshold int
	Critical      bool
	Untimed       bool // its execution time means nothing (a heartbeat)
	ComponentType string
	Scope         Scope
	StaleAfter    time.Duration // 0: StaleFactor intervals plus the timeout
	Recheck       time.Duration // see Rechecks
	RecheckSet    bool          // Recheck was given; otherwise DefaultRecheck
}

// DefaultRecheck returns the default first wait before a failing check of
// the given interval runs again: a tenth of the interval, at most a second.
func DefaultRecheck(interval time.Duration) time.Duration {
	return min(interval/10, time.Second)
}

// Rechecks returns the first wait before a failing check runs again, 0 when
// it keeps its interval.
func (c *Check) Rechecks() time.Duration {
	if c.RecheckSet {
		return min(c.Recheck, c.Interval)
	}
	return DefaultRecheck(c.Interval)
}

// TriggerGap returns how long after an execution began a Trigger may start
// the next one: the recheck wait, or its default when rechecks are off.
func (c *Check) TriggerGap() time.Duration {
	if w := c.Rechecks(); w > 0 {
		return w
	}
	return DefaultRecheck(c.Interval)
}

// Scope says whom a dependency's failure hits.
type Scope uint8

// Scopes of a check; Unset takes the gate's default.
const (
	Unset Scope = iota
	Shared
	Local
)

// StaleFactor is how many intervals, plus the timeout, a result stays valid
// by default.
const StaleFactor = 3

// Stale returns how long a result of c stays valid.
func (c *Check) Stale() time.Duration {
	if c.StaleAfter > 0 {
		return c.StaleAfter
	}
	return StaleFactor*c.Interval + c.Timeout
}

// Applier is what every probes.CheckOption is: the option's effect on a
// check's settings, hidden from the public API.
type Applier interface {
	ApplyCheck(*Check) error
}

// Apply applies opts to c in order and returns the first error, prefixed
// with what; later options still run. A nil option or one that is not an
// Applier does nothing.
func Apply[O any](what string, c *Check, opts []O) error {
	var first error
	for _, o := range opts {
		a, ok := any(o).(Applier)
		if !ok {
			continue
		}
		if err := a.ApplyCheck(c); err != nil && first == nil {
			first = fmt.Errorf("%s: %w", what, err)
		}
	}
	return first
}

// Default returns the settings of a check given no options.
func Default() Check {
	return Check{
		Interval:      DefaultInterval,
		Timeout:       DefaultTimeout,
		FailThreshold: DefaultFailureThreshold,
		PassThreshold: DefaultSuccessThreshold,
		Critical:      true,
		ComponentType: "component",
	}
}

// Name returns an error naming the rule when name cannot name a check or
// task (see probes.ValidName, which valid must be).
func Name(what, name string, valid func(string) bool) error {
	if valid(name) {
		return nil
	}
	return fmt.Errorf("%s name %q: use 1 to 63 letters, digits, '-', '_' or '.'", what, name)
}

// RecorderKey is the context key under which a check execution's Recorder
// travels to probes.Observe.
type RecorderKey struct{}

// Recorder collects what one execution observes; a later item with the same
// key replaces an earlier one. The timeout and the check's own goroutine may
// touch it at once.
type Recorder[T any] struct {
	Key func(T) string

	mu    sync.Mutex
	items []T
}

// Add records v.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range r.items {
		if r.Key(r.items[i]) == r.Key(v) {
			r.items[i] = v
			return
		}
	}
	r.items = append(r.items, v)
}

// Snapshot returns a copy of what was recorded.
func (r *Recorder[T]) Snapshot() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

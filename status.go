package probes

import (
	"errors"
	"fmt"
)

// Status is the verdict of a check or a gate, as the health+json format names
// it. The zero value is Fail, so a verdict nobody set fails closed. A smaller
// Status is worse.
type Status uint8

const (
	// Fail means unhealthy. HTTP 503. It is the zero value.
	Fail Status = iota
	// Warn means healthy with a concern, such as a failing non-critical dependency. HTTP 200.
	Warn
	// Pass means healthy. HTTP 200.
	Pass
)

// String returns "pass", "warn" or "fail".
func (s Status) String() string {
	switch s {
	case Pass:
		return "pass"
	case Warn:
		return "warn"
	case Fail:
		return "fail"
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// OK reports whether s lets a probe succeed: pass or warn. Any other value,
// the zero value included, does not.
func (s Status) OK() bool { return s == Pass || s == Warn }

// Worst returns the worse of a and b. A value that is not a known Status
// counts as Fail.
func Worst(a, b Status) Status {
	if !b.OK() || !a.OK() {
		return Fail
	}
	return min(a, b)
}

// ErrWarn marks a check error as a warning rather than a failure: a check that
// returns an error wrapping ErrWarn yields Warn.
//
//	return fmt.Errorf("replication lag %s: %w", lag, probes.ErrWarn)
var ErrWarn = errors.New("warning")

// StatusOf maps a check's error to a Status: nil is Pass, an error wrapping
// ErrWarn is Warn, anything else is Fail.
func StatusOf(err error) Status {
	switch {
	case err == nil:
		return Pass
	case errors.Is(err, ErrWarn):
		return Warn
	}
	return Fail
}

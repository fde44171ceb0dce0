package probes

import (
	"errors"
	"fmt"
)

// Status is the verdict of a check or a gate, as the health+json format names it.
// The order is meaningful: a larger Status is worse.
type Status uint8

const (
	// Pass means healthy. HTTP 200.
	Pass Status = iota
	// Warn means healthy with a concern, such as a failing non-critical dependency. HTTP 200.
	Warn
	// Fail means unhealthy. HTTP 503.
	Fail
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

// OK reports whether s lets a probe succeed (pass or warn).
func (s Status) OK() bool { return s == Pass || s == Warn }

// worst returns the worse of two statuses.
func worst(a, b Status) Status {
	if b > a {
		return b
	}
	return a
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

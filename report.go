package probes

import (
	"regexp"
	"time"
)

// Result is the latest state of one check.
type Result struct {
	// Name is the check's name, unique within its gate.
	Name string
	// ComponentType is the health+json componentType, such as "datastore".
	ComponentType string
	// Critical reports whether a failure fails the gate (true) or only warns.
	Critical bool
	// Status is the verdict after the thresholds. A check that has not yet
	// finished an execution fails.
	Status Status
	// Time is when the last execution ended; zero before the first.
	Time time.Time
	// Duration is how long the last execution took.
	Duration time.Duration
	// ConsecutiveFailures counts the failures since the last pass or warning.
	ConsecutiveFailures int
	// Executions counts the executions started so far.
	Executions uint64
	// Observations are what the last execution measured besides its
	// duration (see Observe).
	Observations []Observation
	// Err is the last execution's error, nil when it passed. Its text has
	// passwords in connection strings masked; errors.Is still sees the cause.
	Err error
}

// TaskState is the progress of one warm-up task.
type TaskState struct {
	Name string
	// Done reports whether the task has succeeded.
	Done bool
	// Fraction is the task's own estimate of its progress, from 0 to 1.
	Fraction float64
	// Attempts counts the attempts started so far.
	Attempts int
	// Failures counts the attempts that failed.
	Failures int
	// Err is the error of the last failed attempt, nil if none failed.
	Err error
}

// Report is a gate's state at one moment: the model that package server turns
// into health+json and text bodies.
type Report struct {
	// Gate names the gate: "startup", "liveness" or "readiness".
	Gate string
	// Phase is the lifecycle's phase when the report was made.
	Phase Phase
	// Base is the gate's verdict from the phase alone, before its checks.
	Base Status
	// Notes are short human-readable lines, such as "phase: warming".
	Notes []string
	// Checks holds the gate's checks, sorted by name.
	Checks []Result
	// Tasks holds the warm-up tasks (startup gate only), sorted by name.
	Tasks []TaskState
}

// Status is the gate's verdict: the worse of Base and every check's
// contribution, where a failing non-critical check contributes Warn.
func (r Report) Status() Status { return r.StatusExcluding(nil) }

// StatusExcluding is Status with the checks for which skip returns true left
// out, as the apiserver's ?exclude= does. A nil skip leaves nothing out.
func (r Report) StatusExcluding(skip func(name string) bool) Status {
	s := r.Base
	for i := range r.Checks {
		c := &r.Checks[i]
		if skip != nil && skip(c.Name) {
			continue
		}
		s = worst(s, c.Contribution())
	}
	return s
}

// Contribution is what the check adds to its gate's verdict: its Status, with
// Fail lowered to Warn for a non-critical check.
func (c *Result) Contribution() Status {
	if !c.Critical && c.Status == Fail {
		return Warn
	}
	return c.Status
}

// Check returns the result of the named check.
func (r Report) Check(name string) (Result, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Result{}, false
}

var secretPatterns = []struct {
	re   *regexp.Regexp
	repl string
}{
	// scheme://user:password@host: the password runs to the last '@' of the
	// URL, since a malformed one may hold '@' unescaped.
	{regexp.MustCompile(`([a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s"']*):[^\s"']*@`), "${1}:xxxxx@"},
	// password=secret, password='se\'cret', PGPASSWORD=x, "api_key": "x", token: x
	{regexp.MustCompile(`(?i)((?:pass(?:word)?|passwd|pwd|secret|token|api[_-]?key|access[_-]?key)"?\s*[=:]\s*)` +
		`('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,'"]+)`), "${1}xxxxx"},
	// Authorization: Bearer x, Basic x
	{regexp.MustCompile(`(?i)((?:authorization"?\s*[=:]\s*"?)?\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]+`), "${1}xxxxx"},
}

// Redact masks passwords in connection strings and key=value lists within s,
// so that an error text can be logged or shown.
func Redact(s string) string {
	for _, p := range secretPatterns {
		s = p.re.ReplaceAllString(s, p.repl)
	}
	return s
}

// redactedError keeps the cause for errors.Is and errors.As, and shows
// only the redacted text.
type redactedError struct {
	msg   string
	cause error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.cause }

// RedactError returns err with Redact applied to its text; errors.Is and
// errors.As still see err. It returns nil for nil.
func RedactError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(*redactedError); ok {
		return err
	}
	return &redactedError{msg: Redact(err.Error()), cause: err}
}

package probes

import (
	"fmt"
	"strings"
	"time"
)

// Result is the latest state of one check.
type Result struct {
	// Name is the check's name, unique within its gate.
	Name string
	// Gate is the gate the check belongs to.
	Gate Kind
	// ComponentType is the health+json componentType, such as "datastore".
	ComponentType string
	// Critical reports whether a failure fails the gate (true) or only warns.
	Critical bool
	// Untimed reports that the execution time means nothing (see Untimed).
	Untimed bool
	// Interval is how often the check runs (see Every).
	Interval time.Duration
	// Shared reports that the check watches a dependency the fleet shares
	// (see Shared).
	Shared bool
	// EverPassed reports that the check has passed or warned at least once
	// since it was added.
	EverPassed bool
	// Stale reports that the last result is older than the check's bound
	// (see StaleAfter); Status is then Fail.
	Stale bool
	// Status is the verdict after the thresholds. A readiness check that
	// has not yet finished an execution fails; a liveness check passes (a
	// self-check that has not run has not failed).
	Status Status
	// Time is when the last execution ended; zero before the first.
	Time time.Time
	// Since is when Status last changed (the first result counts as a
	// change); zero before the first result.
	Since time.Time
	// Flapping reports that the check's outcomes keep changing: more than
	// FlapHigh of its recent results differed from the one before,
	// weighted to the newest, and the mark stays until fewer than FlapLow
	// do, so that the mark itself does not flap.
	Flapping bool
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
	// secrets masked (package redact); errors.Is still sees the cause.
	Err error
}

// Flap detection's thresholds: the weighted share of state changes over a
// check's last FlapWindow results above which it is marked flapping, and
// below which the mark goes.
const (
	FlapWindow = 21
	FlapHigh   = 0.30
	FlapLow    = 0.20
)

// Contribution is what the check adds to its gate's verdict: its Status,
// with Fail lowered to Warn for a non-critical check and for a shared one
// that has passed before (unless its result is stale: a stalled schedule is
// this instance's own fault). The aggregate answers with it; the check's
// own path (/readyz/{check}) answers with Status, the check's own verdict.
func (c *Result) Contribution() Status {
	if c.Status == Fail && (!c.Critical || c.Shared && c.EverPassed && !c.Stale) {
		return Warn
	}
	return c.Status
}

// TaskState is the progress of one warm-up task.
type TaskState struct {
	// Name is the task's name, unique within the startup gate.
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

// Progress is the task's part done, from 0 to 1: 1 once it is done, its
// own estimate (Fraction) before.
func (t *TaskState) Progress() float64 {
	if t.Done {
		return 1
	}
	return t.Fraction
}

// Status is pass for a finished task and fail for one still loading.
func (t *TaskState) Status() Status {
	if t.Done {
		return Pass
	}
	return Fail
}

// Report is a gate's state at one moment: the model every surface renders.
type Report struct {
	// Gate says which gate made the report.
	Gate Kind
	// Phase is the lifecycle's phase when the report was made, and Since
	// when that phase began (zero before the first move).
	Phase Phase
	Since time.Time
	// Cordon is the lifecycle's cordon when the report was made, zero
	// when it was not cordoned (see Lifecycle.Cordon).
	Cordon Cordon
	// Base is the gate's verdict from the phase alone (Lifecycle.Basis),
	// before its checks.
	Base Status
	// Notes are short human-readable lines, such as "phase: warming".
	Notes []string
	// Checks holds the gate's checks, sorted by name.
	Checks []Result
	// Tasks holds the warm-up tasks (startup gate only), sorted by name.
	Tasks []TaskState
	// Gates holds, in a group's report (the deep view), the verdict of
	// every gate the group reads, in the lifecycle's order; nil elsewhere.
	Gates []GateStatus
	// Past is, in the deep view's report (Health), what is known of the
	// instances before this one (Lifecycle.SetPast); zero elsewhere.
	Past Past
}

// GateStatus is one gate's verdict, as a group's report lists it.
type GateStatus struct {
	Gate   Kind
	Status Status
}

// Status is the gate's verdict: the worse of Base and every check's
// Contribution.
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
		s = Worst(s, c.Contribution())
	}
	return s
}

// Behind names the checks that make the verdict worse than pass: those
// whose Contribution fails and those whose Contribution warns, in report
// order, leaving out those skip returns true for (nil skips none).
func (r *Report) Behind(skip func(name string) bool) (failing, warning []string) {
	for i := range r.Checks {
		c := &r.Checks[i]
		if skip != nil && skip(c.Name) {
			continue
		}
		switch c.Contribution() {
		case Fail:
			failing = append(failing, c.Name)
		case Warn:
			warning = append(warning, c.Name)
		}
	}
	return failing, warning
}

// Progress is how far the warm-up has come, from 0 to 1: the mean of the
// tasks' fractions, a finished task counting 1. It is 1 for a report with
// no tasks.
func (r Report) Progress() float64 {
	if len(r.Tasks) == 0 {
		return 1
	}
	sum := 0.0
	for i := range r.Tasks {
		sum += r.Tasks[i].Progress()
	}
	return sum / float64(len(r.Tasks))
}

// ProgressNote describes the warm-up in a line, such as "warm-up 45%: cache
// 30%, schema done", or "" for a report with no tasks. The startup gate's
// notes and systemd's STATUS= carry it.
func (r Report) ProgressNote() string {
	if len(r.Tasks) == 0 {
		return ""
	}
	var b strings.Builder
	for i, t := range r.Tasks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Name)
		switch {
		case t.Done:
			b.WriteString(" done")
		case t.Failures > 0:
			fmt.Fprintf(&b, " %d%% (retrying after %d failed attempts)", int(t.Fraction*100), t.Failures)
		default:
			fmt.Fprintf(&b, " %d%%", int(t.Fraction*100))
		}
	}
	return fmt.Sprintf("warm-up %d%%: %s", int(r.Progress()*100), b.String())
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

// Task returns the state of the named warm-up task.
func (r Report) Task(name string) (TaskState, bool) {
	for _, t := range r.Tasks {
		if t.Name == name {
			return t, true
		}
	}
	return TaskState{}, false
}

// Execution is one finished execution of a check, as the functions given to
// a gate's OnExecution (liveness.Gate, readiness.Gate) receive it: what
// happened, before the thresholds decide what it means for the check.
type Execution struct {
	// Gate is the gate the check belongs to.
	Gate Kind
	// Check is the check's name.
	Check string
	// Status is this execution's own outcome: StatusOf its error, and Fail
	// for one that timed out or panicked.
	Status Status
	// Duration is how long the execution took, or its timeout when it
	// outlived it.
	Duration time.Duration
}

// Package runner executes checks in the background, each on its own
// schedule, and keeps their latest results: the machinery under the
// liveness and readiness gates.
package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/printable"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/internal/spec"
	"github.com/probekit/probes/redact"
)

var (
	errPending = errors.New("no result yet")
	errStopped = errors.New("runner stopped")
)

// Runner executes checks in the background, each on its own schedule, and
// keeps their latest results. Probe requests read those results; they never
// run a check.
//
// Guarantees: at most one execution of a check is in flight; an execution that
// outlives its timeout is reported failing at the timeout (and the next one
// waits until it returns, so hung checks never pile up goroutines); a panic in
// a check is recovered and reported as a failure. An idle Runner holds no
// goroutines: schedules are timers.
//
// The gates in packages liveness and readiness are built on a Runner.
type Runner struct {
	clock    probes.Clock
	onChange func()
	executed func(name string, s probes.Status, d time.Duration)
	results  atomic.Uint64 // outcomes applied and checks added: Revision
	verdicts atomic.Uint64 // verdict changes and checks added: Version

	scope         spec.Scope // of checks added without Shared or Local
	sharedAllowed bool
	pendingPasses bool        // a check with no result yet passes
	gate          probes.Kind // named in every Result (ForGate)

	mu       sync.Mutex
	checks   []*check // sorted by name
	state    runState
	inflight int
	idle     chan struct{} // closed when inflight drops to 0 after stop
	start    func(*check)  // schedules a check while running
}

type runState uint8

const (
	notStarted runState = iota
	running
	stopped
)

type check struct {
	name    string
	checker probes.Checker
	cfg     spec.Check
	timer   *time.Timer

	// Guarded by Runner.mu.
	due         time.Time // when timer is set to fire; see arm
	inFlight    bool
	gen         uint64 // execution number
	recordedGen uint64 // execution whose result is recorded
	cancel      context.CancelFunc
	began       time.Time                        // start of the execution in flight
	stale       *time.Timer                      // marks the result stale; see armStale
	rerun       bool                             // Trigger came while an execution was in flight
	backoff     time.Duration                    // the wait before the next recheck; 0 while passing
	recent      [probes.FlapWindow]probes.Status // the last outcomes, a ring
	nRecent     int                              // outcomes counted, at most FlapWindow
	nextRecent  int                              // where the next outcome goes
	applied     time.Time                        // when the last outcome was counted
	fails       int
	passes      int
	hasVerdict  bool
	res         probes.Result
}

// New returns a Runner that timestamps results with clock and calls
// onChange, if not nil, after every change of a check's verdict and after
// every Add. onChange runs on the goroutine that made the change, outside the
// Runner's lock.
// Its checks are local; see Scopes.
func New(clock probes.Clock, onChange func()) *Runner {
	return &Runner{clock: clock, onChange: onChange, scope: spec.Local}
}

// OnExecuted makes the Runner call fn after each execution whose outcome it
// records, on the goroutine that ran it, outside the Runner's lock. Call it
// before Run.
func (r *Runner) OnExecuted(fn func(name string, s probes.Status, d time.Duration)) {
	r.executed = fn
}

// Scopes sets the scope of checks added without Shared or Local, and
// whether Shared is allowed. Call it before the first Add.
func (r *Runner) Scopes(def spec.Scope, sharedAllowed bool) {
	r.scope, r.sharedAllowed = def, sharedAllowed
}

// ForGate makes every check's Result name gate k as its own (Result.Gate).
// Call it before the first Add.
func (r *Runner) ForGate(k probes.Kind) { r.gate = k }

// PendingPasses makes a check that has no result yet pass instead of fail:
// right for self-checks, which have not failed before they first run, and
// wrong for dependencies, which must prove themselves. Call it before the
// first Add.
func (r *Runner) PendingPasses() { r.pendingPasses = true }

// Add registers a check under name. It fails, changing nothing, when name is
// not probes.ValidName, is taken, when c is nil, or when an option is
// invalid. A check added while the Runner runs starts at once.
func (r *Runner) Add(name string, c probes.Checker, opts ...probes.CheckOption) error {
	if err := spec.Name("check", name, probes.ValidName); err != nil {
		return err
	}
	if c == nil {
		return fmt.Errorf("check %q: nil Checker", name)
	}
	cfg := spec.Default()
	if err := spec.Apply(fmt.Sprintf("check %q", name), &cfg, opts); err != nil {
		return err
	}
	switch {
	case cfg.Scope == spec.Shared && !r.sharedAllowed:
		return fmt.Errorf("check %q: Shared(): these checks watch this process itself, so they are local", name)
	case cfg.Scope == spec.Unset:
		cfg.Scope = r.scope
	}
	if least := 2*cfg.Interval + cfg.Timeout; cfg.StaleAfter > 0 && cfg.StaleAfter < least {
		return fmt.Errorf("check %q: StaleAfter(%s) is shorter than twice the interval plus the timeout (%s): healthy results could go stale between two executions",
			name, cfg.StaleAfter, least)
	}
	ch := &check{name: name, checker: c, cfg: cfg}
	ch.res = probes.Result{Name: name, Gate: r.gate, ComponentType: cfg.ComponentType, Critical: cfg.Critical, Untimed: cfg.Untimed,
		Interval: cfg.Interval, Shared: cfg.Scope == spec.Shared, Status: probes.Fail, Err: errPending}
	if r.pendingPasses {
		ch.res.Status, ch.res.Err = probes.Pass, nil
	}

	r.mu.Lock()
	if r.state == stopped {
		r.mu.Unlock()
		return fmt.Errorf("check %q: %w", name, errStopped)
	}
	i, found := slices.BinarySearchFunc(r.checks, name, byName)
	if found {
		r.mu.Unlock()
		return fmt.Errorf("check %q added twice", name)
	}
	r.checks = slices.Insert(r.checks, i, ch)
	r.verdicts.Add(1)
	r.results.Add(1)
	if r.state == running {
		r.start(ch)
	}
	r.mu.Unlock()
	r.changed()
	return nil
}

// Run executes the checks until ctx is done, then cancels executions in flight,
// waits for them to return (at most the longest check timeout; a check that
// ignores its context is left behind) and returns ctx.Err(). While it runs,
// a result older than its check's bound (StaleAfter) turns failing. Run may be called
// once; checks added before it start at once.
func (r *Runner) Run(ctx context.Context) error {
	base := context.WithoutCancel(ctx)
	r.mu.Lock()
	if r.state != notStarted {
		r.mu.Unlock()
		return errors.New("runner: Run called more than once")
	}
	r.state = running
	r.start = func(c *check) {
		c.due = time.Now()
		c.timer = time.AfterFunc(0, func() { r.fire(base, c) })
	}
	for _, c := range r.checks {
		r.start(c)
	}
	r.mu.Unlock()

	<-ctx.Done()

	r.mu.Lock()
	r.state = stopped
	var grace time.Duration
	for _, c := range r.checks {
		c.timer.Stop()
		if c.stale != nil {
			c.stale.Stop() // results stop aging with the runner
		}
		if c.cancel != nil {
			c.cancel()
		}
		grace = max(grace, c.cfg.Timeout)
	}
	idle := make(chan struct{})
	if r.inflight == 0 {
		close(idle)
	} else {
		r.idle = idle
	}
	r.mu.Unlock()

	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
	}
	return ctx.Err()
}

// Trigger runs the named check as soon as possible: at once, or right after
// the execution in flight returns, but no sooner than the check's trigger
// gap (spec.Check.TriggerGap) after the last execution began, so that a
// flood of triggers costs one execution per gap. Its schedule restarts
// from then. It does nothing before Run.
func (r *Runner) Trigger(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != running {
		return
	}
	if c := r.find(name); c != nil {
		if c.inFlight {
			c.rerun = true // run again once the execution in flight returns
			return
		}
		c.arm(c.gapLeft())
	}
}

// arm sets c's timer to fire after d; r.mu must be held. A firing
// before c.due is one that a later arm superseded while it waited for the
// lock (time.Timer's Reset does not recall a function already started),
// and fire drops it: without that, triggers racing a firing under load
// would start executions sooner than the trigger gap.
func (c *check) arm(d time.Duration) {
	c.due = time.Now().Add(d)
	c.timer.Reset(d)
}

// gapLeft is how long a Trigger must still wait; r.mu must be held.
func (c *check) gapLeft() time.Duration {
	if c.began.IsZero() {
		return 0
	}
	return max(c.cfg.TriggerGap()-time.Since(c.began), 0)
}

// reschedule sets when c runs next, once an execution that began at began
// has been recorded: a pending Trigger, else a recheck of a failing
// verdict (see probes.Recheck), else the interval set as it began. r.mu
// must be held.
func (r *Runner) reschedule(c *check, began time.Time) {
	if r.state != running {
		return
	}
	if c.rerun {
		c.rerun = false
		c.arm(c.gapLeft())
		return
	}
	first := c.cfg.Rechecks()
	if first <= 0 || c.res.Status != probes.Fail {
		c.backoff = 0
		return
	}
	if c.fails > 0 && c.backoff > 0 {
		c.backoff = min(2*c.backoff, c.cfg.Interval)
	} else {
		c.backoff = first // the first failure, or a pass not yet enough to flip back
	}
	if left := c.cfg.Interval - time.Since(began); c.backoff < left {
		c.arm(c.backoff)
	}
}

// Results returns the latest result of every check, sorted by name.
func (r *Runner) Results() []probes.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]probes.Result, len(r.checks))
	for i, c := range r.checks {
		out[i] = c.res
	}
	return out
}

// Version counts the verdict changes so far (Adds included). It grows under
// the same lock as the change, so a reader that sees a result has seen its
// count too: read Version first, then Results, and cache by the version.
func (r *Runner) Version() uint64 { return r.verdicts.Load() }

// Revision counts the outcomes recorded so far (Adds included), verdict
// changes or not: it grows whenever anything Results returns may have
// changed (an observed value, an error text, a time), as Version does.
func (r *Runner) Revision() uint64 { return r.results.Load() }

// Result returns the latest result of the named check.
func (r *Runner) Result(name string) (probes.Result, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.find(name); c != nil {
		return c.res, true
	}
	return probes.Result{}, false
}

func byName(c *check, name string) int { return strings.Compare(c.name, name) }

func (r *Runner) find(name string) *check {
	if i, found := slices.BinarySearchFunc(r.checks, name, byName); found {
		return r.checks[i]
	}
	return nil
}

func (r *Runner) changed() {
	if r.onChange != nil {
		r.onChange()
	}
}

// fire runs on the timer's goroutine and executes the check there, so no
// goroutine waits between executions.
func (r *Runner) fire(base context.Context, c *check) {
	r.mu.Lock()
	if r.state != running || time.Now().Before(c.due) {
		r.mu.Unlock()
		return
	}
	c.arm(c.cfg.Interval)
	if c.inFlight {
		// The previous execution hangs past its timeout and ignores its
		// context. Start no other; count one more failure per interval, so
		// that a failure threshold is reached as with any failing check.
		var changed bool
		// Count it once per interval after its timeout was reported, so
		// that a check merely slow to return after its context ended gets
		// its own result first.
		if hung := time.Since(c.began); c.recordedGen == c.gen && hung >= c.cfg.Timeout &&
			time.Since(c.applied) >= c.cfg.Interval*9/10 {
			changed = r.apply(c, hung, nil, fmt.Errorf("still running after %s (timeout %s): %w",
				hung.Round(time.Millisecond), c.cfg.Timeout, context.DeadlineExceeded), false)
		}
		r.mu.Unlock()
		if changed {
			r.changed()
		}
		return
	}
	c.inFlight = true
	c.gen++
	gen := c.gen
	c.res.Executions++
	ctx, cancel := context.WithTimeout(base, c.cfg.Timeout)
	c.cancel = cancel
	began := time.Now()
	c.began = began
	r.inflight++
	r.mu.Unlock()

	// Made only when the execution times out: most never do.
	timeout := func() error {
		return fmt.Errorf("timed out after %s: %w", c.cfg.Timeout, context.DeadlineExceeded)
	}
	rec := &spec.Recorder[probes.Observation]{Key: func(o probes.Observation) string { return o.Measurement }}
	watched := make(chan struct{})
	stopWatch := context.AfterFunc(ctx, func() {
		defer close(watched)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			r.record(c, gen, time.Since(began), rec, timeout())
		}
	})
	err := safe.Call(func() error { return c.checker.Check(context.WithValue(ctx, spec.RecorderKey{}, rec)) })
	elapsed := time.Since(began)
	if !stopWatch() {
		// The timeout's outcome is being recorded: let it finish, so that
		// outcomes and their listeners follow the order of executions.
		<-watched
	}
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		err = timeout()
	}
	r.record(c, gen, elapsed, rec, err)
	cancel()

	r.mu.Lock()
	c.inFlight = false
	c.cancel = nil
	r.reschedule(c, began)
	r.inflight--
	if r.inflight == 0 && r.idle != nil {
		close(r.idle)
		r.idle = nil
	}
	r.mu.Unlock()
}

// record stores the outcome of execution gen, unless one is stored already
// (the timeout and the return race for it).
func (r *Runner) record(c *check, gen uint64, elapsed time.Duration, rec *spec.Recorder[probes.Observation], err error) {
	obs := rec.Snapshot()
	r.mu.Lock()
	if r.state != running || c.recordedGen >= gen {
		r.mu.Unlock()
		return
	}
	c.recordedGen = gen
	changed := r.apply(c, elapsed, obs, err, true)
	r.mu.Unlock()
	if changed {
		r.changed()
	}
	if r.executed != nil {
		r.executed(c.name, probes.StatusOf(err), elapsed)
	}
}

// apply counts one outcome, applies the thresholds and reports whether the
// verdict changed. An outcome that is not an execution's end (ended false:
// one more failure of an execution that hangs) leaves the result's Time
// alone, so its age shows how long no execution has ended. r.mu must be
// held.
func (r *Runner) apply(c *check, elapsed time.Duration, obs []probes.Observation, err error, ended bool) bool {
	r.results.Add(1)
	c.applied = time.Now()
	status := probes.StatusOf(err)
	if status == probes.Fail {
		c.fails++
		c.passes = 0
	} else {
		c.passes++
		c.fails = 0
	}
	verdict := c.res.Status
	switch {
	case !c.hasVerdict:
		verdict = status // the first result decides at once
	case status == probes.Fail:
		if c.fails >= c.cfg.FailThreshold {
			verdict = probes.Fail
		}
	case verdict != probes.Fail || c.passes >= c.cfg.PassThreshold:
		verdict = status
	}
	flapping := c.flapping(status)
	if verdict != c.res.Status || !c.hasVerdict {
		c.res.Since = r.clock.Now()
	}
	changed := verdict != c.res.Status || !c.hasVerdict || c.res.Stale || flapping != c.res.Flapping
	c.res.Flapping = flapping
	c.hasVerdict = true
	c.res.Stale = false
	c.res.EverPassed = c.res.EverPassed || verdict != probes.Fail
	c.res.Status = verdict
	if ended {
		c.res.Time = r.clock.Now()
	}
	c.res.Duration = elapsed
	c.res.ConsecutiveFailures = c.fails
	// One line, secrets masked: every surface shows this text, and the
	// text form gives a check one line.
	c.res.Err = printable.LineError(redact.Error(err))
	c.res.Observations = obs
	r.armStale(c)
	if changed {
		r.verdicts.Add(1)
	}
	return changed
}

// armStale (re)starts the timer that marks c's result stale when no other
// comes within its bound. It is independent of c's schedule, so it fires
// whatever stalls that. r.mu must be held.
func (r *Runner) armStale(c *check) {
	bound := c.cfg.Stale()
	if c.stale != nil {
		c.stale.Reset(bound)
		return
	}
	c.stale = time.AfterFunc(bound, func() { r.expire(c, bound) })
}

// expire marks c's result stale unless a newer one came meanwhile.
func (r *Runner) expire(c *check, bound time.Duration) {
	r.mu.Lock()
	if r.state != running || c.res.Stale || time.Since(c.applied) < bound {
		r.mu.Unlock()
		return
	}
	r.results.Add(1)
	c.res.Stale = true
	changed := c.res.Status != probes.Fail
	if changed {
		r.verdicts.Add(1)
		c.res.Since = r.clock.Now()
	}
	c.res.Status = probes.Fail
	last := "passed"
	if c.res.Err != nil {
		last = c.res.Err.Error()
	}
	c.res.Err = fmt.Errorf("stale: no result for %s (StaleAfter %s); the last one: %s",
		time.Since(c.applied).Round(time.Millisecond), bound, last)
	r.mu.Unlock()
	if changed {
		r.changed()
	}
}

// flapping records outcome s and says whether the check is flapping now:
// the share of its recent outcomes that differ from the one before,
// weighted from 0.8 for the oldest to 1.2 for the newest as Nagios does,
// above probes.FlapHigh marks it, below probes.FlapLow clears the mark. It
// costs a pass over a fixed window and allocates nothing. r.mu must be
// held.
func (c *check) flapping(s probes.Status) bool {
	c.recent[c.nextRecent] = s
	c.nextRecent = (c.nextRecent + 1) % len(c.recent)
	c.nRecent = min(c.nRecent+1, len(c.recent))
	if c.nRecent < 5 {
		return c.res.Flapping // too few outcomes to say
	}
	n := len(c.recent)
	oldest := (c.nextRecent - c.nRecent + n) % n
	var changes, weights float64
	for i := 1; i < c.nRecent; i++ {
		w := 0.8 + 0.4*float64(i-1)/float64(max(c.nRecent-2, 1))
		weights += w
		if c.recent[(oldest+i)%n] != c.recent[(oldest+i-1)%n] {
			changes += w
		}
	}
	share := changes / weights
	switch {
	case share > probes.FlapHigh:
		return true
	case share < probes.FlapLow:
		return false
	}
	return c.res.Flapping
}

// Package startup holds the startup gate: it passes once warm-up (cache
// loading, migrations, ...) has finished, and then stays passed.
//
// Warm-up runs as background work of the lifecycle: probes.Lifecycle.Run
// (which server.Server.Run calls) moves Cold to Warming, runs the tasks, and
// moves to Ready once all have succeeded. Tasks run concurrently. Each
// reports its progress, which the startup response and the logs show. A task that fails is retried with exponential
// backoff until the warm-up deadline; past the deadline the lifecycle goes
// Broken, so that startup and liveness fail and the platform restarts the
// process instead of waiting forever. The error it goes Broken with, a
// *DeadlineError, names the unfinished tasks with their progress.
//
// The gate latches: once warm-up has finished, it passes until the process is
// Broken, even while a Rewarm runs. Kubernetes runs liveness and readiness
// probes only after startup has passed once.
//
// When the drain begins during a warm-up, the tasks are cancelled: a service
// that never finished warming never serves (server.WarmupGuard), and its
// startup gate keeps failing, since it never started.
//
// Anything that can block takes a context.Context first. The package uses only
// the standard library.
package startup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/broadcast"
	"github.com/probekit/probes/internal/opt"
	"github.com/probekit/probes/internal/printable"
	"github.com/probekit/probes/internal/safe"
	"github.com/probekit/probes/internal/spec"
	"github.com/probekit/probes/redact"
)

// Defaults of the options.
const (
	DefaultDeadline   = 5 * time.Minute
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 10 * time.Second
)

// Option configures a Gate. An invalid value makes New return an error that
// names the option.
type Option func(*config) error

type config struct {
	deadline               time.Duration
	backoffMin, backoffMax time.Duration
}

// Deadline bounds a whole warm-up, every retry included. Past it the
// lifecycle goes Broken. Default DefaultDeadline (5m).
func Deadline(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("Deadline(%s): the deadline must be positive", d)
		}
		c.deadline = d
		return nil
	}
}

// Backoff sets the wait before the first retry of a failed task and the most
// it grows to, doubling after each failure. Defaults DefaultBackoffMin (100ms)
// and DefaultBackoffMax (10s).
func Backoff(initial, maximum time.Duration) Option {
	return func(c *config) error {
		if initial <= 0 || maximum < initial {
			return fmt.Errorf("Backoff(%s, %s): need 0 < initial <= maximum", initial, maximum)
		}
		c.backoffMin, c.backoffMax = initial, maximum
		return nil
	}
}

// TaskFunc is one warm-up task. It reports progress through p and returns nil
// when done. A returned error (or a panic) is retried after a backoff; ctx is
// cancelled at the warm-up deadline and when the drain begins.
type TaskFunc func(ctx context.Context, p *Progress) error

// Gate is the startup gate. Create one with New and add tasks with Task;
// the lifecycle's Run starts the warm-up.
type Gate struct {
	lc      *probes.Lifecycle
	cfg     config
	changes broadcast.B

	mu      sync.Mutex
	tasks   []*task // sorted by name
	running bool    // a warm-up is under way
}

var _ probes.Gate = (*Gate)(nil)

type task struct {
	name string
	fn   TaskFunc

	// Guarded by Gate.mu.
	state probes.TaskState

	permille atomic.Int32 // progress in 1/1000, for cheap change detection
}

// New returns the startup gate of lc and attaches it, so that lc.Run runs
// the warm-up. It fails when lc is nil or already has a startup gate, or
// with an error naming the option when an option is invalid.
func New(lc *probes.Lifecycle, opts ...Option) (*Gate, error) {
	if lc == nil {
		return nil, errors.New("startup: New(nil): need a *probes.Lifecycle")
	}
	cfg := config{deadline: DefaultDeadline, backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax}
	if err := opt.Apply("startup", &cfg, opts); err != nil {
		return nil, err
	}
	g := &Gate{lc: lc, cfg: cfg}
	if err := lc.Attach(g, g.run); err != nil {
		return nil, fmt.Errorf("startup: %w", err)
	}
	lc.Subscribe(func(probes.Transition) { g.changes.Notify() })
	return g, nil
}

// Kind returns probes.Startup.
func (g *Gate) Kind() probes.Kind { return probes.Startup }

// Lifecycle is the lifecycle the gate is built on.
func (g *Gate) Lifecycle() *probes.Lifecycle { return g.lc }

// Deadline returns the warm-up deadline (see Deadline): past it the
// lifecycle goes Broken. A startup probe's budget must cover it.
func (g *Gate) Deadline() time.Duration { return g.cfg.deadline }

// Version grows with every phase move and every change of a task.
func (g *Gate) Version() uint64 { return g.lc.Version() + g.changes.Version() }

// Revision is Version: every change of a task, progress included, is
// announced.
func (g *Gate) Revision() uint64 { return g.Version() }

// Task adds a warm-up task under name. It fails when name is not
// probes.ValidName or is taken, when fn is nil, or while a warm-up runs. A
// task added after the first warm-up has finished runs at the next Rewarm;
// until then it reads as not done.
func (g *Gate) Task(name string, fn TaskFunc) error {
	if err := spec.Name("startup: task", name, probes.ValidName); err != nil {
		return err
	}
	if fn == nil {
		return fmt.Errorf("startup: task %q: nil TaskFunc", name)
	}
	if err := g.insert(name, fn); err != nil {
		return err
	}
	g.changes.Notify() // outside the lock: subscribers read Report
	return nil
}

func (g *Gate) insert(name string, fn TaskFunc) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		return fmt.Errorf("startup: task %q added while warm-up runs", name)
	}
	i, found := slices.BinarySearchFunc(g.tasks, name, func(t *task, name string) int { return strings.Compare(t.name, name) })
	if found {
		return fmt.Errorf("startup: task %q added twice", name)
	}
	g.tasks = slices.Insert(g.tasks, i, &task{name: name, fn: fn, state: probes.TaskState{Name: name}})
	return nil
}

// run is the gate's background work: the first warm-up, from Cold. A
// lifecycle moved on by hand before Run is left as it is.
func (g *Gate) run(ctx context.Context) error {
	if g.lc.Phase() != probes.Cold {
		return nil
	}
	err := g.warm(ctx, g.lc.Start)
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		return nil // the lifecycle's Run ended: nothing failed
	}
	return err
}

// Rewarm moves a Ready lifecycle back to Warming (readiness fails, startup
// stays passed), runs every task again, and moves it to Ready once they have
// succeeded, with the same deadline as the first warm-up; past it the
// lifecycle goes Broken. It fails, changing nothing, when the lifecycle is
// not Ready or another warm-up runs.
//
// When ctx ends first, the lifecycle goes back to Ready and the tasks show
// their state from before the Rewarm, and Rewarm returns ctx.Err(): a task
// must load into a new place and swap it in only when done, so that the data
// loaded before is still whole and served. A task that cannot promise that
// should call MarkBroken on failure. When the drain begins during a Rewarm,
// the tasks are cancelled and Rewarm returns nil.
func (g *Gate) Rewarm(ctx context.Context, reason string) error {
	return g.warm(ctx, func() error { return g.lc.Rewarm(reason) })
}

// warm claims the gate, makes the lifecycle move that starts a warm-up, runs
// the tasks, and waits for every task goroutine before it returns.
func (g *Gate) warm(parent context.Context, start func() error) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return errors.New("startup: a warm-up is already running")
	}
	g.running = true
	g.mu.Unlock()
	// Released before the move to Ready, not after: once the phase says
	// Ready, a Rewarm must be accepted. Released once only: the claim may
	// be a new warm-up's by the time this one returns.
	var released bool
	release := func() {
		if released {
			return
		}
		released = true
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
	}
	defer release()
	markReady := func() error {
		release()
		return g.lc.MarkReady()
	}
	// Cancel the tasks when the drain begins or the process breaks. The
	// subscription comes before the move, so no such move can slip between.
	ctx, cancel := context.WithTimeoutCause(parent, g.cfg.deadline, errDeadline)
	defer cancel()
	stopped := make(chan struct{})
	var once sync.Once
	defer g.lc.Subscribe(func(t probes.Transition) {
		if t.To == probes.Draining || t.To == probes.Broken {
			once.Do(func() { close(stopped); cancel() })
		}
	})()
	if err := start(); err != nil {
		return fmt.Errorf("startup: %w", err)
	}

	g.mu.Lock()
	tasks := g.tasks
	before := make([]probes.TaskState, len(tasks))
	for i, t := range tasks {
		before[i] = t.state
		t.state = probes.TaskState{Name: t.name}
		t.permille.Store(0)
	}
	g.mu.Unlock()
	g.changes.Notify()

	var wg sync.WaitGroup
	for _, t := range tasks {
		wg.Go(func() { g.runTask(ctx, t) })
	}
	allDone := make(chan struct{})
	go func() { wg.Wait(); close(allDone) }()
	defer func() { <-allDone }() // every task has returned before warm does

	var missed error
	select {
	case <-allDone:
	case <-ctx.Done():
		if context.Cause(ctx) == errDeadline {
			// Broken at the deadline, whether or not the tasks still
			// running honour their context.
			missed = &DeadlineError{Deadline: g.cfg.deadline, Unfinished: g.unfinished()}
			_ = g.lc.MarkBroken(missed)
		}
	}
	<-allDone
	select {
	case <-stopped:
		if missed != nil {
			return missed
		}
		return nil // shut down (or broken from outside) while warming: nothing left to do
	default:
	}
	if parent.Err() != nil {
		if g.lc.Started() {
			g.restore(tasks, before)
			if err := markReady(); err == nil {
				return fmt.Errorf("startup: rewarm cancelled, serving the data loaded before: %w", parent.Err())
			}
		}
		return parent.Err()
	}
	if err := markReady(); err != nil {
		return fmt.Errorf("startup: %w", err)
	}
	return nil
}

var errDeadline = errors.New("warm-up deadline")

// restore puts back the task states from before a cancelled Rewarm.
func (g *Gate) restore(tasks []*task, before []probes.TaskState) {
	g.mu.Lock()
	for i, t := range tasks {
		t.state = before[i]
		pm := int32(0)
		if t.state.Done {
			pm = 1000
		}
		t.permille.Store(pm)
	}
	g.mu.Unlock()
	g.changes.Notify()
}

// unfinished returns the tasks not yet done, with their progress.
func (g *Gate) unfinished() []probes.TaskState {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []probes.TaskState
	for _, t := range g.tasks {
		if !t.state.Done {
			st := t.state
			st.Fraction = float64(t.permille.Load()) / 1000
			out = append(out, st)
		}
	}
	return out
}

// ErrDeadline is what the error of a warm-up that missed its deadline (a
// *DeadlineError) matches with errors.Is.
var ErrDeadline = errors.New("warm-up deadline missed")

// DeadlineError is the error of a warm-up that missed its deadline: the
// lifecycle goes Broken with it, and the lifecycle's Run (and so
// server.Server.Run) returns it, through errors.As.
type DeadlineError struct {
	// Deadline is the warm-up deadline that passed (see Deadline).
	Deadline time.Duration
	// Unfinished are the tasks not done at the deadline, sorted by name,
	// with their progress and the error of their last failed attempt
	// (secrets masked).
	Unfinished []probes.TaskState
}

// Error names the deadline and every unfinished task, with its progress
// and its last error: `startup: warm-up deadline 2m0s missed: task "cache"
// still running (45%)`.
func (e *DeadlineError) Error() string {
	parts := make([]string, len(e.Unfinished))
	for i := range e.Unfinished {
		t := &e.Unfinished[i]
		pct := int(t.Fraction * 100)
		if t.Err != nil {
			parts[i] = fmt.Sprintf("task %q at %d%% after %d failed attempts: %v", t.Name, pct, t.Failures, t.Err)
		} else {
			parts[i] = fmt.Sprintf("task %q still running (%d%%)", t.Name, pct)
		}
	}
	return fmt.Sprintf("startup: warm-up deadline %s missed: %s", e.Deadline, strings.Join(parts, "; "))
}

// Is reports whether target is ErrDeadline.
func (e *DeadlineError) Is(target error) bool { return target == ErrDeadline }

// runTask runs t until it succeeds or ctx ends, backing off between
// attempts. A task that ignores ctx keeps its warm-up waiting; the deadline
// still moves the lifecycle to Broken (see warm).
func (g *Gate) runTask(ctx context.Context, t *task) {
	wait := g.cfg.backoffMin
	p := &Progress{g: g, t: t}
	for {
		g.mu.Lock()
		t.state.Attempts++
		g.mu.Unlock()
		err := printable.LineError(redact.Error(safe.Call(func() error { return t.fn(ctx, p) })))
		if err != nil && ctx.Err() != nil {
			return // cut short by the deadline or the drain: not the task's failure
		}
		g.mu.Lock()
		t.state.Done = err == nil
		t.state.Err = err
		if err != nil {
			t.state.Failures++
		}
		g.mu.Unlock()
		if err == nil {
			t.permille.Store(1000)
			g.changes.Notify()
			return
		}
		g.changes.Notify()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
		wait = min(2*wait, g.cfg.backoffMax)
	}
}

// Progress is how a task reports how far it has come. Its methods are cheap
// and safe for concurrent use; the gate publishes a change of at least 1 %.
type Progress struct {
	g *Gate
	t *task
}

// Set reports the fraction done, from 0 to 1; values outside are clamped.
func (p *Progress) Set(fraction float64) {
	if math.IsNaN(fraction) {
		return
	}
	pm := int32(math.Round(min(max(fraction, 0), 1) * 1000))
	if old := p.t.permille.Swap(pm); old/10 != pm/10 {
		p.g.changes.Notify()
	}
}

// Count reports done out of total items; a total of 0 or less is ignored.
func (p *Progress) Count(done, total int) {
	if total > 0 {
		p.Set(float64(done) / float64(total))
	}
}

// Report returns the gate's current state, with each task's progress.
func (g *Gate) Report() probes.Report {
	r := g.lc.Basis(probes.Startup).Report(probes.Startup)
	g.mu.Lock()
	r.Tasks = make([]probes.TaskState, len(g.tasks))
	for i, t := range g.tasks {
		r.Tasks[i] = t.state
		r.Tasks[i].Fraction = float64(t.permille.Load()) / 1000
	}
	g.mu.Unlock()
	if len(r.Tasks) > 0 {
		r.Notes = append(r.Notes, r.ProgressNote())
	}
	return r
}

// Subscribe registers fn to be called after every change of the lifecycle's
// phase and every progress step, on the goroutine that made it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.changes.Subscribe(fn) }

// Package startup holds the startup gate: it passes once warm-up (cache
// loading, migrations, ...) has finished, and then stays passed.
//
// Warm-up tasks run concurrently. Each reports its progress, which the startup
// response and the logs show. A task that fails is retried with exponential
// backoff until the warm-up deadline; past the deadline the lifecycle goes
// Broken, so that startup and liveness fail and the platform restarts the
// process instead of waiting forever.
//
// The gate latches: once warm-up has finished, it passes until the process is
// Broken, even while a Rewarm runs. Kubernetes runs liveness and readiness
// probes only after startup has passed once.
//
// Anything that can block takes a context.Context first. The package uses only
// the standard library.
package startup

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/probekit/probes"
)

// Defaults of the options.
const (
	DefaultDeadline   = 5 * time.Minute
	DefaultBackoffMin = 100 * time.Millisecond
	DefaultBackoffMax = 10 * time.Second
)

// Option configures a Gate. Invalid values make New return an error that
// names the option.
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	deadline               time.Duration
	backoffMin, backoffMax time.Duration
	err                    error
}

// Deadline bounds a whole warm-up, every retry included. Past it the
// lifecycle goes Broken. Default DefaultDeadline (5m).
func Deadline(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d <= 0 && c.err == nil {
			c.err = fmt.Errorf("startup: Deadline(%s): the deadline must be positive", d)
		}
		c.deadline = d
	})
}

// Backoff sets the wait before the first retry of a failed task and the most
// it grows to, doubling after each failure. Defaults DefaultBackoffMin (100ms)
// and DefaultBackoffMax (10s).
func Backoff(initial, maximum time.Duration) Option {
	return optionFunc(func(c *config) {
		if (initial <= 0 || maximum < initial) && c.err == nil {
			c.err = fmt.Errorf("startup: Backoff(%s, %s): need 0 < initial <= maximum", initial, maximum)
		}
		c.backoffMin, c.backoffMax = initial, maximum
	})
}

// TaskFunc is one warm-up task. It reports progress through p and returns nil
// when done. A returned error (or a panic) is retried after a backoff; ctx is
// cancelled at the warm-up deadline.
type TaskFunc func(ctx context.Context, p *Progress) error

// Gate is the startup gate. Create one with New, add tasks with Task, and
// start warm-up with Run.
type Gate struct {
	lc      *probes.Lifecycle
	cfg     config
	changes probes.Broadcast

	mu      sync.Mutex
	tasks   []*task // sorted by name
	running bool    // a warm-up is under way
}

type task struct {
	name string
	fn   TaskFunc

	// Guarded by Gate.mu.
	done     bool
	attempts int
	failures int
	err      error // of the last attempt, while it is not done

	permille atomic.Int32 // progress in 1/1000, for cheap change detection
}

// New returns the startup gate of lc. It returns an error naming the option
// when an option is invalid, and panics if lc is nil.
func New(lc *probes.Lifecycle, opts ...Option) (*Gate, error) {
	if lc == nil {
		panic("startup: New with a nil *probes.Lifecycle")
	}
	cfg := config{deadline: DefaultDeadline, backoffMin: DefaultBackoffMin, backoffMax: DefaultBackoffMax}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	g := &Gate{lc: lc, cfg: cfg}
	lc.Subscribe(func(probes.Transition) { g.changes.Notify() })
	return g, nil
}

// Task adds a warm-up task under name. It fails when name is not
// probes.ValidName or is taken, when fn is nil, or while a warm-up runs.
func (g *Gate) Task(name string, fn TaskFunc) error {
	if !probes.ValidName(name) {
		return fmt.Errorf("startup: task name %q: use 1 to 63 letters, digits, '-', '_' or '.'", name)
	}
	if fn == nil {
		return fmt.Errorf("startup: task %q: nil TaskFunc", name)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.running {
		return fmt.Errorf("startup: task %q added while warm-up runs", name)
	}
	i := sort.Search(len(g.tasks), func(i int) bool { return g.tasks[i].name >= name })
	if i < len(g.tasks) && g.tasks[i].name == name {
		return fmt.Errorf("startup: task %q added twice", name)
	}
	g.tasks = append(g.tasks, nil)
	copy(g.tasks[i+1:], g.tasks[i:])
	g.tasks[i] = &task{name: name, fn: fn}
	return nil
}

// Run starts warm-up (Cold to Warming), runs every task concurrently, and
// moves the lifecycle to Ready when all have succeeded. It returns nil then;
// ctx.Err() if ctx ends first; and, at the deadline, an error after moving
// the lifecycle to Broken, whether or not the tasks still running honour
// their context.
func (g *Gate) Run(ctx context.Context) error {
	return g.warm(ctx, g.lc.Start)
}

// Rewarm moves a Ready lifecycle back to Warming (readiness fails, startup
// stays passed), runs every task again, and moves it to Ready once they have
// succeeded, with the same deadline as Run. It fails, changing nothing, while
// another warm-up runs.
func (g *Gate) Rewarm(ctx context.Context, reason string) error {
	return g.warm(ctx, func() error { return g.lc.Rewarm(reason) })
}

// warm claims the gate, makes the lifecycle move that starts a warm-up, and
// runs it.
func (g *Gate) warm(parent context.Context, start func() error) error {
	g.mu.Lock()
	if g.running {
		g.mu.Unlock()
		return errors.New("startup: a warm-up is already running")
	}
	g.running = true
	tasks := g.tasks
	for _, t := range tasks {
		t.done, t.attempts, t.failures, t.err = false, 0, 0, nil
		t.permille.Store(0)
	}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		g.running = false
		g.mu.Unlock()
	}()
	if err := start(); err != nil {
		return fmt.Errorf("startup: %w", err)
	}

	ctx, cancel := context.WithTimeout(parent, g.cfg.deadline)
	defer cancel()
	done := make(chan struct{}, len(tasks)) // buffered: a task that outlives the deadline exits on its own
	for _, t := range tasks {
		go func() {
			g.runTask(ctx, t)
			done <- struct{}{}
		}()
	}
	for pending := len(tasks); pending > 0; {
		select {
		case <-done:
			pending--
			continue
		case <-ctx.Done():
		}
		if parent.Err() != nil {
			return parent.Err()
		}
		err := fmt.Errorf("startup: warm-up deadline %s missed: %s", g.cfg.deadline, g.unfinished())
		_ = g.lc.MarkBroken(err)
		return err
	}
	if err := g.lc.MarkReady(); err != nil {
		if p := g.lc.Phase(); p == probes.Draining || p == probes.Stopped {
			return nil // shut down while warming: nothing left to do
		}
		return fmt.Errorf("startup: %w", err)
	}
	return nil
}

// unfinished describes the tasks not yet done, with their last errors.
func (g *Gate) unfinished() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var parts []string
	for _, t := range g.tasks {
		switch {
		case t.done:
		case t.err != nil:
			parts = append(parts, fmt.Sprintf("task %q after %d failed attempts: %v", t.name, t.failures, t.err))
		default:
			parts = append(parts, fmt.Sprintf("task %q still running", t.name))
		}
	}
	return strings.Join(parts, "; ")
}

// runTask runs t until it succeeds or ctx ends, backing off between attempts.
func (g *Gate) runTask(ctx context.Context, t *task) {
	wait := g.cfg.backoffMin
	p := &Progress{g: g, t: t}
	for {
		g.mu.Lock()
		t.attempts++
		g.mu.Unlock()
		err := probes.RedactError(safeRun(ctx, t.fn, p))
		g.mu.Lock()
		t.done = err == nil
		t.err = err
		if err != nil {
			t.failures++
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

func safeRun(ctx context.Context, fn TaskFunc, p *Progress) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn(ctx, p)
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
	phase := g.lc.Phase()
	r := probes.Report{Gate: "startup", Phase: phase, Base: probes.Fail}
	switch {
	case phase == probes.Broken:
	case phase == probes.Draining || phase == probes.Stopped || g.lc.Started():
		r.Base = probes.Pass
	}
	g.mu.Lock()
	r.Tasks = make([]probes.TaskState, len(g.tasks))
	for i, t := range g.tasks {
		r.Tasks[i] = probes.TaskState{
			Name: t.name, Done: t.done, Attempts: t.attempts, Failures: t.failures, Err: t.err,
			Fraction: float64(t.permille.Load()) / 1000,
		}
	}
	g.mu.Unlock()
	r.Notes = []string{"phase: " + phase.String()}
	if len(r.Tasks) > 0 {
		r.Notes = append(r.Notes, progressNote(r.Tasks))
	}
	return r
}

// progressNote reads like "warm-up 45%: cache 30%, schema done".
func progressNote(tasks []probes.TaskState) string {
	var b strings.Builder
	sum := 0.0
	for i, t := range tasks {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(t.Name)
		switch {
		case t.Done:
			sum++
			b.WriteString(" done")
		case t.Failures > 0:
			sum += t.Fraction
			fmt.Fprintf(&b, " %d%% (retrying after %d failed attempts)", int(t.Fraction*100), t.Failures)
		default:
			sum += t.Fraction
			fmt.Fprintf(&b, " %d%%", int(t.Fraction*100))
		}
	}
	return fmt.Sprintf("warm-up %d%%: %s", int(sum/float64(len(tasks))*100), b.String())
}

// Subscribe registers fn to be called after every change of the lifecycle's
// phase and every progress step, on the goroutine that made it.
func (g *Gate) Subscribe(fn func()) (cancel func()) { return g.changes.Subscribe(fn) }

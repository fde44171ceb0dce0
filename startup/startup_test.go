package startup_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/startup"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newGate(t *testing.T, opts ...startup.Option) (*probes.Lifecycle, *startup.Gate) {
	t.Helper()
	lc := probes.NewLifecycle()
	g, err := startup.New(lc, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return lc, g
}

// runAsync runs the lifecycle's work (the warm-up) until the warm-up has
// settled (Ready, Broken or Draining) or ctx ends, and yields lc.Run's error,
// nil for a Run that was merely stopped.
func runAsync(lc *probes.Lifecycle, ctx context.Context) <-chan error {
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(ctx)
	run := make(chan error, 1)
	go func() { run <- lc.Run(ctx) }()
	go func() {
		defer cancel()
		for {
			select {
			case err := <-run:
				if errors.Is(err, context.Canceled) {
					err = nil
				}
				done <- err
				return
			case <-time.After(time.Millisecond):
			}
			if p := lc.Phase(); p == probes.Ready || p == probes.Broken || p == probes.Draining {
				cancel()
			}
		}
	}()
	return done
}

// warmUp runs the warm-up to its end and returns lc.Run's error.
func warmUp(lc *probes.Lifecycle) error { return <-runAsync(lc, context.Background()) }

func TestWarmUpProgressAndLatch(t *testing.T) {
	lc, g := newGate(t)
	step := make(chan float64)
	finish := make(chan struct{})
	err := g.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		for f := range step {
			p.Set(f)
		}
		<-finish
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if s := g.Report().Status(); s != probes.Fail {
		t.Fatalf("Cold: got %s, want fail", s)
	}
	done := runAsync(lc, context.Background())

	step <- 0.45
	testutil.Eventually(t, "progress 45% shown", func() bool {
		r := g.Report()
		return len(r.Tasks) == 1 && r.Tasks[0].Fraction == 0.45 && strings.Contains(strings.Join(r.Notes, " "), "warm-up 45%")
	})
	if r := g.Report(); r.Phase != probes.Warming || r.Status() != probes.Fail {
		t.Errorf("while warming: phase %s status %s, want warming/fail", r.Phase, r.Status())
	}
	close(step)
	close(finish)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := g.Report(); r.Phase != probes.Ready || r.Status() != probes.Pass || !r.Tasks[0].Done {
		t.Fatalf("after warm-up: %+v, want ready and passing", r)
	}

	// Rewarm: back to Warming, and startup stays passed (latched).
	reload := make(chan struct{})
	rewarmed := make(chan error, 1)
	if err := g.Task("late", func(context.Context, *startup.Progress) error { return nil }); err != nil {
		t.Fatal(err)
	}
	go func() {
		close(reload)
		rewarmed <- g.Rewarm(context.Background(), "cache reload")
	}()
	<-reload
	if err := <-rewarmed; err != nil {
		t.Fatalf("Rewarm: %v", err)
	}
	if lc.Phase() != probes.Ready || g.Report().Status() != probes.Pass {
		t.Errorf("after Rewarm: phase %s, status %s", lc.Phase(), g.Report().Status())
	}
}

// rewarming returns a Ready gate whose Rewarm is under way: its task blocks
// on its second run until release is called; done yields Rewarm's result.
func rewarming(t *testing.T) (lc *probes.Lifecycle, g *startup.Gate, release func(), done <-chan error) {
	t.Helper()
	lc, g = newGate(t)
	gate := make(chan struct{})
	var runs atomic.Int64
	if err := g.Task("cache", func(context.Context, *startup.Progress) error {
		if runs.Add(1) == 2 {
			<-gate
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 1)
	go func() { result <- g.Rewarm(context.Background(), "reload") }()
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release) // never leave the task blocked, even when the test fails early
	testutil.Eventually(t, "rewarm running", func() bool { return runs.Load() == 2 })
	return lc, g, release, result
}

func TestLatchedDuringRewarm(t *testing.T) {
	lc, g, release, done := rewarming(t)
	if lc.Phase() != probes.Warming {
		t.Errorf("phase during rewarm: got %s, want warming", lc.Phase())
	}
	if s := g.Report().Status(); s != probes.Pass {
		t.Errorf("startup during rewarm: got %s, want pass (latched)", s)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestRetryWithBackoff(t *testing.T) {
	lc, g := newGate(t, startup.Backoff(time.Millisecond, 4*time.Millisecond))
	var attempts atomic.Int64
	if err := g.Task("migrate", func(context.Context, *startup.Progress) error {
		switch attempts.Add(1) {
		case 1:
			return errors.New("db not up: password=hunter2")
		case 2:
			panic("half-applied")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(lc); err != nil {
		t.Fatalf("Run: %v", err)
	}
	r := g.Report()
	if got := r.Tasks[0].Attempts; got != 3 {
		t.Errorf("attempts: got %d, want 3", got)
	}
	if r.Status() != probes.Pass {
		t.Errorf("status: got %s, want pass", r.Status())
	}
}

func TestDeadlineBreaks(t *testing.T) {
	lc, g := newGate(t, startup.Deadline(50*time.Millisecond), startup.Backoff(time.Millisecond, time.Millisecond))
	if err := g.Task("stuck", func(ctx context.Context, p *startup.Progress) error {
		return errors.New("upstream refuses: postgres://u:pw123@h/db")
	}); err != nil {
		t.Fatal(err)
	}
	// Run itself, not runAsync: that one stops Run when it sees Broken,
	// which may come before the warm-up's failure reaches Run.
	err := lc.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), "deadline 50ms missed") {
		t.Fatalf("Run: got %v, want a missed-deadline error", err)
	}
	if strings.Contains(err.Error(), "pw123") {
		t.Errorf("error leaks a password: %v", err)
	}
	if lc.Phase() != probes.Broken {
		t.Errorf("phase: got %s, want broken", lc.Phase())
	}
	if s := g.Report().Status(); s != probes.Fail {
		t.Errorf("startup when broken: got %s, want fail", s)
	}
}

func TestCancelledWhileWarming(t *testing.T) {
	lc, g := newGate(t)
	if err := g.Task("slow", func(ctx context.Context, p *startup.Progress) error {
		<-ctx.Done()
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := runAsync(lc, ctx)
	testutil.Eventually(t, "warming", func() bool { return lc.Phase() == probes.Warming })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: got %v, want a plain stop", err)
	}
	if lc.Phase() != probes.Warming {
		t.Errorf("phase: got %s, want warming (not broken)", lc.Phase())
	}
}

func TestNoTasksIsReadyAtOnce(t *testing.T) {
	lc, _ := newGate(t)
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	if lc.Phase() != probes.Ready {
		t.Errorf("phase: got %s, want ready", lc.Phase())
	}
}

func TestProgressCount(t *testing.T) {
	lc, g := newGate(t)
	var seen []float64
	if err := g.Task("rows", func(ctx context.Context, p *startup.Progress) error {
		for _, n := range []int{0, 1, 3, 4} {
			p.Count(n, 4)
			seen = append(seen, g.Report().Tasks[0].Fraction)
		}
		p.Count(1, 0) // ignored
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	want := []float64{0, 0.25, 0.75, 1}
	for i := range want {
		if seen[i] != want[i] {
			t.Errorf("fraction after step %d: got %v, want %v", i, seen[i], want[i])
		}
	}
}

func TestRejectsBadInput(t *testing.T) {
	lc := probes.NewLifecycle()
	optTests := []struct {
		name string
		opt  startup.Option
		want string
	}{
		{"zero deadline", startup.Deadline(0), "Deadline(0s)"},
		{"negative backoff", startup.Backoff(-time.Second, time.Second), "Backoff(-1s, 1s)"},
		{"max below initial", startup.Backoff(time.Second, time.Millisecond), "Backoff(1s, 1ms)"},
	}
	for _, tt := range optTests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := startup.New(lc, tt.opt)
			if err == nil || g != nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, %v; want an error naming %s", g, err, tt.want)
			}
		})
	}
	_, g := newGate(t)
	ok := func(context.Context, *startup.Progress) error { return nil }
	if err := g.Task("cache", ok); err != nil {
		t.Fatal(err)
	}
	taskTests := []struct {
		name, task string
		fn         startup.TaskFunc
		want       string
	}{
		{"duplicate", "cache", ok, "added twice"},
		{"bad name", "a b", ok, `"a b"`},
		{"nil func", "x", nil, "nil TaskFunc"},
	}
	for _, tt := range taskTests {
		t.Run(tt.name, func(t *testing.T) {
			if err := g.Task(tt.task, tt.fn); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error mentioning %s", err, tt.want)
			}
		})
	}
}

func TestDeadlineWithTaskIgnoringContext(t *testing.T) {
	lc, g := newGate(t, startup.Deadline(50*time.Millisecond))
	release := make(chan struct{})
	if err := g.Task("stubborn", func(context.Context, *startup.Progress) error {
		<-release // ignores its context
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- lc.Run(context.Background()) }() // returns with the warm-up's failure
	// Broken at the deadline, though the task has not returned.
	testutil.Eventually(t, "broken", func() bool { return lc.Phase() == probes.Broken })
	select {
	case err := <-done:
		t.Fatalf("Run returned %v while a task still runs", err)
	default:
	}
	release <- struct{}{}
	if err := <-done; err == nil || !strings.Contains(err.Error(), `task "stubborn" still running`) {
		t.Fatalf("Run: got %v, want the deadline naming the stuck task", err)
	}
}

// The deadline's error names each unfinished task with its progress and
// last error, and errors.As and errors.Is find it through the lifecycle's
// Run and its Broken move.
func TestDeadlineErrorNamesTasks(t *testing.T) {
	lc, g := newGate(t, startup.Deadline(100*time.Millisecond), startup.Backoff(time.Millisecond, time.Millisecond))
	halfway, release := make(chan struct{}), make(chan struct{})
	tasks := map[string]startup.TaskFunc{
		"quick": func(context.Context, *startup.Progress) error { return nil },
		"slow": func(ctx context.Context, p *startup.Progress) error {
			p.Set(0.45)
			close(halfway)
			<-release // past the deadline, whatever its context says
			return nil
		},
		"schema": func(context.Context, *startup.Progress) error { return errors.New("db not up: password=hunter2") },
		// Cut short by the deadline, which is no failure of its own.
		"polite": func(ctx context.Context, p *startup.Progress) error {
			p.Set(0.3)
			<-ctx.Done()
			return ctx.Err()
		},
	}
	for name, fn := range tasks {
		if err := g.Task(name, fn); err != nil {
			t.Fatal(err)
		}
	}
	var brokenWith error
	lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Broken {
			brokenWith = tr.Err
			close(release)
		}
	})
	err := lc.Run(context.Background())
	<-halfway
	var de *startup.DeadlineError
	if !errors.As(err, &de) || !errors.Is(err, startup.ErrDeadline) || !errors.Is(brokenWith, startup.ErrDeadline) {
		t.Fatalf("Run: got %v (Broken with %v), want a *DeadlineError", err, brokenWith)
	}
	if de.Deadline != 100*time.Millisecond || len(de.Unfinished) != 3 || de.Unfinished[0].Name != "polite" || de.Unfinished[1].Name != "schema" || de.Unfinished[2].Name != "slow" {
		t.Fatalf("DeadlineError: got %+v, want polite, schema and slow unfinished", de)
	}
	for _, want := range []string{`task "polite" still running (30%)`, `task "schema" at 0% after `, ` failed attempts: db not up: password=xxxxx`, `task "slow" still running (45%)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Run: got %q, want it to hold %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("Run: got %q, with the secret", err)
	}
	if st, _ := g.Report().Task("polite"); st.Failures != 0 || st.Err != nil {
		t.Errorf("the task the deadline cut: got %d failures (%v), want none", st.Failures, st.Err)
	}
}

func TestRewarmWhileWarmingChangesNothing(t *testing.T) {
	lc, g, release, done := rewarming(t)
	if err := g.Rewarm(context.Background(), "second"); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Rewarm: got %v, want already running", err)
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The refused Rewarm left no trace: the lifecycle is Ready, not stuck in Warming.
	if lc.Phase() != probes.Ready {
		t.Errorf("phase: got %s, want ready", lc.Phase())
	}
	// And a Rewarm from a phase that does not allow it releases the gate.
	if err := lc.Drain("bye"); err != nil {
		t.Fatal(err)
	}
	if err := g.Rewarm(context.Background(), "late"); !errors.Is(err, probes.ErrIllegalTransition) {
		t.Errorf("Rewarm while draining: got %v, want an illegal transition", err)
	}
}

func TestRetryNote(t *testing.T) {
	lc, g := newGate(t, startup.Backoff(time.Millisecond, time.Millisecond))
	second := make(chan struct{})
	finish := make(chan struct{})
	var attempts atomic.Int64
	if err := g.Task("cache", func(context.Context, *startup.Progress) error {
		if attempts.Add(1) == 1 {
			return errors.New("first try fails")
		}
		close(second)
		<-finish
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	done := runAsync(lc, context.Background())
	<-second
	// While the second attempt runs, one attempt has failed.
	if note := g.Report().Notes[1]; !strings.Contains(note, "retrying after 1 failed attempts") {
		t.Errorf("note during attempt 2: %q", note)
	}
	close(finish)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A Rewarm whose context ends goes back to Ready with the tasks as they were,
// rather than leaving the lifecycle in Warming for good.
func TestRewarmCancelledGoesBackToReady(t *testing.T) {
	lc, g := newGate(t)
	var runs atomic.Int64
	if err := g.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		if runs.Add(1) == 2 {
			p.Set(0.3)
			<-ctx.Done()
			return ctx.Err()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Rewarm(ctx, "reload") }()
	testutil.Eventually(t, "rewarm loading", func() bool { return runs.Load() == 2 && g.Report().Tasks[0].Fraction == 0.3 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "serving the data loaded before") {
		t.Errorf("Rewarm: got %v, want a cancellation that says it went back", err)
	}
	r := g.Report()
	if lc.Phase() != probes.Ready || !r.Tasks[0].Done || r.Tasks[0].Fraction != 1 {
		t.Errorf("after a cancelled Rewarm: phase %s, task %+v; want ready with the task done", lc.Phase(), r.Tasks[0])
	}
}

// A refused Rewarm changes nothing: the tasks keep their state.
func TestRefusedRewarmResetsNothing(t *testing.T) {
	lc, g := newGate(t)
	if err := g.Task("cache", func(context.Context, *startup.Progress) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	if err := lc.Drain("bye"); err != nil {
		t.Fatal(err)
	}
	before := g.Report()
	if err := g.Rewarm(context.Background(), "late"); !errors.Is(err, probes.ErrIllegalTransition) {
		t.Fatalf("Rewarm while draining: got %v, want an illegal transition", err)
	}
	if after := g.Report(); !after.Tasks[0].Done || after.Tasks[0].Attempts != before.Tasks[0].Attempts {
		t.Errorf("refused Rewarm changed the task: before %+v, after %+v", before.Tasks[0], after.Tasks[0])
	}
}

// The drain cancels a warm-up under way, the warm-up ends without error,
// and startup keeps failing: the service never started.
func TestDrainCancelsWarmUp(t *testing.T) {
	lc, g := newGate(t)
	cancelled := make(chan struct{})
	var returned atomic.Bool
	if err := g.Task("cache", func(ctx context.Context, p *startup.Progress) error {
		p.Set(0.5)
		<-ctx.Done()
		close(cancelled)
		time.Sleep(20 * time.Millisecond) // a task that takes a moment to wind down
		returned.Store(true)
		return ctx.Err()
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	testutil.Eventually(t, "loading", func() bool { return g.Report().Tasks[0].Fraction == 0.5 })
	if err := lc.Drain("SIGTERM"); err != nil {
		t.Fatal(err)
	}
	<-cancelled
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run: got %v, want a plain stop", err)
	}
	if !returned.Load() {
		t.Error("Run returned before the warm-up task did")
	}
	if s := g.Report().Status(); s != probes.Fail || lc.Phase() != probes.Draining {
		t.Errorf("startup after a drain during warm-up: %s in %s, want fail in draining", s, lc.Phase())
	}
}

// Once the phase says Ready, a Rewarm is accepted: asked from a listener of
// the very move to Ready, before the first warm-up has returned.
func TestRewarmRightAfterReady(t *testing.T) {
	lc, g := newGate(t)
	var runs atomic.Int64
	if err := g.Task("cache", func(context.Context, *startup.Progress) error { runs.Add(1); return nil }); err != nil {
		t.Fatal(err)
	}
	rewarmed := make(chan error, 1)
	var once sync.Once
	cancel := lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Ready {
			once.Do(func() { rewarmed <- g.Rewarm(context.Background(), "at once") })
		}
	})
	defer cancel()
	if err := warmUp(lc); err != nil {
		t.Fatal(err)
	}
	if err := <-rewarmed; err != nil {
		t.Errorf("Rewarm as the phase turned Ready: %v", err)
	}
	if n := runs.Load(); n != 2 || lc.Phase() != probes.Ready {
		t.Errorf("task ran %d times, phase %s; want 2 and ready", n, lc.Phase())
	}
}

// A subscriber that reads the gate's report, as every surface does, must be
// able to run while tasks are added: the gate never calls out under its lock.
func TestTaskWithSubscriberReadingReport(t *testing.T) {
	_, g := newGate(t)
	var reads atomic.Int64
	defer g.Subscribe(func() { _ = g.Report(); reads.Add(1) })()
	done := make(chan error, 1)
	go func() {
		done <- g.Task("cache", func(context.Context, *startup.Progress) error { return nil })
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Task did not return within 5s: the gate notified its subscribers under its lock")
	}
	if reads.Load() == 0 {
		t.Error("the subscriber was not told of the new task")
	}
}

// A Rewarm that claims the gate from a listener of the move to Ready keeps
// its claim when the first warm-up returns: no task is accepted while it runs.
func TestRewarmClaimSurvivesFirstWarmUp(t *testing.T) {
	lc, g := newGate(t)
	var runs atomic.Int64
	rewarming, release := make(chan struct{}), make(chan struct{})
	err := g.Task("cache", func(context.Context, *startup.Progress) error {
		if runs.Add(1) == 2 {
			close(rewarming)
			<-release
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rewarmed := make(chan error, 1)
	var once sync.Once
	defer lc.Subscribe(func(tr probes.Transition) {
		if tr.To == probes.Ready {
			// Hold the move to Ready until the Rewarm has claimed the
			// gate and runs its task: the first warm-up returns after.
			once.Do(func() {
				go func() { rewarmed <- g.Rewarm(context.Background(), "reload") }()
				<-rewarming
			})
		}
	})()
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- lc.Run(ctx) }()
	<-rewarming
	cancel() // the Rewarm has its own context; the first warm-up returns
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Fatalf("lc.Run: got %v, want context.Canceled", err)
	}
	if err := g.Task("late", func(context.Context, *startup.Progress) error { return nil }); err == nil {
		t.Error("Task accepted while a Rewarm runs: the first warm-up released the Rewarm's claim")
	}
	close(release)
	if err := <-rewarmed; err != nil {
		t.Errorf("Rewarm: %v", err)
	}
}

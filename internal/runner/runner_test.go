package runner_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/runner"
	"github.com/probekit/probes/internal/spec"
	"github.com/probekit/probes/internal/testenv/testutil"
	"go.uber.org/goleak"
)

var errDown = errors.New("down")

var clock = probes.NewLifecycle().Clock()

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func result(t *testing.T, r *runner.Runner, name string) probes.Result {
	t.Helper()
	res, ok := r.Result(name)
	if !ok {
		t.Fatalf("no check %q", name)
	}
	return res
}

// flip is one change of a check's verdict: the execution that caused it and
// the verdict after it.
type flip struct {
	execution uint64
	status    probes.Status
}

func TestRunnerThresholds(t *testing.T) {
	p, f, w := error(nil), errDown, fmt.Errorf("lagging: %w", probes.ErrWarn)
	tests := []struct {
		name   string
		script []error
		opts   []probes.CheckOption
		want   []flip
	}{
		{"first pass decides", []error{p}, nil, []flip{{1, probes.Pass}}},
		{"first failure decides despite threshold", []error{f, p}, []probes.CheckOption{probes.FailureThreshold(3)},
			[]flip{{1, probes.Fail}, {2, probes.Pass}}},
		{"exactly N failures flip to fail", []error{p, f, f, p, f, f, f, p},
			[]probes.CheckOption{probes.FailureThreshold(3)}, []flip{{1, probes.Pass}, {7, probes.Fail}, {8, probes.Pass}}},
		{"exactly M passes flip back", []error{f, p, p, f, p, p, p},
			[]probes.CheckOption{probes.SuccessThreshold(3)}, []flip{{1, probes.Fail}, {7, probes.Pass}}},
		{"warn counts as a success", []error{p, w, f, w, w},
			[]probes.CheckOption{probes.SuccessThreshold(2)}, []flip{{1, probes.Pass}, {2, probes.Warn}, {3, probes.Fail}, {5, probes.Warn}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu    sync.Mutex
				flips []flip
				r     *runner.Runner
			)
			r = runner.New(clock, func() {
				if res, ok := r.Result("dep"); ok && res.Executions > 0 {
					mu.Lock()
					// Only verdict changes: a change of the flapping
					// mark is announced too, with the same status.
					if len(flips) == 0 || flips[len(flips)-1].status != res.Status {
						flips = append(flips, flip{res.Executions, res.Status})
					}
					mu.Unlock()
				}
			})
			var n atomic.Int64
			check := probes.CheckFunc(func(context.Context) error {
				i := int(n.Add(1)) - 1
				return tt.script[min(i, len(tt.script)-1)]
			})
			opts := append([]probes.CheckOption{probes.Every(time.Millisecond)}, tt.opts...)
			if err := r.Add("dep", check, opts...); err != nil {
				t.Fatal(err)
			}
			testutil.Background(t, r.Run)
			testutil.Eventually(t, "script played", func() bool { return n.Load() > int64(len(tt.script))+2 })
			mu.Lock()
			defer mu.Unlock()
			if fmt.Sprint(flips) != fmt.Sprint(tt.want) {
				t.Errorf("flips: got %v, want %v", flips, tt.want)
			}
		})
	}
}

func TestRunnerHungCheck(t *testing.T) {
	release := make(chan struct{})
	var started atomic.Int64
	r := runner.New(clock, nil)
	hang := probes.CheckFunc(func(context.Context) error {
		started.Add(1)
		<-release // ignores its context on purpose
		return nil
	})
	if err := r.Add("hang", hang, probes.Every(time.Millisecond), probes.Timeout(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	base := runtime.NumGoroutine()
	testutil.Background(t, r.Run)
	t.Cleanup(func() { close(release) }) // runs before the runner stops

	testutil.Eventually(t, "hung check reported failing", func() bool {
		res := result(t, r, "hang")
		return res.Status == probes.Fail && res.Err != nil &&
			(strings.Contains(res.Err.Error(), "timed out after 20ms") || strings.Contains(res.Err.Error(), "(timeout 20ms)"))
	})
	// Over 1,000 intervals the hung execution is the only one: no pile-up.
	most := 0
	until := time.Now().Add(1000 * time.Millisecond)
	for time.Now().Before(until) {
		most = max(most, runtime.NumGoroutine())
		time.Sleep(5 * time.Millisecond)
	}
	if got := started.Load(); got != 1 {
		t.Errorf("executions started while one hangs: got %d, want 1", got)
	}
	if most > base+10 { // Run, the hung execution and a few passing timer callbacks
		t.Errorf("goroutines: got up to %d, want at most %d", most, base+10)
	}
	if !errors.Is(result(t, r, "hang").Err, context.DeadlineExceeded) {
		t.Errorf("timeout error %v does not wrap context.DeadlineExceeded", result(t, r, "hang").Err)
	}
}

func TestRunnerTimeoutCancelsContext(t *testing.T) {
	r := runner.New(clock, nil)
	var calls atomic.Int64
	slow := probes.CheckFunc(func(ctx context.Context) error {
		calls.Add(1)
		<-ctx.Done()
		return ctx.Err()
	})
	if err := r.Add("slow", slow, probes.Every(time.Millisecond), probes.Timeout(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	// A check that honours its context frees its slot at the timeout, so
	// executions go on and each is reported as a timeout.
	testutil.Eventually(t, "several executions timed out", func() bool {
		res := result(t, r, "slow")
		return calls.Load() >= 3 && res.Status == probes.Fail && res.ConsecutiveFailures >= 2 &&
			strings.Contains(res.Err.Error(), "timed out")
	})
}

func TestRunnerPanic(t *testing.T) {
	r := runner.New(clock, nil)
	if err := r.Add("bad", probes.CheckFunc(func(context.Context) error { panic("kaboom") }), probes.Every(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "panic reported", func() bool {
		res := result(t, r, "bad")
		return res.Executions >= 2 && res.Status == probes.Fail && res.Err != nil && strings.Contains(res.Err.Error(), "panic: kaboom")
	})
}

func TestRunnerPendingFails(t *testing.T) {
	r := runner.New(clock, nil)
	if err := r.Add("later", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	res := result(t, r, "later")
	if res.Status != probes.Fail || res.Err == nil || res.Executions != 0 {
		t.Errorf("before Run: got %+v, want a failing pending result", res)
	}
}

func TestRunnerAddRejects(t *testing.T) {
	ok := probes.CheckFunc(func(context.Context) error { return nil })
	tests := []struct {
		name    string
		check   string
		checker probes.Checker
		opts    []probes.CheckOption
		want    string
	}{
		{"empty name", "", ok, nil, "check name"},
		{"name with slash", "a/b", ok, nil, `"a/b"`},
		{"name with space", "a b", ok, nil, `"a b"`},
		{"long name", strings.Repeat("x", 64), ok, nil, "check name"},
		{"nil checker", "x", nil, nil, "nil Checker"},
		{"zero interval", "x", ok, []probes.CheckOption{probes.Every(0)}, "Every(0s)"},
		{"negative timeout", "x", ok, []probes.CheckOption{probes.Timeout(-time.Second)}, "Timeout(-1s)"},
		{"zero failure threshold", "x", ok, []probes.CheckOption{probes.FailureThreshold(0)}, "FailureThreshold(0)"},
		{"zero success threshold", "x", ok, []probes.CheckOption{probes.SuccessThreshold(0)}, "SuccessThreshold(0)"},
		{"duplicate", "taken", ok, nil, "added twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := runner.New(clock, nil)
			if err := r.Add("taken", ok); err != nil {
				t.Fatal(err)
			}
			err := r.Add(tt.check, tt.checker, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got error %v, want one mentioning %s", err, tt.want)
			}
			if got := len(r.Results()); got != 1 {
				t.Errorf("a rejected Add changed the checks: got %d, want 1", got)
			}
		})
	}
}

func TestRunnerRunTwice(t *testing.T) {
	r := runner.New(clock, nil)
	if err := r.Add("c", probes.CheckFunc(func(context.Context) error { return nil })); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first Run started", func() bool { return result(t, r, "c").Executions > 0 })
	if err := r.Run(context.Background()); err == nil {
		t.Error("second Run: got nil, want an error")
	}
}

func TestRunnerAddWhileRunning(t *testing.T) {
	r := runner.New(clock, nil)
	testutil.Background(t, r.Run)
	if err := r.Add("late", probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, "late check ran", func() bool { return result(t, r, "late").Status == probes.Pass })
}

func TestRunnerTrigger(t *testing.T) {
	r := runner.New(clock, nil)
	var calls atomic.Int64
	if err := r.Add("c", probes.CheckFunc(func(context.Context) error { calls.Add(1); return nil }), probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first run", func() bool { return result(t, r, "c").Executions == 1 && calls.Load() == 1 })
	r.Trigger("c")
	testutil.Eventually(t, "triggered run", func() bool { return calls.Load() == 2 })
}

// idleGoroutines runs n idle checks and counts goroutines once every check
// has run.
func idleGoroutines(t *testing.T, n int) int {
	t.Helper()
	r := runner.New(clock, nil)
	for i := range n {
		if err := r.Add(fmt.Sprintf("c%d", i), probes.CheckFunc(func(context.Context) error { return nil }), probes.Every(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	testutil.Eventually(t, "all checks ran", func() bool {
		for _, res := range r.Results() {
			if res.Status != probes.Pass {
				return false
			}
		}
		return true
	})
	// Timer callbacks that just finished may still be on their way out: take
	// the least count over a few samples.
	least := runtime.NumGoroutine()
	for range 50 {
		time.Sleep(time.Millisecond)
		least = min(least, runtime.NumGoroutine())
	}
	return least
}

func TestRunnerIdleGoroutinesDoNotGrow(t *testing.T) {
	one := idleGoroutines(t, 1)
	hundred := idleGoroutines(t, 100)
	if hundred > one {
		t.Errorf("idle goroutines: %d with 100 checks, %d with 1; want no growth", hundred, one)
	}
}

func TestRunnerObservations(t *testing.T) {
	r := runner.New(clock, nil)
	check := probes.CheckFunc(func(ctx context.Context) error {
		probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: 3, Unit: "connections"})
		probes.Observe(ctx, probes.Observation{Measurement: "connections", Value: 4, Unit: "connections"})
		return nil
	})
	if err := r.Add("pool", check, probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	probes.Observe(context.Background(), probes.Observation{Measurement: "ignored"}) // outside a check: no effect
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "observed", func() bool { return result(t, r, "pool").Status == probes.Pass })
	got := result(t, r, "pool").Observations
	if len(got) != 1 || got[0].Value != 4 {
		t.Errorf("observations: got %+v, want the last connections value 4", got)
	}
}

func TestRunnerHungCheckReachesThreshold(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	r := runner.New(clock, nil)
	check := probes.CheckFunc(func(context.Context) error {
		if calls.Add(1) > 1 {
			<-release // hangs from the second execution on, ignoring its context
		}
		return nil
	})
	if err := r.Add("hang", check, probes.Every(20*time.Millisecond), probes.Timeout(10*time.Millisecond), probes.FailureThreshold(3)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	t.Cleanup(func() { close(release) })
	var timedOut time.Time // when the hung execution's timeout was recorded
	testutil.Eventually(t, "the hung execution times out", func() bool {
		res := result(t, r, "hang")
		timedOut = res.Time
		return res.ConsecutiveFailures == 1 && strings.Contains(res.Err.Error(), "timed out after")
	})
	testutil.Eventually(t, "a hung check reaches its failure threshold", func() bool {
		res := result(t, r, "hang")
		return res.Status == probes.Fail && res.ConsecutiveFailures >= 3 && strings.Contains(res.Err.Error(), "still running after")
	})
	// The failures counted while it hangs are no execution's end: the
	// result's time stays, so its age shows that nothing has ended since.
	if got := result(t, r, "hang").Time; !got.Equal(timedOut) {
		t.Errorf("result time moved from %v to %v while the execution hung", timedOut, got)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("executions: got %d, want 2 (none started while one hangs)", got)
	}
}

func TestRunnerTriggerWhileInFlight(t *testing.T) {
	r := runner.New(clock, nil)
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var calls atomic.Int64
	check := probes.CheckFunc(func(context.Context) error {
		if calls.Add(1) == 1 {
			entered <- struct{}{}
			<-release
		}
		return nil
	})
	if err := r.Add("c", check, probes.Every(time.Hour), probes.Timeout(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	<-entered
	r.Trigger("c") // lands while the first execution is in flight
	close(release)
	testutil.Eventually(t, "the trigger runs the check once the first returns", func() bool { return calls.Load() == 2 })
}

// Revision grows with every result, also those that change no verdict, and
// before the result can be read.
func TestRunnerRevisionCountsEveryResult(t *testing.T) {
	var changes atomic.Int64
	r := runner.New(clock, func() { changes.Add(1) })
	var n atomic.Int64
	check := probes.CheckFunc(func(ctx context.Context) error {
		probes.Observe(ctx, probes.Observation{Measurement: "n", Value: float64(n.Add(1))})
		return nil
	})
	if err := r.Add("c", check, probes.Every(time.Hour)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	observed := func(want float64) func() bool {
		return func() bool {
			obs := result(t, r, "c").Observations
			return len(obs) == 1 && obs[0].Value == want
		}
	}
	testutil.Eventually(t, "first result", observed(1))
	for want := 2.0; want <= 5; want++ {
		before := r.Revision()
		r.Trigger("c")
		testutil.Eventually(t, "next result", observed(want))
		if after := r.Revision(); after <= before {
			t.Fatalf("result %v: revision %d, was %d; want it to grow", want, after, before)
		}
	}
	if got := changes.Load(); got != 2 { // the Add and the first verdict
		t.Errorf("announced changes: %d, want 2 (results that change no verdict are not announced)", got)
	}
}

// A result older than its bound fails, is announced, and clears with the
// next result; a stalled schedule cannot leave an old pass standing.
func TestRunnerStaleResultFails(t *testing.T) {
	var changes atomic.Int64
	r := runner.New(clock, func() { changes.Add(1) })
	if err := r.Add("c", probes.CheckFunc(func(context.Context) error { return nil }),
		probes.Every(20*time.Millisecond), probes.Timeout(20*time.Millisecond), probes.StaleAfter(100*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first pass", func() bool { return result(t, r, "c").Status == probes.Pass })
	runner.StallSchedule(r, "c")
	stalled := time.Now()
	announced := changes.Load()
	testutil.Eventually(t, "stale", func() bool { return result(t, r, "c").Stale })
	if waited := time.Since(stalled); waited < 100*time.Millisecond-20*time.Millisecond {
		t.Errorf("stale after %s; want no sooner than the bound less one interval", waited)
	}
	res := result(t, r, "c")
	if res.Status != probes.Fail || res.Err == nil || !strings.Contains(res.Err.Error(), "StaleAfter 100ms") {
		t.Errorf("stale result: %+v; want a failure naming the bound", res)
	}
	if changes.Load() == announced {
		t.Error("going stale was not announced")
	}
	r.Trigger("c")
	testutil.Eventually(t, "fresh again", func() bool { res := result(t, r, "c"); return !res.Stale && res.Status == probes.Pass })
}

func TestRunnerScopesAndBounds(t *testing.T) {
	ok := probes.CheckFunc(func(context.Context) error { return nil })
	local := runner.New(clock, nil)
	if err := local.Add("c", ok, probes.Shared()); err == nil || !strings.Contains(err.Error(), "Shared()") {
		t.Errorf("Shared on a local-only runner: got %v, want an error naming Shared()", err)
	}
	if err := local.Add("c", ok, probes.Every(time.Second), probes.StaleAfter(time.Second)); err == nil ||
		!strings.Contains(err.Error(), "StaleAfter(1s)") {
		t.Errorf("StaleAfter below interval plus timeout: got %v, want an error naming it", err)
	}
	if err := local.Add("c", ok, probes.StaleAfter(-time.Second)); err == nil || !strings.Contains(err.Error(), "StaleAfter(-1s)") {
		t.Errorf("negative StaleAfter: got %v, want an error naming it", err)
	}
	shared := runner.New(clock, nil)
	shared.Scopes(spec.Shared, true)
	for name, opts := range map[string][]probes.CheckOption{"default": nil, "local": {probes.Local()}, "shared": {probes.Shared()}} {
		if err := shared.Add(name, ok, opts...); err != nil {
			t.Fatal(err)
		}
		if got, want := result(t, shared, name).Shared, name != "local"; got != want {
			t.Errorf("%s: Shared %v, want %v", name, got, want)
		}
	}
}

// A failing check runs again sooner than its interval, so a dependency
// back after a blip is seen at once, not an interval later.
func TestRunnerRecheckSeesRecoverySoon(t *testing.T) {
	r := runner.New(clock, nil)
	var calls atomic.Int64
	check := probes.CheckFunc(func(context.Context) error {
		if calls.Add(1) <= 2 {
			return errDown // a blip: two failed executions
		}
		return nil
	})
	if err := r.Add("db", check, probes.Every(time.Hour), probes.Recheck(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "passing again long before the hourly interval", func() bool {
		return result(t, r, "db").Status == probes.Pass
	})
	if n := calls.Load(); n != 3 {
		t.Errorf("executions: got %d, want 3 (fail, recheck fail, recheck pass)", n)
	}
}

// Rechecks of a dependency that stays down back off: each wait at least
// doubles until it reaches the interval, and never beats it after that.
func TestRunnerRecheckBacksOff(t *testing.T) {
	r := runner.New(clock, nil)
	starts := make(chan time.Time, 64)
	check := probes.CheckFunc(func(context.Context) error {
		select {
		case starts <- time.Now():
		default:
		}
		return errDown
	})
	const interval, first = 64 * time.Millisecond, 2 * time.Millisecond
	if err := r.Add("db", check, probes.Every(interval), probes.Recheck(first)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	// The schedule is what counts, not each gap: a start that a loaded
	// machine delays makes the gap after it shorter. So the rechecks are
	// measured from the first start, against the sum of the waits before.
	began := <-starts
	wait, due := first, time.Duration(0)
	for i := range 9 {
		at := <-starts
		due += wait
		if since := at.Sub(began); since < due {
			t.Errorf("recheck %d came %s after the first execution; want at least %s (waits doubling from %s)", i+1, since, due, first)
		}
		wait = min(2*wait, interval)
	}
}

// Failures below the failure threshold keep the interval: rechecks only
// confirm the recovery of a verdict that has flipped.
func TestRunnerRecheckOnlyWhenFailing(t *testing.T) {
	r := runner.New(clock, nil)
	var calls atomic.Int64
	check := probes.CheckFunc(func(context.Context) error {
		if calls.Add(1) == 2 {
			return errDown
		}
		return nil
	})
	if err := r.Add("db", check, probes.Every(time.Hour), probes.FailureThreshold(2), probes.Recheck(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first pass", func() bool { return calls.Load() == 1 })
	r.Trigger("db") // the second execution fails, below the threshold
	testutil.Eventually(t, "second execution", func() bool { return result(t, r, "db").Executions == 2 && calls.Load() == 2 })
	deadline := time.Now().Add(50 * time.Millisecond)
	for time.Now().Before(deadline) {
		if n := calls.Load(); n != 2 {
			t.Fatalf("executions: got %d, want 2: a failure below the threshold was rechecked", n)
		}
		runtime.Gosched()
	}
}

// A flood of triggers costs one execution per trigger gap, not one each.
func TestRunnerTriggerFloodIsBounded(t *testing.T) {
	r := runner.New(clock, nil)
	var calls atomic.Int64
	if err := r.Add("db", probes.CheckFunc(func(context.Context) error { calls.Add(1); return nil }),
		probes.Every(time.Hour), probes.Recheck(20*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first run", func() bool { return calls.Load() == 1 })
	began := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 2000 {
				r.Trigger("db")
				runtime.Gosched()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	// One execution at the start, at most one per gap since, one pending.
	if n, most := calls.Load(), 2+int64(elapsed/(20*time.Millisecond))+1; n > most {
		t.Errorf("16000 triggers over %s ran the check %d times; want at most %d", elapsed, n, most)
	}
}

// A check whose outcomes keep changing is marked flapping, and the mark
// holds through a short calm (hysteresis), then goes; Since follows the
// verdict, not the outcomes.
func TestRunnerFlapping(t *testing.T) {
	r := runner.New(clock, nil)
	executed, done := make(chan struct{}), make(chan struct{})
	r.OnExecuted(func(string, probes.Status, time.Duration) {
		select {
		case executed <- struct{}{}:
		case <-done:
		}
	})
	var n atomic.Int64
	var script []error
	for range 12 {
		script = append(script, nil, errDown) // flapping
	}
	for range 30 {
		script = append(script, nil) // settled
	}
	gate := make(chan struct{})
	check := probes.CheckFunc(func(ctx context.Context) error {
		select {
		case <-gate:
		case <-done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		i := int(n.Add(1)) - 1
		return script[min(i, len(script)-1)]
	})
	// Executions follow one another as the test lets them: each waits for
	// the gate, and the next is due at once.
	if err := r.Add("dep", check, probes.Every(time.Millisecond), probes.Timeout(time.Hour), probes.Recheck(0)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	t.Cleanup(func() { close(done) }) // before Run is stopped: cleanups run last first
	step := func() probes.Result {
		t.Helper()
		gate <- struct{}{}
		<-executed
		return result(t, r, "dep")
	}
	res := step()
	if res.Flapping || res.Since.IsZero() {
		t.Fatalf("after one result: flapping %v, since %v; want not flapping, a since", res.Flapping, res.Since)
	}
	marked := 0
	for i := 2; i <= 24; i++ {
		if res = step(); res.Flapping && marked == 0 {
			marked = i
		}
	}
	if marked == 0 {
		t.Fatal("24 alternating outcomes were not marked flapping")
	}
	for i := 25; i <= 27; i++ {
		if res = step(); !res.Flapping {
			t.Fatalf("outcome %d, early in the calm: the mark went at once; want it held", i)
		}
	}
	since := res.Since
	cleared := 0
	for i := 28; i <= 54; i++ {
		if res = step(); !res.Flapping && cleared == 0 {
			cleared = i
		}
	}
	if cleared == 0 {
		t.Fatal("30 passes in a row did not clear the flapping mark")
	}
	if !res.Since.Equal(since) {
		t.Errorf("since moved from %v to %v over passes that changed no verdict", since, res.Since)
	}
	t.Logf("marked flapping at outcome %d, cleared at %d", marked, cleared)
}

// Triggers that race the timer's firing, many goroutines at once, start
// no execution sooner than the gap after the last one began: a firing
// that was superseded while it waited for the lock does not run the check
// again.
func TestRunnerTriggerRaceIsBounded(t *testing.T) {
	const gap = 20 * time.Millisecond
	r := runner.New(clock, nil)
	var calls atomic.Int64
	if err := r.Add("db", probes.CheckFunc(func(context.Context) error { calls.Add(1); return nil }),
		probes.Every(time.Hour), probes.Recheck(gap)); err != nil {
		t.Fatal(err)
	}
	testutil.Background(t, r.Run)
	testutil.Eventually(t, "first run", func() bool { return calls.Load() == 1 })
	began := time.Now()
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for range 3000 {
				r.Trigger("db")
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	// One execution at the start, at most one per gap since, one pending.
	if n, most := calls.Load(), 2+int64(elapsed/gap)+1; n > most {
		t.Errorf("192000 triggers from 64 goroutines over %s ran the check %d times; want at most %d", elapsed, n, most)
	}
}

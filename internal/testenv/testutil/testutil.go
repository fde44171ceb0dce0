// Package testutil holds the helpers the project's tests share: polling with
// a deadline instead of sleeping, background work owned by a test, and a
// settable clock.
package testutil

import (
	"context"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/spec"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// Deadline bounds every Eventually.
const Deadline = 10 * time.Second

// Eventually polls cond every millisecond until it holds, and fails the test
// if it does not within Deadline; what says what was awaited.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", Deadline, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// Background runs fn on a goroutine of its own until the test ends, then
// cancels its context and waits for it to return.
func Background(t testing.TB, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// Clock is a settable clock for probes.WithClock. Its readings carry no
// monotonic part, like a wall clock that may be stepped.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock reading now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Ready moves a new lifecycle through warm-up to Ready, failing the test if
// a move is refused.
func Ready(t testing.TB, lc *probes.Lifecycle) {
	t.Helper()
	if err := lc.Start(); err != nil {
		t.Fatal(err)
	}
	if err := lc.MarkReady(); err != nil {
		t.Fatal(err)
	}
}

// Listen listens on a free loopback port and closes the listener when the
// test ends (closing it twice is harmless).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// FreeAddr returns a loopback address nobody listens on now, for a process
// or a function that listens itself. The port is below the kernel's
// ephemeral range when it can be: a port from that range (what ":0"
// gives) can be taken, between this call and the listen, by any outgoing
// connection of the machine, and a load test makes thousands of them.
func FreeAddr(t testing.TB) string {
	t.Helper()
	if low := ephemeralLow(); low > freeFloor+1000 {
		for range 50 {
			port := freeFloor + rand.IntN(low-freeFloor)
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
			if err == nil {
				ln.Close()
				return ln.Addr().String()
			}
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// freeFloor is the lowest port FreeAddr picks: above the well-known and
// most registered services' ports.
const freeFloor = 20000

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// net.ipv4.ip_local_port_range), or 0 when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[0])
	return n
}

// CheckOnce runs c once with a deadline of timeout, as a gate runs an
// execution, and returns what it observed (see probes.Observe) and its error.
func CheckOnce(c probes.Checker, timeout time.Duration) ([]probes.Observation, error) {
	rec := &spec.Recorder[probes.Observation]{Key: func(o probes.Observation) string { return o.Measurement }}
	ctx, cancel := context.WithTimeout(context.WithValue(context.Background(), spec.RecorderKey{}, rec), timeout)
	defer cancel()
	err := c.Check(ctx)
	return rec.Snapshot(), err
}

// Observed returns the value of the observation named measurement, and
// whether there is one.
func Observed(obs []probes.Observation, measurement string) (float64, bool) {
	for _, o := range obs {
		if o.Measurement == measurement {
			return o.Value, true
		}
	}
	return 0, false
}

// WaitStatus waits until g's status is want, woken by g's change
// notifications rather than polling, and returns how long that took; it
// fails the test if that takes longer than within, with what said and the
// checks' errors.
func WaitStatus(t testing.TB, g probes.Gate, what string, want probes.Status, within time.Duration) time.Duration {
	t.Helper()
	changed := make(chan struct{}, 1)
	cancel := g.Subscribe(func() {
		select {
		case changed <- struct{}{}:
		default:
		}
	})
	defer cancel()
	began := time.Now()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for {
		r := g.Report()
		if r.Status() == want {
			return time.Since(began)
		}
		select {
		case <-changed:
		case <-deadline.C:
			var errs []error
			for _, c := range r.Checks {
				errs = append(errs, c.Err)
			}
			t.Fatalf("%s: %s did not %s within %s: %v", what, g.Kind(), want, within, errs)
		}
	}
}

// ReadyGate adds check as the readiness check name (with opts) to the
// readiness gate of a new lifecycle, makes it Ready and runs it until the
// test ends: how the checkers' tests watch a check through a real gate.
func ReadyGate(t testing.TB, name string, check probes.Checker, opts ...probes.CheckOption) *readiness.Gate {
	t.Helper()
	lc := probes.NewLifecycle()
	ready, err := readiness.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	if err := ready.Add(name, check, opts...); err != nil {
		t.Fatal(err)
	}
	Ready(t, lc)
	Background(t, lc.Run)
	return ready
}

// ServePeer runs p's Serve until the test ends, then shuts p down (within
// 5 s) and fails the test unless both Shutdown and Serve returned nil.
func ServePeer(t testing.TB, p server.Peer) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Serve() }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
}

// Returns runs fn on a goroutine of its own and fails the test if fn has
// not returned within d; it returns how long fn took. It is for behaviour
// ("returns after its timeout rather than hanging"), with d generous enough
// for a loaded machine: how fast is for a benchmark (see TimeToFail).
func Returns(t testing.TB, d time.Duration, fn func()) time.Duration {
	t.Helper()
	done := make(chan struct{})
	began := time.Now()
	go func() {
		defer close(done)
		fn()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-done:
		return time.Since(began)
	case <-timer.C:
		t.Fatalf("did not return within %s", d)
		return 0
	}
}

// TimeToFail runs c b.N times, each with a deadline of timeout as a gate
// runs an execution, against a server that does not answer, and fails the
// benchmark if an execution does not fail. ns/op is then the time a frozen
// server takes to be reported failing; it also reports how far past the
// timeout that was, on average ("ms-past-timeout") and at worst
// ("max-ms-past-timeout"), where the design's target is under 100.
func TimeToFail(b *testing.B, c probes.Checker, timeout time.Duration) {
	b.Helper()
	var past, worst time.Duration
	b.ResetTimer()
	for range b.N {
		began := time.Now()
		_, err := CheckOnce(c, timeout)
		took := time.Since(began)
		if probes.StatusOf(err) != probes.Fail {
			b.Fatalf("got %v, want a failure", err)
		}
		past += took - timeout
		worst = max(worst, took-timeout)
	}
	b.ReportMetric(float64(past.Microseconds())/1000/float64(b.N), "ms-past-timeout")
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-ms-past-timeout")
}

package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/probekit/probes"
)

// fleetOf serves n real instances on loopback ports of this process, each
// a lifecycle of its own with a passing readiness check.
func fleetOf(tb testing.TB, n int) []string {
	tb.Helper()
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = serveLifecycle(tb, map[string]error{"postgres": nil}, probes.Pass)
	}
	return addrs
}

// The target: 500 instances answered within 2 s at a 1 s timeout each,
// from cold (new connections), as one `probectl fleet` run asks them.
func TestRound500(t *testing.T) {
	if testing.Short() {
		t.Skip("500 instances")
	}
	addrs := fleetOf(t, 500)
	p := newPoller(DefaultTimeout, DefaultParallel)
	defer p.close()
	began := time.Now()
	r := round(context.Background(), p, addrs, DefaultShare)
	took := time.Since(began)
	if took > 2*time.Second {
		t.Errorf("a round of 500 took %s, want under 2s", took)
	}
	if r.Reachable != 500 || !r.OK() {
		t.Errorf("%d of 500 reachable, OK %v", r.Reachable, r.OK())
	}
	t.Logf("a round of 500 instances: %s", took.Round(time.Millisecond))
}

// BenchmarkFleet500 asks 500 loopback instances once per iteration: cold
// with a new client each round (a single run of the command), warm with
// the connections of the round before (-watch, -serve).
func BenchmarkFleet500(b *testing.B) {
	addrs := fleetOf(b, 500)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := newPoller(DefaultTimeout, DefaultParallel)
			if r := round(context.Background(), p, addrs, DefaultShare); r.Reachable != 500 {
				b.Fatalf("%d of 500 reachable", r.Reachable)
			}
			p.close()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
	})
	b.Run("warm", func(b *testing.B) {
		b.ReportAllocs()
		p := newPoller(DefaultTimeout, DefaultParallel)
		defer p.close()
		round(context.Background(), p, addrs, DefaultShare)
		b.ResetTimer()
		for b.Loop() {
			if r := round(context.Background(), p, addrs, DefaultShare); r.Reachable != 500 {
				b.Fatalf("%d of 500 reachable", r.Reachable)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
	})
}

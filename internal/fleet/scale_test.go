package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
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

// A round of 500 instances from cold (new connections), as one `probectl
// fleet` run asks them: every one reachable and ready. How fast is
// BenchmarkFleet500's business: the per-instance timeout here is generous,
// so that a loaded machine does not turn a slow answer into a failure.
func TestRound500(t *testing.T) {
	if testing.Short() {
		t.Skip("500 instances")
	}
	addrs := fleetOf(t, 500)
	p := newPoller(generous, DefaultParallel)
	defer p.close()
	r := round(context.Background(), p, static(addrs), DefaultShare)
	if r.Reachable != 500 || !r.OK() {
		t.Errorf("got %d of 500 reachable, OK %v; want 500 and true", r.Reachable, r.OK())
	}
}

// generous is a per-instance timeout no instance on loopback needs, even
// on a loaded machine: tests that are about behaviour use it, so that they
// never time the machine.
const generous = 30 * time.Second

// BenchmarkFleet500 asks 500 loopback instances once per iteration: cold
// with a new client each round (a single run of the command), warm with
// the connections of the round before (-watch, -serve).
func BenchmarkFleet500(b *testing.B) {
	addrs := fleetOf(b, 500)
	b.Run("cold", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := newPoller(DefaultTimeout, DefaultParallel)
			if r := round(context.Background(), p, static(addrs), DefaultShare); r.Reachable != 500 {
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
		round(context.Background(), p, static(addrs), DefaultShare)
		b.ResetTimer()
		for b.Loop() {
			if r := round(context.Background(), p, static(addrs), DefaultShare); r.Reachable != 500 {
				b.Fatalf("%d of 500 reachable", r.Reachable)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
	})
}

// BenchmarkStalled is a round of three at a 300ms timeout: one instance
// answers, one accepts and never answers, one port is closed. The round
// lasts the timeout, not more: ms/round is about 300.
func BenchmarkStalled(b *testing.B) {
	const timeout = 300 * time.Millisecond
	addrs := []string{serveLifecycle(b, nil, probes.Pass), stalled(b), testutil.FreeAddr(b)}
	b.ReportAllocs()
	for b.Loop() {
		p := newPoller(timeout, DefaultParallel)
		if r := round(context.Background(), p, static(addrs), DefaultShare); r.Reachable != 1 {
			b.Fatalf("%d of 3 reachable, want 1", r.Reachable)
		}
		p.close()
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/round")
}

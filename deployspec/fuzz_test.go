package deployspec_test

import (
	"math"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
)

// Lint never panics, and its timing rules judge the numbers as they are:
// a rule fires exactly when exact arithmetic says so, so a budget too large
// for a Duration never passes a rule it fails with smaller numbers, nor
// the reverse.
func FuzzLint(f *testing.F) {
	const maxI32, minI32 = math.MaxInt32, math.MinInt32
	for _, seed := range []struct {
		delay, sPeriod, sFailure, rPeriod, rFailure, rTimeout int32
		grace, preStop                                        int64
	}{
		{0, 5, 26, 1, 1, 1, 28, 0},                          // the example's plan
		{0, 0, 0, 0, 0, 0, 0, 0},                            // every default
		{0, 1_000_000_000, 11, 1_000_000_000, 10, 1, 28, 0}, // durations past a Duration
		{maxI32, maxI32, maxI32, maxI32, maxI32, maxI32, math.MaxInt64, math.MaxInt64},
		{minI32, minI32, minI32, minI32, minI32, minI32, math.MinInt64, math.MinInt64},
		{-1, -1, -1, -1, -1, -1, -1, -1},
		{0, 5, 26, 1, 1, 1, 18446744074, 0}, // a grace period that wraps to a short one
	} {
		f.Add(seed.delay, seed.sPeriod, seed.sFailure, seed.rPeriod, seed.rFailure, seed.rTimeout, seed.grace, seed.preStop)
	}
	plan := mustCompute(f, example, false)
	f.Fuzz(func(t *testing.T, delay, sPeriod, sFailure, rPeriod, rFailure, rTimeout int32, grace int64, preStop int64) {
		c := containerOf(plan)
		c.Startup.InitialDelaySeconds, c.Startup.PeriodSeconds, c.Startup.FailureThreshold = delay, sPeriod, sFailure
		c.Readiness.PeriodSeconds, c.Readiness.FailureThreshold, c.Readiness.TimeoutSeconds = rPeriod, rFailure, rTimeout
		c.GracePeriodSeconds, c.PreStopSleep = &grace, time.Duration(preStop)
		var rules []string
		for _, f := range deployspec.Lint(example, c) {
			if f.Rule == "" || f.Field == "" || f.Problem == "" || f.Fix == "" {
				t.Errorf("an incomplete finding: %+v", f)
			}
			rules = append(rules, f.Rule)
		}
		or := func(n int32, def int64) int64 {
			if n == 0 {
				return def
			}
			return int64(n)
		}
		ns := func(secs int64) *big.Int { return new(big.Int).Mul(big.NewInt(secs), big.NewInt(int64(time.Second))) }
		plus := func(a, b time.Duration) *big.Int { return new(big.Int).Add(big.NewInt(int64(a)), big.NewInt(int64(b))) }
		budget := ns(int64(delay) + or(sPeriod, 10)*(or(sFailure, 3)-1))
		notice := ns(or(rPeriod, 10)*or(rFailure, 3) + or(rTimeout, 1))
		window := plus(example.Stop.Drain, time.Duration(preStop))
		need := plus(example.Stop.Stop(), time.Duration(preStop))
		for _, r := range []struct {
			rule           string
			fires          bool
			compared, with *big.Int
		}{
			{"startup-budget", budget.Cmp(big.NewInt(int64(example.WarmupDeadline))) < 0, budget, big.NewInt(int64(example.WarmupDeadline))},
			{"readiness-drain", notice.Cmp(window) > 0, notice, window},
			{"grace-period", ns(grace).Cmp(need) < 0, ns(grace), need},
		} {
			if pastDuration(r.compared) && pastDuration(r.with) {
				continue // both saturate: no Duration tells them apart
			}
			if got := slices.Contains(rules, r.rule); got != r.fires {
				t.Errorf("%s: reported %v, want %v (%vns against %vns); findings %q", r.rule, got, r.fires, r.compared, r.with, rules)
			}
		}
	})
}

// pastDuration reports whether n nanoseconds are past what a Duration holds.
func pastDuration(n *big.Int) bool { return !n.IsInt64() }

// ParseStop never panics, and what it takes it takes exactly: a value it
// reads, written again by FormatStop, reads back the same.
func FuzzParseStop(f *testing.F) {
	for _, seed := range []string{
		"drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s",
		"drain=30s drain-probes=3 drain-quiet=2s on-drain=0s shutdown-timeout=15s after-close=0s stop=48s",
		"drain=1281023h53m38.427387904s on-drain=0s shutdown-timeout=1281023h53m38.427387904s after-close=0s stop=2562047h47m16.854775807s",
		"stop=23s drain=5s", "drain==5s", "=", "drain=-0s", "drain-probes=+3", "drain=1e3s", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, v string) {
		got, err := deployspec.ParseStop(v)
		if err != nil {
			return
		}
		again, err := deployspec.ParseStop(deployspec.FormatStop(got))
		if err != nil || again != got {
			t.Errorf("ParseStop(%q) = %+v, which FormatStop writes as %q, read back as %+v, %v", v, got, deployspec.FormatStop(got), again, err)
		}
	})
}

package deployspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

func TestBalancerDetection(t *testing.T) {
	for _, tc := range []struct {
		name string
		b    deployspec.Balancer
		want time.Duration
	}{
		{"AWS ALB", deployspec.AWSALB(), 60 * time.Second},
		{"AWS NLB", deployspec.AWSNLB(), 60 * time.Second},
		{"Google Cloud", deployspec.GoogleCloud(), 10 * time.Second},
		{"HAProxy", deployspec.HAProxy(), 6 * time.Second},
	} {
		if got := tc.b.Detection(); got != tc.want {
			t.Errorf("%s: detection %s, want %s", tc.name, got, tc.want)
		}
	}
	if got := deployspec.AWSALB().DeregistrationDelay; got != 300*time.Second {
		t.Errorf("AWS ALB deregistration delay %s, want 5m", got)
	}
}

func TestLintBalancer(t *testing.T) {
	fixed := func(d time.Duration) server.Timings {
		return server.Timings{Drain: d, ShutdownTimeout: 15 * time.Second}
	}
	quiet := func(min, max time.Duration) server.Timings {
		return server.Timings{Drain: max, DrainQuiet: 2 * time.Second, DrainMin: min, ShutdownTimeout: 15 * time.Second}
	}
	probed := func(max time.Duration) server.Timings {
		return server.Timings{Drain: max, DrainProbes: 4, DrainQuiet: time.Second, ShutdownTimeout: 15 * time.Second}
	}
	delay := func(b deployspec.Balancer, d time.Duration) deployspec.Balancer { b.DeregistrationDelay = d; return b }
	tests := []struct {
		name  string
		stop  server.Timings
		b     deployspec.Balancer
		grace int64
		// want is "rule field" of each finding, in order; fix is a part of
		// the first one's fix.
		want []string
		fix  string
	}{
		// Faulty setups, one fault each.
		{"fixed drain shorter than an ALB's detection", fixed(5 * time.Second), delay(deployspec.AWSALB(), 0), 100,
			[]string{"balancer-detection Stop.Drain"}, "DrainDelay(1m5s)"},
		{"fixed drain equal to Google Cloud's detection", fixed(10 * time.Second), deployspec.GoogleCloud(), 30,
			[]string{"balancer-detection Stop.Drain"}, "DrainDelay(15s)"},
		{"quiet drain whose min is below an NLB's detection", quiet(10*time.Second, 90*time.Second), delay(deployspec.AWSNLB(), 0), 120,
			[]string{"balancer-detection Stop.DrainMin"}, "DrainUntilQuiet(quiet, 1m, max)"},
		{"probe-aware drain whose max is below HAProxy's detection", probed(5 * time.Second), deployspec.HAProxy(), 30,
			[]string{"balancer-detection Stop.Drain"}, "DrainUntilProbed(h, n, 11s)"},
		{"ALB's default deregistration delay past the grace period", fixed(70 * time.Second), deployspec.AWSALB(), 100,
			[]string{"deregistration-delay balancer.deregistration_delay.timeout_seconds"}, "deregistration_delay.timeout_seconds: 30 (the grace period minus the drain), or terminationGracePeriodSeconds: 370"},
		{"NLB with a grace period shorter than the drain", fixed(70 * time.Second), delay(deployspec.AWSNLB(), 20*time.Second), 60,
			[]string{"deregistration-delay balancer.deregistration_delay.timeout_seconds"}, "terminationGracePeriodSeconds: 90"},
		{"Google Cloud connection draining past the default grace period", fixed(15 * time.Second), delay(deployspec.GoogleCloud(), 60*time.Second), 0,
			[]string{"deregistration-delay balancer.connectionDraining.drainingTimeoutSec"}, "connectionDraining.drainingTimeoutSec: 15"},
		{"both at once", fixed(5 * time.Second), deployspec.AWSALB(), 30,
			[]string{"balancer-detection Stop.Drain", "deregistration-delay balancer.deregistration_delay.timeout_seconds"}, "DrainDelay"},

		// A correct setup per balancer.
		{"AWS ALB", fixed(65 * time.Second), delay(deployspec.AWSALB(), 30*time.Second), 100, nil, ""},
		{"AWS NLB, quiet drain", quiet(60*time.Second, 90*time.Second), delay(deployspec.AWSNLB(), 10*time.Second), 120, nil, ""},
		{"Google Cloud, default grace period", fixed(15 * time.Second), deployspec.GoogleCloud(), 0, nil, ""},
		{"HAProxy, probe-aware drain", probed(10 * time.Second), deployspec.HAProxy(), 30, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := example
			s.Stop = tc.stop
			var grace *int64
			if tc.grace != 0 {
				grace = &tc.grace
			}
			found, err := deployspec.LintBalancer(s, tc.b, grace)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range found {
				got = append(got, f.Rule+" "+f.Field)
				if f.Problem == "" || f.Fix == "" {
					t.Errorf("%s: a finding without a problem or a fix: %+v", f.Rule, f)
				}
			}
			if strings.Join(got, "; ") != strings.Join(tc.want, "; ") {
				t.Fatalf("got %q, want %q (%v)", got, tc.want, found)
			}
			if tc.fix != "" && !strings.Contains(found[0].Fix, tc.fix) {
				t.Errorf("fix %q, want it to contain %q", found[0].Fix, tc.fix)
			}
		})
	}
}

func TestLintBalancerRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*deployspec.Balancer)
		want string
	}{
		{"no interval", func(b *deployspec.Balancer) { b.Interval = 0 }, "HealthCheckIntervalSeconds (Interval)"},
		{"no threshold", func(b *deployspec.Balancer) { b.UnhealthyThreshold = 0 }, "UnhealthyThresholdCount (UnhealthyThreshold)"},
		{"negative delay", func(b *deployspec.Balancer) { b.DeregistrationDelay = -time.Second }, "deregistration_delay.timeout_seconds (DeregistrationDelay)"},
	} {
		b := deployspec.AWSALB()
		tc.edit(&b)
		if _, err := deployspec.LintBalancer(example, b, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.name, err, tc.want)
		}
		s := example
		s.Balancer = &b
		if _, err := deployspec.Compute(s, false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Compute's error %v, want one naming %s", tc.name, err, tc.want)
		}
	}
}

func TestComputeWithBalancer(t *testing.T) {
	alb := deployspec.AWSALB()
	s := example
	s.Balancer = &alb
	// The example's 5s drain is far below the ALB's 60s.
	if _, err := deployspec.Compute(s, false); err == nil || !strings.Contains(err.Error(), "Stop.Drain") || !strings.Contains(err.Error(), "HealthCheckIntervalSeconds 30s x UnhealthyThresholdCount 2") {
		t.Errorf("a 5s drain behind an ALB: error %v, want one naming Stop.Drain and the ALB's numbers", err)
	}

	// A long enough drain: the plan is made, and the 300s deregistration
	// delay is left to whoever deploys it.
	s.Stop.Drain = 65 * time.Second
	p := mustCompute(t, s, false)
	if got, want := p.TerminationGracePeriodSeconds.Value, 65+15+3+5; got != want {
		t.Errorf("grace %d, want %d", got, want)
	}
	if len(p.Findings) != 1 || p.Findings[0].Rule != "deregistration-delay" || !strings.Contains(p.Findings[0].Fix, "deregistration_delay.timeout_seconds: 23") {
		t.Errorf("findings %v, want deregistration-delay with deregistration_delay.timeout_seconds: 23", p.Findings)
	}

	// A delay that fits: nothing to do.
	alb.DeregistrationDelay = 20 * time.Second
	if p := mustCompute(t, s, false); p.Findings != nil {
		t.Errorf("findings %v, want none", p.Findings)
	}
	// Without a balancer, Compute says nothing of one.
	if p := mustCompute(t, example, false); p.Findings != nil {
		t.Errorf("no balancer: findings %v, want none", p.Findings)
	}
}

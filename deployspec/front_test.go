package deployspec_test

import (
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// behind returns the example service with a 20s drain behind b, whose
// interval is 5s so that its detection fits the drain.
func behind(b deployspec.Balancer) deployspec.Service {
	b.Interval, b.Timeout = 5*time.Second, 5*time.Second
	s := example
	s.Stop = server.Timings{Drain: 20 * time.Second, ShutdownTimeout: 15 * time.Second}
	s.Balancer = &b
	return s
}

// TestAnnotationsRoundTrip: what the writers write, the readers read back
// as the same balancer, asking /readyz on the probe port, and it lints
// clean against the plan it came from.
func TestAnnotationsRoundTrip(t *testing.T) {
	for _, b := range []deployspec.Balancer{deployspec.AWSALB(), deployspec.AWSNLB()} {
		t.Run(b.Name, func(t *testing.T) {
			s := behind(b)
			p := mustCompute(t, s, false)
			a, err := p.Annotations("")
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := deployspec.BalancerFromAnnotations(a)
			if err != nil || !ok {
				t.Fatalf("read back: ok %v, %v", ok, err)
			}
			want := *p.Balancer
			if got.Interval != want.Interval || got.Timeout != want.Timeout || got.HealthyThreshold != want.HealthyThreshold ||
				got.UnhealthyThreshold != want.UnhealthyThreshold || got.DeregistrationDelay != want.DeregistrationDelay {
				t.Errorf("read back %+v, want the plan's %+v", got, want)
			}
			if got.CheckPath != "/readyz" || got.CheckPort != "8081" {
				t.Errorf("the check asks %s on %s, want /readyz on 8081", got.CheckPath, got.CheckPort)
			}
			grace := int64(p.TerminationGracePeriodSeconds.Value)
			if found, err := deployspec.LintBalancer(s, got, &grace); err != nil || found != nil {
				t.Errorf("the written balancer lints %v, %v; want clean", found, err)
			}
		})
	}
}

// TestPlanFitsDelay: AWS's 300s default does not fit; the plan lowers it to
// the shutdown timeout, says so in Findings, and writes the lowered one. A
// delay that fits is kept.
func TestPlanFitsDelay(t *testing.T) {
	s := behind(deployspec.AWSALB())
	p := mustCompute(t, s, false)
	if p.Balancer.DeregistrationDelay != 15*time.Second {
		t.Errorf("plan's delay %s, want the shutdown timeout 15s", p.Balancer.DeregistrationDelay)
	}
	if len(p.Findings) != 1 || p.Findings[0].Rule != "deregistration-delay" {
		t.Errorf("findings %v, want deregistration-delay", p.Findings)
	}
	if s.Balancer.DeregistrationDelay != 300*time.Second {
		t.Error("Compute changed the caller's balancer")
	}
	a, _ := p.Annotations("")
	if v := a["alb.ingress.kubernetes.io/target-group-attributes"]; v != "deregistration_delay.timeout_seconds=15" {
		t.Errorf("target-group-attributes %q", v)
	}
	s.Balancer.DeregistrationDelay = 10 * time.Second
	if p := mustCompute(t, s, false); p.Balancer.DeregistrationDelay != 10*time.Second || p.Findings != nil {
		t.Errorf("a delay that fits: plan's %s, findings %v; want 10s kept, none", p.Balancer.DeregistrationDelay, p.Findings)
	}
	// Google Cloud's draining off (0) cuts requests in flight: the plan
	// turns it on.
	g := mustCompute(t, behind(deployspec.GoogleCloud()), false)
	if g.Balancer.DeregistrationDelay != 15*time.Second {
		t.Errorf("Google Cloud's draining %s, want 15s", g.Balancer.DeregistrationDelay)
	}
}

func TestWritersRefuse(t *testing.T) {
	edit := func(b deployspec.Balancer, f func(*deployspec.Balancer)) deployspec.Service {
		s := behind(b)
		f(s.Balancer)
		return s
	}
	for _, tc := range []struct {
		name  string
		s     deployspec.Service
		write func(deployspec.Plan) error
		want  string
	}{
		{"no balancer", example, func(p deployspec.Plan) error { _, err := p.Annotations(""); return err }, "Service.Balancer"},
		{"ALB threshold 1", edit(deployspec.AWSALB(), func(b *deployspec.Balancer) { b.UnhealthyThreshold = 1 }),
			func(p deployspec.Plan) error { _, err := p.Annotations(""); return err }, "UnhealthyThresholdCount is 1"},
		{"NLB timeout past the interval", edit(deployspec.AWSNLB(), func(b *deployspec.Balancer) { b.Timeout = 10 * time.Second }),
			func(p deployspec.Plan) error { _, err := p.Annotations(""); return err }, "HealthCheckTimeoutSeconds (10s) is longer than HealthCheckIntervalSeconds"},
		{"ALB interval 2s", edit(deployspec.AWSALB(), func(b *deployspec.Balancer) { b.Interval = 2 * time.Second; b.Timeout = 2 * time.Second }),
			func(p deployspec.Plan) error { _, err := p.Annotations(""); return err }, "HealthCheckIntervalSeconds is 2s"},
		{"Google without a BackendConfig name", behind(deployspec.GoogleCloud()),
			func(p deployspec.Plan) error { _, err := p.Annotations(""); return err }, "name the BackendConfig"},
		{"BackendConfig for an ALB", behind(deployspec.AWSALB()),
			func(p deployspec.Plan) error { _, err := p.BackendConfig("x"); return err }, "not Google Cloud's"},
		{"HAProxy backend for an NLB", behind(deployspec.AWSNLB()),
			func(p deployspec.Plan) error { _, err := p.HAProxyBackend("app", nil); return err }, "not HAProxy"},
		{"HAProxy server without a port", behind(deployspec.HAProxy()),
			func(p deployspec.Plan) error {
				_, err := p.HAProxyBackend("app", []deployspec.HAProxyServer{{Name: "a", Addr: "10.0.0.1"}})
				return err
			}, "must be host:port"},
		{"HAProxy server name with a space", behind(deployspec.HAProxy()),
			func(p deployspec.Plan) error {
				_, err := p.HAProxyBackend("app", []deployspec.HAProxyServer{{Name: "a b", Addr: "10.0.0.1:80"}})
				return err
			}, "must be one word"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := deployspec.Compute(tc.s, false)
			if err != nil {
				t.Fatal(err)
			}
			if err := tc.write(p); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

// TestLintBalancerCheck is the balancer-check rule: the balancer must ask
// /readyz, over HTTP, on the probe port.
func TestLintBalancerCheck(t *testing.T) {
	s := behind(deployspec.AWSALB())
	grace := int64(100)
	for _, tc := range []struct {
		name, path, port string
		want             string // the finding's field; empty for none
	}{
		{"not read from a manifest", "", "", ""},
		{"readyz on the probe port", "/readyz", "8081", ""},
		{"readyz on the traffic port", "/readyz", "traffic-port", ""},
		{"TCP", "", "traffic-port", "balancer.healthCheck"},
		{"the root path", "/", "8081", "balancer.healthCheck.path"},
		{"liveness", "/livez", "8081", "balancer.healthCheck.path"},
		{"another port", "/readyz", "9090", "balancer.healthCheck.port"},
	} {
		b := *s.Balancer
		b.DeregistrationDelay = 10 * time.Second
		b.CheckPath, b.CheckPort = tc.path, tc.port
		found, err := deployspec.LintBalancer(s, b, &grace)
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, f := range found {
			if f.Rule == "balancer-check" {
				got = f.Field
				if !strings.Contains(f.Fix, "/readyz on port 8081") {
					t.Errorf("%s: fix %q", tc.name, f.Fix)
				}
			}
		}
		if got != tc.want {
			t.Errorf("%s: finding on %q, want %q (%v)", tc.name, got, tc.want, found)
		}
	}
}

// TestHAProxyBackendParses: HAProxy itself accepts the backend the plan
// writes, with and without the agent check, and sub-second intervals.
func TestHAProxyBackendParses(t *testing.T) {
	if _, err := exec.LookPath("haproxy"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("haproxy not found (CI=true: scripts/test.sh installs it)")
		}
		t.Skip("haproxy not found; scripts/install-deps.sh installs it")
	}
	for _, inter := range []time.Duration{100 * time.Millisecond, time.Second} {
		hb := deployspec.HAProxy()
		hb.Interval = inter
		s := example
		s.Balancer = &hb
		p := mustCompute(t, s, false)
		backend, err := p.HAProxyBackend("app", []deployspec.HAProxyServer{
			{Name: "a", Addr: "127.0.0.1:8080", AgentPort: 8082},
			{Name: "b", Addr: "127.0.0.1:9080", ProbePort: 9081},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"option httpchk GET /readyz", "server a 127.0.0.1:8080 check port 8081 agent-check agent-port 8082",
			"server b 127.0.0.1:9080 check port 9081\n", "fall 3 rise 2"} {
			if !strings.Contains(backend, want) {
				t.Errorf("backend lacks %q:\n%s", want, backend)
			}
		}
		cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
		all := "defaults\n    mode http\n    timeout connect 1s\n    timeout client 1s\n    timeout server 1s\n\nfrontend web\n    bind 127.0.0.1:8000\n    default_backend app\n\n" + backend
		if err := os.WriteFile(cfg, []byte(all), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("haproxy", "-c", "-f", cfg).CombinedOutput(); err != nil {
			t.Errorf("haproxy -c refuses the generated backend: %v\n%s\n%s", err, out, all)
		}
	}
}

// TestDeploymentFront: the Deployment's file carries the Service for the
// balancer, annotated as Annotations says, and for Google Cloud the
// BackendConfig the Service names.
func TestDeploymentFront(t *testing.T) {
	for _, tc := range []struct {
		b     deployspec.Balancer
		kinds []string
	}{
		{deployspec.AWSALB(), []string{"Deployment", "Service"}},
		{deployspec.AWSNLB(), []string{"Deployment", "Service"}},
		{deployspec.GoogleCloud(), []string{"Deployment", "Service", "BackendConfig"}},
		{deployspec.HAProxy(), []string{"Deployment"}},
	} {
		t.Run(tc.b.Name, func(t *testing.T) {
			d := deployspec.Deployment{Name: "web", Image: "web:1", AppAddr: ":8080", Service: behind(tc.b)}
			y, err := d.YAML()
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for doc := range strings.SplitSeq(y, "\n---\n") {
				for line := range strings.SplitSeq(doc, "\n") {
					if k, ok := strings.CutPrefix(line, "kind: "); ok {
						kinds = append(kinds, k)
					}
				}
			}
			if strings.Join(kinds, ",") != strings.Join(tc.kinds, ",") {
				t.Fatalf("kinds %v, want %v", kinds, tc.kinds)
			}
			p := mustCompute(t, d.Service, false)
			a, err := p.Annotations("web")
			if tc.b.Name == "HAProxy" {
				if err == nil {
					t.Error("Annotations for HAProxy: no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range slicesSorted(a) {
				if want := k + ": " + jsonQuote(a[k]); !strings.Contains(y, want) {
					t.Errorf("the file lacks %s", want)
				}
			}
		})
	}
}

func slicesSorted(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range maps.Keys(m) {
		ks = append(ks, k)
	}
	return ks
}

func jsonQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

package deployspec_test

import (
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// example is the example's Deployment: a 2m warm-up deadline, a 5s drain, a
// 15s shutdown timeout, the probes on 8081 and gRPC on 9090.
var example = deployspec.Service{
	WarmupDeadline: 2 * time.Minute,
	Stop:           server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second},
	ProbeAddr:      "0.0.0.0:8081",
	GRPCAddr:       "0.0.0.0:9090",
}

func mustCompute(t testing.TB, s deployspec.Service, grpc bool) deployspec.Plan {
	t.Helper()
	p, err := deployspec.Compute(s, grpc)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCompute(t *testing.T) {
	p := mustCompute(t, example, false)
	got := map[string]int{
		"startup period": p.Startup.PeriodSeconds.Value, "startup failures": p.Startup.FailureThreshold.Value,
		"liveness period": p.Liveness.PeriodSeconds.Value, "liveness failures": p.Liveness.FailureThreshold.Value,
		"readiness period": p.Readiness.PeriodSeconds.Value, "readiness failures": p.Readiness.FailureThreshold.Value,
		"timeout": p.Readiness.TimeoutSeconds.Value, "grace": p.TerminationGracePeriodSeconds.Value,
		"start": p.TimeoutStartSec.Value, "stop": p.TimeoutStopSec.Value, "watchdog": p.WatchdogSec.Value,
	}
	want := map[string]int{
		"startup period": 5, "startup failures": 26, // 125s > 2m
		"liveness period": 10, "liveness failures": 3,
		"readiness period": 1, "readiness failures": 1, // 1s + 1s timeout within half the 5s drain
		"timeout": 1, "grace": 28, // 5 + 15 + 3 one-second bounds = 23, +5
		"start": 148, "stop": 28, "watchdog": 30,
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("%s: %d, want %d", k, got[k], w)
		}
	}
	for _, n := range []deployspec.Number{p.Startup.FailureThreshold, p.Readiness.PeriodSeconds, p.TerminationGracePeriodSeconds, p.TimeoutStartSec} {
		if n.Why == "" {
			t.Errorf("%d has no reason", n.Value)
		}
	}
	if !strings.Contains(p.TerminationGracePeriodSeconds.Why, "drain 5s + shutdown timeout 15s + 3s of one-second bounds") {
		t.Errorf("grace reason: %s", p.TerminationGracePeriodSeconds.Why)
	}
	g := mustCompute(t, example, true)
	if !g.Liveness.GRPC || g.Liveness.Port != 9090 || g.Liveness.Service != "liveness" || g.Readiness.Service != "readiness" {
		t.Errorf("gRPC plan: %+v", g.Liveness)
	}
	// A probe-aware drain: its count of failing answers fits the drain.
	pa := example
	pa.Stop.Drain, pa.Stop.DrainProbes = 10*time.Second, 3
	if p := mustCompute(t, pa, false); p.Readiness.PeriodSeconds.Value*3 > 5 {
		t.Errorf("probe-aware drain: readiness every %ds, 3 answers take longer than half the drain", p.Readiness.PeriodSeconds.Value)
	}
}

func TestComputeRejects(t *testing.T) {
	tests := []struct {
		name string
		edit func(*deployspec.Service)
		grpc bool
		want string
	}{
		{"no deadline", func(s *deployspec.Service) { s.WarmupDeadline = 0 }, false, "WarmupDeadline must be positive"},
		{"no drain", func(s *deployspec.Service) { s.Stop.Drain = 0 }, false, "set -drain to at least 4s"},
		{"drain too short", func(s *deployspec.Service) { s.Stop.Drain = 1500 * time.Millisecond }, false, "the drain (1.5s) is shorter"},
		{"no port", func(s *deployspec.Service) { s.ProbeAddr = "localhost" }, false, `ProbeAddr "localhost"`},
		{"no gRPC", func(s *deployspec.Service) { s.GRPCAddr = "" }, true, `GRPCAddr ""`},
		{"port out of range", func(s *deployspec.Service) { s.ProbeAddr = ":70000" }, false, "from 1 to 65535"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := example
			tt.edit(&s)
			if _, err := deployspec.Compute(s, tt.grpc); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// containerOf is the container a manifest generated from p would have.
func containerOf(p deployspec.Plan) deployspec.Container {
	probe := func(pr deployspec.Probe) *deployspec.ProbeSpec {
		ps := &deployspec.ProbeSpec{
			PeriodSeconds: int32(pr.PeriodSeconds.Value), TimeoutSeconds: int32(pr.TimeoutSeconds.Value),
			FailureThreshold: int32(pr.FailureThreshold.Value),
		}
		if pr.GRPC {
			ps.GRPC, ps.GRPCPort, ps.GRPCService = true, pr.Port, pr.Service
		} else {
			ps.HTTPPath, ps.HTTPPort = pr.Path, pr.Port
		}
		return ps
	}
	grace := int64(p.TerminationGracePeriodSeconds.Value)
	return deployspec.Container{Name: "app", GracePeriodSeconds: &grace,
		Startup: probe(p.Startup), Liveness: probe(p.Liveness), Readiness: probe(p.Readiness)}
}

// Whatever the service's configuration, the plan Compute makes for it
// passes Lint.
func TestEveryPlanPassesLint(t *testing.T) {
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	dur := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(r.Int64N(int64(hi-lo))) }
	for i := range 5000 {
		s := deployspec.Service{
			WarmupDeadline: dur(time.Millisecond, time.Hour),
			Stop: server.Timings{
				Drain: dur(2*time.Second, 2*time.Minute), ShutdownTimeout: dur(0, time.Minute),
				OnDrain: dur(0, 10*time.Second), AfterClose: dur(0, 10*time.Second),
			},
			ProbeAddr: "0.0.0.0:8081", GRPCAddr: ":9090",
		}
		if r.IntN(2) == 0 {
			s.Stop.DrainProbes = 1 + r.IntN(10)
		}
		grpc := r.IntN(2) == 0
		p, err := deployspec.Compute(s, grpc)
		if err != nil {
			t.Fatalf("case %d %+v: %v", i, s, err)
		}
		if f := deployspec.Lint(s, containerOf(p)); len(f) > 0 {
			t.Fatalf("case %d %+v (grpc %v): the plan fails its own lint: %v", i, s, grpc, f)
		}
	}
}

// Each manifest is the right one but for one fault; Lint reports exactly
// that one, with its rule.
func TestLintRules(t *testing.T) {
	good := containerOf(mustCompute(t, example, false))
	if f := deployspec.Lint(example, good); len(f) > 0 {
		t.Fatalf("the right manifest: %v", f)
	}
	grpc := containerOf(mustCompute(t, example, true))
	i := func(n int32) int32 { return n }
	tests := []struct {
		name    string
		svc     func(*deployspec.Service)
		edit    func(*deployspec.Container)
		rule    string
		problem string
	}{
		{"startup budget under the deadline", nil, func(c *deployspec.Container) { c.Startup.FailureThreshold = i(10) }, "startup-budget", "45s after the first startup probe"},
		{"grace under the stop", nil, func(c *deployspec.Container) { g := int64(20); c.GracePeriodSeconds = &g }, "grace-period", "may take 23s to stop"},
		{"default grace under a long stop", func(s *deployspec.Service) { s.Stop.ShutdownTimeout = 30 * time.Second },
			func(c *deployspec.Container) { c.GracePeriodSeconds = nil; c.Readiness.PeriodSeconds = i(1) }, "grace-period", "SIGKILL comes 30s"},
		{"preStop sleep eats the grace", nil, func(c *deployspec.Container) { c.PreStopSleep = 10 * time.Second }, "grace-period", "preStop sleep 10s"},
		{"no readiness", nil, func(c *deployspec.Container) { c.Readiness = nil }, "readiness-missing", "no readinessProbe"},
		{"readiness slower than the drain", nil, func(c *deployspec.Container) { c.Readiness.PeriodSeconds = i(5) }, "readiness-drain", "6s to see the drain"},
		{"readiness defaults", nil, func(c *deployspec.Container) { c.Readiness.PeriodSeconds, c.Readiness.FailureThreshold = 0, 0 }, "readiness-drain", "periodSeconds 10 x failureThreshold 3"},
		{"liveness restarts on one failure", nil, func(c *deployspec.Container) { c.Liveness.FailureThreshold = i(1) }, "liveness-threshold", "failureThreshold is 1"},
		{"liveness on readiness", nil, func(c *deployspec.Container) { c.Liveness.HTTPPath = "/readyz" }, "liveness-target", "targets /readyz"},
		{"liveness on a dependency", nil, func(c *deployspec.Container) { c.Liveness.HTTPPath = "/readyz/postgres" }, "liveness-target", "targets /readyz/postgres"},
		{"liveness on the deep view", nil, func(c *deployspec.Container) { c.Liveness.HTTPPath = "/healthz" }, "liveness-target", "targets /healthz"},
		{"startup on readiness", nil, func(c *deployspec.Container) { c.Startup.HTTPPath = "/readyz" }, "probe-target", "the readiness gate, not startup"},
		{"readiness on one check", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/postgres" }, "probe-target", "one check's answer"},
		{"liveness over TCP", nil, func(c *deployspec.Container) { c.Liveness.HTTPPath, c.Liveness.TCPPort = "", 8081 }, "probe-target", "only opens a connection"},
		{"a path nobody serves", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/ready" }, "probe-path", "does not serve"},
		{"a trailing slash", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/" }, "probe-path", "/readyz/, which the service does not serve"},
		{"a double slash", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "//readyz" }, "probe-path", "//readyz, which the service does not serve"},
		{"a dot segment", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/./readyz" }, "probe-path", "/./readyz, which the service does not serve"},
		{"a dot check", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/." }, "probe-path", "/readyz/., which the service does not serve"},
		{"a dot-dot check", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/.." }, "probe-path", "/readyz/.., which the service does not serve"},
		{"a check with a trailing slash", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/postgres/" }, "probe-path", "/readyz/postgres/, which the service does not serve"},
		{"a check name with a space", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/a b" }, "probe-path", "/readyz/a b, which the service does not serve"},
		{"an escaped letter", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/%72eadyz" }, "probe-path", "/%72eadyz, which the service does not serve"},
		{"a check below a check", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/readyz/postgres/x" }, "probe-path", "/readyz/postgres/x, which the service does not serve"},
		{"the deep view with a trailing slash", nil, func(c *deployspec.Container) { c.Readiness.HTTPPath = "/healthz/" }, "probe-path", "/healthz/, which the service does not serve"},
		{"a liveness path with a trailing slash", nil, func(c *deployspec.Container) { c.Liveness.HTTPPath = "/livez/" }, "probe-path", "/livez/, which the service does not serve"},
		{"an exec'd probe of a path with a trailing slash", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPath, c.Liveness.Exec = "", []string{"/probe", "http://127.0.0.1:8081/livez/"}
		}, "probe-path", "/livez/, which the service does not serve"},
		{"an exec'd probe of an escaped path", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPath, c.Liveness.Exec = "", []string{"/probe", "http://127.0.0.1:8081/%6civez"}
		}, "probe-path", "/%6civez, which the service does not serve"},
		{"the API's port", nil, func(c *deployspec.Container) { c.Liveness.HTTPPort = 8080 }, "probe-port", "targets port 8080, but the probes answer on 8081"},
		{"an undeclared port name", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPort, c.Liveness.PortProblem = 0, `port name "probe" is not a containerPort`
		}, "probe-port", `"probe"`},
		{"a negative timeout", nil, func(c *deployspec.Container) { c.Liveness.TimeoutSeconds = i(-1) }, "probe-timeout", "timeoutSeconds is -1"},
		{"an exec'd probe under a second", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPath, c.Liveness.Exec = "", []string{"/probe", "-timeout=500ms", "http://127.0.0.1:8081/livez"}
		}, "probe-timeout", "under a second"},
		{"an exec'd probe the kubelet kills first", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPath, c.Liveness.Exec = "", []string{"/probe", "-timeout", "5s", "http://127.0.0.1:8081/livez"}
		}, "probe-timeout", "kills it after timeoutSeconds 1"},
		{"an exec'd probe on readiness", nil, func(c *deployspec.Container) {
			c.Liveness.HTTPPath, c.Liveness.Exec = "", []string{"/probe", "http://127.0.0.1:8081/readyz"}
		}, "liveness-target", "targets /readyz"},
		{"probes on loopback", func(s *deployspec.Service) { s.ProbeAddr = "127.0.0.1:8081" }, nil, "probe-listen", "the kubelet probes the pod's IP"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, c := example, containerOf(mustCompute(t, example, false))
			if tt.svc != nil {
				tt.svc(&s)
			}
			if tt.edit != nil {
				tt.edit(&c)
			}
			f := deployspec.Lint(s, c)
			if len(f) != 1 || f[0].Rule != tt.rule || !strings.Contains(f[0].Problem, tt.problem) || f[0].Fix == "" || f[0].Field == "" {
				t.Errorf("got %d findings %v; want one %s saying %q", len(f), f, tt.rule, tt.problem)
			}
		})
	}
	// gRPC probes.
	grpcTests := []struct {
		name string
		svc  func(*deployspec.Service)
		edit func(*deployspec.Container)
		rule string
	}{
		{"liveness on the whole server", nil, func(c *deployspec.Container) { c.Liveness.GRPCService = "" }, "liveness-target"},
		{"an unknown service", nil, func(c *deployspec.Container) { c.Readiness.GRPCService = "items.v1.Items" }, "probe-path"},
		{"the wrong port", nil, func(c *deployspec.Container) { c.Startup.GRPCPort = 8081 }, "probe-port"},
		{"no gRPC served", func(s *deployspec.Service) { s.GRPCAddr = "" }, func(c *deployspec.Container) { c.Readiness.GRPCPort = 0 }, "probe-port"},
	}
	for _, tt := range grpcTests {
		t.Run("grpc/"+tt.name, func(t *testing.T) {
			s, c := example, grpc
			c.Startup, c.Liveness, c.Readiness = clone(grpc.Startup), clone(grpc.Liveness), clone(grpc.Readiness)
			if tt.svc != nil {
				tt.svc(&s)
			}
			tt.edit(&c)
			f := deployspec.Lint(s, c)
			if len(f) < 1 || f[0].Rule != tt.rule {
				t.Errorf("got %v; want %s first", f, tt.rule)
			}
		})
	}
	// The service's own gRPC names answer readiness.
	s, c := example, grpc
	s.GRPCServices = []string{"items.v1.Items"}
	c.Readiness = clone(grpc.Readiness)
	c.Readiness.GRPCService = "items.v1.Items"
	if f := deployspec.Lint(s, c); len(f) != 0 {
		t.Errorf("readiness on the service's own gRPC name: %v", f)
	}
}

func clone(p *deployspec.ProbeSpec) *deployspec.ProbeSpec { q := *p; return &q }

// Numbers a manifest may hold (int32 probe fields, an int64 grace period)
// whose durations do not fit a time.Duration: each rule judges them as the
// huge numbers they are, not as the wrapped ones.
func TestLintHugeNumbers(t *testing.T) {
	i := func(n int32) int32 { return n }
	tests := []struct {
		name string
		edit func(*deployspec.Container)
		want []string // the rules reported, in order
	}{
		{"readiness period x failures past a Duration", func(c *deployspec.Container) {
			c.Readiness.PeriodSeconds, c.Readiness.FailureThreshold = i(1_000_000_000), i(10)
		}, []string{"readiness-drain"}},
		{"readiness at max int32", func(c *deployspec.Container) {
			c.Readiness.PeriodSeconds, c.Readiness.FailureThreshold, c.Readiness.TimeoutSeconds = i(math.MaxInt32), i(math.MaxInt32), i(math.MaxInt32)
		}, []string{"readiness-drain"}},
		{"startup budget past a Duration", func(c *deployspec.Container) {
			c.Startup.PeriodSeconds, c.Startup.FailureThreshold = i(1_000_000_000), i(11)
		}, nil},
		{"startup at max int32", func(c *deployspec.Container) {
			c.Startup.InitialDelaySeconds, c.Startup.PeriodSeconds, c.Startup.FailureThreshold = i(math.MaxInt32), i(math.MaxInt32), i(math.MaxInt32)
		}, nil},
		{"grace period past a Duration", func(c *deployspec.Container) { g := int64(math.MaxInt64); c.GracePeriodSeconds = &g }, nil},
		{"grace period that wraps to a short one", func(c *deployspec.Container) { g := int64(18446744074); c.GracePeriodSeconds = &g }, nil},
		{"a negative grace period", func(c *deployspec.Container) { g := int64(math.MinInt64); c.GracePeriodSeconds = &g }, []string{"grace-period"}},
		{"a preStop sleep past a Duration", func(c *deployspec.Container) { c.PreStopSleep = math.MaxInt64 }, []string{"grace-period"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := containerOf(mustCompute(t, example, false))
			tt.edit(&c)
			var got []string
			for _, f := range deployspec.Lint(example, c) {
				got = append(got, f.Rule)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got rules %q, want %q: %v", got, tt.want, deployspec.Lint(example, c))
			}
		})
	}
}

func TestDeploymentRefusesMissingFields(t *testing.T) {
	ok := deployspec.Deployment{Name: "items", Image: "items:1", AppAddr: ":8080",
		Service: deployspec.Service{WarmupDeadline: time.Minute, Stop: server.Timings{Drain: 5 * time.Second, ShutdownTimeout: time.Second}, ProbeAddr: ":8081"}}
	if _, err := ok.YAML(); err != nil {
		t.Fatalf("a whole Deployment: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*deployspec.Deployment)
		want string
	}{
		{"no name", func(d *deployspec.Deployment) { d.Name = "" }, "Deployment.Name"},
		{"no image", func(d *deployspec.Deployment) { d.Image = "" }, "Deployment.Image"},
		{"no application address", func(d *deployspec.Deployment) { d.AppAddr = "" }, "Deployment.AppAddr"},
		{"an address without a port", func(d *deployspec.Deployment) { d.AppAddr = "localhost" }, "Deployment.AppAddr"},
		{"no warm-up deadline", func(d *deployspec.Deployment) { d.Service.WarmupDeadline = 0 }, "WarmupDeadline"},
		{"a gRPC address without a port", func(d *deployspec.Deployment) { d.Service.GRPCAddr = "grpc-host" }, "GRPCAddr"},
		{"a relative state directory", func(d *deployspec.Deployment) { d.StateDir = "state" }, "Deployment.StateDir"},
	} {
		d := ok
		tt.edit(&d)
		if _, err := d.YAML(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want an error naming %s", tt.name, err, tt.want)
		}
	}
}

// A service with a state directory gets an emptyDir there: the container
// mounts it, the pod holds it, bounded; one without gets no volume.
func TestDeploymentStateDir(t *testing.T) {
	d := deployspec.Deployment{Name: "items", Image: "items:1", AppAddr: ":8080", CPU: "50m",
		Service: deployspec.Service{WarmupDeadline: time.Minute, Stop: server.Timings{Drain: 5 * time.Second, ShutdownTimeout: time.Second}, ProbeAddr: ":8081"}}
	y, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(y, "volume") {
		t.Errorf("no state directory, yet a volume:\n%s", y)
	}
	d.StateDir = "/var/lib/items"
	if y, err = d.YAML(); err != nil {
		t.Fatal(err)
	}
	want := `          terminationMessagePolicy: FallbackToLogsOnError
          volumeMounts:
            - name: state
              mountPath: /var/lib/items
      volumes:
        - name: state
`
	if !strings.Contains(y, want) || !strings.Contains(y, "          emptyDir:\n            sizeLimit: "+deployspec.StateSizeLimit+"\n") {
		t.Errorf("the YAML lacks the emptyDir at the state directory:\n%s", y)
	}
}

// Values YAML would read as something else (a boolean, a number, a
// mapping, a comment) are written quoted; ordinary ones stay plain.
func TestDeploymentQuotesWhatYAMLWouldMisread(t *testing.T) {
	d := deployspec.Deployment{Name: "items", Image: "registry:5000/items:1.2", AppAddr: ":8080", CPU: "1", Memory: "64Mi",
		Command: []string{"/usr/local/bin/probe", "yes"},
		Args:    []string{"-addr=0.0.0.0:8080", "true", "8080", "0x1F", "--x: y", "a #b", "", "null", "-warmup=20s"},
		Service: deployspec.Service{WarmupDeadline: time.Minute, Stop: server.Timings{Drain: 5 * time.Second, ShutdownTimeout: time.Second}, ProbeAddr: ":8081"}}
	y, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"- -addr=0.0.0.0:8080\n", "- \"true\"\n", "- \"8080\"\n", "- \"0x1F\"\n", "- \"--x: y\"\n", "- \"a #b\"\n",
		"- \"\"\n", "- \"null\"\n", "- -warmup=20s\n", "image: registry:5000/items:1.2\n",
		"command:\n            - /usr/local/bin/probe\n            - \"yes\"\n          args:\n", "cpu: \"1\"\n", "memory: 64Mi\n", "name: items\n",
	} {
		if !strings.Contains(y, want) {
			t.Errorf("the YAML lacks %q:\n%s", want, y)
		}
	}
}

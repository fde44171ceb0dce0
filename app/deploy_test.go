package app_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// flushPart stands for a part that flushes an exporter once the server has
// stopped: a hook no flag of the service says anything about.
var flushPart = app.PartFunc(func(a *app.App) error {
	a.Option(server.AfterClose("exporter", 10*time.Second, func(context.Context) error { return nil }))
	return nil
})

// The Deployment of an App is the service as it really is: its grace
// period covers the stop with the hook a part added, its pod template
// carries that stop for probelint, and Lint, which probelint runs, finds
// nothing in it.
func TestDeployment(t *testing.T) {
	a, err := app.New(app.Config{
		WarmupDeadline: 2 * time.Minute, ShutdownTimeout: 15 * time.Second,
		Addr: "0.0.0.0:8080", ProbeAddr: "0.0.0.0:8081",
		Parts: []app.Part{flushPart},
	})
	if err != nil {
		t.Fatal(err)
	}
	spec := a.DeploySpec()
	if spec.Stop.AfterClose != 10*time.Second {
		t.Fatalf("DeploySpec's AfterClose is %s, want the part's 10s hook", spec.Stop.AfterClose)
	}
	y, err := a.Deployment(deployspec.Deployment{
		Name: "shop", Image: "shop:1",
		// What the App knows is its own: a Stop given here is not the service's.
		Service: deployspec.Service{Stop: server.Timings{Drain: time.Hour}},
	})
	if err != nil {
		t.Fatal(err)
	}
	c, stop := readManifest(t, y)
	if c.GracePeriodSeconds == nil || time.Duration(*c.GracePeriodSeconds)*time.Second < spec.Stop.Stop() {
		t.Errorf("grace period %v below the real stop %s:\n%s", c.GracePeriodSeconds, spec.Stop.Stop(), y)
	}
	if *c.GracePeriodSeconds != 38 { // drain 5s + shutdown timeout 15s + hook 10s + 3s, +5s
		t.Errorf("grace period %d, want 38", *c.GracePeriodSeconds)
	}
	if got, err := deployspec.ParseStop(stop); err != nil || got != spec.Stop {
		t.Errorf("the annotation %q reads %+v, %v; want the service's stop %+v", stop, got, err, spec.Stop)
	}
	if !strings.Contains(stop, "after-close=10s") || !strings.Contains(stop, "stop=33s") {
		t.Errorf("the annotation %q does not carry the hook", stop)
	}
	if !strings.Contains(y, "- name: http\n              containerPort: 8080\n") {
		t.Errorf("the application's port is not Config.Addr's:\n%s", y)
	}
	if f := deployspec.Lint(spec, c); len(f) > 0 {
		t.Errorf("Lint finds %v in the App's own Deployment:\n%s", f, y)
	}
	// A 25s grace period passes against the stop the flags say (no hook,
	// 23s) and fails against the real one: why the stop travels with the
	// manifest.
	short := spec
	short.Stop.AfterClose = 0
	c.GracePeriodSeconds = new(int64)
	*c.GracePeriodSeconds = 25
	if f := deployspec.Lint(short, c); len(f) > 0 {
		t.Errorf("a 25s grace period against the flags' 23s stop: %v", f)
	}
	if f := deployspec.Lint(spec, c); len(f) != 1 || f[0].Rule != "grace-period" {
		t.Errorf("a 25s grace period against the real 33s stop: got %v, want grace-period", f)
	}
}

// Deployment keeps the balancer d names, which the App cannot know, and
// refuses what YAML refuses.
func TestDeploymentBalancerAndErrors(t *testing.T) {
	a, err := app.New(app.Config{Drain: 15 * time.Second, ProbeAddr: "0.0.0.0:8081"})
	if err != nil {
		t.Fatal(err)
	}
	alb := deployspec.AWSALB()
	alb.Interval, alb.Timeout = 5*time.Second, 5*time.Second
	y, err := a.Deployment(deployspec.Deployment{Name: "shop", Image: "shop:1", Service: deployspec.Service{Balancer: &alb}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(y, "kind: Service\n") || !strings.Contains(y, "alb.ingress.kubernetes.io/") {
		t.Errorf("no Service for the ALB:\n%s", y)
	}
	if !strings.Contains(y, "containerPort: 8080\n") {
		t.Errorf("AppAddr is not DefaultAddr's port:\n%s", y)
	}
	if _, err := a.Deployment(deployspec.Deployment{Image: "shop:1"}); err == nil || !strings.Contains(err.Error(), "Deployment.Name") {
		t.Errorf("no name: got %v, want YAML's error", err)
	}
}

// SystemdTimeouts lets systemd wait out the real stop, hooks included.
func TestSystemdTimeouts(t *testing.T) {
	a, err := app.New(app.Config{WarmupDeadline: 2 * time.Minute, Parts: []app.Part{flushPart}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.SystemdTimeouts()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TimeoutStartSec=158\n", "TimeoutStopSec=38\n", "WatchdogSec=30\n", "# the longest stop is 33s"} {
		if !strings.Contains(got, want) {
			t.Errorf("got\n%s\nwant %q in it", got, want)
		}
	}
	short, err := app.New(app.Config{Drain: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := short.SystemdTimeouts(); err == nil || !strings.Contains(err.Error(), "set -drain to at least") {
		t.Errorf("a 1s drain: got %v, want Compute's error", err)
	}
}

// readManifest reads what deployspec.Lint takes from the Deployment
// deployspec writes (its first document, one container): the grace period
// and the three probes, a named port resolved; and the stop annotation's
// value.
func readManifest(t *testing.T, y string) (deployspec.Container, string) {
	t.Helper()
	doc, _, _ := strings.Cut(y, "\n---\n")
	c := deployspec.Container{Name: "app"}
	ports := map[string]int{}
	named := map[*deployspec.ProbeSpec]string{}
	var probe *deployspec.ProbeSpec
	var portName, stop string
	num := func(v string) int {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("%q: not a number", v)
		}
		return n
	}
	for line := range strings.SplitSeq(doc, "\n") {
		l := strings.TrimPrefix(strings.TrimSpace(line), "- ")
		key, v, _ := strings.Cut(strings.TrimSuffix(l, ":"), ": ")
		switch key {
		case deployspec.StopAnnotation:
			s, err := strconv.Unquote(v)
			if err != nil {
				t.Fatalf("the stop annotation %s: %v", v, err)
			}
			stop = s
		case "terminationGracePeriodSeconds":
			g := int64(num(v))
			c.GracePeriodSeconds = &g
		case "name":
			portName = v
		case "containerPort":
			ports[portName] = num(v)
		case "startupProbe", "livenessProbe", "readinessProbe":
			probe = &deployspec.ProbeSpec{}
			*map[string]**deployspec.ProbeSpec{"startupProbe": &c.Startup, "livenessProbe": &c.Liveness, "readinessProbe": &c.Readiness}[key] = probe
		case "path":
			probe.HTTPPath = v
		case "port":
			if n, err := strconv.Atoi(v); err == nil {
				probe.HTTPPort = n
			} else {
				named[probe] = v
			}
		case "periodSeconds":
			probe.PeriodSeconds = int32(num(v))
		case "timeoutSeconds":
			probe.TimeoutSeconds = int32(num(v))
		case "failureThreshold":
			probe.FailureThreshold = int32(num(v))
		}
	}
	for p, name := range named {
		p.HTTPPort = ports[name]
	}
	if c.Startup == nil || c.Liveness == nil || c.Readiness == nil || stop == "" {
		t.Fatalf("not a whole Deployment:\n%s", y)
	}
	return c, stop
}

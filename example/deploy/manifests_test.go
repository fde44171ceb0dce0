// Package deploy checks the example's deployment files: the Kubernetes
// manifest decodes strictly with the official API types, the systemd unit
// passes systemd-analyze, the alerting rules pass promtool, and the numbers
// in all of them agree with each other and with the example's routes.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// settings are the example's flags that the budgets depend on.
type settings struct {
	addr, probeAddr, grpcAddr         string
	warmup, deadline, drain, shutdown time.Duration
	drainQuiet, drainMin              time.Duration
	balancer, stateDir                string
}

func parseFlags(t *testing.T, args []string) settings {
	t.Helper()
	var s settings
	for _, a := range args {
		name, value, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !ok {
			t.Fatalf("flag %q: want -name=value", a)
		}
		dur := func() time.Duration {
			d, err := time.ParseDuration(value)
			if err != nil {
				t.Fatalf("flag %q: %v", a, err)
			}
			return d
		}
		switch name {
		case "addr":
			s.addr = value
		case "probe-addr":
			s.probeAddr = value
		case "grpc-addr":
			s.grpcAddr = value
		case "warmup":
			s.warmup = dur()
		case "warmup-deadline":
			s.deadline = dur()
		case "drain":
			s.drain = dur()
		case "shutdown-timeout":
			s.shutdown = dur()
		case "drain-quiet":
			s.drainQuiet = dur()
		case "drain-min":
			s.drainMin = dur()
		case "balancer":
			s.balancer = value
		case "state-dir":
			s.stateDir = value
		default:
			t.Fatalf("flag %q: the example has no such flag", a)
		}
	}
	if s.addr == "" || s.probeAddr == "" || s.deadline == 0 || s.drain == 0 || s.shutdown == 0 {
		t.Fatalf("args %q: want -addr, -probe-addr, -warmup-deadline, -drain and -shutdown-timeout set explicitly", args)
	}
	return s
}

func seconds(n int32) time.Duration { return time.Duration(n) * time.Second }

func TestDeployment(t *testing.T) {
	t.Run("http", func(t *testing.T) { testDeployment(t, "deployment.yaml", false) })
	t.Run("grpc", func(t *testing.T) { testDeployment(t, "deployment-grpc.yaml", true) })
}

// decodeStrict decodes one YAML document into obj, failing on a field
// obj's type does not have, a field spelt in another case, or a field set
// twice, as kubectl --validate=strict would (sigs.k8s.io/json, the API
// server's own decoder, matches field names case-sensitively).
func decodeStrict(t *testing.T, what string, doc []byte, obj any) {
	t.Helper()
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := kjson.UnmarshalStrict(js, obj)
	if err == nil && len(strict) > 0 {
		err = errors.Join(strict...)
	}
	if err != nil {
		t.Fatalf("%s does not decode strictly: %v", what, err)
	}
}

// testDeployment decodes file strictly (a Deployment, then a
// PodDisruptionBudget for its pods) and checks that its probes target
// what the example serves, that its timings hang together and that the
// budget lets node drains through. With grpc, the three probes are gRPC
// probes of the gates' service names.
func testDeployment(t *testing.T, file string, grpc bool) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(raw, []byte("\n---\n"))
	if len(docs) != 2 {
		t.Fatalf("%s has %d documents, want a Deployment and a PodDisruptionBudget", file, len(docs))
	}
	var d appsv1.Deployment
	decodeStrict(t, file+" as an apps/v1 Deployment", docs[0], &d)
	if d.APIVersion != "apps/v1" || d.Kind != "Deployment" {
		t.Fatalf("got %s %s, want apps/v1 Deployment", d.APIVersion, d.Kind)
	}
	var pdb policyv1.PodDisruptionBudget
	decodeStrict(t, file+"'s second document as a policy/v1 PodDisruptionBudget", docs[1], &pdb)
	if pdb.APIVersion != "policy/v1" || pdb.Kind != "PodDisruptionBudget" {
		t.Fatalf("got %s %s, want policy/v1 PodDisruptionBudget", pdb.APIVersion, pdb.Kind)
	}
	testBudget(t, &d, &pdb)
	if len(d.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(d.Spec.Template.Spec.Containers))
	}
	c := d.Spec.Template.Spec.Containers[0]
	s := parseFlags(t, c.Args)

	// The probes target the probe listener, apart from the API, or the
	// gRPC server.
	listen := s.probeAddr
	if grpc {
		listen = s.grpcAddr
	}
	_, portText, _ := strings.Cut(listen, ":")
	port, _ := strconv.Atoi(portText)
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	probes := []struct {
		name  string
		probe *corev1.Probe
		path  string // HTTP path, or gRPC service name
	}{
		{"startupProbe", c.StartupProbe, "/startupz"},
		{"livenessProbe", c.LivenessProbe, "/livez"},
		{"readinessProbe", c.ReadinessProbe, "/readyz"},
	}
	for _, p := range probes {
		if p.probe == nil {
			t.Errorf("%s: missing", p.name)
			continue
		}
		var got int32
		switch {
		case grpc && p.probe.GRPC != nil:
			want := map[string]string{"/startupz": "startup", "/livez": "liveness", "/readyz": "readiness"}[p.path]
			if svc := p.probe.GRPC.Service; svc == nil || *svc != want {
				t.Errorf("%s service: got %v, want %q", p.name, svc, want)
			}
			got = p.probe.GRPC.Port
		case !grpc && p.probe.HTTPGet != nil:
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s path: got %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
			}
			target := p.probe.HTTPGet.Port
			got = target.IntVal
			if target.Type == intstr.String {
				got = ports[target.StrVal]
			}
		default:
			t.Errorf("%s: want a %s probe", p.name, map[bool]string{true: "grpc", false: "httpGet"}[grpc])
			continue
		}
		if int(got) != port {
			t.Errorf("%s port: resolves to %d, but the example's probes listen on %d", p.name, got, port)
		}
	}

	// The scrape annotations point at /metrics on the probes' port, where
	// the example serves it.
	ann := d.Spec.Template.Annotations
	if _, probePort, _ := strings.Cut(s.probeAddr, ":"); ann["prometheus.io/port"] != probePort || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/scrape"] != "true" {
		t.Errorf("scrape annotations %v; want /metrics on -probe-addr's port %s", ann, probePort)
	}

	// The startup budget covers the warm-up deadline: the kubelet must not
	// restart a pod that is still allowed to warm up. The first probe comes
	// at initialDelaySeconds, so the last failure allowed lands
	// (failureThreshold-1) periods after it.
	if sp := c.StartupProbe; sp != nil {
		budget := seconds(sp.InitialDelaySeconds) + seconds(sp.PeriodSeconds)*time.Duration(sp.FailureThreshold-1)
		if budget < s.deadline {
			t.Errorf("startupProbe budget %s (%ds x %d) is below the warm-up deadline %s", budget, sp.PeriodSeconds, sp.FailureThreshold, s.deadline)
		}
	}
	// The state directory is an emptyDir, which outlives the container's
	// restarts, mounted where -state-dir says, and bounded.
	testStateDir(t, &d, s.stateDir)

	// The grace period covers the drain and the shutdown, and any preStop.
	need := s.drain + s.shutdown
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		need += time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	}
	grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second < need {
		t.Errorf("terminationGracePeriodSeconds %v is below drain %s + shutdown timeout %s", grace, s.drain, s.shutdown)
	}
}

// testStateDir checks that a pod whose container is given a state
// directory mounts a bounded emptyDir there, and that one without has
// none.
func testStateDir(t *testing.T, d *appsv1.Deployment, dir string) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	vols := d.Spec.Template.Spec.Volumes
	if dir == "" {
		if len(vols) > 0 || len(c.VolumeMounts) > 0 {
			t.Errorf("no -state-dir, yet volumes %v mounted at %v", vols, c.VolumeMounts)
		}
		return
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != dir || c.VolumeMounts[0].ReadOnly {
		t.Fatalf("-state-dir=%s: the container mounts %v", dir, c.VolumeMounts)
	}
	for _, v := range vols {
		if v.Name != c.VolumeMounts[0].Name {
			continue
		}
		if v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil || v.EmptyDir.SizeLimit.Value() < 256<<10 {
			t.Errorf("the state directory's volume %+v: want an emptyDir of at least the history's 256 KiB", v)
		}
		return
	}
	t.Errorf("the mount %q names no volume of %v", c.VolumeMounts[0].Name, vols)
}

// testBudget checks that pdb selects d's pods and lets a node drain evict
// at least one of them, unready ones included.
func testBudget(t *testing.T, d *appsv1.Deployment, pdb *policyv1.PodDisruptionBudget) {
	t.Helper()
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		t.Fatalf("budget selector: %v", err)
	}
	if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("budget selector %s does not select the pod template's labels %v", sel, d.Spec.Template.Labels)
	}
	if p := pdb.Spec.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
		t.Errorf("unhealthyPodEvictionPolicy %v, want AlwaysAllow: unready pods would block drains", p)
	}
	replicas := 1
	if d.Spec.Replicas != nil {
		replicas = int(*d.Spec.Replicas)
	}
	most := pdb.Spec.MaxUnavailable
	if pdb.Spec.MinAvailable != nil || most == nil || most.Type != intstr.Int || most.IntVal < 1 || int(most.IntVal) > replicas {
		t.Errorf("budget minAvailable %v, maxUnavailable %v with %d replicas; want maxUnavailable a count from 1 to the replicas", pdb.Spec.MinAvailable, most, replicas)
	}
}

// unit reads a systemd unit's assignments.
func unit(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			out[k] = v
		}
	}
	return out
}

func TestSystemdUnit(t *testing.T) {
	u := unit(t, "probes-example.service")
	exec0 := strings.Fields(u["ExecStart"])
	if len(exec0) < 2 {
		t.Fatalf("ExecStart %q", u["ExecStart"])
	}
	s := parseFlags(t, exec0[1:])
	if u["Type"] != "notify" {
		t.Errorf("Type=%s, want notify: the unit must become active only on READY=1", u["Type"])
	}
	durations := map[string]time.Duration{}
	for _, k := range []string{"TimeoutStartSec", "TimeoutStopSec", "WatchdogSec"} {
		n, err := strconv.Atoi(u[k])
		if err != nil {
			t.Fatalf("%s=%q: want whole seconds", k, u[k])
		}
		durations[k] = time.Duration(n) * time.Second
	}
	if durations["TimeoutStartSec"] <= s.deadline {
		t.Errorf("TimeoutStartSec %s does not exceed the warm-up deadline %s", durations["TimeoutStartSec"], s.deadline)
	}
	if durations["TimeoutStopSec"] < s.drain+s.shutdown {
		t.Errorf("TimeoutStopSec %s is below drain %s + shutdown timeout %s", durations["TimeoutStopSec"], s.drain, s.shutdown)
	}
	if durations["WatchdogSec"] <= 0 {
		t.Error("WatchdogSec must be set for the liveness watchdog")
	}

	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze not installed; the unit's numbers were checked above")
	}
	// systemd-analyze wants the ExecStart binary to exist: build the example
	// and point a copy of the unit at it.
	dir := t.TempDir()
	bin := filepath.Join(dir, "probes-example")
	build := exec.Command("go", "build", "-o", bin, "./example")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	text, err := os.ReadFile("probes-example.service")
	if err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "probes-example.service")
	if err := os.WriteFile(copyPath, bytes.ReplaceAll(text, []byte("/usr/local/bin/probes-example"), []byte(bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(analyze, "verify", copyPath)
	out, err := cmd.CombinedOutput()
	// Outside a booted systemd, verify may complain about the machine (no
	// D-Bus, missing default units); what matters is what it says of ours.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "probes-example.service") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
	t.Logf("systemd-analyze verify: %v\n%s", err, out)
}

func TestDockerfile(t *testing.T) {
	raw, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for _, want := range []string{
		"CGO_ENABLED=0 go build", "./cmd/probe", "FROM gcr.io/distroless/static",
		`CMD ["/usr/local/bin/probe", "-timeout", "1s", "http://127.0.0.1:8081/readyz"]`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	// The entrypoint's flags agree with the health check's port and the
	// start period covers the warm-up deadline.
	start := strings.Index(text, "ENTRYPOINT [")
	var entry []string
	if err := json.Unmarshal([]byte(strings.TrimSpace(text[start+len("ENTRYPOINT "):])), &entry); err != nil {
		t.Fatalf("ENTRYPOINT: %v", err)
	}
	s := parseFlags(t, entry[1:])
	if !strings.HasSuffix(s.probeAddr, ":8081") {
		t.Errorf("entrypoint serves its probes on %s, the health check probes :8081", s.probeAddr)
	}
	_, period, _ := strings.Cut(text, "--start-period=")
	period, _, _ = strings.Cut(period, " ")
	if d, err := time.ParseDuration(period); err != nil || d < s.deadline {
		t.Errorf("HEALTHCHECK start period %q is below the warm-up deadline %s", period, s.deadline)
	}
}

// The alerting rules parse and type-check with Prometheus's own promtool,
// and pass their unit tests.
func TestPrometheusRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool is missing (Debian package prometheus); CI must install it")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	out, err := exec.Command(promtool, "check", "rules", "prometheus-rules.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS: 4 rules found") {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
	// The alerts fire when they should and stay quiet through a rollout.
	out, err = exec.Command(promtool, "test", "rules", "prometheus-rules-test.yaml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Errorf("promtool test rules: %v\n%s", err, out)
	}
}

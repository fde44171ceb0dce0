package main

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// generated is the Deployment deployspec writes for a service with the
// given drain and shutdown timeout behind b (none when nil), with the
// Service and BackendConfig it writes for b. The container's args set the
// service's settings, which the tests read with -from-args.
func generated(t testing.TB, b *deployspec.Balancer, drain, shutdown time.Duration) string {
	t.Helper()
	d := deployspec.Deployment{
		Name: "shop", Image: "shop:1", AppAddr: "0.0.0.0:8080",
		Args: []string{"-addr=0.0.0.0:8080", "-probe-addr=0.0.0.0:8081", "-warmup-deadline=2m",
			"-drain=" + drain.String(), "-shutdown-timeout=" + shutdown.String()},
		Service: deployspec.Service{
			WarmupDeadline: 2 * time.Minute,
			Stop:           server.Timings{Drain: drain, ShutdownTimeout: shutdown},
			ProbeAddr:      "0.0.0.0:8081",
			Balancer:       b,
		},
	}
	text, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	return text
}

// balancers are the ones Deployment.YAML writes a Service for, with a 5s
// interval and timeout: a detection time of 10s, inside a 15s drain.
func balancers() map[string]*deployspec.Balancer {
	out := map[string]*deployspec.Balancer{}
	for name, b := range map[string]deployspec.Balancer{"alb": deployspec.AWSALB(), "nlb": deployspec.AWSNLB(), "gke": deployspec.GoogleCloud()} {
		b.Interval, b.Timeout = 5*time.Second, 5*time.Second
		out[name] = &b
	}
	return out
}

// What deployspec writes for each balancer lints clean: the generator and
// the linter agree.
func TestGeneratedBalancersAreClean(t *testing.T) {
	for name, b := range balancers() {
		t.Run(name, func(t *testing.T) {
			text := generated(t, b, 15*time.Second, 15*time.Second)
			if !strings.Contains(text, "kind: Service\n") {
				t.Fatalf("no Service written:\n%s", text)
			}
			code, out, errOut := lint(t, "-from-args", write(t, "front.yaml", text))
			if code != clean || out != "" || errOut != "" {
				t.Errorf("got exit %d\nstdout %s\nstderr %s\nof\n%s", code, out, errOut, text)
			}
		})
	}
}

// plainService sends to the generated Deployment's pods, with no
// annotation.
const plainService = `apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector:
    app: shop
  ports:
    - name: http
      port: 80
      targetPort: http
`

// albIngress routes to the Service shop, asking /readyz on the probe port
// every 5s, with a deregistration delay that fits.
const albIngress = `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  annotations:
    alb.ingress.kubernetes.io/target-type: ip
    alb.ingress.kubernetes.io/healthcheck-path: /readyz
    alb.ingress.kubernetes.io/healthcheck-port: "8081"
    alb.ingress.kubernetes.io/healthcheck-interval-seconds: "5"
    alb.ingress.kubernetes.io/target-group-attributes: deregistration_delay.timeout_seconds=15
spec:
  ingressClassName: alb
  rules:
    - host: shop.example.com
      http:
        paths:
          - path: /
            pathType: Prefix
            backend:
              service:
                name: shop
                port:
                  name: http
`

const serviceMonitor = `apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata:
  name: shop
spec:
  selector: {matchLabels: {app: shop}}
  endpoints: [{port: probes, path: /metrics}]
`

// Each manifest is right but for one fault of its balancer: exit 1, one
// finding with the rule and the fix, at the line of the field at fault in
// the Service, the Ingress or the BackendConfig.
func TestBalancerRules(t *testing.T) {
	bs := balancers()
	const drain, shutdown = 15 * time.Second, 15 * time.Second
	alb, nlb, gke := generated(t, bs["alb"], drain, shutdown), generated(t, bs["nlb"], drain, shutdown), generated(t, bs["gke"], drain, shutdown)
	plain := generated(t, nil, drain, shutdown)
	// A grace period of 30s: a 12s drain and a 10s shutdown timeout.
	albShort := generated(t, bs["alb"], 12*time.Second, 10*time.Second)
	const (
		albKey = "alb.ingress.kubernetes.io/"
		nlbKey = "service.beta.kubernetes.io/aws-load-balancer-"
	)
	type edit struct{ old, new string }
	tests := []struct {
		name            string
		text            string
		edits           []edit
		rule, line, fix string // rule empty: clean
	}{
		{name: "ALB: the drain is shorter than the detection time", text: alb,
			edits: []edit{{albKey + `healthcheck-interval-seconds: "5"`, albKey + `healthcheck-interval-seconds: "30"`}},
			rule:  "balancer-detection", line: albKey + `healthcheck-interval-seconds: "30"`, fix: "DrainDelay(1m5s) (-drain=1m5s)"},
		{name: "ALB: the threshold makes the detection too long", text: alb,
			edits: []edit{{albKey + `unhealthy-threshold-count: "2"`, albKey + `unhealthy-threshold-count: "4"`}},
			rule:  "balancer-detection", line: albKey + `healthcheck-interval-seconds: "5"`, fix: "DrainDelay(25s)"},
		{name: "NLB: no healthcheck-protocol is a TCP check", text: nlb,
			edits: []edit{{"    " + nlbKey + "healthcheck-protocol: \"HTTP\"\n", ""}},
			rule:  "balancer-check", line: "  annotations:", fix: "an HTTP check of /readyz on port 8081"},
		{name: "ALB: health check path /", text: alb,
			edits: []edit{{albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/"`}},
			rule:  "balancer-check", line: albKey + `healthcheck-path: "/"`, fix: "an HTTP check of /readyz on port 8081"},
		{name: "ALB: the check on the API's port", text: alb,
			edits: []edit{{albKey + `healthcheck-port: "8081"`, albKey + `healthcheck-port: "8080"`}},
			rule:  "balancer-check", line: albKey + `healthcheck-port: "8080"`, fix: "on port 8081"},
		{name: "NLB: the check on the API's port", text: nlb,
			edits: []edit{{nlbKey + `healthcheck-port: "8081"`, nlbKey + `healthcheck-port: "8080"`}},
			rule:  "balancer-check", line: nlbKey + `healthcheck-port: "8080"`, fix: "on port 8081"},
		{name: "ALB: no healthcheck-port is the traffic's, the API's", text: alb,
			edits: []edit{{"    " + albKey + "healthcheck-port: \"8081\"\n", ""}},
			rule:  "balancer-check", line: "  annotations:", fix: "on port 8081"},
		{name: "ALB: no healthcheck-port, and a Service of two ports", text: alb,
			edits: []edit{{"    " + albKey + "healthcheck-port: \"8081\"\n", ""}, {"      targetPort: http\n", "      targetPort: http\n    - name: probes\n      port: 8081\n      targetPort: probes\n"}}},
		{name: "NLB: no healthcheck-port, and a Service of two ports", text: nlb,
			edits: []edit{{"    " + nlbKey + "healthcheck-port: \"8081\"\n", ""}, {"      targetPort: http\n", "      targetPort: http\n    - name: probes\n      port: 8081\n      targetPort: probes\n"}},
			rule:  "balancer-check", line: "  annotations:", fix: "on port 8081"},
		{name: "ALB: the default deregistration delay against a 30s grace period", text: albShort,
			edits: []edit{{"    " + albKey + "target-group-attributes: \"deregistration_delay.timeout_seconds=10\"\n", ""}},
			rule:  "deregistration-delay", line: "  annotations:", fix: "deregistration_delay.timeout_seconds: 18 (the grace period minus the drain), or terminationGracePeriodSeconds: 312"},
		{name: "NLB: a deregistration delay past the grace period", text: nlb,
			edits: []edit{{"deregistration_delay.timeout_seconds=15,", "deregistration_delay.timeout_seconds=60,"}},
			rule:  "deregistration-delay", line: nlbKey + "target-group-attributes:", fix: "deregistration_delay.timeout_seconds: 23"},
		{name: "NLB by its loadBalancerClass, checking /", text: nlb,
			edits: []edit{{"    " + nlbKey + "type: \"external\"\n", ""}, {"  type: LoadBalancer\n", "  type: LoadBalancer\n  loadBalancerClass: service.k8s.aws/nlb\n"},
				{nlbKey + `healthcheck-path: "/readyz"`, nlbKey + `healthcheck-path: "/"`}},
			rule: "balancer-check", line: nlbKey + `healthcheck-path: "/"`, fix: "/readyz"},
		{name: "NLB annotations the controller does not read", text: nlb,
			edits: []edit{{"    " + nlbKey + "type: \"external\"\n", ""}, {nlbKey + `healthcheck-path: "/readyz"`, nlbKey + `healthcheck-path: "/"`}}},
		{name: "ALB: an interval out of range", text: alb,
			edits: []edit{{albKey + `healthcheck-interval-seconds: "5"`, albKey + `healthcheck-interval-seconds: "3"`}},
			rule:  "balancer-annotation", line: albKey + `healthcheck-interval-seconds: "3"`, fix: albKey + "healthcheck-interval-seconds: a value the controller takes"},
		{name: "ALB: a TCP check", text: alb,
			edits: []edit{{albKey + `healthcheck-protocol: "HTTP"`, albKey + `healthcheck-protocol: "TCP"`}},
			rule:  "balancer-annotation", line: albKey + `healthcheck-protocol: "TCP"`, fix: "healthcheck-protocol: a value"},
		{name: "NLB: a deregistration delay out of range", text: nlb,
			edits: []edit{{"deregistration_delay.timeout_seconds=15,", "deregistration_delay.timeout_seconds=4000,"}},
			rule:  "balancer-annotation", line: nlbKey + "target-group-attributes:", fix: "target-group-attributes: a value"},

		{name: "BackendConfig: a TCP check, which GKE does not build", text: gke,
			edits: []edit{{"    type: HTTP\n", "    type: TCP\n"}},
			rule:  "balancer-annotation", line: "type: TCP", fix: "type: a value the GKE Ingress controller takes"},
		{name: "BackendConfig: draining too long", text: gke,
			edits: []edit{{"drainingTimeoutSec: 15", "drainingTimeoutSec: 120"}},
			rule:  "deregistration-delay", line: "drainingTimeoutSec: 120", fix: "connectionDraining.drainingTimeoutSec: 23 (the grace period minus the drain), or terminationGracePeriodSeconds: 135"},
		{name: "BackendConfig: checks too far apart", text: gke,
			edits: []edit{{"checkIntervalSec: 5", "checkIntervalSec: 10"}},
			rule:  "balancer-detection", line: "checkIntervalSec: 10", fix: "DrainDelay(25s)"},
		{name: "BackendConfig: the unset threshold is the controller's", text: gke,
			edits: []edit{{"    unhealthyThreshold: 2\n", ""}, {"checkIntervalSec: 5", "checkIntervalSec: 8"}},
			rule:  "balancer-detection", line: "checkIntervalSec: 8", fix: "DrainDelay(21s)"},
		{name: "BackendConfig: the unset port is the traffic's", text: gke,
			edits: []edit{{"    port: 8081\n", ""}},
			rule:  "balancer-check", line: "  healthCheck:", fix: "on port 8081"},
		{name: "BackendConfig: an interval out of range", text: gke,
			edits: []edit{{"checkIntervalSec: 5", "checkIntervalSec: 0"}},
			rule:  "balancer-annotation", line: "checkIntervalSec: 0", fix: "checkIntervalSec: a value"},
		{name: "BackendConfig linked, checking /", text: gke,
			edits: []edit{{"requestPath: /readyz", "requestPath: /"}},
			rule:  "balancer-check", line: "requestPath: /", fix: "/readyz"},
		{name: "BackendConfig not linked", text: gke,
			edits: []edit{{"requestPath: /readyz", "requestPath: /"}, {`{\"default\":\"shop\"}`, `{\"default\":\"other\"}`}}},
		{name: "BackendConfig linked by port name, with the older annotation", text: gke,
			edits: []edit{{"requestPath: /readyz", "requestPath: /"}, {`cloud.google.com/backend-config: "{\"default\":\"shop\"}"`, `beta.cloud.google.com/backend-config: '{"ports": {"http": "shop"}}'`}},
			rule:  "balancer-check", line: "requestPath: /", fix: "/readyz"},
		{name: "BackendConfig linked by port number", text: gke,
			edits: []edit{{"requestPath: /readyz", "requestPath: /"}, {`{\"default\":\"shop\"}`, `{\"ports\": {\"80\": \"shop\"}, \"default\": \"other\"}`}},
			rule:  "balancer-check", line: "requestPath: /", fix: "/readyz"},
		{name: "BackendConfig of another port", text: gke,
			edits: []edit{{"requestPath: /readyz", "requestPath: /"}, {`{\"default\":\"shop\"}`, `{\"ports\": {\"443\": \"shop\"}}`}}},
		{name: "BackendConfig annotation not JSON", text: gke,
			edits: []edit{{`{\"default\":\"shop\"}`, `shop`}},
			rule:  "balancer-annotation", line: `cloud.google.com/backend-config: "shop"`, fix: "cloud.google.com/backend-config: a value"},
		{name: "BackendConfig v1beta1", text: gke,
			edits: []edit{{"apiVersion: cloud.google.com/v1\n", "apiVersion: cloud.google.com/v1beta1\n"}, {"requestPath: /readyz", "requestPath: /"}},
			rule:  "balancer-check", line: "requestPath: /", fix: "/readyz"},
		{name: "BackendConfig fields the linter does not check", text: gke,
			edits: []edit{{"  connectionDraining:\n", "  cdn: {enabled: true, cachePolicy: {includeHost: true}}\n  timeoutSec: 40\n  connectionDraining:\n"}}},

		{name: "Ingress: the annotations on the Ingress", text: plain + "---\n" + plainService + "---\n" + albIngress,
			edits: []edit{{albKey + `healthcheck-interval-seconds: "5"`, albKey + `healthcheck-interval-seconds: "30"`}},
			rule:  "balancer-detection", line: albKey + `healthcheck-interval-seconds: "30"`, fix: "DrainDelay(1m5s)"},
		{name: "Ingress: the annotations on the Ingress, clean", text: plain + "---\n" + plainService + "---\n" + albIngress},
		{name: "Ingress: a default missing on both", text: plain + "---\n" + plainService + "---\n" + albIngress,
			edits: []edit{{"    " + albKey + "target-group-attributes: deregistration_delay.timeout_seconds=15\n", ""}},
			rule:  "deregistration-delay", line: "  annotations:", fix: "deregistration_delay.timeout_seconds: 23"},
		{name: "Ingress: the Service's annotations take precedence", text: alb + "---\n" + albIngress,
			edits: []edit{{albKey + "healthcheck-path: /readyz", albKey + "healthcheck-path: /"}}},
		{name: "Ingress: the Service's own fault", text: alb + "---\n" + albIngress,
			edits: []edit{{albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/healthz"`}},
			rule:  "balancer-check", line: albKey + `healthcheck-path: "/healthz"`, fix: "/readyz"},
		{name: "Ingress: the default backend", text: plain + "---\n" + plainService + "---\n" + albIngress,
			edits: []edit{{"  rules:\n    - host: shop.example.com\n      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            backend:\n", "  defaultBackend:\n"},
				{"              service:\n                name: shop\n                port:\n                  name: http\n", "    service:\n      name: shop\n      port:\n        number: 80\n"},
				{albKey + "healthcheck-path: /readyz", albKey + "healthcheck-path: /"}},
			rule: "balancer-check", line: albKey + "healthcheck-path: /", fix: "/readyz"},
		{name: "Ingress: a Service not in the file", text: plain + "---\n" + albIngress,
			edits: []edit{{albKey + `healthcheck-interval-seconds: "5"`, albKey + `healthcheck-interval-seconds: "30"`}}},
		{name: "Ingress: an annotation out of range, a Service not in the file", text: plain + "---\n" + albIngress,
			edits: []edit{{albKey + `healthcheck-interval-seconds: "5"`, albKey + `healthcheck-interval-seconds: "500"`}},
			rule:  "balancer-annotation", line: albKey + `healthcheck-interval-seconds: "500"`, fix: "a value the controller takes"},

		{name: "a Service that selects another app", text: alb,
			edits: []edit{{"  selector:\n    app: shop\n  ports:", "  selector:\n    app: other\n  ports:"}, {albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/"`}}},
		{name: "a Service without a selector", text: alb,
			edits: []edit{{"  selector:\n    app: shop\n  ports:", "  ports:"}, {albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/"`}}},
		{name: "a Service in another namespace", text: alb,
			edits: []edit{{"kind: Service\nmetadata:\n  name: shop\n", "kind: Service\nmetadata:\n  name: shop\n  namespace: other\n"},
				{"kind: Deployment\nmetadata:\n  name: shop\n", "kind: Deployment\nmetadata:\n  name: shop\n  namespace: shop\n"},
				{albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/"`}}},
		{name: "the Service before the Deployment", text: alb[strings.Index(alb, "---\n")+4:] + "---\n" + plain,
			edits: []edit{{albKey + `healthcheck-path: "/readyz"`, albKey + `healthcheck-path: "/"`}},
			rule:  "balancer-check", line: albKey + `healthcheck-path: "/"`, fix: "/readyz"},
		{name: "a ServiceMonitor beside them", text: gke + "---\n" + serviceMonitor,
			edits: []edit{{"drainingTimeoutSec: 15", "drainingTimeoutSec: 120"}},
			rule:  "deregistration-delay", line: "drainingTimeoutSec: 120", fix: "connectionDraining.drainingTimeoutSec: 23"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			for _, e := range tt.edits {
				if !strings.Contains(text, e.old) {
					t.Fatalf("the edit %q does not apply to\n%s", e.old, text)
				}
				text = strings.Replace(text, e.old, e.new, 1)
			}
			file := write(t, "front.yaml", text)
			code, out, errOut := lint(t, "-from-args", file)
			wantNote := ""
			if strings.Contains(text, "kind: ServiceMonitor") {
				wantNote = `: ServiceMonitor "shop": not checked`
			}
			if !strings.Contains(errOut, wantNote) || wantNote == "" && errOut != "" {
				t.Errorf("got stderr %q, want %q", errOut, wantNote)
			}
			if tt.rule == "" {
				if code != clean || out != "" {
					t.Errorf("got exit %d\n%s\nwant 0 and no finding, of\n%s", code, out, text)
				}
				return
			}
			if code != unsafe || strings.Count(out, "\tfix: ") != 1 || !strings.Contains(out, ": "+tt.rule+": ") {
				t.Fatalf("got exit %d\n%s\nwant exit 1 and exactly one %s finding, of\n%s", code, out, tt.rule, text)
			}
			if _, fix, _ := strings.Cut(out, "\tfix: "); !strings.Contains(fix, tt.fix) {
				t.Errorf("got the fix %q, want it to contain %q", fix, tt.fix)
			}
			loc, _, _ := strings.Cut(strings.TrimPrefix(out, file+":"), ":")
			n, err := strconv.Atoi(loc)
			lines := strings.Split(text, "\n")
			if err != nil || n < 1 || n > len(lines) || !strings.Contains(lines[n-1], tt.line) {
				t.Errorf("reported at %q, line %q; want the line with %q\n%s", loc, lines[max(min(n, len(lines))-1, 0)], tt.line, out)
			}
		})
	}
}

// The subject names the balancer's documents, the workload and the
// container; a finding shared by two containers is reported once.
func TestBalancerFindingNamesItsDocuments(t *testing.T) {
	bs := balancers()
	text := generated(t, bs["gke"], 15*time.Second, 15*time.Second)
	text = strings.Replace(text, "requestPath: /readyz", "requestPath: /", 1)
	// A second container with probes, which Lint checks too.
	sidecar := "        - name: sidecar\n          image: side:1\n          readinessProbe:\n            httpGet: {path: /readyz, port: 8081}\n            periodSeconds: 1\n            failureThreshold: 1\n" +
		"          terminationMessagePolicy: FallbackToLogsOnError\n"
	text = strings.Replace(text, "      containers:\n", "      containers:\n"+sidecar, 1)
	code, out, errOut := lint(t, append(append([]string{}, flags...), "-drain=15s", write(t, "two.yaml", text))...)
	want := `: BackendConfig "shop" of Service "shop" for Deployment "shop" (line 1), container "sidecar": balancer-check: `
	if code != unsafe || strings.Count(out, "\tfix: ") != 1 || !strings.Contains(out, want) {
		t.Errorf("got exit %d\nstdout %s\nstderr %s\nwant one finding with %q", code, out, errOut, want)
	}
}

// A Service, an Ingress and a BackendConfig are decoded strictly: a field
// the API server would refuse is an error naming the line; a BackendConfig
// spec's fields are the CRD's, and not checked.
func TestFrontDocumentsDecodeStrictly(t *testing.T) {
	bs := balancers()
	gke := generated(t, bs["gke"], 15*time.Second, 15*time.Second)
	plain := generated(t, nil, 15*time.Second, 15*time.Second)
	for _, tt := range []struct {
		name, text, want string
	}{
		{"a Service field misspelt", strings.Replace(gke, "  selector:\n    app: shop\n  ports:", "  selectors:\n    app: shop\n  ports:", 1), `Service does not decode as Kubernetes has it: unknown field "spec.selectors"`},
		{"an annotation as a number", strings.Replace(gke, `cloud.google.com/neg: "{\"ingress\": true}"`, "cloud.google.com/neg: 1", 1), "Service does not decode as Kubernetes has it"},
		{"an Ingress field misspelt", plain + "---\n" + strings.Replace(albIngress, "ingressClassName", "ingressClass", 1), `Ingress does not decode as Kubernetes has it: unknown field "spec.ingressClass"`},
		{"a BackendConfig field misspelt", strings.Replace(gke, "kind: BackendConfig\nmetadata:\n", "kind: BackendConfig\nmetadata:\n  labell: x\n", 1), `BackendConfig does not decode as Kubernetes has it: unknown field "metadata.labell"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, "bad.yaml", tt.text)
			code, out, errOut := lint(t, "-from-args", file)
			if code != unreadable || !strings.HasPrefix(errOut, file+":") || !strings.Contains(errOut, tt.want) || out != "" {
				t.Errorf("got exit %d, stderr %q, stdout %q; want exit 2 and %q", code, errOut, out, tt.want)
			}
			line, _, _ := strings.Cut(strings.TrimPrefix(errOut, file+":"), ":")
			if n, err := strconv.Atoi(line); err != nil || n <= strings.Count(plain, "\n") {
				t.Errorf("reported at line %q, want one past the Deployment", line)
			}
		})
	}
}

// An Ingress of a version Kubernetes no longer serves, or a BackendConfig
// of another group, is passed over with a note.
func TestFrontVersionsPassedOver(t *testing.T) {
	plain := generated(t, nil, 15*time.Second, 15*time.Second)
	old := strings.Replace(albIngress, "networking.k8s.io/v1\n", "extensions/v1beta1\n", 1)
	other := "apiVersion: networking.gke.io/v1\nkind: BackendConfig\nmetadata:\n  name: shop\nspec: {}\n"
	at := strings.Count(plain, "\n") + 3 // the kind's line, after "---" and apiVersion
	file := write(t, "old.yaml", plain+"---\n"+old+"---\n"+other)
	code, out, errOut := lint(t, "-from-args", file)
	for _, want := range []string{
		fmt.Sprintf(`%s:%d: Ingress "shop": not checked (apiVersion "extensions/v1beta1"; probelint reads networking.k8s.io/v1`, file, at),
		fmt.Sprintf(`%s:%d: BackendConfig "shop": not checked (a kind probelint does not know`, file, at+strings.Count(old, "\n")+1),
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("got stderr %q, want a note %q", errOut, want)
		}
	}
	if code != clean || out != "" {
		t.Errorf("got exit %d\n%s; want 0", code, out)
	}
}

// The usage says what is read.
func TestUsageSaysWhatIsRead(t *testing.T) {
	code, _, errOut := lint(t)
	for _, kind := range []string{"Deployments", "PodDisruptionBudgets", "Service's", "Ingress's", "BackendConfig", "ServiceMonitor"} {
		if !strings.Contains(errOut, kind) {
			t.Errorf("the usage does not name %s:\n%s", kind, errOut)
		}
	}
	if code != unreadable {
		t.Errorf("got exit %d, want 2", code)
	}
}

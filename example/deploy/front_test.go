package deploy

// The Services and BackendConfigs of the deployment files for a balancer in
// front: decoded strictly by the Kubernetes API types, every AWS Load
// Balancer Controller annotation checked against the controller's
// documented list (name and type), the BackendConfig decoded strictly by
// the fields GKE's types have, and the numbers checked against the pods'.

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// awsAnnotations are the AWS Load Balancer Controller's annotations the
// files may set, with the type its documentation gives each
// (docs/guide/ingress/annotations.md for alb.ingress.kubernetes.io, which
// may be set on a Service; docs/guide/service/annotations.md for the
// NLB's). A type is "integer", "string", "stringMap", "integer|traffic-port",
// or a list of the values allowed, as "ip|instance".
var awsAnnotations = map[string]string{
	"alb.ingress.kubernetes.io/target-type":                  "instance|ip",
	"alb.ingress.kubernetes.io/backend-protocol":             "HTTP|HTTPS",
	"alb.ingress.kubernetes.io/target-group-attributes":      "stringMap",
	"alb.ingress.kubernetes.io/healthcheck-port":             "integer|traffic-port",
	"alb.ingress.kubernetes.io/healthcheck-protocol":         "HTTP|HTTPS",
	"alb.ingress.kubernetes.io/healthcheck-path":             "string",
	"alb.ingress.kubernetes.io/healthcheck-interval-seconds": "integer",
	"alb.ingress.kubernetes.io/healthcheck-timeout-seconds":  "integer",
	"alb.ingress.kubernetes.io/healthy-threshold-count":      "integer",
	"alb.ingress.kubernetes.io/unhealthy-threshold-count":    "integer",
	"alb.ingress.kubernetes.io/success-codes":                "string",

	"service.beta.kubernetes.io/aws-load-balancer-type":                            "string",
	"service.beta.kubernetes.io/aws-load-balancer-nlb-target-type":                 "instance|ip",
	"service.beta.kubernetes.io/aws-load-balancer-scheme":                          "string",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-protocol":            "string",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-port":                "integer|traffic-port",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-path":                "string",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-healthy-threshold":   "integer",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-unhealthy-threshold": "integer",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-timeout":             "integer",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-interval":            "integer",
	"service.beta.kubernetes.io/aws-load-balancer-healthcheck-success-codes":       "string",
	"service.beta.kubernetes.io/aws-load-balancer-target-group-attributes":         "stringMap",
}

// backendConfig has the fields of GKE's BackendConfig (cloud.google.com/v1)
// that a file of ours may set, with the JSON names and types of
// k8s.io/ingress-gce's pkg/apis/backendconfig/v1 (BackendConfigSpec,
// HealthCheckConfig, ConnectionDrainingConfig). That module is not one the
// tests can fetch, so its types are written out here; decoding strictly
// with them refuses a misspelt or misplaced field, as the CRD's schema
// does.
type backendConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              struct {
		TimeoutSec         *int64 `json:"timeoutSec,omitempty"`
		ConnectionDraining *struct {
			DrainingTimeoutSec int64 `json:"drainingTimeoutSec,omitempty"`
		} `json:"connectionDraining,omitempty"`
		HealthCheck *struct {
			CheckIntervalSec   *int64  `json:"checkIntervalSec,omitempty"`
			TimeoutSec         *int64  `json:"timeoutSec,omitempty"`
			HealthyThreshold   *int64  `json:"healthyThreshold,omitempty"`
			UnhealthyThreshold *int64  `json:"unhealthyThreshold,omitempty"`
			Type               *string `json:"type,omitempty"`
			Port               *int64  `json:"port,omitempty"`
			RequestPath        *string `json:"requestPath,omitempty"`
		} `json:"healthCheck,omitempty"`
	} `json:"spec,omitempty"`
}

// check is what a file tells the balancer to check and how often.
type check struct {
	path               string
	port               int
	interval, timeout  time.Duration
	healthy, unhealthy int
	delay              time.Duration
}

func TestBalancerFiles(t *testing.T) {
	for _, tc := range []struct{ file, balancer string }{
		{"deployment-aws-alb.yaml", "aws-alb"},
		{"deployment-aws-nlb.yaml", "aws-nlb"},
		{"deployment-gke.yaml", "google-cloud"},
	} {
		t.Run(tc.balancer, func(t *testing.T) { testBalancerFile(t, tc.file, tc.balancer) })
	}
}

func testBalancerFile(t *testing.T, file, balancer string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(raw, []byte("\n---\n"))
	want := 3
	if balancer == "google-cloud" {
		want = 4
	}
	if len(docs) != want {
		t.Fatalf("%s has %d documents, want %d", file, len(docs), want)
	}
	var d appsv1.Deployment
	decodeStrict(t, file+" as an apps/v1 Deployment", docs[0], &d)
	var pdb policyv1.PodDisruptionBudget
	decodeStrict(t, file+"'s second document as a PodDisruptionBudget", docs[1], &pdb)
	testBudget(t, &d, &pdb)
	var svc corev1.Service
	decodeStrict(t, file+"'s third document as a v1 Service", docs[2], &svc)
	if svc.APIVersion != "v1" || svc.Kind != "Service" {
		t.Fatalf("got %s %s, want a v1 Service", svc.APIVersion, svc.Kind)
	}
	c := d.Spec.Template.Spec.Containers[0]
	s := parseFlags(t, c.Args)
	if s.balancer != balancer {
		t.Fatalf("-balancer=%s in the args, want %s", s.balancer, balancer)
	}

	// The Service sends to the pods' http port.
	if sel := labels.SelectorFromSet(svc.Spec.Selector); len(svc.Spec.Selector) == 0 || !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the Service's selector %v does not select the pods (%v)", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if len(svc.Spec.Ports) != 1 || ports[svc.Spec.Ports[0].TargetPort.String()] == 0 {
		t.Errorf("the Service's ports %v: want one whose targetPort names a container port (%v)", svc.Spec.Ports, ports)
	}

	var got check
	switch balancer {
	case "aws-alb", "aws-nlb":
		got = awsCheck(t, svc.Annotations, balancer)
		if balancer == "aws-nlb" && svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			t.Errorf("an NLB's Service has type %s, want LoadBalancer", svc.Spec.Type)
		}
	case "google-cloud":
		var bc backendConfig
		decodeStrict(t, file+"'s fourth document as a GKE BackendConfig", docs[3], &bc)
		if bc.APIVersion != "cloud.google.com/v1" || bc.Kind != "BackendConfig" {
			t.Fatalf("got %s %s, want a cloud.google.com/v1 BackendConfig", bc.APIVersion, bc.Kind)
		}
		var ref map[string]string
		if err := json.Unmarshal([]byte(svc.Annotations["cloud.google.com/backend-config"]), &ref); err != nil || ref["default"] != bc.Name {
			t.Errorf("cloud.google.com/backend-config %q (%v): want it to name the BackendConfig %q", svc.Annotations["cloud.google.com/backend-config"], err, bc.Name)
		}
		var neg map[string]bool
		if err := json.Unmarshal([]byte(svc.Annotations["cloud.google.com/neg"]), &neg); err != nil || !neg["ingress"] {
			t.Errorf("cloud.google.com/neg %q (%v): want {\"ingress\": true}, container-native load balancing", svc.Annotations["cloud.google.com/neg"], err)
		}
		got = gkeCheck(t, bc)
	}

	// It asks readiness where the pods answer it...
	rp := c.ReadinessProbe.HTTPGet
	if got.path != rp.Path || int32(got.port) != ports[rp.Port.String()] {
		t.Errorf("the balancer checks %s on %d; the readiness probe asks %s on %d", got.path, got.port, rp.Path, ports[rp.Port.String()])
	}
	// ...notices the drain before it can end...
	if detection := got.interval * time.Duration(got.unhealthy); s.drainQuiet == 0 || s.drainMin < detection || s.drain <= detection {
		t.Errorf("the balancer takes %s to notice the drain; the drain is -drain-quiet %s, -drain-min %s, -drain %s", detection, s.drainQuiet, s.drainMin, s.drain)
	}
	if got.timeout > got.interval || got.healthy < 1 {
		t.Errorf("check timeout %s past its interval %s, or healthy threshold %d", got.timeout, got.interval, got.healthy)
	}
	// ...and lets go of the pod before the kubelet kills it.
	grace := time.Duration(*d.Spec.Template.Spec.TerminationGracePeriodSeconds) * time.Second
	if got.delay <= 0 || s.drain+got.delay > grace {
		t.Errorf("deregistration delay %s: want it on, and the drain %s plus it within the grace period %s", got.delay, s.drain, grace)
	}
}

// awsCheck checks every AWS annotation against the documented list and
// reads the check they configure.
func awsCheck(t *testing.T, a map[string]string, balancer string) check {
	t.Helper()
	for k, v := range a {
		typ, ok := awsAnnotations[k]
		if !ok {
			t.Errorf("annotation %s is not in the controller's documented list", k)
			continue
		}
		if bad := typeErr(typ, v); bad != "" {
			t.Errorf("annotation %s: %q is not a %s: %s", k, v, typ, bad)
		}
	}
	num := func(k string) int {
		n, err := strconv.Atoi(a[k])
		if err != nil {
			t.Errorf("annotation %s %q: %v", k, a[k], err)
		}
		return n
	}
	var c check
	if balancer == "aws-alb" {
		const p = "alb.ingress.kubernetes.io/"
		if a[p+"target-type"] != "ip" || a[p+"healthcheck-protocol"] != "HTTP" {
			t.Errorf("target-type %q, healthcheck-protocol %q: want ip and HTTP", a[p+"target-type"], a[p+"healthcheck-protocol"])
		}
		c = check{path: a[p+"healthcheck-path"], port: num(p + "healthcheck-port"),
			interval: time.Duration(num(p+"healthcheck-interval-seconds")) * time.Second, timeout: time.Duration(num(p+"healthcheck-timeout-seconds")) * time.Second,
			healthy: num(p + "healthy-threshold-count"), unhealthy: num(p + "unhealthy-threshold-count")}
		c.delay = delayOf(t, a[p+"target-group-attributes"])
	} else {
		const p = "service.beta.kubernetes.io/aws-load-balancer-"
		if a[p+"type"] != "external" || a[p+"nlb-target-type"] != "ip" || !strings.EqualFold(a[p+"healthcheck-protocol"], "http") {
			t.Errorf("type %q, nlb-target-type %q, healthcheck-protocol %q: want external, ip and HTTP", a[p+"type"], a[p+"nlb-target-type"], a[p+"healthcheck-protocol"])
		}
		c = check{path: a[p+"healthcheck-path"], port: num(p + "healthcheck-port"),
			interval: time.Duration(num(p+"healthcheck-interval")) * time.Second, timeout: time.Duration(num(p+"healthcheck-timeout")) * time.Second,
			healthy: num(p + "healthcheck-healthy-threshold"), unhealthy: num(p + "healthcheck-unhealthy-threshold")}
		c.delay = delayOf(t, a[p+"target-group-attributes"])
	}
	return c
}

// typeErr says why v is not of the documented type typ; "" when it is.
func typeErr(typ, v string) string {
	switch typ {
	case "string":
		return ""
	case "integer":
		if _, err := strconv.Atoi(v); err != nil {
			return err.Error()
		}
	case "integer|traffic-port":
		if _, err := strconv.Atoi(v); err != nil && v != "traffic-port" {
			return "neither an integer nor traffic-port"
		}
	case "stringMap":
		for kv := range strings.SplitSeq(v, ",") {
			if k, _, ok := strings.Cut(kv, "="); !ok || strings.TrimSpace(k) == "" {
				return "want k1=v1,k2=v2"
			}
		}
	default:
		for allowed := range strings.SplitSeq(typ, "|") {
			if v == allowed {
				return ""
			}
		}
		return "not one of the values allowed"
	}
	return ""
}

// delayOf reads deregistration_delay.timeout_seconds from a target group
// attributes annotation.
func delayOf(t *testing.T, attrs string) time.Duration {
	t.Helper()
	for kv := range strings.SplitSeq(attrs, ",") {
		if k, v, _ := strings.Cut(kv, "="); k == "deregistration_delay.timeout_seconds" {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatalf("deregistration_delay.timeout_seconds %q: %v", v, err)
			}
			return time.Duration(n) * time.Second
		}
	}
	t.Errorf("target-group-attributes %q: no deregistration_delay.timeout_seconds, so AWS's 300s", attrs)
	return 300 * time.Second
}

func gkeCheck(t *testing.T, bc backendConfig) check {
	t.Helper()
	h := bc.Spec.HealthCheck
	if h == nil || h.Type == nil || *h.Type != "HTTP" || h.RequestPath == nil || h.Port == nil ||
		h.CheckIntervalSec == nil || h.TimeoutSec == nil || h.HealthyThreshold == nil || h.UnhealthyThreshold == nil {
		t.Fatalf("BackendConfig healthCheck %+v: want an HTTP check with every number set", h)
	}
	if bc.Spec.ConnectionDraining == nil {
		t.Fatal("BackendConfig without connectionDraining: GKE drains nothing, requests in flight are cut")
	}
	return check{path: *h.RequestPath, port: int(*h.Port),
		interval: time.Duration(*h.CheckIntervalSec) * time.Second, timeout: time.Duration(*h.TimeoutSec) * time.Second,
		healthy: int(*h.HealthyThreshold), unhealthy: int(*h.UnhealthyThreshold),
		delay: time.Duration(bc.Spec.ConnectionDraining.DrainingTimeoutSec) * time.Second}
}

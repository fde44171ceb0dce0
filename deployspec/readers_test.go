package deployspec_test

import (
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
)

// read is what a reader found, in the Balancer's terms.
type read struct {
	name                     string
	interval, timeout, delay time.Duration
	healthy, unhealthy       int
	path, port               string
}

func readOf(b deployspec.Balancer) read {
	return read{b.Name, b.Interval, b.Timeout, b.DeregistrationDelay, b.HealthyThreshold, b.UnhealthyThreshold, b.CheckPath, b.CheckPort}
}

const (
	alb = "alb.ingress.kubernetes.io/"
	nlb = "service.beta.kubernetes.io/aws-load-balancer-"
)

func TestBalancerFromAnnotations(t *testing.T) {
	albName, nlbName := deployspec.AWSALB().Name, deployspec.AWSNLB().Name
	for _, tc := range []struct {
		name        string
		annotations map[string]string
		ok          bool
		want        read
		err         string // a part of the error
	}{
		{name: "none", annotations: map[string]string{"prometheus.io/scrape": "true"}},
		{name: "the in-tree NLB", annotations: map[string]string{nlb + "type": "nlb"}},
		{name: "ALB defaults", annotations: map[string]string{alb + "target-type": "ip"}, ok: true,
			want: read{albName, 15 * time.Second, 5 * time.Second, 300 * time.Second, 2, 2, "/", "traffic-port"}},
		{name: "NLB defaults", annotations: map[string]string{nlb + "type": "external"}, ok: true,
			want: read{nlbName, 10 * time.Second, 10 * time.Second, 300 * time.Second, 3, 3, "", "traffic-port"}},
		{name: "NLB, the older type", annotations: map[string]string{nlb + "type": "nlb-ip", nlb + "healthcheck-protocol": "http"}, ok: true,
			want: read{nlbName, 10 * time.Second, 10 * time.Second, 300 * time.Second, 3, 3, "/", "traffic-port"}},
		{name: "ALB set", ok: true, annotations: map[string]string{
			alb + "healthcheck-path": "/readyz", alb + "healthcheck-port": "8081", alb + "healthcheck-interval-seconds": "5",
			alb + "healthcheck-timeout-seconds": "2", alb + "healthy-threshold-count": "3", alb + "unhealthy-threshold-count": "4",
			alb + "target-group-attributes": "stickiness.enabled=false, deregistration_delay.timeout_seconds = 20"},
			want: read{albName, 5 * time.Second, 2 * time.Second, 20 * time.Second, 3, 4, "/readyz", "8081"}},
		{name: "NLB, a TCP check ignores the path", ok: true, annotations: map[string]string{nlb + "type": "external", nlb + "healthcheck-path": "/readyz"},
			want: read{nlbName, 10 * time.Second, 10 * time.Second, 300 * time.Second, 3, 3, "", "traffic-port"}},
		{name: "an interval out of range", annotations: map[string]string{alb + "healthcheck-interval-seconds": "3"}, err: alb + "healthcheck-interval-seconds is \"3\""},
		{name: "a threshold not a number", annotations: map[string]string{nlb + "type": "external", nlb + "healthcheck-unhealthy-threshold": "two"}, err: nlb + "healthcheck-unhealthy-threshold"},
		{name: "a protocol no balancer has", annotations: map[string]string{alb + "healthcheck-protocol": "UDP"}, err: alb + "healthcheck-protocol"},
		{name: "an ALB checks no TCP", annotations: map[string]string{alb + "healthcheck-protocol": "TCP"}, err: alb + "healthcheck-protocol is \"TCP\"; an ALB checks with HTTP or HTTPS"},
		{name: "a delay out of range", annotations: map[string]string{alb + "target-group-attributes": "deregistration_delay.timeout_seconds=7200"}, err: alb + "target-group-attributes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok, err := deployspec.BalancerFromAnnotations(tc.annotations)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("got ok %v, error %v; want ok %v", ok, err, tc.ok)
			}
			if got := readOf(b); ok && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// What Plan.Annotations writes reads back as the plan's balancer, asking
// the readiness gate on the probe port.
func TestAnnotationsReadBack(t *testing.T) {
	for _, b := range []deployspec.Balancer{deployspec.AWSALB(), deployspec.AWSNLB()} {
		t.Run(b.Name, func(t *testing.T) {
			b.Interval, b.Timeout, b.DeregistrationDelay = 5*time.Second, 5*time.Second, 10*time.Second
			s := example
			s.Stop.Drain = 15 * time.Second
			s.Balancer = &b
			p := mustCompute(t, s, false)
			m, err := p.Annotations("")
			if err != nil {
				t.Fatal(err)
			}
			got, ok, err := deployspec.BalancerFromAnnotations(m)
			if err != nil || !ok {
				t.Fatalf("read back: ok %v, error %v", ok, err)
			}
			want := readOf(*p.Balancer)
			want.path, want.port = "/readyz", "8081"
			if readOf(got) != want {
				t.Errorf("read back %+v, want %+v", readOf(got), want)
			}
		})
	}
}

func TestBalancerFromBackendConfig(t *testing.T) {
	name := deployspec.GoogleCloud().Name
	// What GKE's Ingress controller sets for a NEG when the healthCheck
	// leaves a field unset.
	gke := read{name, 15 * time.Second, 15 * time.Second, 0, 1, 2, "/", "traffic-port"}
	with := func(f func(*read)) read { r := gke; f(&r); return r }
	for _, tc := range []struct {
		name, spec string
		ok         bool
		want       read
		err        string // a part of the error
	}{
		{name: "no healthCheck", spec: `{"connectionDraining": {"drainingTimeoutSec": 60}}`},
		{name: "no spec", spec: `null`},
		{name: "a null healthCheck", spec: `{"healthCheck": null}`},
		{name: "the controller's defaults", spec: `{"healthCheck": {}}`, ok: true, want: gke},
		{name: "set", ok: true, spec: `{"healthCheck": {"type": "HTTP", "port": 8081, "requestPath": "/readyz", "checkIntervalSec": 5, "timeoutSec": 3,
			"healthyThreshold": 2, "unhealthyThreshold": 3}, "connectionDraining": {"drainingTimeoutSec": 30}, "timeoutSec": 40}`,
			want: read{name, 5 * time.Second, 3 * time.Second, 30 * time.Second, 2, 3, "/readyz", "8081"}},
		{name: "null fields are unset", ok: true, spec: `{"healthCheck": {"checkIntervalSec": null, "requestPath": null}, "connectionDraining": null}`, want: gke},
		// The API server drops a field spelt in another case: so does the reader.
		{name: "a field in another case", ok: true, spec: `{"healthCheck": {"checkintervalsec": 1, "RequestPath": "/readyz", "port": 8081}}`,
			want: with(func(r *read) { r.port = "8081" })},
		{name: "HTTP2", ok: true, spec: `{"healthCheck": {"type": "HTTP2", "requestPath": "/readyz"}}`, want: with(func(r *read) { r.path = "/readyz" })},
		{name: "TCP, which the controller does not build", spec: `{"healthCheck": {"type": "TCP"}}`,
			err: "BackendConfig spec.healthCheck.type is \"TCP\"; the GKE Ingress controller takes HTTP, HTTPS or HTTP2"},
		{name: "a type in lower case", spec: `{"healthCheck": {"type": "http"}}`, err: "spec.healthCheck.type"},
		{name: "an interval out of range", spec: `{"healthCheck": {"checkIntervalSec": 0}}`, err: "BackendConfig spec.healthCheck.checkIntervalSec is 0; Google Cloud takes an integer from 1 to 300"},
		{name: "a threshold as a string", spec: `{"healthCheck": {"unhealthyThreshold": "2"}}`, err: "spec.healthCheck.unhealthyThreshold is \"2\""},
		{name: "a fraction", spec: `{"healthCheck": {"timeoutSec": 1.5}}`, err: "spec.healthCheck.timeoutSec is 1.5"},
		{name: "a port out of range", spec: `{"healthCheck": {"port": 70000}}`, err: "spec.healthCheck.port is 70000"},
		{name: "a path not a string", spec: `{"healthCheck": {"requestPath": 5}}`, err: "spec.healthCheck.requestPath is 5"},
		{name: "draining too long", spec: `{"healthCheck": {}, "connectionDraining": {"drainingTimeoutSec": 3601}}`, err: "spec.connectionDraining.drainingTimeoutSec is 3601"},
		{name: "draining not an object", spec: `{"healthCheck": {}, "connectionDraining": 30}`, err: "spec.connectionDraining is not an object"},
		{name: "a spec not an object", spec: `[1]`, err: "BackendConfig spec is not an object"},
		{name: "not JSON", spec: `{`, err: "BackendConfig spec is not an object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, ok, err := deployspec.BalancerFromBackendConfig([]byte(tc.spec))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got error %v, want one with %q", err, tc.err)
				}
				return
			}
			if err != nil || ok != tc.ok {
				t.Fatalf("got ok %v, error %v; want ok %v", ok, err, tc.ok)
			}
			if got := readOf(b); ok && got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

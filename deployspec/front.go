package deployspec

// The balancer's side of the plan: the settings that point its health check
// at the readiness gate with numbers that fit the drain and the grace
// period, for the AWS Load Balancer Controller, GKE and HAProxy; and the
// reverse, reading a balancer back from a manifest's annotations.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// balancerKind says which balancer a Balancer describes, for the writers
// and the readers of its settings.
type balancerKind int

const (
	anyKind balancerKind = iota
	albKind
	nlbKind
	googleKind
	haproxyKind
)

// Annotation prefixes of the AWS Load Balancer Controller.
const (
	albPrefix = "alb.ingress.kubernetes.io/"
	nlbPrefix = "service.beta.kubernetes.io/aws-load-balancer-"
)

// setting is one line a writer writes: a key, its value, and why.
type setting struct{ key, value, why string }

// fitDelay returns b with a deregistration delay that fits a pod whose
// grace period is grace and whose drain is drain, and whether it had to
// change: b's own when it fits and is not 0; otherwise the shutdown
// timeout, the longest the server lets requests in flight finish after the
// drain, which is all a delay needs to cover.
func fitDelay(b Balancer, t server.Timings, grace time.Duration) (Balancer, bool) {
	if b.kind == haproxyKind {
		return b, false
	}
	if b.DeregistrationDelay > 0 && sum(t.Drain, b.DeregistrationDelay) <= grace {
		return b, false
	}
	b.DeregistrationDelay = time.Duration(max(ceilSeconds(t.ShutdownTimeout), 1)) * time.Second
	return b, true
}

// checkTarget is where the balancer's health check asks: the readiness
// path on the HTTP probe port.
func (p Plan) checkTarget() (path string, port int, b Balancer, err error) {
	if p.Balancer == nil {
		return "", 0, Balancer{}, errors.New("deployspec: the plan has no balancer: set Service.Balancer before Compute")
	}
	if p.httpPort == 0 {
		return "", 0, Balancer{}, errors.New("deployspec: Service.ProbeAddr: a balancer checks /readyz over HTTP; give the probe listener's address")
	}
	return server.Path(probes.Readiness), p.httpPort, *p.Balancer, nil
}

// secondsIn writes d in whole seconds, rounded up, and fails naming field
// when that is outside [lo, hi].
func secondsIn(field string, d time.Duration, lo, hi int) (string, error) {
	n := ceilSeconds(d)
	if n < lo || n > hi {
		return "", fmt.Errorf("deployspec: balancer %s is %s; the balancer takes %d to %d seconds", field, human(d), lo, hi)
	}
	return strconv.Itoa(n), nil
}

func countIn(field string, n, lo, hi int) (string, error) {
	if n < lo || n > hi {
		return "", fmt.Errorf("deployspec: balancer %s is %d; the balancer takes %d to %d", field, n, lo, hi)
	}
	return strconv.Itoa(n), nil
}

// awsSettings are the controller's annotations for an ALB (on the Service
// its Ingress routes to, where they take precedence over the Ingress's)
// or an NLB (on the Service of type LoadBalancer).
func (p Plan) awsSettings() ([]setting, error) {
	path, port, b, err := p.checkTarget()
	if err != nil {
		return nil, err
	}
	type key struct{ name, field string } // the annotation and the API's name
	var keys struct{ target, proto, port, path, interval, timeout, healthy, unhealthy, codes, attrs key }
	var out []setting
	switch b.kind {
	case albKind:
		k := func(s, f string) key { return key{albPrefix + s, f} }
		keys.target, keys.proto, keys.port, keys.path = k("target-type", ""), k("healthcheck-protocol", ""), k("healthcheck-port", ""), k("healthcheck-path", "")
		keys.interval, keys.timeout = k("healthcheck-interval-seconds", "HealthCheckIntervalSeconds"), k("healthcheck-timeout-seconds", "HealthCheckTimeoutSeconds")
		keys.healthy, keys.unhealthy = k("healthy-threshold-count", "HealthyThresholdCount"), k("unhealthy-threshold-count", "UnhealthyThresholdCount")
		keys.codes, keys.attrs = k("success-codes", ""), k("target-group-attributes", "")
	case nlbKind:
		k := func(s, f string) key { return key{nlbPrefix + s, f} }
		out = append(out, setting{nlbPrefix + "type", "external", "the AWS Load Balancer Controller builds the NLB, not the in-tree cloud provider"})
		keys.target, keys.proto, keys.port, keys.path = k("nlb-target-type", ""), k("healthcheck-protocol", ""), k("healthcheck-port", ""), k("healthcheck-path", "")
		keys.interval, keys.timeout = k("healthcheck-interval", "HealthCheckIntervalSeconds"), k("healthcheck-timeout", "HealthCheckTimeoutSeconds")
		keys.healthy, keys.unhealthy = k("healthcheck-healthy-threshold", "HealthyThresholdCount"), k("healthcheck-unhealthy-threshold", "UnhealthyThresholdCount")
		keys.codes, keys.attrs = k("healthcheck-success-codes", ""), k("target-group-attributes", "")
	default:
		return nil, fmt.Errorf("deployspec: %s is not an AWS balancer: start from AWSALB or AWSNLB", b.name())
	}
	interval, err := secondsIn(keys.interval.field, b.Interval, 5, 300)
	if err != nil {
		return nil, err
	}
	timeout, err := secondsIn(keys.timeout.field, b.Timeout, 2, 120)
	if err != nil {
		return nil, err
	}
	if ceilSeconds(b.Timeout) > ceilSeconds(b.Interval) {
		return nil, fmt.Errorf("deployspec: balancer %s (%s) is longer than %s (%s); AWS refuses that", keys.timeout.field, human(b.Timeout), keys.interval.field, human(b.Interval))
	}
	healthy, err := countIn(keys.healthy.field, b.HealthyThreshold, 2, 10)
	if err != nil {
		return nil, err
	}
	unhealthy, err := countIn(keys.unhealthy.field, b.UnhealthyThreshold, 2, 10)
	if err != nil {
		return nil, err
	}
	delay, err := secondsIn("deregistration_delay.timeout_seconds", b.DeregistrationDelay, 0, 3600)
	if err != nil {
		return nil, err
	}
	attrs := "deregistration_delay.timeout_seconds=" + delay
	attrsWhy := fmt.Sprintf("a deregistered pod keeps its requests in flight for %ss: the server finishes them within its shutdown timeout, and the drain plus this fit the grace period", delay)
	if b.kind == nlbKind {
		attrs += ",deregistration_delay.connection_termination.enabled=true"
		attrsWhy = fmt.Sprintf("a deregistered pod keeps its connections for %ss, then the NLB closes them: the drain plus this fit the grace period", delay)
	}
	det := b.Detection()
	out = append(out,
		setting{keys.target.name, "ip", "register pods, not nodes: the target leaves as soon as the pod is unready, with no kube-proxy hop that hides it"},
		setting{keys.proto.name, "HTTP", "an HTTP check sees the drain; a TCP check passes until the listener closes"},
		setting{keys.port.name, strconv.Itoa(port), "the probe listener"},
		setting{keys.path.name, path, "the readiness gate: it fails while warming up, draining or cordoned"},
		setting{keys.interval.name, interval, fmt.Sprintf("with %s, the balancer stops sending within %s of the drain's start, inside the drain", keys.unhealthy.field, human(det))},
		setting{keys.timeout.name, timeout, "readiness answers from a cached verdict, at once"},
		setting{keys.healthy.name, healthy, "passes in a row before a pod takes traffic again"},
		setting{keys.unhealthy.name, unhealthy, fmt.Sprintf("failures in a row before the balancer stops sending: %s x %s = %s", interval+"s", unhealthy, human(det))},
		setting{keys.codes.name, "200", "readiness answers 200 when ready and 503 otherwise"},
		setting{keys.attrs.name, attrs, attrsWhy},
	)
	return out, nil
}

// Annotations returns the annotations that configure the plan's balancer
// (Service.Balancer) through the AWS Load Balancer Controller, for the
// Kubernetes Service in front of the pods: with AWSALB, the
// alb.ingress.kubernetes.io health check and target group annotations
// (set on the Service, they apply to every Ingress that routes to it);
// with AWSNLB, the service.beta.kubernetes.io/aws-load-balancer ones of a
// Service of type LoadBalancer. Either way the check asks /readyz on the
// probe port over HTTP, IP targets are registered, the balancer's own
// Interval, Timeout and thresholds are written, and the deregistration
// delay is one that fits the grace period. With GoogleCloud, the Service's
// cloud.google.com/neg and cloud.google.com/backend-config annotations
// naming the BackendConfig backendConfig (see BackendConfig).
//
// It fails when the plan has no balancer, no HTTP probe port, or numbers
// the balancer refuses (AWS takes intervals of 5 to 300 seconds, timeouts
// of 2 to 120 and thresholds of 2 to 10), naming the setting.
func (p Plan) Annotations(backendConfig string) (map[string]string, error) {
	ss, err := p.serviceSettings(backendConfig)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(ss))
	for _, s := range ss {
		m[s.key] = s.value
	}
	return m, nil
}

func (p Plan) serviceSettings(backendConfig string) ([]setting, error) {
	if p.Balancer != nil && p.Balancer.kind == googleKind {
		if backendConfig == "" {
			return nil, errors.New("deployspec: Annotations: name the BackendConfig for Google Cloud")
		}
		ref, _ := json.Marshal(map[string]string{"default": backendConfig})
		return []setting{
			{"cloud.google.com/neg", `{"ingress": true}`, "container-native load balancing: the balancer checks and sends to pods, not nodes"},
			{"cloud.google.com/backend-config", string(ref), "the health check and connection draining below"},
		}, nil
	}
	return p.awsSettings()
}

// BackendConfig returns a GKE BackendConfig (cloud.google.com/v1) named
// name for the plan's GoogleCloud balancer: a health check of /readyz on
// the probe port over HTTP with the balancer's interval, timeout and
// thresholds, and connection draining for a drainingTimeoutSec that fits
// the grace period. Point the Service at it with Annotations(name). It
// fails when the plan's balancer is not GoogleCloud or has numbers Google
// Cloud refuses (intervals and timeouts of 1 to 300 seconds, a timeout no
// longer than the interval, thresholds of 1 to 10), naming the field.
func (p Plan) BackendConfig(name string) (string, error) {
	path, port, b, err := p.checkTarget()
	if err != nil {
		return "", err
	}
	if b.kind != googleKind {
		return "", fmt.Errorf("deployspec: %s is not Google Cloud's: start from GoogleCloud", b.name())
	}
	if name == "" {
		return "", errors.New("deployspec: BackendConfig: need a name")
	}
	interval, err := secondsIn("checkIntervalSec", b.Interval, 1, 300)
	if err != nil {
		return "", err
	}
	timeout, err := secondsIn("timeoutSec", b.Timeout, 1, 300)
	if err != nil {
		return "", err
	}
	if ceilSeconds(b.Timeout) > ceilSeconds(b.Interval) {
		return "", fmt.Errorf("deployspec: balancer timeoutSec (%s) is longer than checkIntervalSec (%s); Google Cloud refuses that", human(b.Timeout), human(b.Interval))
	}
	healthy, err := countIn("healthyThreshold", b.HealthyThreshold, 1, 10)
	if err != nil {
		return "", err
	}
	unhealthy, err := countIn("unhealthyThreshold", b.UnhealthyThreshold, 1, 10)
	if err != nil {
		return "", err
	}
	draining, err := secondsIn("connectionDraining.drainingTimeoutSec", b.DeregistrationDelay, 0, 3600)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "apiVersion: cloud.google.com/v1\nkind: BackendConfig\nmetadata:\n  name: %s\nspec:\n  healthCheck:\n", scalar(name))
	w := writer{&sb, "    "}
	for _, s := range []setting{
		{"type", "HTTP", "an HTTP check sees the drain; a TCP check passes until the listener closes"},
		{"port", strconv.Itoa(port), "the probe listener"},
		{"requestPath", path, "the readiness gate: it fails while warming up, draining or cordoned"},
		{"checkIntervalSec", interval, fmt.Sprintf("with unhealthyThreshold, the balancer stops sending within %s of the drain's start, inside the drain", human(b.Detection()))},
		{"timeoutSec", timeout, "readiness answers from a cached verdict, at once"},
		{"healthyThreshold", healthy, "passes in a row before a pod takes traffic again"},
		{"unhealthyThreshold", unhealthy, "failures in a row before the balancer stops sending"},
	} {
		w.line("# " + s.why)
		w.line(s.key + ": " + s.value)
	}
	sb.WriteString("  connectionDraining:\n")
	w.line(fmt.Sprintf("# a pod taken out keeps its requests in flight for %ss: the server finishes them within its shutdown timeout, and the drain plus this fit the grace period", draining))
	w.line("drainingTimeoutSec: " + draining)
	return sb.String(), nil
}

// HAProxyServer is one server of an HAProxy backend.
type HAProxyServer struct {
	// Name is the server's name in HAProxy, such as the pod's.
	Name string
	// Addr is where its application listens, host:port.
	Addr string
	// ProbePort is where its probes answer; 0 for the plan's.
	ProbePort int
	// AgentPort is where its HAProxy agent answers (package haproxy); 0
	// for no agent check.
	AgentPort int
}

// HAProxyBackend returns an HAProxy backend section named name for the
// plan's HAProxy balancer: an HTTP check of /readyz on each server's probe
// port that expects 200, the balancer's Interval (inter, fastinter and
// downinter), UnhealthyThreshold (fall) and HealthyThreshold (rise), and
// the agent check on the servers that have an agent port, every Interval,
// so that a cordon takes the server out at the agent's next answer. It
// fails when the plan's balancer is not HAProxy or a server has no name or
// no address.
func (p Plan) HAProxyBackend(name string, servers []HAProxyServer) (string, error) {
	path, port, b, err := p.checkTarget()
	if err != nil {
		return "", err
	}
	if b.kind != haproxyKind {
		return "", fmt.Errorf("deployspec: %s is not HAProxy: start from HAProxy()", b.name())
	}
	if name == "" || strings.ContainsAny(name, " \t\n#") {
		return "", fmt.Errorf("deployspec: HAProxyBackend: the backend's name %q must be one word", name)
	}
	if b.HealthyThreshold < 1 {
		return "", errors.New("deployspec: balancer rise (HealthyThreshold) must be at least 1")
	}
	inter := haproxyTime(b.Interval)
	var sb strings.Builder
	fmt.Fprintf(&sb, "backend %s\n", name)
	fmt.Fprintf(&sb, "    # the readiness gate: it fails while warming up, draining or cordoned\n")
	fmt.Fprintf(&sb, "    option httpchk GET %s\n    http-check expect status 200\n", path)
	fmt.Fprintf(&sb, "    # a server is out within inter x fall = %s of the drain's start, inside the drain\n", human(b.Detection()))
	fmt.Fprintf(&sb, "    default-server inter %[1]s fastinter %[1]s downinter %[1]s fall %[2]d rise %[3]d\n", inter, b.UnhealthyThreshold, b.HealthyThreshold)
	for i, s := range servers {
		if s.Name == "" || strings.ContainsAny(s.Name, " \t\n#") {
			return "", fmt.Errorf("deployspec: HAProxyBackend: server %d: the name %q must be one word", i, s.Name)
		}
		if _, _, err := net.SplitHostPort(s.Addr); err != nil || strings.ContainsAny(s.Addr, " \t\n#") {
			return "", fmt.Errorf("deployspec: HAProxyBackend: server %s: the address %q must be host:port", s.Name, s.Addr)
		}
		pp := port
		if s.ProbePort != 0 {
			pp = s.ProbePort
		}
		fmt.Fprintf(&sb, "    server %s %s check port %d", s.Name, s.Addr, pp)
		if s.AgentPort != 0 {
			fmt.Fprintf(&sb, " agent-check agent-port %d agent-inter %s", s.AgentPort, inter)
		}
		sb.WriteString("\n")
	}
	return sb.String(), nil
}

// haproxyTime writes d as HAProxy reads a time: whole seconds as "2s",
// anything else in milliseconds.
func haproxyTime(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", max(d.Milliseconds(), 1))
}

// BalancerFromAnnotations reads the balancer that the AWS Load Balancer
// Controller builds from a Service's or an Ingress's annotations, with the
// controller's defaults for what they leave unset: for an NLB (a Service
// annotated service.beta.kubernetes.io/aws-load-balancer-type external or
// nlb-ip), a TCP check every 10s, a 10s timeout and thresholds of 3; for an
// ALB (any alb.ingress.kubernetes.io annotation), an HTTP check of / every
// 15s, a 5s timeout and thresholds of 2; for both, the target group's
// 300s deregistration delay. ok is false when the annotations configure
// neither. It fails, naming the annotation, on a value the controller
// would refuse, such as a TCP check for an ALB.
func BalancerFromAnnotations(annotations map[string]string) (b Balancer, ok bool, err error) {
	var keys struct{ proto, port, path, interval, timeout, healthy, unhealthy, attrs string }
	switch t := annotations[nlbPrefix+"type"]; {
	case t == "external" || t == "nlb-ip":
		b = AWSNLB()
		b.kind, b.Interval, b.Timeout, b.HealthyThreshold, b.UnhealthyThreshold = nlbKind, 10*time.Second, 10*time.Second, 3, 3
		b.CheckPort = "traffic-port"
		k := func(s string) string { return nlbPrefix + s }
		keys.proto, keys.port, keys.path = k("healthcheck-protocol"), k("healthcheck-port"), k("healthcheck-path")
		keys.interval, keys.timeout = k("healthcheck-interval"), k("healthcheck-timeout")
		keys.healthy, keys.unhealthy, keys.attrs = k("healthcheck-healthy-threshold"), k("healthcheck-unhealthy-threshold"), k("target-group-attributes")
	case slices.ContainsFunc(mapKeys(annotations), func(k string) bool { return strings.HasPrefix(k, albPrefix) }):
		b = AWSALB()
		b.kind, b.Interval, b.Timeout, b.HealthyThreshold, b.UnhealthyThreshold = albKind, 15*time.Second, 5*time.Second, 2, 2
		b.CheckPort, b.CheckPath = "traffic-port", "/"
		k := func(s string) string { return albPrefix + s }
		keys.proto, keys.port, keys.path = k("healthcheck-protocol"), k("healthcheck-port"), k("healthcheck-path")
		keys.interval, keys.timeout = k("healthcheck-interval-seconds"), k("healthcheck-timeout-seconds")
		keys.healthy, keys.unhealthy, keys.attrs = k("healthy-threshold-count"), k("unhealthy-threshold-count"), k("target-group-attributes")
	default:
		return Balancer{}, false, nil
	}
	intIn := func(key string, lo, hi int, set func(int)) {
		v, has := annotations[key]
		if !has || err != nil {
			return
		}
		n, e := strconv.Atoi(strings.TrimSpace(v))
		if e != nil || n < lo || n > hi {
			err = fmt.Errorf("annotation %s is %q; the controller takes an integer from %d to %d", key, v, lo, hi)
			return
		}
		set(n)
	}
	intIn(keys.interval, 5, 300, func(n int) { b.Interval = time.Duration(n) * time.Second })
	intIn(keys.timeout, 2, 120, func(n int) { b.Timeout = time.Duration(n) * time.Second })
	intIn(keys.healthy, 2, 10, func(n int) { b.HealthyThreshold = n })
	intIn(keys.unhealthy, 2, 10, func(n int) { b.UnhealthyThreshold = n })
	if v, has := annotations[keys.proto]; has {
		switch strings.ToUpper(strings.TrimSpace(v)) {
		case "TCP":
			if b.kind == albKind {
				return Balancer{}, false, fmt.Errorf("annotation %s is %q; an ALB checks with HTTP or HTTPS", keys.proto, v)
			}
			b.CheckPath = ""
		case "HTTP", "HTTPS":
			if b.CheckPath == "" {
				b.CheckPath = "/"
			}
		default:
			return Balancer{}, false, fmt.Errorf("annotation %s is %q; the controller takes TCP, HTTP or HTTPS", keys.proto, v)
		}
	}
	if v, has := annotations[keys.path]; has && b.CheckPath != "" {
		b.CheckPath = strings.TrimSpace(v)
	}
	if v, has := annotations[keys.port]; has {
		b.CheckPort = strings.TrimSpace(v)
	}
	if v, has := annotations[keys.attrs]; has && err == nil {
		for _, kv := range strings.Split(v, ",") {
			k, val, _ := strings.Cut(kv, "=")
			if strings.TrimSpace(k) != "deregistration_delay.timeout_seconds" {
				continue
			}
			n, e := strconv.Atoi(strings.TrimSpace(val))
			if e != nil || n < 0 || n > 3600 {
				err = fmt.Errorf("annotation %s: deregistration_delay.timeout_seconds is %q; AWS takes 0 to 3600", keys.attrs, val)
				break
			}
			b.DeregistrationDelay = time.Duration(n) * time.Second
		}
	}
	if err != nil {
		return Balancer{}, false, err
	}
	return b, true, nil
}

func mapKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Defaults of the GKE Ingress controller (ingress-gce) for a health check
// of container-native load balancing (NEG backends), which a
// BackendConfig's healthCheck overrides field by field.
const (
	gkeInterval  = 15 * time.Second
	gkeTimeout   = 15 * time.Second
	gkeHealthy   = 1
	gkeUnhealthy = 2
)

// BalancerFromBackendConfig reads the balancer a GKE BackendConfig's spec
// configures, given as JSON (the spec object, as the API server stores
// it). Fields are matched exactly, as the API server keeps them: one
// spelt in another case is dropped there, and here. What the healthCheck
// leaves unset is what the GKE Ingress controller sets for
// container-native load balancing: a check of / on the serving port every
// 15s, a 15s timeout, 1 pass to come back and 2 failures to go out; when
// the pods' readinessProbe is an HTTP check on the serving port, GKE takes
// its path, period and timeout instead, which this reader cannot see: set
// the fields to have them read as they are. ok is false when the spec has
// no healthCheck: GKE then builds the check from the pods' readinessProbe,
// which Lint checks. It fails, naming the field, on a spec that is not a
// JSON object, a value of the wrong type, a number Google Cloud refuses or
// a type other than HTTP, HTTPS or HTTP2 (the only ones the controller
// builds).
func BalancerFromBackendConfig(spec []byte) (b Balancer, ok bool, err error) {
	if isNull(spec) {
		return Balancer{}, false, nil
	}
	s, err := jsonObject("spec", spec)
	if err != nil {
		return Balancer{}, false, err
	}
	if isNull(s["healthCheck"]) {
		return Balancer{}, false, nil
	}
	h, err := jsonObject("spec.healthCheck", s["healthCheck"])
	if err != nil {
		return Balancer{}, false, err
	}
	b = GoogleCloud()
	b.Interval, b.Timeout, b.HealthyThreshold, b.UnhealthyThreshold = gkeInterval, gkeTimeout, gkeHealthy, gkeUnhealthy
	b.CheckPort, b.CheckPath = "traffic-port", "/"
	for _, f := range []struct {
		name   string
		lo, hi int64
		set    func(int64)
	}{
		{"checkIntervalSec", 1, 300, func(n int64) { b.Interval = time.Duration(n) * time.Second }},
		{"timeoutSec", 1, 300, func(n int64) { b.Timeout = time.Duration(n) * time.Second }},
		{"healthyThreshold", 1, 10, func(n int64) { b.HealthyThreshold = int(n) }},
		{"unhealthyThreshold", 1, 10, func(n int64) { b.UnhealthyThreshold = int(n) }},
		{"port", 1, 65535, func(n int64) { b.CheckPort = strconv.FormatInt(n, 10) }},
	} {
		if err := jsonInt("spec.healthCheck."+f.name, h[f.name], f.lo, f.hi, f.set); err != nil {
			return Balancer{}, false, err
		}
	}
	if raw := h["type"]; !isNull(raw) {
		var t string
		if json.Unmarshal(raw, &t) != nil || t != "HTTP" && t != "HTTPS" && t != "HTTP2" {
			return Balancer{}, false, fmt.Errorf("BackendConfig spec.healthCheck.type is %s; the GKE Ingress controller takes HTTP, HTTPS or HTTP2", raw)
		}
	}
	if raw := h["requestPath"]; !isNull(raw) {
		if json.Unmarshal(raw, &b.CheckPath) != nil {
			return Balancer{}, false, fmt.Errorf("BackendConfig spec.healthCheck.requestPath is %s; it must be a string", raw)
		}
	}
	if raw := s["connectionDraining"]; !isNull(raw) {
		d, err := jsonObject("spec.connectionDraining", raw)
		if err != nil {
			return Balancer{}, false, err
		}
		err = jsonInt("spec.connectionDraining.drainingTimeoutSec", d["drainingTimeoutSec"], 0, 3600, func(n int64) {
			b.DeregistrationDelay = time.Duration(n) * time.Second
		})
		if err != nil {
			return Balancer{}, false, err
		}
	}
	return b, true, nil
}

// jsonObject decodes raw, the BackendConfig's field, as an object whose
// keys are matched exactly.
func jsonObject(field string, raw []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("BackendConfig %s is not an object", field)
	}
	return m, nil
}

// jsonInt reads raw, the BackendConfig's field, as an integer from lo to
// hi, and sets it; a field unset or null is left alone.
func jsonInt(field string, raw json.RawMessage, lo, hi int64, set func(int64)) error {
	if isNull(raw) {
		return nil
	}
	n, err := strconv.ParseInt(string(bytes.TrimSpace(raw)), 10, 64)
	if err != nil || n < lo || n > hi {
		return fmt.Errorf("BackendConfig %s is %s; Google Cloud takes an integer from %d to %d", field, raw, lo, hi)
	}
	set(n)
	return nil
}

// isNull reports whether raw is unset or JSON null, which the API server
// drops from a custom resource's field.
func isNull(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

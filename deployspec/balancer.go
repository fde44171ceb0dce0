package deployspec

// The balancer in front: how long it takes to stop sending new requests,
// and how long it keeps a deregistered target's connections.

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// Balancer is what the drain and the grace period must fit of the load
// balancer in front of the service. Start from the constructor of your
// balancer (AWSALB, AWSNLB, GoogleCloud, HAProxy), whose defaults are the
// balancer's own, and set the fields your configuration changes.
//
// The health check must ask the readiness gate (/readyz, or gRPC service
// readiness): a TCP check passes until the listener closes, so it never
// sees the drain.
type Balancer struct {
	// Name names the balancer in findings, such as "AWS ALB target group".
	Name string
	// Interval is the time between two health checks of one target.
	Interval time.Duration
	// Timeout is how long a check waits for an answer. It is not part of
	// Detection: a draining service answers readiness at once (503, from
	// a cached verdict), so no check of the drain waits for it.
	Timeout time.Duration
	// HealthyThreshold is how many passing checks in a row mark a target
	// healthy again; it does not bound the drain.
	HealthyThreshold int
	// UnhealthyThreshold is how many failing checks in a row take a
	// target out of rotation: AWS's UnhealthyThresholdCount, Google
	// Cloud's unhealthyThreshold, HAProxy's fall. At least 1.
	UnhealthyThreshold int
	// DeregistrationDelay is how long a deregistered target keeps its
	// requests in flight (an ALB) or its existing connections (an NLB),
	// as AWS's deregistration_delay.timeout_seconds and Google Cloud's
	// connection draining timeout (drainingTimeoutSec) say; 0 for none.
	DeregistrationDelay time.Duration
	// CheckPath and CheckPort are what its health check asks, as a
	// manifest configures it (BalancerFromAnnotations,
	// BalancerFromBackendConfig): the HTTP path, "" for a TCP check; and
	// the port, a number or "traffic-port" (the port the traffic goes
	// to). When CheckPort is set, LintBalancer reports a check that does
	// not ask the readiness gate on the probe port. The writers
	// (Annotations, BackendConfig, HAProxyBackend) write the plan's.
	CheckPath, CheckPort string

	names fieldNames   // the balancer's own names of the fields
	kind  balancerKind // which balancer, for the writers
}

// fieldNames are a balancer's names for the Balancer's fields, which
// findings and errors name.
type fieldNames struct{ interval, unhealthy, deregistration string }

var goNames = fieldNames{"Interval", "UnhealthyThreshold", "DeregistrationDelay"}

// awsNames are the target group's attributes, as the API and the
// Terraform and controller settings spell them.
var awsNames = fieldNames{"HealthCheckIntervalSeconds", "UnhealthyThresholdCount", "deregistration_delay.timeout_seconds"}

// AWSALB returns an AWS Application Load Balancer target group with AWS's
// defaults for one of instance or IP targets: a check every 30s, a 5s
// timeout, 5 passes to come back, 2 failures to go out (a detection time
// of 60s), and a deregistration delay of 300s.
func AWSALB() Balancer {
	return Balancer{Name: "AWS ALB target group", Interval: 30 * time.Second, Timeout: 5 * time.Second,
		HealthyThreshold: 5, UnhealthyThreshold: 2, DeregistrationDelay: 300 * time.Second, names: awsNames, kind: albKind}
}

// AWSNLB returns an AWS Network Load Balancer target group with AWS's
// current defaults: a check every 30s, a 10s timeout (6s for an HTTP
// check), 5 passes to come back, 2 failures to go out (a detection time of
// 60s), and a deregistration delay of 300s, during which an NLB keeps
// routing the target's existing connections to it. Target groups created
// before AWS changed these defaults may have 3 and 3; set what yours has.
func AWSNLB() Balancer {
	return Balancer{Name: "AWS NLB target group", Interval: 30 * time.Second, Timeout: 10 * time.Second,
		HealthyThreshold: 5, UnhealthyThreshold: 2, DeregistrationDelay: 300 * time.Second, names: awsNames, kind: nlbKind}
}

// GoogleCloud returns a Google Cloud backend service's health check with
// Compute Engine's defaults, named as a GKE BackendConfig's healthCheck
// fields: a check every 5s (checkIntervalSec), a 5s timeout (timeoutSec),
// 2 passes to come back, 2 failures to go out (a detection time of 10s),
// and connection draining off (connectionDraining.drainingTimeoutSec 0).
// What a BackendConfig leaves unset is the GKE Ingress controller's own
// (see BalancerFromBackendConfig), not these.
func GoogleCloud() Balancer {
	return Balancer{Name: "Google Cloud health check", Interval: 5 * time.Second, Timeout: 5 * time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 2,
		names: fieldNames{"checkIntervalSec", "unhealthyThreshold", "connectionDraining.drainingTimeoutSec"}, kind: googleKind}
}

// HAProxy returns an HAProxy server line's checks with HAProxy's
// defaults: inter 2s, fall 3, rise 2 (a detection time of 6s); with
// "timeout check" unset a check may take up to inter. HAProxy has no
// deregistration delay: a server marked down gets no new requests, and
// its requests in flight finish.
func HAProxy() Balancer {
	return Balancer{Name: "HAProxy", Interval: 2 * time.Second, Timeout: 2 * time.Second,
		HealthyThreshold: 2, UnhealthyThreshold: 3,
		names: fieldNames{"inter", "fall", "DeregistrationDelay"}, kind: haproxyKind}
}

// Detection is the longest the balancer takes to stop sending new
// requests once readiness fails: Interval x UnhealthyThreshold. The check
// just before the drain began passed, the next one comes at most an
// Interval later, and the last of UnhealthyThreshold failures
// (UnhealthyThreshold-1) Intervals after that.
func (b Balancer) Detection() time.Duration {
	return b.Interval * time.Duration(b.UnhealthyThreshold)
}

func (b Balancer) field(name string) string { return "balancer." + name }

func (b Balancer) fieldNames() fieldNames {
	if b.names == (fieldNames{}) {
		return goNames
	}
	return b.names
}

func (b Balancer) name() string {
	if b.Name == "" {
		return "the balancer"
	}
	return b.Name
}

// validate names the first field of b that no balancer can have.
func (b Balancer) validate() error {
	n := b.fieldNames()
	switch {
	case b.Interval <= 0:
		return fmt.Errorf("deployspec: balancer %s (Interval) is %s; it must be positive", n.interval, b.Interval)
	case b.UnhealthyThreshold < 1:
		return fmt.Errorf("deployspec: balancer %s (UnhealthyThreshold) is %d; it must be at least 1", n.unhealthy, b.UnhealthyThreshold)
	case b.DeregistrationDelay < 0:
		return fmt.Errorf("deployspec: balancer %s (DeregistrationDelay) is %s; it must not be negative", n.deregistration, b.DeregistrationDelay)
	case b.Interval > time.Hour || b.UnhealthyThreshold > 1000:
		return errors.New("deployspec: balancer Interval x UnhealthyThreshold is past any drain; check the numbers")
	}
	return nil
}

// LintBalancer reports every timing of s and of a pod whose
// terminationGracePeriodSeconds is grace (30 when nil) that does not fit
// the balancer b:
//
//   - balancer-detection: the drain must outlast b.Detection(), or the
//     balancer still sends new requests when the listener closes. The
//     field is the one the service sets: "Stop.Drain" (server.DrainDelay,
//     or DrainUntilProbed's max) or "Stop.DrainMin" (DrainUntilQuiet's
//     min).
//
//   - deregistration-delay: the drain plus b.DeregistrationDelay must fit
//     in the grace period. The target may be deregistered as late as the
//     drain's end, and for the delay after it the balancer waits on the
//     target's requests in flight (an NLB keeps routing its connections
//     to it): the pod must live that long. The field is the balancer's
//     (such as "balancer.deregistration_delay.timeout_seconds").
//
//   - balancer-check: when b says what its check asks (CheckPort set, as
//     the readers of manifests do), it must be an HTTP check of /readyz,
//     on the probe port when CheckPort is a number: a TCP check, or one of
//     another path, passes while the service drains.
//
// The grace period must also cover the drain plus the shutdown timeout:
// Lint's grace-period rule says so, and Compute's plan does. It fails, naming
// the field, when b holds numbers no balancer can have.
func LintBalancer(s Service, b Balancer, grace *int64) ([]Finding, error) {
	if err := b.validate(); err != nil {
		return nil, err
	}
	g := int64(defaultGrace)
	if grace != nil {
		g = *grace
	}
	var out []Finding
	if f, ok := detection(s.Stop.Drain, s.Stop.DrainMin, s.Stop.DrainProbes > 0, s.Stop.DrainProbes == 0 && s.Stop.DrainQuiet > 0, b); ok {
		out = append(out, f)
	}
	if f, ok := deregistration(s.Stop.Drain, seconds(g), b); ok {
		out = append(out, f)
	}
	if f, ok := checkTarget(s, b); ok {
		out = append(out, f)
	}
	return out, nil
}

// detection is the balancer-detection rule.
func detection(drain, least time.Duration, probed, quiet bool, b Balancer) (Finding, bool) {
	n := b.fieldNames()
	det := b.Detection()
	how := fmt.Sprintf("%s takes up to %s to stop sending new requests (%s %s x %s %d)",
		b.name(), human(det), n.interval, human(b.Interval), n.unhealthy, b.UnhealthyThreshold)
	want := det + stopMargin*time.Second // its nodes apply the verdict in a few seconds more
	switch {
	case quiet && least < det:
		return Finding{Rule: "balancer-detection", Field: "Stop.DrainMin",
			Problem: fmt.Sprintf("%s, but DrainUntilQuiet's min is %s: a quiet spell before then ends the drain while requests are still on their way", how, human(least)),
			Fix:     fmt.Sprintf("DrainUntilQuiet(quiet, %s, max) with max at least %s", human(det), human(max(drain, want)))}, true
	case drain <= det:
		what, fix := "the drain (DrainDelay)", fmt.Sprintf("DrainDelay(%s) (-drain=%s)", human(want), human(want))
		if probed {
			what, fix = "DrainUntilProbed's max", fmt.Sprintf("DrainUntilProbed(h, n, %s)", human(want))
		} else if quiet {
			what, fix = "DrainUntilQuiet's max", fmt.Sprintf("DrainUntilQuiet(quiet, min, %s)", human(want))
		}
		return Finding{Rule: "balancer-detection", Field: "Stop.Drain",
			Problem: fmt.Sprintf("%s, but %s is %s: the listener closes while the balancer still routes to the pod", how, what, human(drain)),
			Fix:     fix}, true
	}
	return Finding{}, false
}

// deregistration is the deregistration-delay rule.
func deregistration(drain, grace time.Duration, b Balancer) (Finding, bool) {
	need := sum(drain, b.DeregistrationDelay)
	if need <= grace {
		return Finding{}, false
	}
	n := b.fieldNames()
	fix := fmt.Sprintf("terminationGracePeriodSeconds: %d", ceilSeconds(need))
	if most := grace - drain; most >= 0 {
		fix = fmt.Sprintf("%s: %d (the grace period minus the drain), or %s", n.deregistration, int64(most/time.Second), fix)
	}
	return Finding{Rule: "deregistration-delay", Field: b.field(n.deregistration),
		Problem: fmt.Sprintf("%s keeps a deregistered target for %s %s after the drain, until %s after SIGTERM, but the pod is killed after %s (terminationGracePeriodSeconds): its requests and connections still routed then are cut",
			b.name(), n.deregistration, human(b.DeregistrationDelay), human(need), human(grace)),
		Fix: fix}, true
}

// checkTarget is the balancer-check rule.
func checkTarget(s Service, b Balancer) (Finding, bool) {
	if b.CheckPort == "" {
		return Finding{}, false
	}
	want := server.Path(probes.Readiness)
	probePort, _ := portOf("ProbeAddr", s.ProbeAddr)
	fix := fmt.Sprintf("an HTTP check of %s on port %d", want, probePort)
	switch {
	case b.CheckPath == "":
		return Finding{Rule: "balancer-check", Field: "balancer.healthCheck",
			Problem: fmt.Sprintf("%s checks with TCP: the connection opens until the listener closes, so the balancer keeps sending through the warm-up and the drain", b.name()),
			Fix:     fix}, true
	case b.CheckPath != want:
		return Finding{Rule: "balancer-check", Field: "balancer.healthCheck.path",
			Problem: fmt.Sprintf("%s checks %s, not the readiness gate: it passes while the service warms up, drains or is cordoned", b.name(), b.CheckPath),
			Fix:     fix}, true
	}
	if n, err := strconv.Atoi(b.CheckPort); err == nil && probePort != 0 && n != probePort {
		return Finding{Rule: "balancer-check", Field: "balancer.healthCheck.port",
			Problem: fmt.Sprintf("%s checks port %d, but the probes answer on %d (%s)", b.name(), n, probePort, s.ProbeAddr),
			Fix:     fix}, true
	}
	return Finding{}, false
}

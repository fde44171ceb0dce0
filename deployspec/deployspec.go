// Package deployspec computes a service's probe timings from its own
// configuration, and checks the timings a deployment file has against it.
//
// The numbers that make a rollout safe all follow from what only the service
// knows: how long its warm-up may take (the startup gate's deadline), how
// long its drain and shutdown may take (the server's Timings), and where its
// probes answer. Compute turns those into the three Kubernetes probe specs,
// terminationGracePeriodSeconds and systemd's start, stop and watchdog
// timeouts, each with a one-line reason; Lint reports every probe timing of
// a container that does not fit them, with the rule, the numbers and the
// fix. Compute's plan always passes Lint.
//
// The package uses only the standard library; cmd/probelint reads
// Kubernetes manifests into Containers and runs Lint on them.
package deployspec

import (
	"errors"
	"fmt"
	"math"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/server"
)

// Service is what a service's timings follow from.
type Service struct {
	// WarmupDeadline is the startup gate's deadline (startup.Gate.Deadline):
	// past it the service goes Broken.
	WarmupDeadline time.Duration
	// Stop is what the server says about its shutdown (server.Server.Timings).
	Stop server.Timings
	// ProbeAddr is where the HTTP probes answer: the probe listener's
	// address, or the application listener's when the probes share it.
	ProbeAddr string
	// GRPCAddr is where grpc.health.v1 answers; empty for none.
	GRPCAddr string
	// GRPCServices are the service's own gRPC service names that its health
	// service also answers for (grpchealth.Services).
	GRPCServices []string
	// Balancer is the load balancer in front, whose timings the drain and
	// the grace period must fit (LintBalancer); nil for none but
	// Kubernetes' own endpoints.
	Balancer *Balancer
}

// Kubernetes defaults for fields a probe leaves unset.
const (
	defaultPeriod    = 10
	defaultTimeout   = 1
	defaultFailure   = 3
	defaultGrace     = 30
	minLiveFailures  = 3
	livenessPeriod   = 10
	probeTimeout     = 1 // seconds: every probe answers from a cached verdict
	stopMargin       = 5 // seconds added to the worst-case stop for the process to exit
	maxStartupPeriod = 5
)

// Number is one computed setting, in seconds or a count, with why it is
// what it is.
type Number struct {
	// Value is the setting: seconds, or a count.
	Value int
	// Why says in a line why it is what it is; the YAML writers put it in
	// a comment above the setting.
	Why string
}

// Probe is one computed probe spec.
type Probe struct {
	// Gate is the gate the probe asks.
	Gate probes.Kind
	// Path is the HTTP path, such as "/readyz"; empty for gRPC.
	Path string
	// Service is the grpc.health.v1 service name, for gRPC.
	Service string
	// GRPC reports a gRPC probe, on Port.
	GRPC bool
	// Port is the port the probe targets.
	Port int
	// PeriodSeconds, TimeoutSeconds and FailureThreshold are the probe's
	// settings of those names, each with its reason.
	PeriodSeconds, TimeoutSeconds, FailureThreshold Number
}

// Plan is every timing Compute derived, for one transport (HTTP or gRPC).
type Plan struct {
	// Startup, Liveness and Readiness are the three probes.
	Startup, Liveness, Readiness Probe
	// TerminationGracePeriodSeconds is the pod's kill timeout.
	TerminationGracePeriodSeconds Number
	// The systemd unit's [Service] settings.
	TimeoutStartSec, TimeoutStopSec, WatchdogSec Number
	// Findings are what the plan cannot fix by itself and leaves to
	// whoever deploys it, such as a balancer's deregistration delay
	// longer than the grace period allows (LintBalancer's
	// deregistration-delay); nil when there is nothing to do.
	Findings []Finding
	// Balancer is Service.Balancer as the plan sets it, nil without one:
	// its health check numbers as given, and a deregistration delay that
	// fits the grace period (its own when it does and is not 0, the
	// shutdown timeout otherwise, with a Finding that says so). The
	// balancer writers (Annotations, BackendConfig, HAProxyBackend) write
	// it.
	Balancer *Balancer

	httpPort int // the HTTP probe port, for the balancer writers; 0 when unknown
}

// Compute derives the plan for s, with gRPC probes when grpc is true and
// HTTP ones otherwise. It fails when s cannot be deployed safely whatever the
// probe settings, naming the setting to change: no warm-up deadline, a drain
// shorter than the fastest readiness probe can notice, an address without a
// port, and with a Balancer, a drain shorter than the balancer's detection
// time (LintBalancer's balancer-detection) or numbers no balancer can
// have. What a setting of the balancer can fix instead of the service is
// left in the plan's Findings.
func Compute(s Service, grpc bool) (Plan, error) {
	if s.WarmupDeadline <= 0 {
		return Plan{}, errors.New("deployspec: WarmupDeadline must be positive: a startup probe needs a budget to cover")
	}
	port, err := portOf("ProbeAddr", s.ProbeAddr)
	if grpc {
		port, err = portOf("GRPCAddr", s.GRPCAddr)
	}
	if err != nil {
		return Plan{}, err
	}
	drain := s.Stop.Drain
	if least := time.Duration(1+probeTimeout) * time.Second; drain < least {
		return Plan{}, fmt.Errorf("deployspec: the drain (%s) is shorter than a readiness probe can notice it in (%s: one failure 1s apart, with a 1s timeout); set -drain to at least %s",
			human(drain), human(least), human(2*least))
	}
	p := Plan{}
	p.httpPort, _ = portOf("ProbeAddr", s.ProbeAddr)
	target := func(k probes.Kind) Probe {
		pr := Probe{Gate: k, GRPC: grpc, Port: port}
		if grpc {
			pr.Service = k.String()
		} else {
			pr.Path = server.Path(k)
		}
		pr.TimeoutSeconds = Number{probeTimeout, "the probe answers from a cached verdict, in well under a millisecond"}
		return pr
	}

	// Startup: a budget past the warm-up deadline, so that the service's own
	// deadline (which says why in its log) decides, not the kubelet.
	p.Startup = target(probes.Startup)
	period := min(max(s.WarmupDeadline/10, time.Second), maxStartupPeriod*time.Second)
	periodS := int(period / time.Second)
	deadlineS := ceilSeconds(s.WarmupDeadline)
	failures := (deadlineS+periodS-1)/periodS + 2
	p.Startup.PeriodSeconds = Number{periodS, fmt.Sprintf("readiness is probed at most %ds after the warm-up ends", periodS)}
	p.Startup.FailureThreshold = Number{failures, fmt.Sprintf("the last failure allowed comes %ds after the first probe, past the warm-up deadline %s: the service's own deadline decides",
		(failures-1)*periodS, human(s.WarmupDeadline))}

	// Liveness: only the process; never restart on one slow answer.
	p.Liveness = target(probes.Liveness)
	p.Liveness.PeriodSeconds = Number{livenessPeriod, "liveness asks only about the process itself; no need to ask often"}
	p.Liveness.FailureThreshold = Number{minLiveFailures, fmt.Sprintf("a restart needs %d failures in a row, %ds of a wedged process", minLiveFailures, minLiveFailures*livenessPeriod)}

	// Readiness: notice the drain within half of it, so that the
	// endpoints' propagation has the other half.
	p.Readiness = target(probes.Readiness)
	budget := drain/2 - probeTimeout*time.Second
	if s.Stop.DrainProbes > 0 {
		budget = min(budget, drain/time.Duration(2*s.Stop.DrainProbes))
	}
	rPeriod := min(max(int(budget/time.Second), 1), livenessPeriod)
	inside := "inside half the " + human(drain) + " drain"
	if time.Duration(rPeriod+probeTimeout)*time.Second > drain/2 {
		inside = "inside the " + human(drain) + " drain"
	}
	why := fmt.Sprintf("a failing answer comes within %ds (+%ds timeout) of the drain's start, %s", rPeriod, probeTimeout, inside)
	if s.Stop.DrainProbes > 0 {
		why += fmt.Sprintf("; %d failing answers, which end the probe-aware drain, take %ds", s.Stop.DrainProbes, s.Stop.DrainProbes*rPeriod)
	}
	p.Readiness.PeriodSeconds = Number{rPeriod, why}
	p.Readiness.FailureThreshold = Number{1, "the first failing answer takes the pod out: readiness fails only for warm-up, the drain and local faults"}

	stop := ceilSeconds(s.Stop.Stop())
	stopWhy := stopReason(s.Stop)
	p.TerminationGracePeriodSeconds = Number{stop + stopMargin, fmt.Sprintf("the longest stop is %ds (%s), +%ds to exit", stop, stopWhy, stopMargin)}
	p.TimeoutStopSec = Number{stop + stopMargin, p.TerminationGracePeriodSeconds.Why}
	p.TimeoutStartSec = Number{deadlineS + stop + stopMargin,
		fmt.Sprintf("READY=1 comes when warm-up ends; past the %s deadline the service stops itself (%ds more), +%ds", human(s.WarmupDeadline), stop, stopMargin)}
	p.WatchdogSec = Number{minLiveFailures * livenessPeriod,
		fmt.Sprintf("WATCHDOG=1 stops while liveness fails; restart after %ds, as the kubelet does after %d failures %ds apart", minLiveFailures*livenessPeriod, minLiveFailures, livenessPeriod)}
	if s.Balancer != nil {
		grace := int64(p.TerminationGracePeriodSeconds.Value)
		found, err := LintBalancer(s, *s.Balancer, &grace)
		if err != nil {
			return Plan{}, err
		}
		for _, f := range found {
			if f.Rule == "balancer-detection" {
				return Plan{}, fmt.Errorf("deployspec: %s: %s; fix: %s", f.Field, f.Problem, f.Fix)
			}
			p.Findings = append(p.Findings, f)
		}
		b, _ := fitDelay(*s.Balancer, s.Stop, seconds(grace))
		p.Balancer = &b
	}
	return p, nil
}

func stopReason(t server.Timings) string {
	drain := "drain " + human(t.Drain)
	if t.DrainProbes > 0 {
		drain = "probe-aware drain at most " + human(t.Drain)
	}
	if t.OnDrain > t.Drain {
		drain = "OnDrain hooks " + human(t.OnDrain) // they run inside the drain
	}
	parts := []string{drain, "shutdown timeout " + human(t.ShutdownTimeout)}
	if t.AfterClose > 0 {
		parts = append(parts, "AfterClose hooks "+human(t.AfterClose))
	}
	parts = append(parts, "3s of one-second bounds")
	return strings.Join(parts, " + ")
}

// portOf returns the port of a host:port address.
func portOf(field, addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("deployspec: %s %q: %w", field, addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("deployspec: %s %q: the port must be a number from 1 to 65535", field, addr)
	}
	return n, nil
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// human writes d as people do: "2m", "5s", "1m30s", "250ms".
func human(d time.Duration) string {
	switch {
	case d == 0:
		return "0s"
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	case d%time.Second == 0 && d > time.Minute:
		return fmt.Sprintf("%dm%ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return d.String()
}

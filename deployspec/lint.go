package deployspec

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/probekit/probes"
)

// Container is what Lint reads of one container and its pod.
type Container struct {
	// Name is the container's name.
	Name string
	// GracePeriodSeconds is the pod's terminationGracePeriodSeconds; nil
	// when unset (Kubernetes then gives 30).
	GracePeriodSeconds *int64
	// PreStopSleep is how long the container's preStop hook sleeps before
	// SIGTERM; 0 for none.
	PreStopSleep time.Duration
	// The probes; nil when absent.
	Startup, Liveness, Readiness *ProbeSpec
}

// ProbeSpec is one probe as a manifest has it. Zero numbers mean unset:
// Lint applies Kubernetes' defaults (period 10, timeout 1, failure
// threshold 3).
type ProbeSpec struct {
	// An HTTP probe: the path and the port, resolved to a number when the
	// manifest names it; PortProblem says why it could not be resolved.
	HTTPPath    string
	HTTPPort    int
	PortProblem string
	// A gRPC probe: its port and service name.
	GRPC        bool
	GRPCPort    int
	GRPCService string
	// A TCP probe's port, or an exec probe's command.
	TCPPort int
	Exec    []string

	InitialDelaySeconds, PeriodSeconds, TimeoutSeconds, FailureThreshold int32
}

// Finding is one unsafe timing or target.
type Finding struct {
	// Rule names the rule, such as "startup-budget".
	Rule string
	// Field is the field at fault, from the container ("startupProbe.failureThreshold",
	// "args") or, prefixed "pod.", from the pod spec.
	Field string
	// Problem says what goes wrong, with the numbers.
	Problem string
	// Fix says what to set instead.
	Fix string
}

func (f Finding) String() string { return f.Rule + ": " + f.Problem + "; fix: " + f.Fix }

type numbers struct{ delay, period, timeout, failure int }

func (p *ProbeSpec) numbers() numbers {
	return numbers{
		delay:   int(p.InitialDelaySeconds),
		period:  cmp.Or(int(p.PeriodSeconds), defaultPeriod),
		timeout: cmp.Or(int(p.TimeoutSeconds), defaultTimeout),
		failure: cmp.Or(int(p.FailureThreshold), defaultFailure),
	}
}

// Lint reports every probe timing and target of c that does not fit s,
// one Finding per fault. No findings means the container is safe to roll
// out with s's configuration.
func Lint(s Service, c Container) []Finding {
	var out []Finding
	add := func(rule, field, fix, problem string, args ...any) {
		out = append(out, Finding{Rule: rule, Field: field, Problem: fmt.Sprintf(problem, args...), Fix: fix})
	}
	type named struct {
		field string
		kind  probes.Kind
		p     *ProbeSpec
	}
	all := []named{{"startupProbe", probes.Startup, c.Startup}, {"livenessProbe", probes.Liveness, c.Liveness}, {"readinessProbe", probes.Readiness, c.Readiness}}
	var present []named
	for _, n := range all {
		if n.p != nil {
			present = append(present, n)
		}
	}

	// probe-listen: a loopback listener the kubelet cannot reach.
	usesHTTP := slices.ContainsFunc(present, func(n named) bool { return n.p.HTTPPath != "" || n.p.PortProblem != "" })
	usesGRPC := slices.ContainsFunc(present, func(n named) bool { return n.p.GRPC })
	for _, l := range []struct {
		used       bool
		flag, addr string
	}{{usesHTTP, "-probe-addr", s.ProbeAddr}, {usesGRPC, "-grpc-addr", s.GRPCAddr}} {
		if host, port, err := net.SplitHostPort(l.addr); l.used && err == nil && loopback(host) {
			add("probe-listen", "args", fmt.Sprintf("%s=0.0.0.0:%s", l.flag, port),
				"the probes listen on %s (%s), but the kubelet probes the pod's IP: every probe fails", l.addr, l.flag)
		}
	}

	httpPort, _ := portOf("ProbeAddr", s.ProbeAddr)
	grpcPort, _ := portOf("GRPCAddr", s.GRPCAddr)
	for _, n := range present {
		p := n.p
		switch {
		case p.PortProblem != "":
			add("probe-port", n.field+".httpGet.port", fmt.Sprintf("port: %d", httpPort), "%s", p.PortProblem)
		case p.HTTPPath != "" && p.HTTPPort != httpPort:
			add("probe-port", n.field+".httpGet.port", fmt.Sprintf("port: %d", httpPort),
				"%s targets port %d, but the probes answer on %d (-probe-addr %s)", n.field, p.HTTPPort, httpPort, s.ProbeAddr)
		case p.GRPC && s.GRPCAddr == "":
			add("probe-port", n.field+".grpc.port", "an httpGet probe, or -grpc-addr set", "%s is a gRPC probe, but the service serves no gRPC (-grpc-addr is empty)", n.field)
		case p.GRPC && p.GRPCPort != grpcPort:
			add("probe-port", n.field+".grpc.port", fmt.Sprintf("port: %d", grpcPort),
				"%s targets port %d, but grpc.health.v1 answers on %d (-grpc-addr %s)", n.field, p.GRPCPort, grpcPort, s.GRPCAddr)
		}
	}

	// probe-path, probe-target, liveness-target: each probe asks its own
	// gate, at a path the service serves.
	for _, n := range present {
		own, where, field := target(n.p, n.field)
		switch {
		case own == "":
			if n.p.TCPPort != 0 {
				add("probe-target", n.field+".tcpSocket", "an httpGet or grpc probe of "+n.kind.String(),
					"%s only opens a connection: it passes while the service warms up, drains or is broken", n.field)
			}
			continue // an exec probe of another command: nothing to say
		case !served(own, n.p.GRPC, s.GRPCServices):
			add("probe-path", field, fixTarget(n.kind, n.p.GRPC),
				"%s targets %s, which the service does not serve: the probe always fails", n.field, where)
			continue
		}
		gate := gateOf(own, n.p.GRPC)
		switch {
		case n.kind == probes.Liveness && gate != probes.Liveness:
			add("liveness-target", field, fixTarget(n.kind, n.p.GRPC),
				"livenessProbe targets %s: a dependency blip, a warm-up or the drain fails it, and the kubelet restarts healthy pods; liveness must ask only about the process", where)
		case n.kind != probes.Liveness && gate == probes.Health:
			add("probe-target", field, fixTarget(n.kind, n.p.GRPC),
				"%s targets %s, a monitors' view or one check's answer: it ignores the warm-up and the drain", n.field, where)
		case n.kind != probes.Liveness && gate != n.kind:
			add("probe-target", field, fixTarget(n.kind, n.p.GRPC), "%s targets %s, the %s gate, not %s", n.field, where, gate, n.kind)
		}
	}

	// probe-timeout: at least a second, and an exec'd probe command's own
	// timeout within the kubelet's.
	for _, n := range present {
		num := n.p.numbers()
		if num.timeout < 1 {
			add("probe-timeout", n.field+".timeoutSeconds", "timeoutSeconds: 1", "%s.timeoutSeconds is %d; it must be at least 1", n.field, num.timeout)
		}
		if d, ok := execTimeout(n.p.Exec); ok {
			switch {
			case d < time.Second:
				add("probe-timeout", n.field+".exec.command", "-timeout=1s", "the probe command's -timeout %s is under a second: a pause of the process fails it", d)
			case d > time.Duration(num.timeout)*time.Second:
				add("probe-timeout", n.field+".timeoutSeconds", fmt.Sprintf("timeoutSeconds: %d", ceilSeconds(d)),
					"the probe command waits up to %s, but the kubelet kills it after timeoutSeconds %d", d, num.timeout)
			}
		}
	}

	// startup-budget: the kubelet must not restart a pod still allowed to
	// warm up.
	if p := c.Startup; p != nil {
		num := p.numbers()
		budget := num.delay + num.period*(num.failure-1)
		if time.Duration(budget)*time.Second < s.WarmupDeadline {
			need := int(math.Ceil((s.WarmupDeadline.Seconds()-float64(num.delay))/float64(num.period))) + 1
			add("startup-budget", "startupProbe.failureThreshold", fmt.Sprintf("failureThreshold: %d", need),
				"the kubelet restarts the container %ds after the first startup probe (initialDelaySeconds %d + periodSeconds %d x (failureThreshold %d - 1)), before the warm-up deadline %s: a slow warm-up becomes a restart loop",
				budget, num.delay, num.period, num.failure, human(s.WarmupDeadline))
		}
	}

	// liveness-threshold: one slow answer never restarts a pod.
	if p := c.Liveness; p != nil {
		if num := p.numbers(); num.failure < minLiveFailures {
			add("liveness-threshold", "livenessProbe.failureThreshold", fmt.Sprintf("failureThreshold: %d", minLiveFailures),
				"livenessProbe.failureThreshold is %d: one slow answer (a GC pause, a throttled CPU) restarts the pod", num.failure)
		}
	}

	// readiness: present, and it notices the drain before the listener
	// closes.
	window := s.Stop.Drain + c.PreStopSleep
	if p := c.Readiness; p == nil {
		add("readiness-missing", "readinessProbe", "a readinessProbe of /readyz (gRPC: service readiness)",
			"no readinessProbe: the pod gets traffic while it warms up and until its listener closes")
	} else if num := p.numbers(); time.Duration(num.period*num.failure+num.timeout)*time.Second > window {
		fix := fmt.Sprintf("raise -drain to at least %s", human(time.Duration(2*(num.period*num.failure+num.timeout))*time.Second))
		if most := (int(window/time.Second) - num.timeout) / num.failure; most >= 1 {
			fix = fmt.Sprintf("periodSeconds: %d", most)
		}
		add("readiness-drain", "readinessProbe.periodSeconds", fix,
			"readiness may take %ds to see the drain (periodSeconds %d x failureThreshold %d + timeoutSeconds %d), longer than the %s the service keeps serving: the endpoint is still routed when the listener closes",
			num.period*num.failure+num.timeout, num.period, num.failure, num.timeout, human(window))
	}

	// grace-period: no SIGKILL in the middle of the stop.
	grace := int64(defaultGrace)
	if c.GracePeriodSeconds != nil {
		grace = *c.GracePeriodSeconds
	}
	need := s.Stop.Stop() + c.PreStopSleep
	if time.Duration(grace)*time.Second < need {
		add("grace-period", "pod.terminationGracePeriodSeconds", fmt.Sprintf("terminationGracePeriodSeconds: %d", ceilSeconds(need)+stopMargin),
			"SIGKILL comes %ds after the pod's termination begins, but the service may take %s to stop (%s%s)",
			grace, human(need.Round(time.Second)), stopReason(s.Stop), preStop(c.PreStopSleep))
	}
	return out
}

func preStop(d time.Duration) string {
	if d == 0 {
		return ""
	}
	return " + preStop sleep " + human(d)
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// target returns what p asks (an HTTP path, or "grpc:" and a service name),
// how to say it, and the field that sets it; own is empty when p asks
// nothing of the service's probes.
func target(p *ProbeSpec, field string) (own, where, at string) {
	switch {
	case p.GRPC:
		return "grpc:" + p.GRPCService, fmt.Sprintf("gRPC service %q", p.GRPCService), field + ".grpc.service"
	case p.HTTPPath != "":
		return pathOnly(p.HTTPPath), p.HTTPPath, field + ".httpGet.path"
	}
	if len(p.Exec) > 0 && path.Base(p.Exec[0]) == "probe" {
		for i, a := range p.Exec {
			if a == "-grpc" || a == "--grpc" {
				svc := ""
				if j := slices.Index(p.Exec, "-service"); j >= 0 && j+1 < len(p.Exec) {
					svc = p.Exec[j+1]
				}
				return "grpc:" + svc, fmt.Sprintf("gRPC service %q", svc), field + ".exec.command"
			}
			if u, err := url.Parse(a); err == nil && u.Scheme != "" && i > 0 {
				return pathOnly(u.Path), u.Path, field + ".exec.command"
			}
		}
	}
	return "", "", ""
}

func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

var gatePaths = map[string]probes.Kind{"/startupz": probes.Startup, "/livez": probes.Liveness, "/readyz": probes.Readiness, "/healthz": probes.Health}

// served reports whether the service answers own: a gate's path or one of
// its checks' paths, or a gRPC service name it knows.
func served(own string, grpc bool, services []string) bool {
	if grpc {
		name := strings.TrimPrefix(own, "grpc:")
		return slices.Contains([]string{"", "startup", "liveness", "readiness"}, name) || slices.Contains(services, name)
	}
	base, rest, _ := strings.Cut(strings.TrimPrefix(own, "/"), "/")
	_, ok := gatePaths["/"+base]
	return ok && !strings.Contains(rest, "/")
}

// gateOf returns the gate a served target asks; per-check paths count as
// the Health view (a single dependency), not as their gate.
func gateOf(own string, grpc bool) probes.Kind {
	if grpc {
		switch name := strings.TrimPrefix(own, "grpc:"); name {
		case "startup":
			return probes.Startup
		case "liveness":
			return probes.Liveness
		default: // "", readiness and the service's own names
			return probes.Readiness
		}
	}
	base, rest, _ := strings.Cut(strings.TrimPrefix(own, "/"), "/")
	if rest != "" && base != "livez" {
		return probes.Health // one dependency's answer, not the gate's
	}
	return gatePaths["/"+base]
}

func fixTarget(k probes.Kind, grpc bool) string {
	if grpc {
		return "service: " + k.String()
	}
	return "path: " + map[probes.Kind]string{probes.Startup: "/startupz", probes.Liveness: "/livez", probes.Readiness: "/readyz"}[k]
}

// execTimeout returns the -timeout flag of an exec'd probe command.
func execTimeout(cmd []string) (time.Duration, bool) {
	if len(cmd) == 0 || path.Base(cmd[0]) != "probe" {
		return 0, false
	}
	for i, a := range cmd {
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name != "timeout" || !strings.HasPrefix(a, "-") {
			continue
		}
		if !hasValue && i+1 < len(cmd) {
			value = cmd[i+1]
		}
		if d, err := time.ParseDuration(value); err == nil {
			return d, true
		}
	}
	return 0, false
}

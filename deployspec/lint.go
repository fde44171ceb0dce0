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
	"github.com/probekit/probes/server"
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
	// "args") or, prefixed "pod.", from the pod spec; for LintBudget, from
	// the PodDisruptionBudget's spec ("minAvailable").
	Field string
	// Problem says what goes wrong, with the numbers.
	Problem string
	// Fix says what to set instead.
	Fix string
}

// String reads like "rule: problem; fix: fix".
func (f Finding) String() string { return f.Rule + ": " + f.Problem + "; fix: " + f.Fix }

// numbers are a probe's settings with Kubernetes' defaults applied, in
// int64: products and sums of the int32 fields fit, exactly.
type numbers struct{ delay, period, timeout, failure int64 }

func (p *ProbeSpec) numbers() numbers {
	return numbers{
		delay:   int64(p.InitialDelaySeconds),
		period:  int64(cmp.Or(p.PeriodSeconds, defaultPeriod)),
		timeout: int64(cmp.Or(p.TimeoutSeconds, defaultTimeout)),
		failure: int64(cmp.Or(p.FailureThreshold, defaultFailure)),
	}
}

// named is a probe of the container with its field and the gate it should ask.
type named struct {
	field string
	kind  probes.Kind
	p     *ProbeSpec
}

// linter is what the rules read and where they report.
type linter struct {
	s       Service
	c       Container
	present []named // the probes the container has
	out     []Finding
}

func (l *linter) add(rule, field, fix, problem string, args ...any) {
	l.out = append(l.out, Finding{Rule: rule, Field: field, Problem: fmt.Sprintf(problem, args...), Fix: fix})
}

// Lint reports every probe timing and target of c that does not fit s,
// one Finding per fault. No findings means the container is safe to roll
// out with s's configuration.
func Lint(s Service, c Container) []Finding {
	l := &linter{s: s, c: c}
	for _, n := range []named{{"startupProbe", probes.Startup, c.Startup}, {"livenessProbe", probes.Liveness, c.Liveness}, {"readinessProbe", probes.Readiness, c.Readiness}} {
		if n.p != nil {
			l.present = append(l.present, n)
		}
	}
	for _, rule := range []func(*linter){
		probeListen,
		probePort,
		probeTarget,
		timeouts,
		startupBudget,
		livenessThreshold,
		readiness,
		gracePeriod,
	} {
		rule(l)
	}
	return l.out
}

// probeListen (probe-listen): a loopback listener the kubelet cannot reach.
func probeListen(l *linter) {
	usesHTTP := slices.ContainsFunc(l.present, func(n named) bool { return n.p.HTTPPath != "" || n.p.PortProblem != "" })
	usesGRPC := slices.ContainsFunc(l.present, func(n named) bool { return n.p.GRPC })
	for _, lis := range []struct {
		used       bool
		flag, addr string
	}{{usesHTTP, "-probe-addr", l.s.ProbeAddr}, {usesGRPC, "-grpc-addr", l.s.GRPCAddr}} {
		if host, port, err := net.SplitHostPort(lis.addr); lis.used && err == nil && loopback(host) {
			l.add("probe-listen", "args", fmt.Sprintf("%s=0.0.0.0:%s", lis.flag, port),
				"the probes listen on %s (%s), but the kubelet probes the pod's IP: every probe fails", lis.addr, lis.flag)
		}
	}
}

// probePort (probe-port): each probe targets the port its probes answer on.
func probePort(l *linter) {
	httpPort, _ := portOf("ProbeAddr", l.s.ProbeAddr)
	grpcPort, _ := portOf("GRPCAddr", l.s.GRPCAddr)
	for _, n := range l.present {
		p := n.p
		switch {
		case p.PortProblem != "":
			l.add("probe-port", n.field+".httpGet.port", fmt.Sprintf("port: %d", httpPort), "%s", p.PortProblem)
		case p.HTTPPath != "" && p.HTTPPort != httpPort:
			l.add("probe-port", n.field+".httpGet.port", fmt.Sprintf("port: %d", httpPort),
				"%s targets port %d, but the probes answer on %d (-probe-addr %s)", n.field, p.HTTPPort, httpPort, l.s.ProbeAddr)
		case p.GRPC && l.s.GRPCAddr == "":
			l.add("probe-port", n.field+".grpc.port", "an httpGet probe, or -grpc-addr set", "%s is a gRPC probe, but the service serves no gRPC (-grpc-addr is empty)", n.field)
		case p.GRPC && p.GRPCPort != grpcPort:
			l.add("probe-port", n.field+".grpc.port", fmt.Sprintf("port: %d", grpcPort),
				"%s targets port %d, but grpc.health.v1 answers on %d (-grpc-addr %s)", n.field, p.GRPCPort, grpcPort, l.s.GRPCAddr)
		}
	}
}

// probeTarget (probe-path, probe-target, liveness-target): each probe asks
// its own gate, at a path the service serves.
func probeTarget(l *linter) {
	for _, n := range l.present {
		own, where, field := target(n.p, n.field)
		switch {
		case own == "":
			if n.p.TCPPort != 0 {
				l.add("probe-target", n.field+".tcpSocket", "an httpGet or grpc probe of "+n.kind.String(),
					"%s only opens a connection: it passes while the service warms up, drains or is broken", n.field)
			}
			continue // an exec probe of another command: nothing to say
		case !served(own, n.p.GRPC, l.s.GRPCServices):
			l.add("probe-path", field, fixTarget(n.kind, n.p.GRPC),
				"%s targets %s, which the service does not serve: the probe always fails", n.field, where)
			continue
		}
		gate := gateOf(own, n.p.GRPC)
		switch {
		case n.kind == probes.Liveness && gate != probes.Liveness:
			l.add("liveness-target", field, fixTarget(n.kind, n.p.GRPC),
				"livenessProbe targets %s: a dependency blip, a warm-up or the drain fails it, and the kubelet restarts healthy pods; liveness must ask only about the process", where)
		case n.kind != probes.Liveness && gate == probes.Health:
			l.add("probe-target", field, fixTarget(n.kind, n.p.GRPC),
				"%s targets %s, a monitors' view or one check's answer: it ignores the warm-up and the drain", n.field, where)
		case n.kind != probes.Liveness && gate != n.kind:
			l.add("probe-target", field, fixTarget(n.kind, n.p.GRPC), "%s targets %s, the %s gate, not %s", n.field, where, gate, n.kind)
		}
	}
}

// timeouts (probe-timeout): at least a second, and an exec'd probe
// command's own timeout within the kubelet's.
func timeouts(l *linter) {
	for _, n := range l.present {
		num := n.p.numbers()
		if num.timeout < 1 {
			l.add("probe-timeout", n.field+".timeoutSeconds", "timeoutSeconds: 1", "%s.timeoutSeconds is %d; it must be at least 1", n.field, num.timeout)
		}
		if d, ok := execTimeout(n.p.Exec); ok {
			switch {
			case d < time.Second:
				l.add("probe-timeout", n.field+".exec.command", "-timeout=1s", "the probe command's -timeout %s is under a second: a pause of the process fails it", d)
			case d > seconds(num.timeout):
				l.add("probe-timeout", n.field+".timeoutSeconds", fmt.Sprintf("timeoutSeconds: %d", ceilSeconds(d)),
					"the probe command waits up to %s, but the kubelet kills it after timeoutSeconds %d", d, num.timeout)
			}
		}
	}
}

// startupBudget (startup-budget): the kubelet must not restart a pod still
// allowed to warm up.
func startupBudget(l *linter) {
	p := l.c.Startup
	if p == nil {
		return
	}
	num := p.numbers()
	budget := num.delay + num.period*(num.failure-1)
	if seconds(budget) >= l.s.WarmupDeadline {
		return
	}
	need := int64(math.Ceil((l.s.WarmupDeadline.Seconds()-float64(num.delay))/float64(max(num.period, 1)))) + 1
	l.add("startup-budget", "startupProbe.failureThreshold", fmt.Sprintf("failureThreshold: %d", max(need, 1)),
		"the kubelet restarts the container %ds after the first startup probe (initialDelaySeconds %d + periodSeconds %d x (failureThreshold %d - 1)), before the warm-up deadline %s: a slow warm-up becomes a restart loop",
		budget, num.delay, num.period, num.failure, human(l.s.WarmupDeadline))
}

// livenessThreshold (liveness-threshold): one slow answer never restarts a pod.
func livenessThreshold(l *linter) {
	if p := l.c.Liveness; p != nil {
		if num := p.numbers(); num.failure < minLiveFailures {
			l.add("liveness-threshold", "livenessProbe.failureThreshold", fmt.Sprintf("failureThreshold: %d", minLiveFailures),
				"livenessProbe.failureThreshold is %d: one slow answer (a GC pause, a throttled CPU) restarts the pod", num.failure)
		}
	}
}

// readiness (readiness-missing, readiness-drain): present, and it notices
// the drain before the listener closes.
func readiness(l *linter) {
	p := l.c.Readiness
	if p == nil {
		l.add("readiness-missing", "readinessProbe", "a readinessProbe of /readyz (gRPC: service readiness)",
			"no readinessProbe: the pod gets traffic while it warms up and until its listener closes")
		return
	}
	window := sum(l.s.Stop.Drain, l.c.PreStopSleep)
	num := p.numbers()
	notice := num.period*num.failure + num.timeout
	if seconds(notice) <= window {
		return
	}
	fix := "raise -drain to at least " + human(sum(seconds(notice), seconds(notice)))
	if most := (int64(window/time.Second) - num.timeout) / num.failure; most >= 1 {
		fix = fmt.Sprintf("periodSeconds: %d", most)
	}
	l.add("readiness-drain", "readinessProbe.periodSeconds", fix,
		"readiness may take %ds to see the drain (periodSeconds %d x failureThreshold %d + timeoutSeconds %d), longer than the %s the service keeps serving: the endpoint is still routed when the listener closes",
		notice, num.period, num.failure, num.timeout, human(window))
}

// gracePeriod (grace-period): no SIGKILL in the middle of the stop.
func gracePeriod(l *linter) {
	grace := int64(defaultGrace)
	if l.c.GracePeriodSeconds != nil {
		grace = *l.c.GracePeriodSeconds
	}
	need := sum(l.s.Stop.Stop(), l.c.PreStopSleep)
	if seconds(grace) >= need {
		return
	}
	l.add("grace-period", "pod.terminationGracePeriodSeconds", fmt.Sprintf("terminationGracePeriodSeconds: %d", ceilSeconds(need)+stopMargin),
		"SIGKILL comes %ds after the pod's termination begins, but the service may take %s to stop (%s%s)",
		grace, human(need.Round(time.Second)), stopReason(l.s.Stop), preStop(l.c.PreStopSleep))
}

// seconds returns n seconds, saturating at the largest and smallest
// Durations: a count of seconds past them is past any deadline.
func seconds(n int64) time.Duration {
	const most = math.MaxInt64 / int64(time.Second)
	switch {
	case n > most:
		return math.MaxInt64
	case n < -most:
		return math.MinInt64
	}
	return time.Duration(n) * time.Second
}

// sum returns a+b, saturating.
func sum(a, b time.Duration) time.Duration {
	if s := a + b; (s > a) == (b > 0) {
		return s
	}
	if b > 0 {
		return math.MaxInt64
	}
	return math.MinInt64
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
				return u.EscapedPath(), u.EscapedPath(), field + ".exec.command" // as sent
			}
		}
	}
	return "", "", ""
}

func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

// mounted returns the gate an HTTP path asks and the check it names, when
// the path is exactly one server.Register mounts: a gate's path
// (server.Path), or one and "/" and a check's name. Anything else (a
// trailing slash, "//readyz", "/./readyz", an escaped letter) is answered
// 404 or redirected by http.ServeMux and chi, which is a failing probe.
func mounted(p string) (gate probes.Kind, check string, ok bool) {
	if k, ok := gateAt(p); ok {
		return k, "", true
	}
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return 0, "", false
	}
	k, ok := gateAt(p[:i])
	check = p[i+1:]
	if !ok || !probes.ValidName(check) || check == "." || check == ".." { // dot segments are cleaned away
		return 0, "", false
	}
	return k, check, true
}

func gateAt(p string) (probes.Kind, bool) {
	for _, k := range []probes.Kind{probes.Startup, probes.Liveness, probes.Readiness, probes.Health} {
		if server.Path(k) == p {
			return k, true
		}
	}
	return 0, false
}

// served reports whether the service answers own: a gate's path or one of
// its checks' paths, or a gRPC service name it knows.
func served(own string, grpc bool, services []string) bool {
	if grpc {
		name := strings.TrimPrefix(own, "grpc:")
		return slices.Contains([]string{"", "startup", "liveness", "readiness"}, name) || slices.Contains(services, name)
	}
	_, _, ok := mounted(own)
	return ok
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
	gate, check, _ := mounted(own)
	if check != "" && gate != probes.Liveness {
		return probes.Health // one dependency's answer, not the gate's
	}
	return gate
}

func fixTarget(k probes.Kind, grpc bool) string {
	if grpc {
		return "service: " + k.String()
	}
	return "path: " + server.Path(k)
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

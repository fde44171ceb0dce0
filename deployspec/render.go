package deployspec

import (
	"fmt"
	"strings"
)

// Kubernetes writes the plan's three probes as a container's fields, in
// YAML indented by indent spaces, each number under a comment that says why.
// portName, when not empty, names the HTTP probes' port instead of its
// number (a gRPC probe takes a number only).
func (p Plan) Kubernetes(indent int, portName string) string {
	var b strings.Builder
	for _, pr := range []struct {
		field string
		p     Probe
	}{{"startupProbe", p.Startup}, {"livenessProbe", p.Liveness}, {"readinessProbe", p.Readiness}} {
		w := writer{&b, strings.Repeat(" ", indent)}
		w.line(pr.field + ":")
		w.indent += "  "
		if pr.p.GRPC {
			w.line("grpc:")
			w.line(fmt.Sprintf("  port: %d", pr.p.Port))
			w.line("  service: " + pr.p.Service)
		} else {
			port := fmt.Sprint(pr.p.Port)
			if portName != "" {
				port = portName
			}
			w.line("httpGet:")
			w.line("  path: " + pr.p.Path)
			w.line("  port: " + port)
		}
		w.number("periodSeconds", ": ", pr.p.PeriodSeconds)
		w.number("timeoutSeconds", ": ", pr.p.TimeoutSeconds)
		w.number("failureThreshold", ": ", pr.p.FailureThreshold)
	}
	return b.String()
}

// Grace writes terminationGracePeriodSeconds, a pod's field, indented by
// indent spaces, under a comment that says why.
func (p Plan) Grace(indent int) string {
	var b strings.Builder
	writer{&b, strings.Repeat(" ", indent)}.number("terminationGracePeriodSeconds", ": ", p.TerminationGracePeriodSeconds)
	return b.String()
}

// Systemd writes the plan's [Service] timeouts of a Type=notify unit, each
// under a comment that says why.
func (p Plan) Systemd() string {
	var b strings.Builder
	w := writer{&b, ""}
	w.number("TimeoutStartSec", "=", p.TimeoutStartSec)
	w.number("TimeoutStopSec", "=", p.TimeoutStopSec)
	w.number("WatchdogSec", "=", p.WatchdogSec)
	return b.String()
}

type writer struct {
	b      *strings.Builder
	indent string
}

func (w writer) line(s string) { w.b.WriteString(w.indent + s + "\n") }

func (w writer) number(name, sep string, n Number) {
	w.line("# " + n.Why)
	w.line(fmt.Sprintf("%s%s%d", name, sep, n.Value))
}

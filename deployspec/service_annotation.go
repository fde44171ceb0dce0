package deployspec

// Where the service's probes answer and how long it may warm up, carried
// by the manifest beside its stop.

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
)

// ServiceAnnotation is the pod template annotation that Deployment.YAML
// writes with the rest of what the probe timings follow from, as
// FormatService writes it: the warm-up deadline and where the probes (and
// gRPC health) answer. With it and StopAnnotation, probelint checks a
// manifest against the service that generated it, whatever the service's
// flags are called, with no settings typed again.
const ServiceAnnotation = "probes.probekit.dev/service"

// FormatService writes s's warm-up deadline and addresses as
// ServiceAnnotation's value: key=value pairs one space apart,
//
//	warmup-deadline=2m probe-addr=:8081 grpc-addr=:9090
//
// grpc-addr only when s has one.
func FormatService(s Service) string {
	parts := []string{"warmup-deadline=" + human(s.WarmupDeadline), "probe-addr=" + s.ProbeAddr}
	if s.GRPCAddr != "" {
		parts = append(parts, "grpc-addr="+s.GRPCAddr)
	}
	return strings.Join(parts, " ")
}

// ParseService reads ServiceAnnotation's value as FormatService writes it
// into the WarmupDeadline, ProbeAddr and GRPCAddr of a Service. It refuses,
// naming the pair at fault, an unknown or repeated key, a missing
// warmup-deadline or probe-addr, a deadline that is not a positive
// duration and an address that is not host:port.
func ParseService(v string) (Service, error) {
	var s Service
	seen := map[string]bool{}
	for _, f := range strings.Fields(v) {
		key, value, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return Service{}, fmt.Errorf("deployspec: service %q: not key=value", f)
		case !slices.Contains([]string{"warmup-deadline", "probe-addr", "grpc-addr"}, key):
			return Service{}, fmt.Errorf("deployspec: service %q: unknown key %q; the keys are warmup-deadline, probe-addr, grpc-addr", f, key)
		case seen[key]:
			return Service{}, fmt.Errorf("deployspec: service %q: %s is set twice", f, key)
		}
		seen[key] = true
		switch key {
		case "warmup-deadline":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return Service{}, fmt.Errorf("deployspec: service %q: not a positive duration", f)
			}
			s.WarmupDeadline = d
		default:
			if _, _, err := net.SplitHostPort(value); err != nil {
				return Service{}, fmt.Errorf("deployspec: service %q: not host:port", f)
			}
			if key == "probe-addr" {
				s.ProbeAddr = value
			} else {
				s.GRPCAddr = value
			}
		}
	}
	for _, k := range []string{"warmup-deadline", "probe-addr"} {
		if !seen[k] {
			return Service{}, fmt.Errorf("deployspec: service %q: %s is missing", v, k)
		}
	}
	return s, nil
}

package main

// The stop a pod template carries (deployspec.StopAnnotation): what the
// service computed it takes to stop, hooks included, above what the
// settings say.

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// stopRule names the findings about the annotation itself.
const stopRule = "stop-annotation"

// stopRules are the rules whose numbers come from the stop.
var stopRules = []string{"grace-period", "readiness-drain", "balancer-detection", "deregistration-delay"}

// stopOf reads the pod template's stop annotation: the stop and true when
// it has one that reads, a finding when it has one that does not (the
// stop is then the settings').
func stopOf(annotations map[string]string) (server.Timings, bool, *deployspec.Finding) {
	v, ok := annotations[deployspec.StopAnnotation]
	if !ok {
		return server.Timings{}, false, nil
	}
	t, err := deployspec.ParseStop(v)
	if err != nil {
		example := deployspec.FormatStop(server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second, AfterClose: 5 * time.Second})
		return server.Timings{}, false, &deployspec.Finding{
			Rule:  stopRule,
			Field: "metadata.annotations." + deployspec.StopAnnotation,
			Problem: fmt.Sprintf("annotation %s does not read: %s; the stop is checked as the settings say, which may leave out the service's hooks",
				deployspec.StopAnnotation, strings.TrimPrefix(err.Error(), "deployspec: ")),
			Fix: fmt.Sprintf("generate the manifest again from the service (deployspec.Deployment.YAML), or write the stop as deployspec.FormatStop does: %q", example),
		}
	}
	return t, true, nil
}

// disagreement reports the stop settings the container sets itself
// (-from-args) to other values than the annotation's stop t: one of the two
// is stale, and a stale annotation would hide a stop that grew.
func disagreement(in inContainer, t server.Timings) (deployspec.Finding, bool) {
	written := map[string]string{}
	for _, f := range strings.Fields(deployspec.FormatStop(t)) {
		k, _, _ := strings.Cut(f, "=")
		written[k] = f
	}
	say := func(k string) string {
		switch w, ok := written[k]; {
		case ok:
			return w
		case k == "drain-probes":
			return k + "=0"
		}
		return k + "=0s"
	}
	var diffs []string
	for _, d := range []struct {
		setting string
		differs bool
		keys    []string
	}{
		{"drain", in.st.drain != t.Drain, []string{"drain"}},
		{"drain-probes", in.st.drainProbes != t.DrainProbes, []string{"drain-probes"}},
		{"drain-quiet", in.st.drainQuiet != t.DrainQuiet, []string{"drain-quiet"}},
		{"drain-min", in.st.drainMin != t.DrainMin, []string{"drain-min"}},
		{"shutdown-timeout", in.st.shutdown != t.ShutdownTimeout, []string{"shutdown-timeout"}},
		{"hooks", in.st.hooks != hooks(t), []string{"on-drain", "after-close"}},
	} {
		as, ok := in.set[d.setting]
		if !ok || !d.differs {
			continue
		}
		var ann []string
		for _, k := range d.keys {
			ann = append(ann, say(k))
		}
		diffs = append(diffs, fmt.Sprintf("%s against %s", as, strings.Join(ann, " ")))
	}
	if len(diffs) == 0 {
		return deployspec.Finding{}, false
	}
	return deployspec.Finding{
		Rule:  stopRule,
		Field: "metadata.annotations." + deployspec.StopAnnotation,
		Problem: fmt.Sprintf("the container's settings disagree with annotation %s (%s): one of the two is stale; the stop is checked as the annotation says",
			deployspec.StopAnnotation, strings.Join(diffs, "; ")),
		Fix: "generate the manifest again from the service, so that its args and its annotation agree (or, when the service's flag of that name means something else, name its own with -flag-names)",
	}, true
}

// hooks is what -hooks stands for: the OnDrain and AfterClose hooks'
// timeouts together, saturating.
func hooks(t server.Timings) time.Duration {
	if t.OnDrain > math.MaxInt64-t.AfterClose {
		return math.MaxInt64
	}
	return t.OnDrain + t.AfterClose
}

// fromAnnotation says, in a finding whose numbers come from the stop, that
// the stop is the annotation's.
func fromAnnotation(f deployspec.Finding) deployspec.Finding {
	if slices.Contains(stopRules, f.Rule) {
		f.Problem += " (the stop's numbers from annotation " + deployspec.StopAnnotation + ")"
	}
	return f
}

// serviceAnnotation reads the pod template's service annotation
// (deployspec.ServiceAnnotation): the warm-up deadline and the addresses,
// and true, when it has one that reads; a finding when it has one that
// does not (the settings then decide).
func serviceAnnotation(annotations map[string]string) (deployspec.Service, bool, *deployspec.Finding) {
	v, ok := annotations[deployspec.ServiceAnnotation]
	if !ok {
		return deployspec.Service{}, false, nil
	}
	s, err := deployspec.ParseService(v)
	if err != nil {
		return deployspec.Service{}, false, &deployspec.Finding{
			Rule:  "service-annotation",
			Field: "metadata.annotations." + deployspec.ServiceAnnotation,
			Problem: fmt.Sprintf("annotation %s does not read: %s; the probes are checked against the settings instead",
				deployspec.ServiceAnnotation, strings.TrimPrefix(err.Error(), "deployspec: ")),
			Fix: fmt.Sprintf("generate the manifest again from the service (deployspec.Deployment.YAML), or write it as deployspec.FormatService does: %q",
				deployspec.FormatService(deployspec.Service{WarmupDeadline: 2 * time.Minute, ProbeAddr: ":8081"})),
		}
	}
	return s, true, nil
}

package deployspec

// The service's real stop, carried by the manifest.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/probekit/probes/server"
)

// StopAnnotation is the pod template annotation that Deployment.YAML
// writes with what the service really takes to stop, as FormatStop writes
// it. A grace period is only as right as the stop it was computed from,
// and much of that stop is in no flag (the hooks that close a pool or
// flush an exporter after the server): with the stop in the manifest,
// probelint checks the grace period and the balancer against the service
// as it is, not as its flags suggest.
const StopAnnotation = "probes.probekit.dev/stop"

// The keys of StopAnnotation's value, in the order FormatStop writes them.
const (
	stopDrain       = "drain"
	stopDrainProbes = "drain-probes"
	stopDrainQuiet  = "drain-quiet"
	stopDrainMin    = "drain-min"
	stopOnDrain     = "on-drain"
	stopShutdown    = "shutdown-timeout"
	stopAfterClose  = "after-close"
	stopTotal       = "stop"
)

var (
	stopKeys     = []string{stopDrain, stopDrainProbes, stopDrainQuiet, stopDrainMin, stopOnDrain, stopShutdown, stopAfterClose, stopTotal}
	stopRequired = []string{stopDrain, stopOnDrain, stopShutdown, stopAfterClose, stopTotal}
)

// FormatStop writes t as StopAnnotation's value: one line of key=value
// pairs, one space apart, durations as time.ParseDuration reads them, in
// the order the stop runs:
//
//	drain=5s on-drain=0s shutdown-timeout=15s after-close=5s stop=28s
//
// drain, on-drain, shutdown-timeout and after-close are t's Drain,
// OnDrain, ShutdownTimeout and AfterClose; drain-probes, drain-quiet and
// drain-min follow drain when t sets DrainProbes, DrainQuiet and
// DrainMin; stop is t.Stop(), the longest stop, written for the people
// who read the manifest and checked by ParseStop against the rest.
func FormatStop(t server.Timings) string {
	parts := []string{stopDrain + "=" + human(t.Drain)}
	if t.DrainProbes != 0 {
		parts = append(parts, stopDrainProbes+"="+strconv.Itoa(t.DrainProbes))
	}
	if t.DrainQuiet != 0 {
		parts = append(parts, stopDrainQuiet+"="+human(t.DrainQuiet))
	}
	if t.DrainMin != 0 {
		parts = append(parts, stopDrainMin+"="+human(t.DrainMin))
	}
	parts = append(parts, stopOnDrain+"="+human(t.OnDrain), stopShutdown+"="+human(t.ShutdownTimeout),
		stopAfterClose+"="+human(t.AfterClose), stopTotal+"="+human(t.Stop()))
	return strings.Join(parts, " ")
}

// ParseStop reads StopAnnotation's value as FormatStop writes it: pairs
// apart by spaces, in any order, each key once. drain, on-drain,
// shutdown-timeout, after-close and stop are required, drain-probes,
// drain-quiet and drain-min optional (0 when absent). It refuses, naming
// the pair at fault, a key it does not know, a value that is not a
// non-negative duration (a count, for drain-probes), and a stop that is
// not what the other keys add up to (Timings.Stop): the value is the
// service's word on its stop, and a word that contradicts itself cannot
// be taken.
func ParseStop(v string) (server.Timings, error) {
	var t server.Timings
	fields := strings.Fields(v)
	if len(fields) == 0 {
		return server.Timings{}, fmt.Errorf("deployspec: the stop is empty; want key=value pairs such as %q", FormatStop(server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second}))
	}
	seen := map[string]bool{}
	var stop time.Duration
	for _, f := range fields {
		key, value, ok := strings.Cut(f, "=")
		switch {
		case !ok:
			return server.Timings{}, fmt.Errorf("deployspec: stop %q: not key=value", f)
		case !slices.Contains(stopKeys, key):
			return server.Timings{}, fmt.Errorf("deployspec: stop %q: unknown key %q; the keys are %s", f, key, strings.Join(stopKeys, ", "))
		case seen[key]:
			return server.Timings{}, fmt.Errorf("deployspec: stop %q: %s is set twice", f, key)
		}
		seen[key] = true
		if key == stopDrainProbes {
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 {
				return server.Timings{}, fmt.Errorf("deployspec: stop %q: not a count of failing readiness answers (0 or more)", f)
			}
			t.DrainProbes = n
			continue
		}
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return server.Timings{}, fmt.Errorf("deployspec: stop %q: not a duration such as 5s or 1m30s (0 or more)", f)
		}
		switch key {
		case stopDrain:
			t.Drain = d
		case stopDrainQuiet:
			t.DrainQuiet = d
		case stopDrainMin:
			t.DrainMin = d
		case stopOnDrain:
			t.OnDrain = d
		case stopShutdown:
			t.ShutdownTimeout = d
		case stopAfterClose:
			t.AfterClose = d
		case stopTotal:
			stop = d
		}
	}
	var missing []string
	for _, k := range stopRequired {
		if !seen[k] {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return server.Timings{}, fmt.Errorf("deployspec: stop %q: no %s; want every one of %s", v, strings.Join(missing, ", "), strings.Join(stopRequired, ", "))
	}
	if stop != t.Stop() {
		return server.Timings{}, fmt.Errorf("deployspec: stop %q: stop=%s, but the rest adds up to %s (%s): one of them is wrong", v, human(stop), human(t.Stop()), stopReason(t))
	}
	return t, nil
}

package deployspec_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
)

// FormatStop writes every setting of the stop, and ParseStop reads back
// exactly the Timings it was given.
func TestStopRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		name string
		t    server.Timings
		want string
	}{
		{"the example's", example.Stop, "drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s"},
		{"hooks", server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second, OnDrain: 2 * time.Second, AfterClose: 10 * time.Second},
			"drain=5s on-drain=2s shutdown-timeout=15s after-close=10s stop=33s"},
		{"OnDrain longer than the drain", server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second, OnDrain: 8 * time.Second},
			"drain=5s on-drain=8s shutdown-timeout=15s after-close=0s stop=26s"},
		{"probe-aware", server.Timings{Drain: 30 * time.Second, DrainProbes: 3, DrainQuiet: 2 * time.Second, ShutdownTimeout: 15 * time.Second},
			"drain=30s drain-probes=3 drain-quiet=2s on-drain=0s shutdown-timeout=15s after-close=0s stop=48s"},
		{"quiet", server.Timings{Drain: time.Minute, DrainQuiet: 2 * time.Second, DrainMin: 10 * time.Second, ShutdownTimeout: 90 * time.Second},
			"drain=1m drain-quiet=2s drain-min=10s on-drain=0s shutdown-timeout=1m30s after-close=0s stop=2m33s"},
		{"fractions", server.Timings{Drain: 2500 * time.Millisecond, ShutdownTimeout: 250 * time.Millisecond},
			"drain=2.5s on-drain=0s shutdown-timeout=250ms after-close=0s stop=5.75s"},
		{"saturated", server.Timings{Drain: 1 << 62, ShutdownTimeout: 1 << 62},
			"drain=1281023h53m38.427387904s on-drain=0s shutdown-timeout=1281023h53m38.427387904s after-close=0s stop=2562047h47m16.854775807s"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := deployspec.FormatStop(tt.t)
			if got != tt.want {
				t.Errorf("FormatStop: got %q, want %q", got, tt.want)
			}
			back, err := deployspec.ParseStop(got)
			if err != nil || back != tt.t {
				t.Errorf("ParseStop(%q): got %+v, %v; want %+v", got, back, err, tt.t)
			}
		})
	}
	// Any order, any spaces.
	got, err := deployspec.ParseStop("  stop=33s after-close=10s\tshutdown-timeout=15s on-drain=0s drain=5s ")
	if want := (server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second, AfterClose: 10 * time.Second}); err != nil || got != want {
		t.Errorf("in another order: got %+v, %v; want %+v", got, err, want)
	}
}

// A value that is not the service's word on its stop is refused, with an
// error that names the pair at fault.
func TestParseStopRefuses(t *testing.T) {
	const good = "drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s"
	for _, tt := range []struct {
		name, value, want string
	}{
		{"empty", "", "the stop is empty"},
		{"blank", "  ", "the stop is empty"},
		{"JSON", `{"drain": "5s"}`, `"{\"drain\":": not key=value`},
		{"a word", "drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s fast", `"fast": not key=value`},
		{"an unknown key", strings.Replace(good, "after-close", "after_close", 1), `unknown key "after_close"; the keys are drain, drain-probes`},
		{"a key twice", good + " drain=5s", `"drain=5s": drain is set twice`},
		{"not a duration", strings.Replace(good, "after-close=0s", "after-close=ten", 1), `"after-close=ten": not a duration`},
		{"no unit", strings.Replace(good, "drain=5s", "drain=5", 1), `"drain=5": not a duration`},
		{"negative", strings.Replace(good, "on-drain=0s", "on-drain=-1s", 1), `"on-drain=-1s": not a duration such as 5s or 1m30s (0 or more)`},
		{"a count that is not one", good + " drain-probes=two", `"drain-probes=two": not a count`},
		{"a negative count", good + " drain-probes=-1", `"drain-probes=-1": not a count`},
		{"a missing key", "drain=5s shutdown-timeout=15s stop=23s", "no on-drain, after-close; want every one of drain, on-drain, shutdown-timeout, after-close, stop"},
		{"no stop", "drain=5s on-drain=0s shutdown-timeout=15s after-close=0s", "no stop"},
		{"a stop that is not the sum", strings.Replace(good, "after-close=0s", "after-close=10s", 1),
			"stop=23s, but the rest adds up to 33s (drain 5s + shutdown timeout 15s + AfterClose hooks 10s + 3s of one-second bounds): one of them is wrong"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := deployspec.ParseStop(tt.value)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "deployspec: ") {
				t.Errorf("ParseStop(%q): got %+v, %v; want an error with %q", tt.value, got, err, tt.want)
			}
			if got != (server.Timings{}) {
				t.Errorf("ParseStop(%q): got %+v with its error, want the zero Timings", tt.value, got)
			}
		})
	}
}

// The Deployment carries the stop on its pod template, quoted so that YAML
// reads it as one string, and it is the stop the grace period covers.
func TestDeploymentCarriesTheStop(t *testing.T) {
	s := example
	s.Stop.AfterClose = 10 * time.Second
	d := deployspec.Deployment{Name: "items", Image: "items:1", AppAddr: ":8080", Service: s}
	y, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(y, "  template:\n    metadata:\n")
	tmpl, _, _ := strings.Cut(rest, "    spec:\n")
	prefix := "        " + deployspec.StopAnnotation + ": "
	var value string
	for line := range strings.SplitSeq(tmpl, "\n") {
		if v, found := strings.CutPrefix(line, prefix); found {
			value, err = strconv.Unquote(v)
			if err != nil {
				t.Fatalf("the annotation's value %s is not a quoted string: %v", v, err)
			}
		}
	}
	if !ok || value == "" {
		t.Fatalf("no %s annotation on the pod template:\n%s", deployspec.StopAnnotation, y)
	}
	got, err := deployspec.ParseStop(value)
	if err != nil || got != s.Stop {
		t.Errorf("the annotation reads %+v, %v; want %+v", got, err, s.Stop)
	}
	if !strings.Contains(y, "terminationGracePeriodSeconds: 38\n") || !strings.Contains(value, "stop=33s") {
		t.Errorf("want a 33s stop and a 38s grace period:\n%s", y)
	}
}

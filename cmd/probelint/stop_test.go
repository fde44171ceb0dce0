package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// edit replaces old with new, once.
type edit struct{ old, new string }

func apply(t *testing.T, text string, edits ...edit) string {
	t.Helper()
	for _, e := range edits {
		next := strings.Replace(text, e.old, e.new, 1)
		if next == text {
			t.Fatalf("the edit %q did not apply", e.old)
		}
		text = next
	}
	return text
}

// reported is one finding as the linter prints it: its rule, the line's
// text and the whole report.
type reported struct{ rule, line, text string }

var reportRE = regexp.MustCompile(`(?m)^.*?:(\d+): .*?: ([a-z]+(?:-[a-z]+)*): .*\n\tfix: .*\n`)

// findings parses the linter's stdout, for a file of text.
func findings(t *testing.T, out, text string) []reported {
	t.Helper()
	lines := strings.Split(text, "\n")
	var got []reported
	for _, m := range reportRE.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(m[1])
		if n < 1 || n > len(lines) {
			t.Fatalf("a finding at line %d, outside the file:\n%s", n, out)
		}
		got = append(got, reported{rule: m[2], line: strings.TrimSpace(lines[n-1]), text: m[0]})
	}
	if strings.Count(out, "\tfix: ") != len(got) {
		t.Fatalf("findings the test cannot parse:\n%s", out)
	}
	return got
}

// The annotation the example's Deployment carries.
const exampleStop = `"drain=5s on-drain=0s shutdown-timeout=15s after-close=0s stop=23s"`

// The pod template's stop annotation is the stop the grace period and the
// balancer are checked against, above the flags and -from-args, and a
// finding from it says so; one that does not read is a finding at its
// line, and the stop is then the settings'.
func TestStopAnnotation(t *testing.T) {
	alb, err := os.ReadFile("../../example/deploy/deployment-aws-alb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	albFlags := []string{"-warmup-deadline=2m", "-drain=30s", "-drain-quiet=1s", "-drain-min=10s", "-shutdown-timeout=15s", "-probe-addr=0.0.0.0:8081"}
	hooks := edit{exampleStop, `"drain=5s on-drain=0s shutdown-timeout=15s after-close=10s stop=33s"`}
	type want struct {
		rule, line string
		has        []string
	}
	fromAnn := "(the stop's numbers from annotation probes.probekit.dev/stop)"
	cronJob := `apiVersion: batch/v1
kind: CronJob
metadata:
  name: c
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations:
            probes.probekit.dev/stop: "drain=5s"
        spec:
          terminationGracePeriodSeconds: 28
          restartPolicy: Never
          containers:
            - name: app
              image: x
              readinessProbe:
                httpGet: {path: /readyz, port: 8081}
                periodSeconds: 1
                failureThreshold: 1
              terminationMessagePolicy: FallbackToLogsOnError
`
	for _, tt := range []struct {
		name  string
		text  string // the example's Deployment when empty
		edits []edit
		args  [][]string // each run: the linter's flags; the example's then -from-args when nil
		want  []want     // none: clean
	}{
		{name: "the real stop past the grace period", edits: []edit{hooks, {"terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 25"}},
			want: []want{{"grace-period", "terminationGracePeriodSeconds: 25", []string{"SIGKILL comes 25s", "33s to stop", "AfterClose hooks 10s", fromAnn, "fix: terminationGracePeriodSeconds: 38"}}}},
		{name: "the real stop within the grace period", edits: []edit{hooks, {"terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 40"}}},
		{name: "above the typed flags: a longer stop", edits: []edit{hooks},
			want: []want{{"grace-period", "terminationGracePeriodSeconds: 28", []string{"33s to stop", fromAnn}}}},
		{name: "above the typed flags: a shorter stop", args: [][]string{append(append([]string{}, flags...), "-shutdown-timeout=60s", "-hooks=20s")}},
		{name: "grace period unset, the flags' stop", text: "bare", edits: []edit{{"      terminationGracePeriodSeconds: 28\n", ""}},
			args: [][]string{append(append([]string{}, flags...), "-shutdown-timeout=30s")},
			want: []want{{"grace-period", "spec:", []string{"SIGKILL comes 30s", "38s to stop"}}}},
		{name: "grace period unset, the annotation's stop", edits: []edit{hooks, {"      terminationGracePeriodSeconds: 28\n", ""}},
			want: []want{{"grace-period", "spec:", []string{"SIGKILL comes 30s", "33s to stop", fromAnn}}}},
		{name: "the readiness probe against the annotation's drain",
			edits: []edit{{exampleStop, `"drain=1s on-drain=0s shutdown-timeout=15s after-close=0s stop=19s"`}}, args: [][]string{flags},
			want: []want{{"readiness-drain", "periodSeconds: 1", []string{"longer than the 1s the service keeps serving", fromAnn}}}},
		{name: "not a duration", edits: []edit{{"after-close=0s", "after-close=ten"}},
			want: []want{{"stop-annotation", "probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=15s after-close=ten stop=23s\"",
				[]string{`Deployment "probes-example": stop-annotation: annotation probes.probekit.dev/stop does not read: stop "after-close=ten": not a duration`, "the stop is checked as the settings say"}}}},
		{name: "not a sum", edits: []edit{{"after-close=0s", "after-close=10s"}},
			want: []want{{"stop-annotation", "probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=15s after-close=10s stop=23s\"",
				[]string{"stop=23s, but the rest adds up to 33s"}}}},
		{name: "one that does not read leaves the settings' stop", edits: []edit{{"after-close=0s", "after-close=ten"}, {"terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 20"}},
			want: []want{{"stop-annotation", "probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=15s after-close=ten stop=23s\"", nil},
				{"grace-period", "terminationGracePeriodSeconds: 20", []string{"23s to stop (drain 5s + shutdown timeout 15s + 3s of one-second bounds)\n"}}}},
		{name: "a Pod's own annotations", text: anchored, edits: []edit{{"  name: p\n", "  name: p\n  annotations: {probes.probekit.dev/stop: \"drain=5s on-drain=0s shutdown-timeout=15s after-close=10s stop=33s\"}\n"}},
			args: [][]string{flags}, want: []want{{"grace-period", "terminationGracePeriodSeconds: 28", []string{"33s to stop", fromAnn}}}},
		{name: "a CronJob's pod template", text: cronJob, args: [][]string{flags},
			want: []want{{"stop-annotation", `probes.probekit.dev/stop: "drain=5s"`, []string{`CronJob "c": stop-annotation:`, "no on-drain, shutdown-timeout, after-close, stop"}}}},
		{name: "the balancer against the annotation's drain", text: string(alb), edits: []edit{{"drain-min=10s on-drain", "drain-min=5s on-drain"}}, args: [][]string{albFlags},
			want: []want{{"balancer-detection", "alb.ingress.kubernetes.io/healthcheck-interval-seconds: \"5\"", []string{"DrainUntilQuiet's min is 5s", fromAnn}}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			switch text {
			case "":
				text = base(t)
			case "bare":
				text = bare(t, base(t))
			}
			text = apply(t, text, tt.edits...)
			file := write(t, "m.yaml", text)
			runs := tt.args
			if runs == nil {
				runs = [][]string{flags, {"-from-args"}}
			}
			for _, args := range runs {
				code, out, errOut := lint(t, append(append([]string{}, args...), file)...)
				wantCode := clean
				if len(tt.want) > 0 {
					wantCode = unsafe
				}
				if code != wantCode || errOut != "" {
					t.Fatalf("%q: got exit %d, stderr %q; want %d\n%s", args, code, errOut, wantCode, out)
				}
				got := findings(t, out, text)
				if len(got) != len(tt.want) {
					t.Fatalf("%q: got %d findings, want %d:\n%s", args, len(got), len(tt.want), out)
				}
				for i, w := range tt.want {
					if got[i].rule != w.rule || !strings.Contains(got[i].line, w.line) {
						t.Errorf("%q: finding %d: got %s at %q; want %s at the line with %q", args, i, got[i].rule, got[i].line, w.rule, w.line)
					}
					for _, h := range w.has {
						if !strings.Contains(got[i].text, h) {
							t.Errorf("%q: finding %d: got\n%s; want %q in it", args, i, got[i].text, h)
						}
					}
					if !slices.Contains(w.has, fromAnn) && strings.Contains(got[i].text, fromAnn) {
						t.Errorf("%q: finding %d says its stop came from the annotation; it did not:\n%s", args, i, got[i].text)
					}
				}
			}
		})
	}
}

// -flag-names reads the settings from a container by the service's own
// flag and variable names, and by those only.
func TestFlagNames(t *testing.T) {
	const arg = "            - -shutdown-timeout=15s\n"
	for _, tt := range []struct {
		name      string
		annotated bool
		edits     []edit
		names     string // -flag-names; none when empty
		rule      string // the one finding; clean when empty
		has       string
	}{
		{name: "unknown to the linter", edits: []edit{{arg, "            - -grace=60s\n"}}},
		{name: "its own flag", edits: []edit{{arg, "            - -grace=60s\n"}}, names: "shutdown-timeout=grace", rule: "grace-period", has: "1m8s to stop"},
		{name: "its own flag, written apart", edits: []edit{{arg, "            - --grace\n            - 1m\n"}}, names: "shutdown-timeout=--grace", rule: "grace-period", has: "1m8s to stop"},
		{name: "its own variable", edits: []edit{{arg, "          env:\n            - name: GRACE_PERIOD\n              value: 60s\n"}},
			names: "shutdown-timeout=$GRACE_PERIOD", rule: "grace-period", has: "1m8s to stop"},
		{name: "a flag and a variable", edits: []edit{{arg, "            - -grace=$(GRACE_PERIOD)\n          env:\n            - name: GRACE_PERIOD\n              value: 60s\n"}},
			names: "shutdown-timeout=grace, shutdown-timeout=$GRACE_PERIOD", rule: "grace-period", has: "1m8s to stop"},
		{name: "the example's name no longer read", edits: []edit{{arg, "            - -shutdown-timeout=60s\n            - -grace=15s\n          env:\n            - name: SHUTDOWN_TIMEOUT\n              value: 60s\n"}},
			names: "shutdown-timeout=grace"},
		{name: "names swapped", edits: []edit{{"            - -drain=5s\n", "            - -drain=1h\n"}},
			names: "drain=shutdown-timeout,shutdown-timeout=", rule: "grace-period", has: "drain 15s + shutdown timeout 15s"},
		{name: "none at all", edits: []edit{{arg, "            - -shutdown-timeout=1h\n"}}, names: "shutdown-timeout="},
		{name: "against the annotation", annotated: true, edits: []edit{{arg, "            - -grace=60s\n"}}, names: "shutdown-timeout=grace",
			rule: "stop-annotation", has: "(-grace=60s against shutdown-timeout=15s)"},
		{name: "a variable against the annotation", annotated: true, edits: []edit{{arg, "          env:\n            - name: GRACE_PERIOD\n              value: 60s\n"}},
			names: "shutdown-timeout=$GRACE_PERIOD", rule: "stop-annotation", has: "(env GRACE_PERIOD=60s against shutdown-timeout=15s)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := base(t)
			if !tt.annotated {
				text = bare(t, text)
			}
			text = apply(t, text, tt.edits...)
			args := []string{"-from-args"}
			if tt.names != "" {
				args = append(args, "-flag-names", tt.names)
			}
			code, out, errOut := lint(t, append(args, write(t, "d.yaml", text))...)
			if tt.rule == "" {
				if code != clean || errOut != "" {
					t.Errorf("got exit %d, stderr %q; want 0\n%s", code, errOut, out)
				}
				return
			}
			got := findings(t, out, text)
			if code != unsafe || errOut != "" || len(got) != 1 || got[0].rule != tt.rule || !strings.Contains(got[0].text, tt.has) {
				t.Errorf("got exit %d, stderr %q\n%s; want one %s finding with %q", code, errOut, out, tt.rule, tt.has)
			}
		})
	}
}

// A -flag-names the linter cannot follow is a usage error: exit 2, with
// what is wrong.
func TestFlagNamesRefused(t *testing.T) {
	file := "../../example/deploy/deployment.yaml"
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-flag-names", "drain=x"}, "-flag-names names the service's flags in the containers: it needs -from-args"},
		{[]string{"-from-args", "-flag-names", "drain"}, `-flag-names: "drain" is not setting=name`},
		{[]string{"-from-args", "-flag-names", "grace=shutdown-timeout"}, `-flag-names: "grace=shutdown-timeout": no setting "grace"; the settings are addr, drain,`},
		{[]string{"-from-args", "-flag-names", "drain=shutdown-timeout"}, "-flag-names: -shutdown-timeout already sets shutdown-timeout, as the example names it; name shutdown-timeout too (shutdown-timeout=its-own-name, or shutdown-timeout= for none)"},
		{[]string{"-from-args", "-flag-names", "drain=x,shutdown-timeout=--x"}, "-flag-names: -x names both drain and shutdown-timeout; a name sets one setting"},
		{[]string{"-from-args", "-flag-names", "drain=$DRAIN,shutdown-timeout=$DRAIN"}, "-flag-names: $DRAIN names both drain and shutdown-timeout"},
		{[]string{"-from-args", "-flag-names", "drain=-"}, `-flag-names: "drain=-": "-" is not a flag's name or a $VARIABLE`},
		{[]string{"-from-args", "-flag-names", "drain=$"}, `"$" is not a flag's name or a $VARIABLE`},
		{[]string{"-from-args", "-flag-names", "drain=a=b"}, `"a=b" is not a flag's name`},
	} {
		code, out, errOut := lint(t, append(tt.args, file)...)
		if code != unreadable || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("%q: got exit %d, stdout %q, stderr %q; want exit 2 and %q", tt.args, code, out, errOut, tt.want)
		}
	}
}

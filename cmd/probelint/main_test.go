package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

// The example's timing flags, as its deployment files pass them.
var flags = []string{"-warmup-deadline=2m", "-drain=5s", "-shutdown-timeout=15s", "-probe-addr=0.0.0.0:8081"}

func lint(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut strings.Builder
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func write(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// The files -print-deploy generated for the example lint clean.
func TestGeneratedFilesAreClean(t *testing.T) {
	for _, tt := range []struct {
		file  string
		extra []string
	}{
		{"deployment.yaml", nil},
		{"deployment-grpc.yaml", []string{"-grpc-addr=0.0.0.0:9090", "-grpc-services=items.v1.Items"}},
	} {
		code, out, errOut := lint(t, append(append(flags, tt.extra...), "../../example/deploy/"+tt.file)...)
		if code != clean || out != "" || errOut != "" {
			t.Errorf("%s: exit %d\n%s%s", tt.file, code, out, errOut)
		}
	}
}

func base(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../example/deploy/deployment.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return string(raw)
}

// bare is text without its stop annotation and the comment above it: a
// manifest whose stop is the settings'.
func bare(t *testing.T, text string) string {
	t.Helper()
	lines := strings.SplitAfter(text, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, deployspec.StopAnnotation+": ") })
	if i < 1 || !strings.Contains(lines[i-1], "# ") {
		t.Fatalf("no %s annotation under its comment", deployspec.StopAnnotation)
	}
	return strings.Join(slices.Delete(lines, i-1, i+1), "")
}

// withoutService is text without its service annotation and the comment
// above it: a manifest whose deadline and addresses are the settings'.
func withoutService(t *testing.T, text string) string {
	t.Helper()
	lines := strings.SplitAfter(text, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, deployspec.ServiceAnnotation+": ") })
	if i < 1 || !strings.Contains(lines[i-1], "# ") {
		t.Fatalf("no %s annotation under its comment", deployspec.ServiceAnnotation)
	}
	return strings.Join(slices.Delete(lines, i-1, i+1), "")
}

// Each manifest is the right one but for one fault: exit 1, and the
// report names the rule, the file and the line of the field at fault.
func TestEachRule(t *testing.T) {
	good := base(t)
	tests := []struct {
		name, old, new string
		args           []string
		rule, line     string // line: the text of the line reported
	}{
		{"startup budget", "failureThreshold: 26", "failureThreshold: 10", nil, "startup-budget", "failureThreshold: 10"},
		{"grace period", "terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 20", nil, "grace-period", "terminationGracePeriodSeconds: 20"},
		{"readiness misses the drain", "            periodSeconds: 1\n", "            periodSeconds: 5\n", nil, "readiness-drain", "periodSeconds: 5"},
		{"liveness on one failure", "failureThreshold: 3", "failureThreshold: 1", nil, "liveness-threshold", "failureThreshold: 1"},
		{"liveness on readiness", "path: /livez", "path: /readyz", nil, "liveness-target", "path: /readyz"},
		{"liveness on a dependency", "path: /livez", "path: /readyz/postgres", nil, "liveness-target", "path: /readyz/postgres"},
		{"a path nobody serves", "path: /startupz", "path: /started", nil, "probe-path", "path: /started"},
		{"a trailing slash", "path: /readyz\n", "path: /readyz/\n", nil, "probe-path", "path: /readyz/"},
		{"the API's port", "              path: /livez\n              port: probes", "              path: /livez\n              port: 8080", nil, "probe-port", "port: 8080"},
		{"a port name not declared", "              path: /readyz\n              port: probes", "              path: /readyz\n              port: probe", nil, "probe-port", "port: probe"},
		{"no readiness", "          readinessProbe:\n            httpGet:\n              path: /readyz\n              port: probes\n", "          readinessProbe:\n            tcpSocket:\n              port: probes\n", nil, "probe-target", "tcpSocket:"},
		{"probes on loopback, as the service says", "probe-addr=0.0.0.0:8081\"", "probe-addr=127.0.0.1:8081\"", nil, "probe-listen", "args:"},
		{"no termination message policy", "          terminationMessagePolicy: FallbackToLogsOnError\n", "", nil, "termination-message-policy", "- name: app"},
		{"the File policy", "terminationMessagePolicy: FallbackToLogsOnError", "terminationMessagePolicy: File", nil, "termination-message-policy", "terminationMessagePolicy: File"},
		{"a preStop sleep past a Duration", "          ports:\n", "          lifecycle:\n            preStop:\n              sleep:\n                seconds: 18446744074\n          ports:\n", nil, "grace-period", "terminationGracePeriodSeconds: 28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text := strings.Replace(good, tt.old, tt.new, 1)
			if tt.old != "" && text == good {
				t.Fatalf("the edit %q did not apply", tt.old)
			}
			file := write(t, "deployment.yaml", text)
			args := append(append(append([]string{}, flags...), tt.args...), file)
			code, out, errOut := lint(t, args...)
			if code != unsafe || errOut != "" {
				t.Fatalf("exit %d, stderr %q; want 1\n%s", code, errOut, out)
			}
			if strings.Count(out, "\tfix: ") != 1 || !strings.Contains(out, ": "+tt.rule+": ") {
				t.Fatalf("want exactly one %s finding, got:\n%s", tt.rule, out)
			}
			loc, _, _ := strings.Cut(out, ": container")
			n, _ := strconv.Atoi(loc[strings.LastIndex(loc, ":")+1:])
			lines := strings.Split(text, "\n")
			if n < 1 || n > len(lines) || !strings.Contains(lines[n-1], tt.line) {
				t.Errorf("reported at %s, line %q; want the line with %q", loc, lines[max(n-1, 0)], tt.line)
			}
		})
	}
}

// Other pod templates, several documents in one file, and kinds without a
// pod template.
func TestKindsAndDocuments(t *testing.T) {
	good := base(t)
	statefulSet := strings.Replace(strings.Replace(good, "kind: Deployment", "kind: StatefulSet", 1), "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 0\n      maxSurge: 1\n", "  serviceName: probes-example\n", 1)
	daemonSet := strings.Replace(strings.Replace(good, "kind: Deployment", "kind: DaemonSet", 1), "  replicas: 2\n", "", 1)
	daemonSet = strings.Replace(daemonSet, "  strategy:\n    type: RollingUpdate\n    rollingUpdate:\n      maxUnavailable: 0\n      maxSurge: 1\n", "", 1)
	pod := `apiVersion: v1
kind: Pod
metadata:
  name: p
spec:
  terminationGracePeriodSeconds: 10
  containers:
    - name: app
      image: x
      readinessProbe:
        httpGet: {path: /readyz, port: 8081}
        periodSeconds: 1
`
	service := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports: [{port: 80}]\n"
	for _, tt := range []struct {
		name, text string
		code       int
		want       string
	}{
		{"statefulset", statefulSet, clean, ""},
		{"daemonset", daemonSet, clean, ""},
		{"pod with a short grace", pod, unsafe, ":6: container \"app\": grace-period"},
		{"several documents", service + "---\n" + good + "---\n" + pod, unsafe, "grace-period"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := lint(t, append(append([]string{}, flags...), write(t, "m.yaml", tt.text))...)
			if code != tt.code || !strings.Contains(out, tt.want) || errOut != "" {
				t.Errorf("exit %d, want %d; out %q, want %q; stderr %q", code, tt.code, out, tt.want, errOut)
			}
		})
	}
}

// lineAt is the line of text, from 1, where sub first begins.
func lineAt(text, sub string) int {
	return strings.Count(text[:strings.Index(text, sub)], "\n") + 1
}

// Input the linter cannot read: exit 2, naming the file and the line.
func TestUnreadable(t *testing.T) {
	good := base(t)
	misspelt := strings.Replace(good, "periodSeconds: 1\n", "periodSecond: 1\n", 1)
	otherCase := strings.Replace(good, "            periodSeconds: 1\n", "            periodSeconds: 30\n            periodseconds: 1\n", 1)
	for _, tt := range []struct {
		name, text, want string
	}{
		{"bad YAML", "apiVersion: v1\nkind: Pod\n  metadata: {}\n", ":3: not YAML"},
		{"misspelt field", misspelt, fmt.Sprintf(`:%d: Deployment does not decode as Kubernetes has it: unknown field "spec.template.spec.containers[0].readinessProbe.periodSecond"`, lineAt(misspelt, "periodSecond: 1\n"))},
		{"a field in another case", otherCase, fmt.Sprintf(`:%d: Deployment does not decode as Kubernetes has it: unknown field "spec.template.spec.containers[0].readinessProbe.periodseconds"`, lineAt(otherCase, "periodseconds: 1\n"))},
		{"no kind", "a: 1\n", ":1: no kind"},
		{"misspelt budget field", strings.Replace(goodBudget, "unhealthyPodEvictionPolicy", "unhealthyPodEvictionPolicies", 1), `:7: PodDisruptionBudget does not decode as Kubernetes has it: unknown field "spec.unhealthyPodEvictionPolicies"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := write(t, "bad.yaml", tt.text)
			code, out, errOut := lint(t, append(append([]string{}, flags...), file)...)
			if code != unreadable || !strings.HasPrefix(errOut, file+":") || !strings.Contains(errOut, tt.want) || out != "" {
				t.Errorf("exit %d, stderr %q; want 2 and %q after the file name", code, errOut, tt.want)
			}
		})
	}
	if code, _, errOut := lint(t, "/no/such/file.yaml"); code != unreadable || !strings.Contains(errOut, "/no/such/file.yaml") {
		t.Errorf("missing file: exit %d, %q", code, errOut)
	}
	if code, _, _ := lint(t); code != unreadable {
		t.Errorf("no files: exit %d, want 2", code)
	}
	if code, _, _ := lint(t, "-drain=soon", "x.yaml"); code != unreadable {
		t.Errorf("a bad flag: exit %d, want 2", code)
	}
}

// What `go run ./example -print-deploy` prints with the example's defaults
// lints clean with the linter's defaults, which are the example's.
func TestExampleDefaultsRoundTrip(t *testing.T) {
	for _, tt := range []struct {
		form  string
		extra []string
	}{
		{"-print-deploy", nil},
		{"-print-deploy=kubernetes-grpc", []string{"-grpc-addr=:9090"}},
	} {
		cmd := exec.Command("go", "run", ".", tt.form)
		cmd.Dir = "../../example"
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go run ./example %s: %v", tt.form, err)
		}
		code, report, errOut := lint(t, append(tt.extra, write(t, "generated.yaml", string(out)))...)
		if code != clean {
			t.Errorf("%s: exit %d\n%s%s", tt.form, code, report, errOut)
		}
	}
}

// A key set twice in one mapping is an error naming the key and both lines:
// the linter would read one value and the API server keep another.
func TestDuplicateKeys(t *testing.T) {
	good := base(t)
	service := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspec:\n  ports:\n    - port: 80\n      port: 81\n"
	for _, tt := range []struct {
		name, old, new string
		text           string // instead of the edit, when set
		key            string
		first, dup     int // lines, counted from the edit's first line (from 1 with text)
	}{
		{name: "kind", old: "kind: Deployment\n", new: "kind: Service\nkind: Deployment\n", key: "kind", first: 0, dup: 1},
		{name: "kind quoted once", old: "kind: Deployment\n", new: "\"kind\": Service\nkind: Deployment\n", key: "kind", first: 0, dup: 1},
		{name: "a probe's period", old: "            periodSeconds: 1\n", new: "            periodSeconds: 1\n            periodSeconds: 30\n",
			key: "periodSeconds", first: 0, dup: 1},
		{name: "a number and a string", old: "        app: probes-example\n      annotations:", new: "        app: probes-example\n        1: a\n        \"1\": b\n      annotations:",
			key: "1", first: 1, dup: 2},
		{name: "in a Service", text: service, key: "port", first: 7, dup: 8},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text, at := tt.text, 0
			if text == "" {
				i := strings.Index(good, tt.old)
				if i < 0 {
					t.Fatalf("the edit %q did not apply", tt.old)
				}
				text, at = strings.Replace(good, tt.old, tt.new, 1), strings.Count(good[:i], "\n")+1
			}
			want := fmt.Sprintf(":%d: duplicate key %q (first at line %d)", at+tt.dup, tt.key, at+tt.first)
			file := write(t, "dup.yaml", text)
			code, out, errOut := lint(t, append(append([]string{}, flags...), file)...)
			if code != unreadable || !strings.HasPrefix(errOut, file+":") || !strings.Contains(errOut, want) || out != "" {
				t.Errorf("got exit %d, stderr %q, stdout %q; want exit 2 and %q after the file name", code, errOut, out, want)
			}
		})
	}
}

// anchored is a safe Pod whose liveness probe merges the startup probe's
// settings and overrides some.
const anchored = `apiVersion: v1
kind: Pod
metadata:
  name: p
  labels:
    kind: &kind Pod
spec:
  terminationGracePeriodSeconds: 28
  containers:
    - name: app
      image: x
      startupProbe: &probe
        httpGet: {path: /startupz, port: 8081}
        periodSeconds: 5
        failureThreshold: 26
      readinessProbe: &ready
        httpGet: {path: /readyz, port: 8081}
        periodSeconds: 1
        failureThreshold: 1
      livenessProbe:
        <<: *probe
        httpGet: {path: /livez, port: 8081}
        periodSeconds: 10
        failureThreshold: 3
      terminationMessagePolicy: FallbackToLogsOnError
`

// Documents are read as kubectl and the API server read them: empty
// documents and a trailing separator are skipped, aliases and merge keys
// resolved.
func TestDocumentsAsTheAPIServerReadsThem(t *testing.T) {
	laughs := "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  annotations:\n    a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	for i, prev := 'b', 'a'; i <= 'h'; i, prev = i+1, i {
		laughs += fmt.Sprintf("    %c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", i, i, prev, prev, prev, prev, prev, prev, prev, prev, prev, prev)
	}
	chain := "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  annotations:\n    m0: &m0 {"
	for i := range 300 {
		chain += fmt.Sprintf("k%d: v, ", i)
	}
	chain += "k: v}\n"
	for i := 1; i < 400; i++ {
		chain += fmt.Sprintf("    m%d: &m%d {<<: *m%d, x%d: v}\n", i, i, i-1, i)
	}
	for _, tt := range []struct {
		name, old, new string
		text           string // instead of the edit, when set
		code           int
		want           string // in stdout for 1, in stderr for 2
	}{
		{name: "merge keys and anchors", code: clean},
		{name: "an empty value in a flow mapping", old: "      image: x\n", new: "      image: x\n      securityContext: {runAsUser: }\n", code: clean},
		{name: "a trailing separator", text: anchored + "---\n", code: clean},
		{name: "empty documents", text: "---\n---\n# nothing here\n---\n" + anchored + "---\n\n---\n", code: clean},
		{name: "a null document", text: anchored + "--- null\n", code: clean},
		{name: "kind by an alias", old: "kind: Pod\n", new: "", text: "", code: unsafe, want: "grace-period"},
		{name: "a whole probe by an alias", old: "      readinessProbe: &ready\n        httpGet: {path: /readyz, port: 8081}\n        periodSeconds: 1\n        failureThreshold: 1\n",
			new: "      readinessProbe: *probe\n", code: unsafe, want: "the startup gate, not readiness"},
		{name: "the merged values count", old: "        <<: *probe\n", new: "        <<: [*ready, *probe]\n", code: clean},
		{name: "the first of the merged maps wins", old: "        <<: *probe\n        httpGet: {path: /livez, port: 8081}\n        periodSeconds: 10\n        failureThreshold: 3\n",
			new: "        <<: [*ready, *probe]\n        httpGet: {path: /livez, port: 8081}\n", code: unsafe, want: "liveness-threshold"},
		{name: "a merge after the key it overrides", old: "        <<: *probe\n        httpGet: {path: /livez, port: 8081}\n        periodSeconds: 10\n        failureThreshold: 3\n",
			new: "        httpGet: {path: /livez, port: 8081}\n        failureThreshold: 3\n        <<: *ready\n", code: unreadable, want: `:23: the merge key (<<) sets "httpGet" again after line 21`},
		{name: "two merge keys", old: "        <<: *probe\n", new: "        <<: *probe\n        <<: *ready\n", code: unreadable, want: `:22: duplicate key "<<" (first at line 21)`},
		{name: "a merge of a scalar", old: "        <<: *probe\n", new: "        <<: *kind\n", code: unreadable, want: ":21: the merge key (<<) needs a mapping or a list of mappings"},
		{name: "an alias that contains itself", text: "apiVersion: v1\nkind: Pod\nmetadata: &m\n  name: *m\n", code: unreadable, want: ":4: alias *m contains itself"},
		{name: "excessive aliasing", text: laughs, code: unreadable, want: "aliases expand the document"},
		{name: "a chain of merges", text: chain, code: unreadable, want: "merge keys expand the document by more than 100000 nodes"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			text := tt.text
			if text == "" {
				text = strings.Replace(anchored, tt.old, tt.new, 1)
				if tt.old != "" && text == anchored {
					t.Fatalf("the edit %q did not apply", tt.old)
				}
				if tt.name == "kind by an alias" {
					text += "kind: *kind\n"
					text = strings.Replace(text, "terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 10", 1)
				}
			}
			file := write(t, "m.yaml", text)
			code, out, errOut := lint(t, append(append([]string{}, flags...), file)...)
			got := out
			if tt.code == unreadable {
				got = errOut
			}
			if code != tt.code || !strings.Contains(got, tt.want) || (tt.code != unreadable && errOut != "") {
				t.Errorf("got exit %d, stdout %q, stderr %q; want exit %d and %q", code, out, errOut, tt.code, tt.want)
			}
		})
	}
}

// With -from-args the settings come from each container's own args: the
// example's files lint clean with no settings typed, and a manifest whose
// args ask for a longer shutdown than its grace period allows does not,
// though it lints clean on the defaults. With the stop annotation, args
// that disagree with it are reported as such: one of the two is stale.
func TestFromArgs(t *testing.T) {
	for _, file := range []string{"deployment.yaml", "deployment-grpc.yaml", "deployment-aws-alb.yaml", "deployment-aws-nlb.yaml", "deployment-gke.yaml"} {
		if code, out, errOut := lint(t, "-from-args", "../../example/deploy/"+file); code != clean {
			t.Errorf("%s with -from-args: exit %d\n%s%s", file, code, out, errOut)
		}
	}
	slow := strings.Replace(base(t), "- -shutdown-timeout=15s", "- -shutdown-timeout=60s", 1)
	if slow == base(t) {
		t.Fatal("the example's Deployment has no -shutdown-timeout=15s arg to change")
	}
	for _, tt := range []struct {
		name, text string
		want       []string
	}{
		{"bare", bare(t, slow), []string{": grace-period: ", "terminationGracePeriodSeconds"}},
		{"annotated", slow, []string{": stop-annotation: ", "-shutdown-timeout=60s against shutdown-timeout=15s"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := write(t, "slow.yaml", tt.text)
			if code, out, _ := lint(t, append(flags, path)...); code != clean {
				t.Errorf("typed settings: exit %d\n%s", code, out)
			}
			code, out, _ := lint(t, "-from-args", path)
			if code != unsafe || strings.Count(out, "\tfix: ") != 1 {
				t.Fatalf("-from-args with -shutdown-timeout=60s in the args: exit %d\n%s; want one finding", code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("-from-args with -shutdown-timeout=60s in the args: got\n%s; want %q", out, w)
				}
			}
		})
	}
	// A quiet drain's minimum is read from the args: below the ALB's
	// detection, it is reported at the Service's annotations.
	alb, err := os.ReadFile("../../example/deploy/deployment-aws-alb.yaml")
	if err != nil {
		t.Fatal(err)
	}
	short := strings.Replace(string(alb), "- -drain-min=10s", "- -drain-min=5s", 1)
	if short == string(alb) {
		t.Fatal("the ALB example has no -drain-min=10s arg to change")
	}
	if code, out, _ := lint(t, "-from-args", write(t, "short.yaml", bare(t, short))); code != unsafe || !strings.Contains(out, "balancer-detection") || !strings.Contains(out, "DrainUntilQuiet's min is 5s") {
		t.Errorf("-from-args with -drain-min=5s behind a 10s ALB: exit %d\n%s; want balancer-detection on the quiet drain's min", code, out)
	}
	if code, out, _ := lint(t, "-from-args", write(t, "short.yaml", short)); code != unsafe || !strings.Contains(out, "-drain-min=5s against drain-min=10s") {
		t.Errorf("-from-args with -drain-min=5s against the annotation's 10s: exit %d\n%s; want stop-annotation", code, out)
	}
	// A separate value of a flag the linter does not know is passed over.
	odd := strings.Replace(base(t), "- -shutdown-timeout=15s", "- -shutdown-timeout=15s\n            - -db-scope\n            - local", 1)
	if code, out, errOut := lint(t, "-from-args", write(t, "odd.yaml", odd)); code != clean {
		t.Errorf("args with a flag of the service's own: exit %d\n%s%s", code, out, errOut)
	}
}

// The linter's defaults are the library's: a service that sets nothing.
func TestDefaultsAreTheLibrarys(t *testing.T) {
	if defaults.deadline != startup.DefaultDeadline || defaults.drain != server.DefaultDrainDelay || defaults.shutdown != server.DefaultShutdownTimeout {
		t.Errorf("defaults: warm-up deadline %s, drain %s, shutdown %s; want the library's %s, %s, %s",
			defaults.deadline, defaults.drain, defaults.shutdown, startup.DefaultDeadline, server.DefaultDrainDelay, server.DefaultShutdownTimeout)
	}
}

// -from-args reads the settings wherever the pod sets them: its command,
// its args with $(VAR) expanded, its environment; a setting it cannot read
// is an error, never a silent default.
func TestFromArgsReadsTheWholeContainer(t *testing.T) {
	good := base(t)
	const args = "            - -shutdown-timeout=15s\n"
	if !strings.Contains(good, args) {
		t.Fatal("the example's Deployment has no -shutdown-timeout=15s arg to change")
	}
	for _, tt := range []struct {
		name, edit string
		code       int
		want       string
	}{
		{"in the args", "            - -shutdown-timeout=60s\n", unsafe, "terminationGracePeriodSeconds"},
		{"a variable in the args", "            - -shutdown-timeout=$(STOP)\n          env:\n            - name: STOP\n              value: 60s\n", unsafe, "terminationGracePeriodSeconds"},
		{"the environment", "          env:\n            - name: SHUTDOWN_TIMEOUT\n              value: 60s\n", unsafe, "terminationGracePeriodSeconds"},
		{"the args beat the environment", "            - -shutdown-timeout=15s\n          env:\n            - name: SHUTDOWN_TIMEOUT\n              value: 60s\n", clean, ""},
		{"from a ConfigMap", "          env:\n            - name: SHUTDOWN_TIMEOUT\n              valueFrom:\n                configMapKeyRef: {name: c, key: k}\n", unreadable, "valueFrom"},
		{"a variable not set", "            - -shutdown-timeout=$(NOPE)\n", unreadable, "cannot read"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := lint(t, "-from-args", write(t, "d.yaml", bare(t, strings.Replace(good, args, tt.edit, 1))))
			if code != tt.code || !strings.Contains(out+errOut, tt.want) {
				t.Errorf("exit %d, want %d with %q\n%s%s", code, tt.code, tt.want, out, errOut)
			}
		})
	}
	cmd := strings.Replace(good, "          args:\n", "          command:\n            - /probes-example\n"+"            - -shutdown-timeout=60s\n          args:\n", 1)
	cmd = strings.Replace(cmd, args, "", 1)
	if code, out, _ := lint(t, "-from-args", write(t, "cmd.yaml", bare(t, cmd))); code != unsafe || !strings.Contains(out, ": grace-period: ") {
		t.Errorf("a setting in the command: exit %d, want 1\n%s", code, out)
	}
}

// A document of a kind the linter does not know (a custom resource) is
// passed over with a note naming the file, the line and the kind, and the
// rest of the file is still checked: its status is the findings'. A
// BackendConfig is read: no note, and none of its findings when no
// Service of the file names it.
func TestUnknownKindsArePassedOver(t *testing.T) {
	faulty := strings.Replace(base(t), "terminationGracePeriodSeconds: 28", "terminationGracePeriodSeconds: 20", 1)
	monitor := "apiVersion: monitoring.coreos.com/v1\nkind: ServiceMonitor\nmetadata:\n  name: probes-example\nspec:\n  selector: {matchLabels: {app: probes-example}}\n  endpoints: [{port: probes, path: /metrics}]\n"
	backend := "apiVersion: cloud.google.com/v1\nkind: BackendConfig\nmetadata:\n  name: probes-example\nspec:\n  healthCheck: {requestPath: /readyz, port: 8081, checkIntervalSec: 5}\n"
	cert := "apiVersion: networking.gke.io/v1\nkind: ManagedCertificate\nmetadata:\n  name: probes-example\nspec:\n  domains: [shop.example.com]\n"
	text := faulty + "---\n" + monitor + "---\n" + backend + "---\n" + cert
	monitorLine := strings.Count(faulty+"---\n", "\n") + 2
	certLine := monitorLine + strings.Count(monitor+"---\n"+backend+"---\n", "\n")
	file := write(t, "mixed.yaml", text)
	code, out, errOut := lint(t, append(append([]string{}, flags...), file)...)
	if code != unsafe {
		t.Errorf("got exit %d, want %d (the Deployment's fault)\nstdout %q\nstderr %q", code, unsafe, out, errOut)
	}
	if strings.Count(out, "\tfix: ") != 1 || !strings.Contains(out, ": grace-period: ") {
		t.Errorf("got stdout %q, want the one grace-period finding", out)
	}
	for _, tt := range []struct {
		name string
		want string
	}{
		{"ServiceMonitor", fmt.Sprintf("%s:%d: ServiceMonitor %q: not checked", file, monitorLine, "probes-example")},
		{"ManagedCertificate", fmt.Sprintf("%s:%d: ManagedCertificate %q: not checked", file, certLine, "probes-example")},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if !strings.Contains(errOut, tt.want) {
				t.Errorf("got stderr %q, want a note %q", errOut, tt.want)
			}
		})
	}
	if strings.Contains(errOut, "BackendConfig") {
		t.Errorf("got stderr %q, want no note of the BackendConfig, which is read", errOut)
	}
	// A file of nothing the linter knows is clean, with its note.
	widget := write(t, "widget.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
	code, out, errOut = lint(t, append(append([]string{}, flags...), widget)...)
	if want := widget + `:2: Widget "w": not checked`; code != clean || out != "" || !strings.Contains(errOut, want) {
		t.Errorf("got exit %d, stdout %q, stderr %q; want exit 0 and %q", code, out, errOut, want)
	}
}

// goodBudget lets drains through the example's Deployment.
const goodBudget = `apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: probes-example
spec:
  maxUnavailable: 1
  unhealthyPodEvictionPolicy: AlwaysAllow
  selector:
    matchLabels:
      app: probes-example
`

// A PodDisruptionBudget is checked against the workload whose pods it
// selects, in the same file: each case has one fault (or none), reported
// at the budget's line with the rule and the fix.
func TestBudgetAcrossDocuments(t *testing.T) {
	deployment := base(t)
	for _, tt := range []struct {
		name            string
		pdbOld, pdbNew  string // an edit of goodBudget
		depOld, depNew  string // an edit of the Deployment
		budgetFirst     bool
		rule, line, fix string // rule empty: clean
	}{
		{name: "the example's budget"},
		{name: "the budget before the Deployment", budgetFirst: true},
		{name: "policy unset", pdbOld: "  unhealthyPodEvictionPolicy: AlwaysAllow\n",
			rule: "pdb-unhealthy-policy", line: "spec:", fix: "unhealthyPodEvictionPolicy: AlwaysAllow"},
		{name: "policy IfHealthyBudget", pdbOld: "AlwaysAllow", pdbNew: "IfHealthyBudget",
			rule: "pdb-unhealthy-policy", line: "unhealthyPodEvictionPolicy: IfHealthyBudget", fix: "unhealthyPodEvictionPolicy: AlwaysAllow"},
		{name: "policy unset, the budget first", pdbOld: "  unhealthyPodEvictionPolicy: AlwaysAllow\n", budgetFirst: true,
			rule: "pdb-unhealthy-policy", line: "spec:", fix: "unhealthyPodEvictionPolicy: AlwaysAllow"},
		{name: "maxUnavailable 0", pdbOld: "maxUnavailable: 1", pdbNew: "maxUnavailable: 0",
			rule: "pdb-budget", line: "maxUnavailable: 0", fix: "maxUnavailable: 1"},
		{name: "maxUnavailable 0%", pdbOld: "maxUnavailable: 1", pdbNew: `maxUnavailable: "0%"`,
			rule: "pdb-budget", line: `maxUnavailable: "0%"`, fix: "maxUnavailable: 1"},
		{name: "minAvailable as many as the replicas", pdbOld: "maxUnavailable: 1", pdbNew: "minAvailable: 2",
			rule: "pdb-budget", line: "minAvailable: 2", fix: "maxUnavailable: 1 in place of minAvailable"},
		{name: "minAvailable 100%", pdbOld: "maxUnavailable: 1", pdbNew: "minAvailable: 100%",
			rule: "pdb-budget", line: "minAvailable: 100%", fix: "maxUnavailable: 1 in place of minAvailable"},
		{name: "minAvailable 1 of replicas unset", pdbOld: "maxUnavailable: 1", pdbNew: "minAvailable: 1", depOld: "  replicas: 2\n",
			rule: "pdb-budget", line: "minAvailable: 1", fix: "maxUnavailable: 1 in place of minAvailable"},
		{name: "minAvailable 1 of 2 replicas", pdbOld: "maxUnavailable: 1", pdbNew: "minAvailable: 1"},
		{name: "a quarter of 12 replicas", pdbOld: "maxUnavailable: 1", pdbNew: "maxUnavailable: 25%", depOld: "replicas: 2", depNew: "replicas: 12"},
		{name: "minAvailable of 12 replicas", pdbOld: "maxUnavailable: 1", pdbNew: "minAvailable: 12", depOld: "replicas: 2", depNew: "replicas: 12",
			rule: "pdb-budget", line: "minAvailable: 12", fix: "maxUnavailable: 3 in place of minAvailable"},
		{name: "selected by an expression", pdbOld: "  maxUnavailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app: probes-example\n",
			pdbNew: "  maxUnavailable: 0\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchExpressions:\n      - {key: app, operator: In, values: [probes-example, other]}\n",
			rule:   "pdb-budget", line: "maxUnavailable: 0", fix: "maxUnavailable: 1"},
		{name: "an empty selector selects every pod", pdbOld: "  maxUnavailable: 1\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector:\n    matchLabels:\n      app: probes-example\n",
			pdbNew: "  maxUnavailable: 0\n  unhealthyPodEvictionPolicy: AlwaysAllow\n  selector: {}\n",
			rule:   "pdb-budget", line: "maxUnavailable: 0", fix: "maxUnavailable: 1"},
		{name: "another app's pods", pdbOld: "      app: probes-example\n", pdbNew: "      app: other\n  minAvailable: 5\n"},
		{name: "no selector selects no pod", pdbOld: "  selector:\n    matchLabels:\n      app: probes-example\n", pdbNew: "  minAvailable: 5\n"},
		{name: "another namespace", pdbOld: "  name: probes-example\n", pdbNew: "  name: probes-example\n  namespace: other\n", depOld: "  name: probes-example\n", depNew: "  name: probes-example\n  namespace: shop\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			pdb := strings.Replace(goodBudget, tt.pdbOld, tt.pdbNew, 1)
			dep := strings.Replace(deployment, tt.depOld, tt.depNew, 1)
			if tt.pdbOld != "" && pdb == goodBudget || tt.depOld != "" && dep == deployment {
				t.Fatalf("an edit did not apply")
			}
			text, budgetAt := dep+"---\n"+pdb, strings.Count(dep, "\n")+2
			if tt.budgetFirst {
				text, budgetAt = pdb+"---\n"+dep, 1
			}
			code, out, errOut := lint(t, append(append([]string{}, flags...), write(t, "m.yaml", text))...)
			if errOut != "" {
				t.Fatalf("got stderr %q, want none", errOut)
			}
			if tt.rule == "" {
				if code != clean {
					t.Errorf("got exit %d\n%s; want 0", code, out)
				}
				return
			}
			if code != unsafe || strings.Count(out, "\tfix: ") != 1 || !strings.Contains(out, ": "+tt.rule+": ") || !strings.HasSuffix(out, "\tfix: "+tt.fix+"\n") {
				t.Fatalf("got exit %d\n%s; want exactly one %s finding with the fix %q", code, out, tt.rule, tt.fix)
			}
			if !strings.Contains(out, `: PodDisruptionBudget "probes-example" for Deployment "probes-example"`) {
				t.Errorf("got %q; want the budget and the Deployment named", out)
			}
			loc, _, _ := strings.Cut(out, ": PodDisruptionBudget")
			n, _ := strconv.Atoi(loc[strings.LastIndex(loc, ":")+1:])
			lines := strings.Split(text, "\n")
			if n < budgetAt || n >= budgetAt+strings.Count(pdb, "\n") || !strings.Contains(lines[n-1], tt.line) {
				t.Errorf("reported at line %d, %q; want the budget's line with %q", n, lines[max(n-1, 0)], tt.line)
			}
		})
	}
}

// TestServiceAnnotationDecides: a manifest generated for a service off the
// defaults (probes on 9001, a 2m deadline) lints clean with no settings
// typed, as the annotation says them; without the annotation the typed
// loopback address is still caught; a malformed annotation is a finding.
func TestServiceAnnotationDecides(t *testing.T) {
	d := deployspec.Deployment{Name: "shop", Image: "shop:1", AppAddr: ":8080", Service: deployspec.Service{
		WarmupDeadline: 2 * time.Minute, ProbeAddr: ":9001", Stop: server.Timings{Drain: 5 * time.Second, ShutdownTimeout: 15 * time.Second}}}
	text, err := d.YAML()
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := lint(t, write(t, "shop.yaml", text)); code != clean {
		t.Errorf("a generated manifest off the defaults, no settings typed: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := lint(t, "-probe-addr=127.0.0.1:8081", write(t, "bare.yaml", withoutService(t, base(t)))); code != unsafe || !strings.Contains(out, "probe-listen") {
		t.Errorf("typed loopback without the annotation: exit %d\n%s", code, out)
	}
	broken := strings.Replace(text, "warmup-deadline=2m", "warmup-deadline=soon", 1)
	if code, out, _ := lint(t, write(t, "broken.yaml", broken)); code != unsafe || !strings.Contains(out, "service-annotation") || !strings.Contains(out, "not a positive duration") {
		t.Errorf("a malformed service annotation: exit %d\n%s", code, out)
	}
}

// Command probelint checks the probe and stop timings of Kubernetes
// manifests against a service's own configuration: the warm-up deadline,
// the drain and the shutdown timeout, and where its probes answer, given as
// the example service's flags are named. It reads Deployments,
// StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs, Pods,
// PodDisruptionBudgets, Services, Ingresses (networking.k8s.io/v1) and
// GKE BackendConfigs (cloud.google.com/v1 and v1beta1), in multi-document
// YAML read as kubectl reads it (empty documents skipped, aliases and
// merge keys resolved), and reports every unsafe timing with the file, the
// line, the rule, the numbers and the fix (the rules are package
// deployspec's).
//
// Some rules hold across the documents of a file, each against the
// workloads of the same file whose pods it selects. A PodDisruptionBudget
// must let node drains through. The balancer in front must see the drain
// in time and fit its deregistration delay in the grace period, with each
// container's settings and the pod's terminationGracePeriodSeconds: as
// the AWS Load Balancer Controller's annotations configure it on a Service
// (an NLB, or an ALB) or on an Ingress (an ALB, for the Services it routes
// to; a Service's own annotations take precedence), and as the
// BackendConfig a Service names in cloud.google.com/backend-config
// configures it on GKE. Such a finding is reported at the line of the
// annotation or the BackendConfig field at fault, and a value the
// controller would refuse is one too (balancer-annotation).
//
//	go install -C cmd/probelint .
//	probelint -warmup-deadline=2m -drain=5s -shutdown-timeout=15s example/deploy/deployment.yaml
//	probelint -from-args example/deploy/deployment.yaml
//
// Settings not given default to the library's defaults (a service that sets
// nothing has them). With -from-args the linter reads each container's own
// args, where a service that takes the example's flags has its settings
// already, instead of having them typed again; -flag-names gives the
// service's own names for them (-flag-names drain=shutdown-drain,shutdown-timeout=$GRACE).
//
// A pod template that carries the service's stop in the
// probes.probekit.dev/stop annotation (deployspec.StopAnnotation, which
// deployspec.Deployment writes) is checked against that stop instead of
// the settings': it is what the service computed, hooks included, which no
// flag says. A finding whose numbers come from it says so. An annotation
// that does not read (deployspec.ParseStop), or that disagrees with a stop
// setting the container's args or env set (-from-args), is a finding
// (stop-annotation) at its line.
//
// A container with probes sets terminationMessagePolicy:
// FallbackToLogsOnError (deployspec.TerminationMessagePolicy), or it is a
// finding (termination-message-policy) at the container, or at the
// field when it holds another policy: the service writes why it stopped
// as its termination message, and a process that dies before it can (a
// panic) then shows the end of its log rather than nothing.
//
// A document of a kind it does not know (a custom resource such as a
// ServiceMonitor) or an Ingress of a version Kubernetes no longer serves
// is passed over with a note on stderr naming the file, the line and the
// kind; the rest of the file is checked, and the exit status is its
// findings'.
//
// Exit status: 0 when every manifest is safe, 1 when anything is unsafe, 2
// when a file cannot be read, is not YAML, has a document without a kind,
// sets a key twice in a mapping or merges a key over one written before
// the merge (the linter must not judge another value than the one the API
// server would keep); the message names the file and line.
package main

import (
	"bytes"
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/probekit/probes/deployspec"
	"github.com/probekit/probes/server"
	"github.com/probekit/probes/startup"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: probelint [the service's flags] FILE...

Checks the probe and stop timings of the Deployments, StatefulSets,
DaemonSets, ReplicaSets, Jobs, CronJobs and Pods in each file against the
service's settings, and across the documents of the file: the
PodDisruptionBudgets, and the balancer in front as a Service's or an
Ingress's AWS Load Balancer Controller annotations or a GKE BackendConfig
configure it, against the workloads whose pods they select. Other kinds (a
ServiceMonitor, any custom resource) are passed over with a note.

The stop (the drain, the shutdown timeout, the hooks) is the pod
template's probes.probekit.dev/stop annotation when it has one, which
deployspec.Deployment writes with what the service computed; otherwise
the settings below say it. An annotation that does not read, or that
disagrees with what the container's args or env set (-from-args), is a
finding (stop-annotation).

A container with probes must set terminationMessagePolicy:
FallbackToLogsOnError (termination-message-policy), so that a process
that dies before it writes its termination message shows its log's end.

With -from-args the settings are read from each container by the
example's flag and variable names (-drain, DRAIN, ...); -flag-names gives
the service's own, and a setting named there is read by those only:

    probelint -from-args -flag-names 'drain=shutdown-drain,shutdown-timeout=$GRACE' FILE

Exit status: 0 safe, 1 unsafe, 2 unreadable.

`

// Exit statuses.
const (
	clean      = 0
	unsafe     = 1
	unreadable = 2
)

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("probelint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	var cli settings
	cli.register(fs, defaults)
	fromArgsFlag := fs.Bool("from-args", false, "read the service's settings from each container (its env, command and args, flags named as here or as -flag-names says; others ignored), on top of those given here")
	flagNames := fs.String("flag-names", "", "with -from-args, the service's own names for the settings, as comma-separated setting=name pairs (drain=shutdown-drain,shutdown-timeout=grace): a flag's name, or $NAME for an environment variable, or nothing for none; a setting named here is read by these names only, the others by the example's")
	container := fs.String("container", "", "the container the service runs in; default every container with a probe (or the first)")
	if err := fs.Parse(args); err != nil {
		return unreadable
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return unreadable
	}
	svc := fixed(cli.service())
	if *fromArgsFlag {
		n, err := exampleNames().rename(*flagNames)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return unreadable
		}
		svc = fromArgs{base: cli, names: n}.read
	} else if *flagNames != "" {
		fmt.Fprintln(stderr, "-flag-names names the service's flags in the containers: it needs -from-args")
		return unreadable
	}
	status := clean
	for _, file := range fs.Args() {
		r, err := lintFile(file, svc, *container)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return unreadable
		}
		for _, n := range r.notes {
			fmt.Fprintln(stderr, n)
		}
		for _, f := range r.findings {
			fmt.Fprintln(stdout, f)
			status = unsafe
		}
	}
	return status
}

// settings are the service's settings, as its flags name them.
type settings struct {
	deadline, warmup, drain, shutdown, hooks time.Duration
	drainQuiet, drainMin                     time.Duration
	drainProbes                              int
	addr, probeAddr, grpcAddr, services      string
}

// defaults are the library's defaults, which a service that sets nothing
// has, and the example's listen addresses.
var defaults = settings{
	deadline: startup.DefaultDeadline, drain: server.DefaultDrainDelay, shutdown: server.DefaultShutdownTimeout,
	addr: ":8080", probeAddr: ":8081",
}

// register adds the settings' flags to fs, with d's values as defaults.
func (st *settings) register(fs *flag.FlagSet, d settings) {
	fs.DurationVar(&st.deadline, "warmup-deadline", d.deadline, "the service's warm-up deadline")
	fs.DurationVar(&st.warmup, "warmup", d.warmup, "the expected warm-up (accepted so the service's flags can be copied; the deadline is what counts)")
	fs.DurationVar(&st.drain, "drain", d.drain, "the drain, or a probe-aware drain's maximum")
	fs.IntVar(&st.drainProbes, "drain-probes", d.drainProbes, "a probe-aware drain's count of failing readiness answers; 0 for a fixed drain")
	fs.DurationVar(&st.drainQuiet, "drain-quiet", d.drainQuiet, "a quiet drain's quiet period (DrainUntilQuiet); 0 for none")
	fs.DurationVar(&st.drainMin, "drain-min", d.drainMin, "a quiet drain's minimum, which must outlast the balancer's detection")
	fs.DurationVar(&st.shutdown, "shutdown-timeout", d.shutdown, "the shutdown timeout")
	fs.DurationVar(&st.hooks, "hooks", d.hooks, "the sum of the OnDrain and AfterClose hooks' timeouts")
	fs.StringVar(&st.addr, "addr", d.addr, "the application's listen address")
	fs.StringVar(&st.probeAddr, "probe-addr", d.probeAddr, "the probe listener's address; empty when the probes are on -addr")
	fs.StringVar(&st.grpcAddr, "grpc-addr", d.grpcAddr, "the gRPC server's address (grpc.health.v1); empty for none")
	fs.StringVar(&st.services, "grpc-services", d.services, "comma-separated gRPC service names that also answer readiness")
}

// service is what Lint needs of the settings.
func (st *settings) service() deployspec.Service {
	s := deployspec.Service{
		WarmupDeadline: st.deadline,
		Stop:           server.Timings{Drain: st.drain, DrainProbes: st.drainProbes, ShutdownTimeout: st.shutdown, AfterClose: st.hooks},
		ProbeAddr:      cmp.Or(st.probeAddr, st.addr),
		GRPCAddr:       st.grpcAddr,
	}
	if st.drainQuiet > 0 && st.drainProbes == 0 {
		s.Stop.DrainQuiet, s.Stop.DrainMin = st.drainQuiet, st.drainMin
	}
	if st.services != "" {
		s.GRPCServices = strings.Split(st.services, ",")
	}
	return s
}

// envFlags are the environment variables the example's flag helpers read,
// by the flag each sets; a flag on the command line beats its variable.
var envFlags = map[string]string{
	"ADDR": "addr", "PROBE_ADDR": "probe-addr", "GRPC_ADDR": "grpc-addr", "WARMUP": "warmup",
	"WARMUP_DEADLINE": "warmup-deadline", "DRAIN": "drain", "DRAIN_PROBES": "drain-probes",
	"DRAIN_QUIET": "drain-quiet", "DRAIN_MIN": "drain-min",
	"SHUTDOWN_TIMEOUT": "shutdown-timeout",
}

// names are what a container sets the settings by: its flags' names and
// its environment variables, each to the setting (the linter's flag of
// that meaning) it sets.
type names struct{ flags, env map[string]string }

// settingNames are the settings, as the linter's flags name them.
func settingNames() []string {
	fs := flag.NewFlagSet("", flag.ContinueOnError)
	new(settings).register(fs, settings{})
	var out []string
	fs.VisitAll(func(f *flag.Flag) { out = append(out, f.Name) })
	return out
}

// exampleNames are the example's names: each setting's flag named as the
// linter's, and the variables of envFlags.
func exampleNames() names {
	n := names{flags: map[string]string{}, env: maps.Clone(envFlags)}
	for _, s := range settingNames() {
		n.flags[s] = s
	}
	return n
}

// rename returns n with -flag-names applied: comma-separated
// setting=name pairs, name a flag's name (its dashes optional) or, as
// $NAME, an environment variable, or empty for none. A setting named is
// read by the names given for it only, none of n's; a setting may be
// named more than once (a flag and a variable). A name that would set two
// settings is an error.
func (n names) rename(spec string) (names, error) {
	known := settingNames()
	type pair struct{ setting, name string }
	var pairs []pair
	renamed := map[string]bool{}
	for p := range strings.SplitSeq(spec, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		setting, name, ok := strings.Cut(p, "=")
		setting, name = strings.TrimLeft(strings.TrimSpace(setting), "-"), strings.TrimSpace(name)
		switch {
		case !ok:
			return names{}, fmt.Errorf("-flag-names: %q is not setting=name", p)
		case !slices.Contains(known, setting):
			return names{}, fmt.Errorf("-flag-names: %q: no setting %q; the settings are %s", p, setting, strings.Join(known, ", "))
		case strings.ContainsAny(name, "= \t") || name == "$" || name != "" && strings.TrimLeft(name, "-") == "":
			return names{}, fmt.Errorf("-flag-names: %q: %q is not a flag's name or a $VARIABLE", p, name)
		}
		renamed[setting] = true
		pairs = append(pairs, pair{setting, name})
	}
	out := names{flags: map[string]string{}, env: map[string]string{}}
	for k, s := range n.flags {
		if !renamed[s] {
			out.flags[k] = s
		}
	}
	for k, s := range n.env {
		if !renamed[s] {
			out.env[k] = s
		}
	}
	for _, p := range pairs {
		if p.name == "" {
			continue // the service has no name for it
		}
		m, key, shown := out.flags, strings.TrimLeft(p.name, "-"), "-"+strings.TrimLeft(p.name, "-")
		if v, ok := strings.CutPrefix(p.name, "$"); ok {
			m, key, shown = out.env, v, p.name
		}
		switch was, ok := m[key]; {
		case ok && was != p.setting && !renamed[was]:
			return names{}, fmt.Errorf("-flag-names: %s already sets %s, as the example names it; name %s too (%s=its-own-name, or %s= for none)", shown, was, was, was, was)
		case ok && was != p.setting:
			return names{}, fmt.Errorf("-flag-names: %s names both %s and %s; a name sets one setting", shown, was, p.setting)
		}
		m[key] = p.setting
	}
	return out, nil
}

// inContainer is the service in a container.
type inContainer struct {
	svc deployspec.Service
	// st are the settings svc follows from, and set those the container
	// sets itself (-from-args), by setting, as it writes them
	// ("-grace=60s", "env DRAIN=5s").
	st  settings
	set map[string]string
}

// fromArgs reads the service in each container (-from-args).
type fromArgs struct {
	base  settings // the linter's, which the container's override
	names names
}

// read is the service as a container sets it, on top of the linter's
// settings: its environment (the variables names lists), then its
// command's arguments and its args, with $(VAR) expanded as the kubelet
// does. Flags that are not settings are passed over, with their value
// when it is written apart ("-db-scope shared"), as far as that can be
// told. A setting the linter cannot read (a variable from a ConfigMap or
// Secret, a $(VAR) of one) is an error: judging another value than the
// pod's would be a lie.
func (r fromArgs) read(c corev1.Container) (inContainer, error) {
	var per settings
	fs := flag.NewFlagSet("args", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	per.register(fs, r.base)
	env := map[string]string{}
	set := map[string]string{}
	var known []string
	for _, e := range c.Env {
		setting, ok := r.names.env[e.Name]
		if e.ValueFrom != nil {
			if ok {
				return inContainer{}, fmt.Errorf("env %s (-%s) comes from elsewhere (valueFrom); give it a value, or the setting on the linter's command line", e.Name, setting)
			}
			continue
		}
		v := expand(e.Value, env)
		env[e.Name] = v
		if ok {
			known = append(known, "-"+setting+"="+v)
			set[setting] = "env " + e.Name + "=" + v
		}
	}
	args := c.Args
	if len(c.Command) > 1 {
		args = append(slices.Clone(c.Command[1:]), c.Args...)
	}
	for i := 0; i < len(args); i++ {
		bare := strings.TrimLeft(args[i], "-")
		if bare == args[i] {
			continue
		}
		name, value, hasValue := strings.Cut(bare, "=")
		setting, ok := r.names.flags[name]
		if !ok {
			continue
		}
		written := args[i][:len(args[i])-len(bare)] + name
		if !hasValue && i+1 < len(args) {
			i++
			value, hasValue = args[i], true
		}
		if !hasValue {
			known = append(known, "-"+setting) // no value: the parse says so
			continue
		}
		value = expand(value, env)
		if strings.Contains(value, "$(") {
			return inContainer{}, fmt.Errorf("%q: a variable the linter cannot read (from a ConfigMap or Secret, or not set); give the setting on the linter's command line", written+"="+value)
		}
		known = append(known, "-"+setting+"="+value)
		set[setting] = written + "=" + value
	}
	if err := fs.Parse(known); err != nil {
		return inContainer{}, err
	}
	return inContainer{svc: per.service(), st: per, set: set}, nil
}

// expand replaces $(VAR) with env's value as the kubelet does: $$ is a
// literal $, and a variable not set stays as written.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "$("):
			end := strings.IndexByte(s[i:], ')')
			if v, ok := env[s[i+2:i+max(end, 2)]]; end > 0 && ok {
				b.WriteString(v)
				i += end
				continue
			}
			b.WriteByte('$')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// serviceOf says what the service in a container is set to.
type serviceOf func(corev1.Container) (inContainer, error)

// fixed is the same service for every container.
func fixed(s deployspec.Service) serviceOf {
	return func(corev1.Container) (inContainer, error) { return inContainer{svc: s}, nil }
}

// finding is a deployspec.Finding where it is.
type finding struct {
	file    string
	line    int
	subject string // what is at fault: `container "app"`
	deployspec.Finding
}

func (f finding) String() string {
	return fmt.Sprintf("%s:%d: %s: %s: %s\n\tfix: %s", f.file, f.line, f.subject, f.Rule, f.Problem, f.Fix)
}

// note is a document the linter passed over: a kind it does not know, or
// a version of one it does not read.
type note struct {
	file       string
	line       int
	kind, name string
	why        string // "" for a kind it does not know
}

func (n note) String() string {
	why := cmp.Or(n.why, "a kind probelint does not know")
	return fmt.Sprintf("%s:%d: %s %q: not checked (%s; the rest of the file is checked)", n.file, n.line, n.kind, n.name, why)
}

// report is what the linter found in one file.
type report struct {
	findings []finding
	notes    []note
	// For the rules across documents.
	pods           []podSet
	budgets        []budget
	services       []service
	ingresses      []ingress
	backendConfigs []backendConfig
}

// lintFile lints every pod template in file.
func lintFile(file string, svc serviceOf, only string) (report, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return report{}, err
	}
	return lintYAML(file, raw, svc, only)
}

// lintYAML lints every pod template in raw, the text of file.
func lintYAML(file string, raw []byte, svc serviceOf, only string) (report, error) {
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var out report
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			if err := lintBudgets(&out, file); err != nil {
				return report{}, err
			}
			if err := lintFront(&out, file); err != nil {
				return report{}, err
			}
			return out, nil
		} else if err != nil {
			return report{}, fmt.Errorf("%s:%d: not YAML: %s", file, yamlLine(err), strings.TrimPrefix(err.Error(), "yaml: "))
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind == yaml.ScalarNode && doc.Content[0].ShortTag() == "!!null" {
			continue // an empty document (or a trailing ---), which kubectl skips
		}
		root, err := resolveDoc(doc.Content[0])
		if err != nil {
			return report{}, fmt.Errorf("%s:%w", file, err)
		}
		if err := lintDoc(&out, file, root, svc, only); err != nil {
			return report{}, err
		}
	}
}

var lineRE = regexp.MustCompile(`line (\d+)`)

func yamlLine(err error) int {
	if m := lineRE.FindStringSubmatch(err.Error()); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 1
}

// Kubernetes' own kinds that hold no pod template and no timing: skipped
// without a word. Any other kind (a custom resource such as a
// ServiceMonitor, which may hold timings of its own) is passed over with a
// note, so that nobody takes it for checked.
var otherKinds = []string{"ConfigMap", "Secret", "ServiceAccount", "HorizontalPodAutoscaler",
	"NetworkPolicy", "Namespace", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding",
	"PersistentVolumeClaim"}

// lintDoc decodes one document strictly as its kind and lints its pod
// spec into r.
func lintDoc(r *report, file string, root *yaml.Node, svc serviceOf, only string) error {
	kindNode := lookup(root, "kind")
	if kindNode == nil || kindNode.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s:%d: no kind: not a Kubernetes object", file, root.Line)
	}
	kind := kindNode.Value
	var obj any
	// pod returns the pod template (a Pod's own metadata and spec) and the
	// path of its spec.
	var pod func() (*corev1.PodTemplateSpec, []string)
	inTemplate := []string{"spec", "template", "spec"}
	switch kind {
	case "Deployment":
		o := &appsv1.Deployment{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) { return &o.Spec.Template, inTemplate }
	case "StatefulSet":
		o := &appsv1.StatefulSet{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) { return &o.Spec.Template, inTemplate }
	case "DaemonSet":
		o := &appsv1.DaemonSet{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) { return &o.Spec.Template, inTemplate }
	case "ReplicaSet":
		o := &appsv1.ReplicaSet{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) { return &o.Spec.Template, inTemplate }
	case "Job":
		o := &batchv1.Job{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) { return &o.Spec.Template, inTemplate }
	case "CronJob":
		o := &batchv1.CronJob{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) {
			return &o.Spec.JobTemplate.Spec.Template, []string{"spec", "jobTemplate", "spec", "template", "spec"}
		}
	case "Pod":
		o := &corev1.Pod{}
		obj, pod = o, func() (*corev1.PodTemplateSpec, []string) {
			return &corev1.PodTemplateSpec{ObjectMeta: o.ObjectMeta, Spec: o.Spec}, []string{"spec"}
		}
	case "PodDisruptionBudget":
		o := &policyv1.PodDisruptionBudget{}
		if err := decodeStrict(root, o); err != nil {
			return fmt.Errorf("%s:%d: %s does not decode as Kubernetes has it: %v", file, errLine(root, err), kind, err)
		}
		r.budgets = append(r.budgets, budget{o, root})
		return nil
	case "Service", "Ingress", "BackendConfig":
		return readFront(r, file, kind, root)
	default:
		if !slices.Contains(otherKinds, kind) {
			r.notes = append(r.notes, note{file: file, line: kindNode.Line, kind: kind, name: nameOf(root)})
		}
		return nil
	}
	if err := decodeStrict(root, obj); err != nil {
		return fmt.Errorf("%s:%d: %s does not decode as Kubernetes has it: %v", file, errLine(root, err), kind, err)
	}
	tmpl, at := pod()
	spec := &tmpl.Spec
	ps := podSetOf(obj, root)
	ps.pod = spec
	picked := pick(spec.Containers, only)
	if only != "" && len(picked) == 0 {
		return fmt.Errorf("%s:%d: %s has no container %q", file, root.Line, kind, only)
	}
	// The stop annotation is in the pod template's metadata, beside its spec.
	stopLine := lineOf(root, append(slices.Clone(at[:len(at)-1]), "metadata", "annotations", deployspec.StopAnnotation))
	stop, annotated, bad := stopOf(tmpl.Annotations)
	if bad != nil {
		r.findings = append(r.findings, finding{file: file, line: stopLine, subject: fmt.Sprintf("%s %q", kind, nameOf(root)), Finding: *bad})
	}
	serviceLine := lineOf(root, append(slices.Clone(at[:len(at)-1]), "metadata", "annotations", deployspec.ServiceAnnotation))
	own, described, badService := serviceAnnotation(tmpl.Annotations)
	if badService != nil {
		r.findings = append(r.findings, finding{file: file, line: serviceLine, subject: fmt.Sprintf("%s %q", kind, nameOf(root)), Finding: *badService})
	}
	for _, i := range picked {
		c := spec.Containers[i]
		cpath := append(slices.Clone(at), "containers", strconv.Itoa(i))
		in, err := svc(c)
		if err != nil {
			return fmt.Errorf("%s:%d: container %q: args: %w", file, lineOf(root, append(slices.Clone(cpath), "args")), c.Name, err)
		}
		s := in.svc
		if described {
			// The service's own word on its deadline and addresses, above
			// the flags: whatever its flags are called.
			s.WarmupDeadline, s.ProbeAddr, s.GRPCAddr = own.WarmupDeadline, own.ProbeAddr, own.GRPCAddr
		}
		subject := fmt.Sprintf("container %q", c.Name)
		if annotated {
			s.Stop = stop
			if f, ok := disagreement(in, stop); ok {
				r.findings = append(r.findings, finding{file: file, line: stopLine, subject: subject, Finding: f})
			}
		}
		ps.served = append(ps.served, served{c.Name, s, annotated})
		// Reported at the container when the field is missing, at the
		// field when it holds another policy.
		if f, ok := terminationPolicy(c); ok {
			r.findings = append(r.findings, finding{file: file, line: lineOf(root, append(slices.Clone(cpath), f.Field)), subject: subject, Finding: f})
		}
		for _, f := range deployspec.Lint(s, container(spec, c)) {
			path := append(slices.Clone(cpath), strings.Split(f.Field, ".")...)
			if rest, ok := strings.CutPrefix(f.Field, "pod."); ok {
				path = append(slices.Clone(at), strings.Split(rest, ".")...)
			}
			if annotated {
				f = fromAnnotation(f)
			}
			r.findings = append(r.findings, finding{file: file, line: lineOf(root, path), subject: subject, Finding: f})
		}
	}
	r.pods = append(r.pods, ps)
	return nil
}

// nameOf returns the document's metadata.name, or "" when it has none.
func nameOf(root *yaml.Node) string {
	if meta := lookup(root, "metadata"); meta != nil {
		if n := lookup(meta, "name"); n != nil && n.Kind == yaml.ScalarNode {
			return n.Value
		}
	}
	return ""
}

// pick returns the indexes of the containers to lint.
func pick(cs []corev1.Container, only string) []int {
	var out []int
	for i, c := range cs {
		switch {
		case only != "":
			if c.Name == only {
				out = append(out, i)
			}
		case c.StartupProbe != nil || c.LivenessProbe != nil || c.ReadinessProbe != nil:
			out = append(out, i)
		}
	}
	if only == "" && len(out) == 0 && len(cs) > 0 {
		out = []int{0}
	}
	return out
}

// decodeStrict decodes the document into obj, failing on any field the
// Kubernetes type does not have, as kubectl --validate=strict does. Field
// names match exactly, as the API server's decoder has them: encoding/json
// would take periodseconds for periodSeconds, a value the API server drops.
func decodeStrict(root *yaml.Node, obj any) error {
	js, err := toJSON(root)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(js, obj, kjson.DisallowUnknownFields, kjson.DisallowDuplicateFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// toJSON converts a resolved document (see resolveDoc) as kubectl does.
func toJSON(root *yaml.Node) ([]byte, error) {
	raw, err := yaml.Marshal(root)
	if err != nil {
		return nil, err
	}
	return sigsyaml.YAMLToJSON(raw)
}

var unknownRE = regexp.MustCompile(`unknown field "([^"]+)"`)

// errLine finds the line of the field a decoding error names, or the
// document's first line.
func errLine(root *yaml.Node, err error) int {
	if m := unknownRE.FindStringSubmatch(err.Error()); m != nil {
		// The field's path, as "spec.containers[0].readinessProbe.periodseconds".
		return lineOf(root, strings.Split(strings.NewReplacer("[", ".", "]", "").Replace(m[1]), "."))
	}
	return root.Line
}

// lookup returns the value of key in mapping n.
func lookup(n *yaml.Node, key string) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
	}
	return nil
}

// lineOf returns the line of the field at path, or of the deepest part of
// it that exists: a missing field is reported at its parent.
func lineOf(root *yaml.Node, path []string) int {
	n, line := root, root.Line
	for _, p := range path {
		var next *yaml.Node
		if idx, err := strconv.Atoi(p); err == nil && n.Kind == yaml.SequenceNode {
			if idx < len(n.Content) {
				next = n.Content[idx]
				line = next.Line
			}
		} else if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// container turns a container and its pod into what Lint reads.
func container(pod *corev1.PodSpec, c corev1.Container) deployspec.Container {
	out := deployspec.Container{Name: c.Name, GracePeriodSeconds: pod.TerminationGracePeriodSeconds}
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		out.PreStopSleep = seconds(c.Lifecycle.PreStop.Sleep.Seconds)
	}
	out.Startup = probe(c, c.StartupProbe)
	out.Liveness = probe(c, c.LivenessProbe)
	out.Readiness = probe(c, c.ReadinessProbe)
	return out
}

// seconds returns n seconds, saturating: a sleep longer than a Duration
// holds is longer than any grace period.
func seconds(n int64) time.Duration {
	const most = math.MaxInt64 / int64(time.Second)
	return time.Duration(min(max(n, -most), most)) * time.Second
}

func probe(c corev1.Container, p *corev1.Probe) *deployspec.ProbeSpec {
	if p == nil {
		return nil
	}
	out := &deployspec.ProbeSpec{
		InitialDelaySeconds: p.InitialDelaySeconds, PeriodSeconds: p.PeriodSeconds,
		TimeoutSeconds: p.TimeoutSeconds, FailureThreshold: p.FailureThreshold,
	}
	switch h := p.ProbeHandler; {
	case h.HTTPGet != nil:
		out.HTTPPath = h.HTTPGet.Path
		if out.HTTPPath == "" {
			out.HTTPPath = "/"
		}
		out.HTTPPort, out.PortProblem = resolve(c, h.HTTPGet.Port)
	case h.GRPC != nil:
		out.GRPC, out.GRPCPort = true, int(h.GRPC.Port)
		if h.GRPC.Service != nil {
			out.GRPCService = *h.GRPC.Service
		}
	case h.TCPSocket != nil:
		out.TCPPort, _ = resolve(c, h.TCPSocket.Port)
		out.TCPPort = max(out.TCPPort, 1)
	case h.Exec != nil:
		out.Exec = h.Exec.Command
	}
	return out
}

// resolve returns a probe port's number, naming the container's ports.
func resolve(c corev1.Container, p intstr.IntOrString) (int, string) {
	if p.Type == intstr.Int {
		return int(p.IntVal), ""
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return int(cp.ContainerPort), ""
		}
	}
	return 0, fmt.Sprintf("port name %q is not one of the container's ports", p.StrVal)
}

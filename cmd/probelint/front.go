package main

// Rules across the documents of a file: the balancer in front, as a
// Service's or an Ingress's annotations (the AWS Load Balancer Controller)
// or a Service's BackendConfig (GKE) configure it, and the workloads whose
// pods the Service selects.

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/probekit/probes/deployspec"
)

// service is a Service of the file.
type service struct {
	svc  *corev1.Service
	root *yaml.Node
}

// ingress is an Ingress of the file.
type ingress struct {
	ing  *networkingv1.Ingress
	root *yaml.Node
}

// backendConfig is a GKE BackendConfig of the file.
type backendConfig struct {
	meta metav1.ObjectMeta
	spec json.RawMessage
	root *yaml.Node
}

// backendConfigObject is a BackendConfig as the linter decodes it: strict
// but for the spec, whose many fields BalancerFromBackendConfig reads or
// passes over.
type backendConfigObject struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              json.RawMessage `json:"spec,omitempty"`
	Status            json.RawMessage `json:"status,omitempty"`
}

// The API versions read; a document of another is passed over with a
// note.
const ingressVersion = "networking.k8s.io/v1"

var backendConfigVersions = []string{"cloud.google.com/v1", "cloud.google.com/v1beta1"}

// The AWS Load Balancer Controller's annotation prefixes (an ALB's, an
// NLB's) and the loadBalancerClass that hands it a Service as the type
// annotation does; GKE's annotations naming a Service's BackendConfig,
// the older one read when the other is not set.
const (
	albPrefix         = "alb.ingress.kubernetes.io/"
	nlbPrefix         = "service.beta.kubernetes.io/aws-load-balancer-"
	loadBalancerNLB   = "service.k8s.aws/nlb"
	backendConfigKey  = "cloud.google.com/backend-config"
	betaBackendConfig = "beta.cloud.google.com/backend-config"
)

// readFront decodes a Service, an Ingress or a BackendConfig strictly and
// keeps it for lintFront.
func readFront(r *report, file, kind string, root *yaml.Node) error {
	version := ""
	if v := lookup(root, "apiVersion"); v != nil && v.Kind == yaml.ScalarNode {
		version = v.Value
	}
	line := lookup(root, "kind").Line
	decode := func(obj any) error {
		if err := decodeStrict(root, obj); err != nil {
			return fmt.Errorf("%s:%d: %s does not decode as Kubernetes has it: %v", file, errLine(root, err), kind, err)
		}
		return nil
	}
	switch kind {
	case "Service":
		o := &corev1.Service{}
		if err := decode(o); err != nil {
			return err
		}
		r.services = append(r.services, service{o, root})
	case "Ingress":
		if version != ingressVersion {
			r.notes = append(r.notes, note{file: file, line: line, kind: kind, name: nameOf(root),
				why: fmt.Sprintf("apiVersion %q; probelint reads %s, the only one Kubernetes serves since 1.22", version, ingressVersion)})
			return nil
		}
		o := &networkingv1.Ingress{}
		if err := decode(o); err != nil {
			return err
		}
		r.ingresses = append(r.ingresses, ingress{o, root})
	case "BackendConfig":
		if !slices.Contains(backendConfigVersions, version) {
			r.notes = append(r.notes, note{file: file, line: line, kind: kind, name: nameOf(root)})
			return nil
		}
		o := &backendConfigObject{}
		if err := decode(o); err != nil {
			return err
		}
		r.backendConfigs = append(r.backendConfigs, backendConfig{o.ObjectMeta, o.Spec, root})
	}
	return nil
}

// sameNamespace reports whether two objects are in one namespace, one left
// unset taken for the other's, as kubectl -n would set it.
func sameNamespace(a, b string) bool { return a == "" || b == "" || a == b }

// lintFront reads the balancer of every Service, Ingress and
// BackendConfig of the file and runs deployspec.LintBalancer on it against
// every workload of the file whose pods the Service selects (for an
// Ingress, the Services its backends name): with the service in each
// container as Lint had it, the pod's grace period, and the health check's
// port when it is the traffic's (the Service port's targetPort). A finding
// is reported at the line of the field at fault, and a value the
// controller refuses (the readers' error) as balancer-annotation.
func lintFront(r *report, file string) error {
	l := frontLint{r: r, file: file, seen: map[string]bool{}}
	// A Service an Ingress of the file routes to gets the Ingress's ALB
	// annotations, its own taking precedence: read there, not alone.
	routed := map[int]bool{}
	for _, in := range r.ingresses {
		ing := in.ing
		own := prefixed(ing.Annotations, albPrefix)
		if _, _, err := deployspec.BalancerFromAnnotations(own); err != nil {
			l.refused(err, []doc{{"Ingress", ing.Name, in.root, own}})
		}
		for _, to := range backends(ing) {
			i := slices.IndexFunc(r.services, func(s service) bool {
				return s.svc.Name == to.Name && sameNamespace(s.svc.Namespace, ing.Namespace)
			})
			if i < 0 {
				continue
			}
			routed[i] = true
			s := r.services[i]
			docs := []doc{{"Service", s.svc.Name, s.root, prefixed(s.svc.Annotations, albPrefix)}, {"Ingress", ing.Name, in.root, own}}
			merged := map[string]string{}
			for _, d := range slices.Backward(docs) {
				maps.Copy(merged, d.annotations)
			}
			b, ok, err := deployspec.BalancerFromAnnotations(merged)
			if err != nil {
				l.refused(err, docs)
				continue
			}
			if !ok {
				continue
			}
			fallback := docs[1]
			if len(own) == 0 {
				fallback = docs[0]
			}
			var ports []corev1.ServicePort
			for _, sp := range s.svc.Spec.Ports {
				if slices.ContainsFunc(to.Ports, func(p networkingv1.ServiceBackendPort) bool {
					return p.Name != "" && p.Name == sp.Name || p.Name == "" && p.Number == sp.Port
				}) {
					ports = append(ports, sp)
				}
			}
			subject := fmt.Sprintf("Ingress %q to Service %q", ing.Name, s.svc.Name)
			if err := l.lint(b, s, ports, annotationLines{docs: docs, fallback: fallback}, subject); err != nil {
				return err
			}
		}
	}
	configs := make([]struct {
		b   deployspec.Balancer
		ok  bool
		err error
	}, len(r.backendConfigs))
	for i, bc := range r.backendConfigs {
		c := &configs[i]
		if len(bc.spec) > 0 {
			c.b, c.ok, c.err = deployspec.BalancerFromBackendConfig(bc.spec)
		}
		if c.err != nil {
			l.refused(c.err, []doc{{kind: "BackendConfig", name: bc.meta.Name, root: bc.root}})
		}
	}
	for i, s := range r.services {
		ann := s.svc.Annotations
		if s.svc.Spec.LoadBalancerClass != nil && *s.svc.Spec.LoadBalancerClass == loadBalancerNLB && ann[nlbPrefix+"type"] == "" {
			ann = maps.Clone(ann)
			if ann == nil {
				ann = map[string]string{}
			}
			ann[nlbPrefix+"type"] = "external"
		}
		docs := []doc{{"Service", s.svc.Name, s.root, ann}}
		b, ok, err := deployspec.BalancerFromAnnotations(ann)
		nlb := b.Name == deployspec.AWSNLB().Name
		switch {
		case err != nil:
			l.refused(err, docs)
		case ok && (nlb || !routed[i]):
			// An NLB checks each port's targets; an ALB, those of the port
			// an Ingress elsewhere names: known only when there is one.
			ports := s.svc.Spec.Ports
			if !nlb && len(ports) > 1 {
				ports = nil
			}
			if err := l.lint(b, s, ports, annotationLines{docs, docs[0], nlb}, fmt.Sprintf("Service %q", s.svc.Name)); err != nil {
				return err
			}
		}
		names, err := backendConfigNames(s.svc)
		if err != nil {
			l.refused(err, docs)
			continue
		}
		for _, n := range names {
			j := slices.IndexFunc(r.backendConfigs, func(bc backendConfig) bool {
				return bc.meta.Name == n.name && sameNamespace(bc.meta.Namespace, s.svc.Namespace)
			})
			if j < 0 || !configs[j].ok {
				continue
			}
			subject := fmt.Sprintf("BackendConfig %q of Service %q", n.name, s.svc.Name)
			if err := l.lint(configs[j].b, s, n.ports, backendConfigLines{r.backendConfigs[j].root}, subject); err != nil {
				return err
			}
		}
	}
	return nil
}

// frontLint reports the findings of one file's balancers, each once.
type frontLint struct {
	r    *report
	file string
	seen map[string]bool
}

// add reports f unless a finding of the same key was: its line, what it
// is about and the finding itself.
func (l *frontLint) add(f finding, about string) {
	key := fmt.Sprint(f.line, about, f.Finding)
	if !l.seen[key] {
		l.seen[key] = true
		l.r.findings = append(l.r.findings, f)
	}
}

// doc is a document whose annotations configure a balancer.
type doc struct {
	kind, name  string
	root        *yaml.Node
	annotations map[string]string
}

// lines says where a finding's field is in the balancer's documents.
type lines interface {
	line(field string) int
}

// lint runs LintBalancer on b for every workload of the file whose pods s
// selects, each container as Lint had it. With a check on the traffic's
// port, the port is each of ports' targetPort in the pod, when it has it.
func (l *frontLint) lint(b deployspec.Balancer, s service, ports []corev1.ServicePort, at lines, subject string) error {
	sel := s.svc.Spec.Selector
	if len(sel) == 0 {
		return nil // a Service without a selector selects no pod
	}
	for _, p := range l.r.pods {
		if !sameNamespace(s.svc.Namespace, p.namespace) || !labels.SelectorFromSet(sel).Matches(labels.Set(p.labels)) {
			continue
		}
		checks := []deployspec.Balancer{b}
		if b.CheckPort == "traffic-port" {
			checks = nil
			for _, sp := range ports {
				if n := targetPort(sp, p.pod); n > 0 {
					c := b
					c.CheckPort = strconv.Itoa(n)
					checks = append(checks, c)
				}
			}
			if len(checks) == 0 {
				checks = []deployspec.Balancer{b}
			}
		}
		for _, c := range p.served {
			for _, check := range checks {
				found, err := deployspec.LintBalancer(c.svc, check, p.pod.TerminationGracePeriodSeconds)
				if err != nil {
					return fmt.Errorf("%s:%d: %s: %w", l.file, at.line(""), subject, err)
				}
				about := fmt.Sprintf("%s for %s %q (line %d)", subject, p.kind, p.name, p.line)
				for _, f := range found {
					if c.annotated {
						f = fromAnnotation(f)
					}
					// The same finding for another container of the pod is
					// the same fault: reported once.
					l.add(finding{file: l.file, line: at.line(f.Field), subject: fmt.Sprintf("%s, container %q", about, c.container), Finding: f}, about)
				}
			}
		}
	}
	return nil
}

// refused reports a reader's error: a value the controller refuses, at the
// line of the annotation or the BackendConfig's field it names.
func (l *frontLint) refused(err error, docs []doc) {
	msg := err.Error()
	if m := backendConfigFieldRE.FindStringSubmatch(msg); m != nil && docs[0].kind == "BackendConfig" {
		d := docs[0]
		path := strings.Split(m[1], ".")
		f := finding{file: l.file, line: lineOf(d.root, path), subject: fmt.Sprintf("BackendConfig %q", d.name),
			Finding: deployspec.Finding{Rule: "balancer-annotation", Field: m[1], Problem: msg,
				Fix: fmt.Sprintf("%s: a value the GKE Ingress controller takes, as the problem says; until then it applies none of this BackendConfig", path[len(path)-1])}}
		l.add(f, f.subject)
		return
	}
	for _, d := range docs {
		for k := range d.annotations {
			if !strings.Contains(msg, "annotation "+k+" ") && !strings.Contains(msg, "annotation "+k+":") {
				continue
			}
			f := finding{file: l.file, line: lineOf(d.root, []string{"metadata", "annotations", k}), subject: fmt.Sprintf("%s %q", d.kind, d.name),
				Finding: deployspec.Finding{Rule: "balancer-annotation", Field: k, Problem: msg,
					Fix: fmt.Sprintf("%s: a value the controller takes, as the problem says; until then it applies none of this %s's settings", k, d.kind)}}
			l.add(f, f.subject)
			return
		}
	}
	d := docs[0]
	f := finding{file: l.file, line: lineOf(d.root, []string{"metadata", "annotations"}), subject: fmt.Sprintf("%s %q", d.kind, d.name),
		Finding: deployspec.Finding{Rule: "balancer-annotation", Problem: msg, Fix: "values the controller takes, as the problem says"}}
	l.add(f, f.subject)
}

var backendConfigFieldRE = regexp.MustCompile(`^BackendConfig (spec(?:\.[A-Za-z]+)*)`)

// annotationLines finds a finding's field among the AWS Load Balancer
// Controller's annotations of docs, the first document that sets one
// winning; a field none sets is reported at fallback's annotations.
type annotationLines struct {
	docs     []doc
	fallback doc
	nlb      bool
}

func (a annotationLines) line(field string) int {
	prefix, keys := albPrefix, map[string]string{"interval": "healthcheck-interval-seconds", "unhealthy": "unhealthy-threshold-count"}
	if a.nlb {
		prefix, keys = nlbPrefix, map[string]string{"interval": "healthcheck-interval", "unhealthy": "healthcheck-unhealthy-threshold"}
	}
	var names []string
	switch field {
	case "Stop.Drain", "Stop.DrainMin":
		names = []string{keys["interval"], keys["unhealthy"]}
	case "balancer.deregistration_delay.timeout_seconds":
		names = []string{"target-group-attributes"}
	case "balancer.healthCheck":
		names = []string{"healthcheck-protocol"}
	case "balancer.healthCheck.path":
		names = []string{"healthcheck-path", "healthcheck-protocol"}
	case "balancer.healthCheck.port":
		names = []string{"healthcheck-port"}
	}
	for _, n := range names {
		for _, d := range a.docs {
			if _, ok := d.annotations[prefix+n]; ok {
				return lineOf(d.root, []string{"metadata", "annotations", prefix + n})
			}
		}
	}
	return lineOf(a.fallback.root, []string{"metadata", "annotations"})
}

// backendConfigLines finds a finding's field in a BackendConfig; a field
// it does not set is reported at its parent.
type backendConfigLines struct{ root *yaml.Node }

func (bc backendConfigLines) line(field string) int {
	var paths [][]string
	switch field {
	case "Stop.Drain", "Stop.DrainMin":
		paths = [][]string{{"spec", "healthCheck", "checkIntervalSec"}, {"spec", "healthCheck", "unhealthyThreshold"}}
	case "balancer.connectionDraining.drainingTimeoutSec":
		paths = [][]string{{"spec", "connectionDraining", "drainingTimeoutSec"}}
	case "balancer.healthCheck":
		paths = [][]string{{"spec", "healthCheck", "type"}}
	case "balancer.healthCheck.path":
		paths = [][]string{{"spec", "healthCheck", "requestPath"}}
	case "balancer.healthCheck.port":
		paths = [][]string{{"spec", "healthCheck", "port"}}
	default:
		paths = [][]string{{"spec", "healthCheck"}}
	}
	for _, p := range paths {
		if has(bc.root, p) {
			return lineOf(bc.root, p)
		}
	}
	return lineOf(bc.root, paths[0])
}

// has reports whether the mappings from root hold path.
func has(root *yaml.Node, path []string) bool {
	n := root
	for _, p := range path {
		if n = lookup(n, p); n == nil {
			return false
		}
	}
	return true
}

// route is a Service an Ingress sends to, and the ports it names.
type route struct {
	Name  string
	Ports []networkingv1.ServiceBackendPort
}

// backends returns the Services ing routes to, each once.
func backends(ing *networkingv1.Ingress) []route {
	var out []route
	add := func(b *networkingv1.IngressBackend) {
		if b == nil || b.Service == nil {
			return
		}
		i := slices.IndexFunc(out, func(r route) bool { return r.Name == b.Service.Name })
		if i < 0 {
			out, i = append(out, route{Name: b.Service.Name}), len(out)
		}
		out[i].Ports = append(out[i].Ports, b.Service.Port)
	}
	add(ing.Spec.DefaultBackend)
	for _, rule := range ing.Spec.Rules {
		if rule.HTTP == nil {
			continue
		}
		for _, p := range rule.HTTP.Paths {
			add(&p.Backend)
		}
	}
	return out
}

// linked is a BackendConfig a Service names, and the Service's ports it
// applies to.
type linked struct {
	name  string
	ports []corev1.ServicePort
}

// backendConfigNames reads a Service's cloud.google.com/backend-config
// annotation (or the older beta one) as the GKE Ingress controller does:
// {"default": NAME} for every port, {"ports": {PORT: NAME}} by the port's
// name or number, the ports' winning over the default.
func backendConfigNames(s *corev1.Service) ([]linked, error) {
	key := backendConfigKey
	v, ok := s.Annotations[key]
	if !ok {
		key = betaBackendConfig
		if v, ok = s.Annotations[key]; !ok {
			return nil, nil
		}
	}
	var ref struct {
		Default string            `json:"default"`
		Ports   map[string]string `json:"ports"`
	}
	if err := json.Unmarshal([]byte(v), &ref); err != nil {
		return nil, fmt.Errorf(`annotation %s is %q; the GKE Ingress controller takes JSON such as {"default": "NAME"} or {"ports": {"PORT": "NAME"}}`, key, v)
	}
	var out []linked
	for _, sp := range s.Spec.Ports {
		name, ok := ref.Ports[sp.Name]
		if !ok || sp.Name == "" {
			name, ok = ref.Ports[strconv.Itoa(int(sp.Port))]
		}
		if !ok {
			name = ref.Default
		}
		if name == "" {
			continue
		}
		i := slices.IndexFunc(out, func(l linked) bool { return l.name == name })
		if i < 0 {
			out, i = append(out, linked{name: name}), len(out)
		}
		out[i].ports = append(out[i].ports, sp)
	}
	return out, nil
}

// targetPort returns the pod's port a Service port sends to, or 0 when the
// pod has no port of its targetPort's name.
func targetPort(sp corev1.ServicePort, pod *corev1.PodSpec) int {
	switch t := sp.TargetPort; {
	case t.Type == intstr.String:
		for _, c := range pod.Containers {
			for _, cp := range c.Ports {
				if cp.Name == t.StrVal {
					return int(cp.ContainerPort)
				}
			}
		}
		return 0
	case t.IntVal != 0:
		return int(t.IntVal)
	}
	return int(sp.Port) // targetPort unset is the port
}

// prefixed returns the annotations whose key has prefix.
func prefixed(annotations map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range annotations {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

package main

// Rules across the documents of a file: a PodDisruptionBudget and the
// workload whose pods it selects.

import (
	"fmt"
	"slices"
	"strconv"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/probekit/probes/deployspec"
)

// podSet is a workload of the file: the pods its template makes.
type podSet struct {
	kind, name, namespace string
	labels                map[string]string // the pod template's
	replicas              int               // 0 when not known (a DaemonSet's) or scaled to zero
	line                  int
	pod                   *corev1.PodSpec
	served                []served // the containers linted, with the service in each
}

// served is a container linted, and the service in it as Lint had it;
// annotated when its stop is the pod's deployspec.StopAnnotation.
type served struct {
	container string
	svc       deployspec.Service
	annotated bool
}

// podSetOf describes a decoded workload.
func podSetOf(obj any, root *yaml.Node) podSet {
	var meta metav1.ObjectMeta
	var tmpl map[string]string
	replicas := 0
	count := func(n *int32) int {
		if n == nil {
			return 1 // the API server's default
		}
		return int(*n)
	}
	switch o := obj.(type) {
	case *appsv1.Deployment:
		meta, tmpl, replicas = o.ObjectMeta, o.Spec.Template.Labels, count(o.Spec.Replicas)
	case *appsv1.StatefulSet:
		meta, tmpl, replicas = o.ObjectMeta, o.Spec.Template.Labels, count(o.Spec.Replicas)
	case *appsv1.ReplicaSet:
		meta, tmpl, replicas = o.ObjectMeta, o.Spec.Template.Labels, count(o.Spec.Replicas)
	case *appsv1.DaemonSet:
		meta, tmpl = o.ObjectMeta, o.Spec.Template.Labels
	case *batchv1.Job:
		meta, tmpl = o.ObjectMeta, o.Spec.Template.Labels
	case *batchv1.CronJob:
		meta, tmpl = o.ObjectMeta, o.Spec.JobTemplate.Spec.Template.Labels
	case *corev1.Pod:
		meta, tmpl = o.ObjectMeta, o.Labels
	}
	return podSet{kind: lookup(root, "kind").Value, name: meta.Name, namespace: meta.Namespace, labels: tmpl, replicas: max(replicas, 0), line: root.Line}
}

// budget is a PodDisruptionBudget of the file.
type budget struct {
	pdb  *policyv1.PodDisruptionBudget
	root *yaml.Node
}

// lintBudgets runs deployspec.LintBudget on every budget of the file and
// every workload of the file whose pods it selects: its selector matches
// the pod template's labels, in the same namespace (one left unset is
// taken for the other's, as kubectl -n would make it). A finding of the
// budget alone (its eviction policy) is reported once.
func lintBudgets(r *report, file string) error {
	for _, b := range r.budgets {
		sel, err := metav1.LabelSelectorAsSelector(b.pdb.Spec.Selector)
		if err != nil {
			return fmt.Errorf("%s:%d: PodDisruptionBudget %q: selector: %v", file, lineOf(b.root, []string{"spec", "selector"}), b.pdb.Name, err)
		}
		var seen []deployspec.Finding
		for _, p := range r.pods {
			if !sameNamespace(b.pdb.Namespace, p.namespace) || !sel.Matches(labels.Set(p.labels)) {
				continue
			}
			in := deployspec.Budget{
				Replicas:       p.replicas,
				MinAvailable:   intOrPercent(b.pdb.Spec.MinAvailable),
				MaxUnavailable: intOrPercent(b.pdb.Spec.MaxUnavailable),
			}
			if pol := b.pdb.Spec.UnhealthyPodEvictionPolicy; pol != nil {
				in.UnhealthyPodEvictionPolicy = string(*pol)
			}
			for _, f := range deployspec.LintBudget(in) {
				if slices.Contains(seen, f) {
					continue
				}
				seen = append(seen, f)
				r.findings = append(r.findings, finding{
					file: file, line: lineOf(b.root, []string{"spec", f.Field}),
					subject: fmt.Sprintf("PodDisruptionBudget %q for %s %q (line %d)", b.pdb.Name, p.kind, p.name, p.line),
					Finding: f,
				})
			}
		}
	}
	return nil
}

// intOrPercent writes a count or a percentage as the manifest has it.
func intOrPercent(v *intstr.IntOrString) string {
	switch {
	case v == nil:
		return ""
	case v.Type == intstr.Int:
		return strconv.Itoa(int(v.IntVal))
	}
	return v.StrVal
}

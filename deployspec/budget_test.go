package deployspec_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/probekit/probes/deployspec"
)

// Each budget allows node drains but for one fault, which LintBudget
// reports with the field and the fix.
func TestLintBudget(t *testing.T) {
	good := deployspec.Budget{Replicas: 2, MaxUnavailable: "1", UnhealthyPodEvictionPolicy: deployspec.AlwaysAllow}
	for _, tt := range []struct {
		name      string
		edit      func(*deployspec.Budget)
		rule      string // empty: no finding
		field     string
		fix       string
		inProblem string
	}{
		{"the generated budget", func(*deployspec.Budget) {}, "", "", "", ""},
		{"a quarter of 8, as a percentage", func(b *deployspec.Budget) { b.Replicas, b.MaxUnavailable = 8, "25%" }, "", "", "", ""},
		{"10% of 2 rounds up to one", func(b *deployspec.Budget) { b.MaxUnavailable = "10%" }, "", "", "", ""},
		{"minAvailable below the replicas", func(b *deployspec.Budget) { b.MaxUnavailable, b.MinAvailable, b.Replicas = "", "2", 3 }, "", "", "", ""},
		{"replicas not known", func(b *deployspec.Budget) { b.Replicas, b.MaxUnavailable = 0, "0" }, "", "", "", ""},
		{"policy unset", func(b *deployspec.Budget) { b.UnhealthyPodEvictionPolicy = "" }, "pdb-unhealthy-policy", "unhealthyPodEvictionPolicy", "unhealthyPodEvictionPolicy: AlwaysAllow", "unset (IfHealthyBudget)"},
		{"policy IfHealthyBudget", func(b *deployspec.Budget) { b.UnhealthyPodEvictionPolicy = "IfHealthyBudget" }, "pdb-unhealthy-policy", "unhealthyPodEvictionPolicy", "unhealthyPodEvictionPolicy: AlwaysAllow", "is IfHealthyBudget"},
		{"policy checked without replicas", func(b *deployspec.Budget) { b.Replicas, b.UnhealthyPodEvictionPolicy = 0, "" }, "pdb-unhealthy-policy", "unhealthyPodEvictionPolicy", "unhealthyPodEvictionPolicy: AlwaysAllow", "unset"},
		{"maxUnavailable 0", func(b *deployspec.Budget) { b.MaxUnavailable = "0" }, "pdb-budget", "maxUnavailable", "maxUnavailable: 1", "no pod may ever be evicted"},
		{"maxUnavailable 0%", func(b *deployspec.Budget) { b.MaxUnavailable = "0%" }, "pdb-budget", "maxUnavailable", "maxUnavailable: 1", "no pod may ever be evicted"},
		{"minAvailable as many as the replicas", func(b *deployspec.Budget) { b.MaxUnavailable, b.MinAvailable = "", "2" }, "pdb-budget", "minAvailable", "maxUnavailable: 1 in place of minAvailable", "2 pods must stay available"},
		{"minAvailable above the replicas", func(b *deployspec.Budget) { b.MaxUnavailable, b.MinAvailable, b.Replicas = "", "3", 1 }, "pdb-budget", "minAvailable", "maxUnavailable: 1 in place of minAvailable", "3 pods must stay available"},
		{"minAvailable 100%", func(b *deployspec.Budget) { b.MaxUnavailable, b.MinAvailable, b.Replicas = "", "100%", 12 }, "pdb-budget", "minAvailable", "maxUnavailable: 3 in place of minAvailable", "12 pods must stay available"},
		{"minAvailable 60% of 2 rounds up to all", func(b *deployspec.Budget) { b.MaxUnavailable, b.MinAvailable = "", "60%" }, "pdb-budget", "minAvailable", "maxUnavailable: 1 in place of minAvailable", "2 pods must stay available"},
		{"both set", func(b *deployspec.Budget) { b.MinAvailable = "1" }, "pdb-budget", "minAvailable", "maxUnavailable: 1 in place of minAvailable", "refuses both"},
		{"not a percentage", func(b *deployspec.Budget) { b.MaxUnavailable = "half" }, "pdb-budget", "maxUnavailable", "maxUnavailable: 1", "neither a count nor a percentage"},
		{"past 100%", func(b *deployspec.Budget) { b.MaxUnavailable = "1000000000000000000%" }, "pdb-budget", "maxUnavailable", "maxUnavailable: 1", "not a percentage from 0% to 100%"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := good
			tt.edit(&b)
			got := deployspec.LintBudget(b)
			if tt.rule == "" {
				if len(got) != 0 {
					t.Errorf("got %v, want no finding", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("got %d findings %v, want one %s", len(got), got, tt.rule)
			}
			f := got[0]
			if f.Rule != tt.rule || f.Field != tt.field || f.Fix != tt.fix || !strings.Contains(f.Problem, tt.inProblem) {
				t.Errorf("got %s at %s (fix %q, problem %q), want %s at %s (fix %q, problem with %q)", f.Rule, f.Field, f.Fix, f.Problem, tt.rule, tt.field, tt.fix, tt.inProblem)
			}
		})
	}
}

// The generated maxUnavailable is a quarter of the replicas, rounded down,
// at least one, and always passes LintBudget.
func TestMaxUnavailable(t *testing.T) {
	for _, tt := range []struct{ replicas, want int }{
		{0, 1}, {1, 1}, {2, 1}, {3, 1}, {4, 1}, {7, 1}, {8, 2}, {11, 2}, {12, 3}, {100, 25},
	} {
		t.Run(fmt.Sprint(tt.replicas), func(t *testing.T) {
			got := deployspec.MaxUnavailable(tt.replicas)
			if got.Value != tt.want || got.Why == "" {
				t.Errorf("got %d (%q), want %d with a reason", got.Value, got.Why, tt.want)
			}
			b := deployspec.Budget{Replicas: tt.replicas, MaxUnavailable: fmt.Sprint(got.Value), UnhealthyPodEvictionPolicy: deployspec.AlwaysAllow}
			if f := deployspec.LintBudget(b); len(f) != 0 {
				t.Errorf("the generated budget is reported: %v", f)
			}
		})
	}
}

// Asked for, the Deployment is followed by a PodDisruptionBudget for its
// pods whose numbers pass LintBudget; by default there is none.
func TestDeploymentDisruptionBudget(t *testing.T) {
	for _, tt := range []struct {
		name     string
		replicas int
		want     string
	}{
		{"default replicas", 0, "maxUnavailable: 1\n"},
		{"one replica", 1, "maxUnavailable: 1\n"},
		{"twelve replicas", 12, "maxUnavailable: 3\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := deployspec.Deployment{Name: "items", Image: "items:1", AppAddr: ":8080", Replicas: tt.replicas, Service: example, DisruptionBudget: true}
			y, err := d.YAML()
			if err != nil {
				t.Fatal(err)
			}
			_, pdb, ok := strings.Cut(y, "\n---\n")
			if !ok {
				t.Fatalf("got no second document:\n%s", y)
			}
			for _, want := range []string{"apiVersion: policy/v1\nkind: PodDisruptionBudget\n", "  name: items\n", "\n  " + tt.want,
				"\n  unhealthyPodEvictionPolicy: AlwaysAllow\n", "  selector:\n    matchLabels:\n      app: items\n"} {
				if !strings.Contains(pdb, want) {
					t.Errorf("got budget\n%s\nwant it to hold %q", pdb, want)
				}
			}
			n, _, _ := strings.Cut(strings.TrimPrefix(tt.want, "maxUnavailable: "), "\n")
			b := deployspec.Budget{Replicas: max(tt.replicas, 1), MaxUnavailable: n, UnhealthyPodEvictionPolicy: deployspec.AlwaysAllow}
			if tt.replicas == 0 {
				b.Replicas = 2
			}
			if f := deployspec.LintBudget(b); len(f) != 0 {
				t.Errorf("the generated budget is reported: %v", f)
			}
		})
	}
	d := deployspec.Deployment{Name: "items", Image: "items:1", AppAddr: ":8080", Service: example}
	if y, err := d.YAML(); err != nil || strings.Contains(y, "PodDisruptionBudget") {
		t.Errorf("by default: got %v and\n%s\nwant no budget", err, y)
	}
}

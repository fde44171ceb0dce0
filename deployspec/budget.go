package deployspec

// A PodDisruptionBudget that lets node drains through: the rules and the
// numbers the generator writes.

import (
	"fmt"
	"strconv"
	"strings"
)

// AlwaysAllow is the unhealthyPodEvictionPolicy a budget should set: a pod
// that is not ready serves nothing, so evicting it never lowers capacity,
// while under the default (IfHealthyBudget) unready pods spend the budget
// and then block every eviction, and with it the node drain.
const AlwaysAllow = "AlwaysAllow"

// Budget is what LintBudget reads of a PodDisruptionBudget and of the
// workload whose pods it selects.
type Budget struct {
	// Replicas is the workload's replica count (1 when its manifest leaves
	// it unset). Zero or less: not known (a DaemonSet's, a bare Pod's) or
	// scaled to zero, and only the eviction policy is checked.
	Replicas int
	// MinAvailable and MaxUnavailable are the budget's fields as written,
	// a count ("1") or a percentage ("25%"); empty when unset.
	MinAvailable, MaxUnavailable string
	// UnhealthyPodEvictionPolicy is the field as written; empty when unset,
	// which Kubernetes reads as IfHealthyBudget.
	UnhealthyPodEvictionPolicy string
}

// LintBudget reports every setting of b that can block a node drain: an
// eviction policy other than AlwaysAllow, and a budget that allows no
// eviction of the workload's pods when all of them are healthy. A
// Finding's Field is the budget's spec field at fault, such as
// "minAvailable".
func LintBudget(b Budget) []Finding {
	var out []Finding
	if b.UnhealthyPodEvictionPolicy != AlwaysAllow {
		was := b.UnhealthyPodEvictionPolicy
		if was == "" {
			was = "unset (IfHealthyBudget)"
		}
		out = append(out, Finding{Rule: "pdb-unhealthy-policy", Field: "unhealthyPodEvictionPolicy",
			Problem: fmt.Sprintf("unhealthyPodEvictionPolicy is %s: a pod that is not ready (warming up, cordoned, waiting out a shared dependency's outage) counts against the budget, and once it is spent no pod may be evicted: node drains wait", was),
			Fix:     "unhealthyPodEvictionPolicy: " + AlwaysAllow})
	}
	if b.Replicas < 1 {
		return out
	}
	fix := fmt.Sprintf("maxUnavailable: %d", MaxUnavailable(b.Replicas).Value)
	if b.MinAvailable != "" {
		fix += " in place of minAvailable"
	}
	problem := func(field, value, why string, args ...any) {
		out = append(out, Finding{Rule: "pdb-budget", Field: field,
			Problem: fmt.Sprintf("%s %s with %d replicas: ", field, value, b.Replicas) + fmt.Sprintf(why, args...), Fix: fix})
	}
	switch {
	case b.MinAvailable != "" && b.MaxUnavailable != "":
		problem("minAvailable", b.MinAvailable, "the budget sets maxUnavailable too, and the API server refuses both")
	case b.MinAvailable != "":
		n, err := scaled(b.MinAvailable, b.Replicas)
		if err != nil {
			problem("minAvailable", b.MinAvailable, "%v", err)
		} else if n >= b.Replicas {
			problem("minAvailable", b.MinAvailable, "%d pods must stay available, so no pod may ever be evicted: every node drain waits", n)
		}
	case b.MaxUnavailable != "":
		n, err := scaled(b.MaxUnavailable, b.Replicas)
		if err != nil {
			problem("maxUnavailable", b.MaxUnavailable, "%v", err)
		} else if n < 1 {
			problem("maxUnavailable", b.MaxUnavailable, "no pod may ever be evicted: every node drain waits")
		}
	}
	return out
}

// scaled returns a count or a percentage of replicas, rounded up as the
// disruption controller rounds both minAvailable and maxUnavailable.
func scaled(v string, replicas int) (int, error) {
	if p, ok := strings.CutSuffix(v, "%"); ok {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 100 {
			return 0, fmt.Errorf("%q is not a percentage from 0%% to 100%%", v)
		}
		return (n*replicas + 99) / 100, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is neither a count nor a percentage", v)
	}
	return n, nil
}

// MaxUnavailable is the maxUnavailable the generator writes for a
// workload of the given replicas: a quarter of them, rounded down, and at
// least 1.
//
// At least 1, because a budget that allows no eviction blocks every node
// drain (and the cluster upgrades and scale-downs that need one) until
// someone edits it; with one replica that means the drain takes the only
// pod, which is why the Deployment defaults to 2. At most a quarter,
// because every evicted pod is capacity gone until its replacement has
// warmed up, and the rest must carry the load meanwhile. More than one at
// a time once there are 8 or more, because a drain that waits for a
// warm-up per pod takes replicas x warm-up. A count rather than "25%":
// the file says what it means, and Kubernetes rounds a percentage up (25%
// of 5 is 2, two fifths of the pods).
func MaxUnavailable(replicas int) Number {
	replicas = max(replicas, 1)
	n := max(replicas/4, 1)
	why := fmt.Sprintf("a drain may evict %d of the %d pods at once (a quarter, rounded down, at least 1): never none, which would block it; the rest carry the load while replacements warm up", n, replicas)
	if replicas == 1 {
		why = "a drain may evict the only pod: a budget that allows no eviction blocks every drain; run 2 replicas to keep one serving"
	}
	return Number{n, why}
}

package main

// The termination message policy: a container with probes shows why it
// stopped.

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/probekit/probes/deployspec"
)

// terminationRule names the findings about the policy.
const terminationRule = "termination-message-policy"

// terminationPolicy reports a container with probes whose
// terminationMessagePolicy is not deployspec.TerminationMessagePolicy:
// with File, the default, a process that dies before it writes its
// termination message (a panic on a goroutine of its own) shows nothing
// but its exit code.
func terminationPolicy(c corev1.Container) (deployspec.Finding, bool) {
	if c.StartupProbe == nil && c.LivenessProbe == nil && c.ReadinessProbe == nil ||
		string(c.TerminationMessagePolicy) == deployspec.TerminationMessagePolicy {
		return deployspec.Finding{}, false
	}
	policy := "unset (File)"
	if c.TerminationMessagePolicy != "" {
		policy = string(c.TerminationMessagePolicy)
	}
	return deployspec.Finding{
		Rule:  terminationRule,
		Field: "terminationMessagePolicy",
		Problem: fmt.Sprintf("terminationMessagePolicy is %s: a process that dies before it writes its termination message (a panic, a crash) "+
			"leaves kubectl describe nothing to say but its exit code", policy),
		Fix: "terminationMessagePolicy: " + deployspec.TerminationMessagePolicy,
	}, true
}

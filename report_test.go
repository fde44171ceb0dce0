package probes_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/probekit/probes"
)

func TestContribution(t *testing.T) {
	tests := []struct {
		name                         string
		critical, shared, everPassed bool
		stale                        bool
		status, want                 probes.Status
	}{
		{"passing", true, false, true, false, probes.Pass, probes.Pass},
		{"warning", true, true, true, false, probes.Warn, probes.Warn},
		{"critical local fails", true, false, true, false, probes.Fail, probes.Fail},
		{"non-critical warns", false, false, true, false, probes.Fail, probes.Warn},
		{"shared warns once it has passed", true, true, true, false, probes.Fail, probes.Warn},
		{"shared never reached fails as local", true, true, false, false, probes.Fail, probes.Fail},
		{"shared but stale fails: a stalled schedule is local", true, true, true, true, probes.Fail, probes.Fail},
		{"non-critical shared never reached warns", false, true, false, false, probes.Fail, probes.Warn},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := probes.Result{Critical: tt.critical, Shared: tt.shared, EverPassed: tt.everPassed, Stale: tt.stale, Status: tt.status}
			if got := r.Contribution(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestProgress(t *testing.T) {
	r := probes.Report{Tasks: []probes.TaskState{
		{Name: "cache", Fraction: 0.3},
		{Name: "schema", Done: true, Fraction: 1},
		{Name: "index", Fraction: 0.2, Failures: 2},
	}}
	if got, want := r.Progress(), 0.5; got != want {
		t.Errorf("Progress: got %v, want %v", got, want)
	}
	if got, want := r.ProgressNote(), "warm-up 50%: cache 30%, schema done, index 20% (retrying after 2 failed attempts)"; got != want {
		t.Errorf("ProgressNote: got %q, want %q", got, want)
	}
	if got := (probes.Report{}).Progress(); got != 1 {
		t.Errorf("Progress with no tasks: got %v, want 1", got)
	}
	if got := (probes.Report{}).ProgressNote(); got != "" {
		t.Errorf("ProgressNote with no tasks: got %q, want none", got)
	}
}

// The defaults the docs state are the ones the checks get.
func TestCheckDefaults(t *testing.T) {
	if probes.DefaultInterval != 5*time.Second || probes.DefaultTimeout != time.Second ||
		probes.DefaultFailureThreshold != 1 || probes.DefaultSuccessThreshold != 1 {
		t.Errorf("check defaults: interval %s, timeout %s, thresholds %d and %d; the docs say 5s, 1s, 1 and 1",
			probes.DefaultInterval, probes.DefaultTimeout, probes.DefaultFailureThreshold, probes.DefaultSuccessThreshold)
	}
}

func TestReportBehind(t *testing.T) {
	rep := probes.Report{Checks: []probes.Result{
		{Name: "db", Status: probes.Fail, Critical: true},
		{Name: "cache", Status: probes.Fail},                                                  // non-critical: warns
		{Name: "shared", Status: probes.Fail, Critical: true, Shared: true, EverPassed: true}, // shared: warns
		{Name: "ok", Status: probes.Pass, Critical: true},
		{Name: "gone", Status: probes.Fail, Critical: true},
	}}
	failing, warning := rep.Behind(func(name string) bool { return name == "gone" })
	if fmt.Sprint(failing, warning) != "[db] [cache shared]" {
		t.Errorf("Behind = %v %v, want [db] [cache shared]", failing, warning)
	}
}

package memcheck_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/memcheck"
)

// Through a running gate, a cgroup nearing its limit warns readiness at a
// following check (and only warns, with the default options), and passes
// it again when memory is freed.
func TestGateSeesMemory(t *testing.T) {
	const interval = 100 * time.Millisecond
	memoryLimit(t, math.MaxInt64)
	dir := cgroupDir(t, map[string]string{"memory.max": "1000\n", "memory.current": "500\n"})
	current := func(s string) {
		t.Helper()
		// Written in place, as the kernel's file changes.
		if err := os.WriteFile(filepath.Join(dir, "memory.current"), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	c, err := memcheck.New(memcheck.CgroupDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	ready := testutil.ReadyGate(t, "memory", c, probes.Every(interval), probes.Local())
	testutil.WaitStatus(t, ready, "start", probes.Pass, 5*time.Second)

	// Generous bounds, for a loaded machine: the times are logged.
	current("990\n")
	warned := testutil.WaitStatus(t, ready, "at 99%", probes.Warn, testutil.Deadline)
	current("400\n")
	passed := testutil.WaitStatus(t, ready, "at 40%", probes.Pass, testutil.Deadline)
	t.Logf("interval %s: readiness warned %s after the cgroup reached 99%% of memory.max, passed %s after it fell to 40%%",
		interval, warned.Round(time.Millisecond), passed.Round(time.Millisecond))
}

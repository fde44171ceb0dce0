package diskcheck_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/diskcheck"
)

// Through a running gate, a filesystem that fills warns (under 10 %),
// then fails (under 256 KiB), each at a following check, and passes again
// once freed.
func TestGateSeesDiskFill(t *testing.T) {
	const interval = 100 * time.Millisecond
	dir := tmpfs(t, 8*mib, 64)
	c, err := diskcheck.New(dir, diskcheck.FailBelow(diskcheck.Bytes(256<<10)))
	if err != nil {
		t.Fatal(err)
	}
	ready := testutil.ReadyGate(t, "disk", c, probes.Every(interval), probes.Local())
	testutil.WaitStatus(t, ready, "start", probes.Pass, 5*time.Second)

	// Generous bounds, for a loaded machine: the times are logged.
	within := testutil.Deadline
	fill(t, dir, 7.5*mib, 0) // 6.25 % free: below the default 10 %
	warned := testutil.WaitStatus(t, ready, "under 10% free", probes.Warn, within)
	if err := os.WriteFile(filepath.Join(dir, "more"), make([]byte, 384<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	failed := testutil.WaitStatus(t, ready, "under 256 KiB free", probes.Fail, within)
	if err := os.Remove(filepath.Join(dir, "fill")); err != nil {
		t.Fatal(err)
	}
	passed := testutil.WaitStatus(t, ready, "freed", probes.Pass, within)
	t.Logf("interval %s: readiness warned %s after the disk went under 10%% free, failed %s after it went under 256 KiB, passed %s after it was freed",
		interval, warned.Round(time.Millisecond), failed.Round(time.Millisecond), passed.Round(time.Millisecond))
}

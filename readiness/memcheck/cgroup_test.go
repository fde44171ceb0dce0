package memcheck

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// fakeTree writes files (paths under a temporary directory: "proc/self/cgroup",
// "cgroup/system.slice/memory.max", ...) and returns the directory.
func fakeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const (
	gib = 1 << 30
	mib = 1 << 20
	// unlimitedText is what cgroup v1's memory.limit_in_bytes holds without a
	// limit (LONG_MAX rounded down to 4 KiB pages).
	unlimitedText = "9223372036854771712\n"
)

// The default finds the process's own cgroup from /proc/self/cgroup, in
// cgroup v2 (a container's, or a systemd unit's with MemoryMax) and in
// cgroup v1, and the tightest limit of it and its ancestors.
func TestDefaultFindsTheCgroup(t *testing.T) {
	old := debug.SetMemoryLimit(math.MaxInt64) // no GOMEMLIMIT: only the cgroup decides
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
	for _, tt := range []struct {
		name       string
		files      map[string]string
		status     probes.Status
		want       string  // in the error
		workingSet float64 // observed; -1: no cgroup, so not observed
		percent    float64 // observed; -1: no limit, so not observed
	}{
		{"v2, a container's own cgroup at the root", map[string]string{
			"proc/self/cgroup":      "0::/\n",
			"cgroup/memory.max":     "1073741824\n",
			"cgroup/memory.current": "536870912\n",
		}, probes.Pass, "", 512 * mib, 50},
		{"v2, a systemd unit's MemoryMax", map[string]string{
			"proc/self/cgroup": "0::/system.slice/app.service\n",
			// The host's root cgroup has no memory.max.
			"cgroup/memory.current":                          "8589934592\n",
			"cgroup/system.slice/app.service/memory.max":     "536870912\n",
			"cgroup/system.slice/app.service/memory.current": "510027366\n",
		}, probes.Warn, "cgroup memory 486.4 MiB of memory.max 512 MiB (95.0%), above 90%", 510027366, 510027366.0 / (512 * mib) * 100},
		{"v2, the limit on a parent slice", map[string]string{
			"proc/self/cgroup":                            "0::/app.slice/app.service\n",
			"cgroup/app.slice/memory.max":                 "1073741824\n",
			"cgroup/app.slice/memory.current":             "1020054732\n",
			"cgroup/app.slice/app.service/memory.max":     "max\n",
			"cgroup/app.slice/app.service/memory.current": "104857600\n",
		}, probes.Warn, "cgroup memory (/app.slice) 972.8 MiB of memory.max 1 GiB (95.0%), above 90%", 1020054732, 1020054732.0 / gib * 100},
		{"v2, the tighter of two limits by use", map[string]string{
			"proc/self/cgroup":                            "0::/app.slice/app.service\n",
			"cgroup/app.slice/memory.max":                 "2147483648\n",
			"cgroup/app.slice/memory.current":             "1073741824\n",
			"cgroup/app.slice/app.service/memory.max":     "1073741824\n",
			"cgroup/app.slice/app.service/memory.current": "1000000000\n",
			"cgroup/app.slice/app.service/memory.stat":    "anon 900000000\ninactive_file 0\n",
		}, probes.Warn, "cgroup memory 953.7 MiB of memory.max 1 GiB (93.1%)", 1e9, 1e9 / gib * 100},
		{"v2, max all the way up", map[string]string{
			"proc/self/cgroup":                               "0::/user.slice/session.scope\n",
			"cgroup/user.slice/memory.max":                   "max\n",
			"cgroup/user.slice/memory.current":               "4294967296\n",
			"cgroup/user.slice/session.scope/memory.max":     "max\n",
			"cgroup/user.slice/session.scope/memory.current": "104857600\n",
		}, probes.Pass, "", 100 * mib, -1},
		{"v2, the path not under the mount (a container in the host's cgroup namespace)", map[string]string{
			"proc/self/cgroup":      "0::/kubepods/pod1/abc\n",
			"cgroup/memory.max":     "1073741824\n",
			"cgroup/memory.current": "268435456\n",
		}, probes.Pass, "", 256 * mib, 25},
		{"v2, a path climbing out of the mount stays under it", map[string]string{
			"proc/self/cgroup":      "0::/../../etc\n",
			"cgroup/memory.max":     "1073741824\n",
			"cgroup/memory.current": "268435456\n",
		}, probes.Pass, "", 256 * mib, 25},
		{"v1, a container's cgroup", map[string]string{
			"proc/self/cgroup":                    "12:memory:/docker/abc\n11:cpu,cpuacct:/docker/abc\n0::/\n",
			"cgroup/memory/memory.limit_in_bytes": "1073741824\n",
			"cgroup/memory/memory.usage_in_bytes": "1020054732\n",
			"cgroup/memory/memory.stat":           "cache 0\ntotal_inactive_file 0\n",
		}, probes.Warn, "cgroup memory 972.8 MiB of memory.limit_in_bytes 1 GiB (95.0%), above 90%", 1020054732, 1020054732.0 / gib * 100},
		{"v1, inactive file cache does not count", map[string]string{
			"proc/self/cgroup":                    "4:memory:/\n",
			"cgroup/memory/memory.limit_in_bytes": "1073741824\n",
			"cgroup/memory/memory.usage_in_bytes": "1020054732\n",
			"cgroup/memory/memory.stat":           "inactive_file 1\ntotal_inactive_file 420054732\n",
		}, probes.Pass, "", 600000000, 600000000.0 / gib * 100},
		{"v1, unlimited", map[string]string{
			"proc/self/cgroup":                    "4:memory:/\n",
			"cgroup/memory/memory.limit_in_bytes": unlimitedText,
			"cgroup/memory/memory.usage_in_bytes": "104857600\n",
		}, probes.Pass, "", 100 * mib, -1},
		{"v1, a systemd unit's MemoryMax (MemoryLimit)", map[string]string{
			"proc/self/cgroup":                                             "7:memory:/system.slice/app.service\n",
			"cgroup/memory/memory.limit_in_bytes":                          unlimitedText,
			"cgroup/memory/memory.usage_in_bytes":                          "8589934592\n",
			"cgroup/memory/system.slice/memory.limit_in_bytes":             unlimitedText,
			"cgroup/memory/system.slice/memory.usage_in_bytes":             "2147483648\n",
			"cgroup/memory/system.slice/app.service/memory.limit_in_bytes": "536870912\n",
			"cgroup/memory/system.slice/app.service/memory.usage_in_bytes": "268435456\n",
		}, probes.Pass, "", 256 * mib, 50},
		{"v1, an ancestor's limit in hierarchical_memory_limit", map[string]string{
			"proc/self/cgroup":                    "4:memory:/\n",
			"cgroup/memory/memory.limit_in_bytes": unlimitedText,
			"cgroup/memory/memory.usage_in_bytes": "1020054732\n",
			"cgroup/memory/memory.stat":           "hierarchical_memory_limit 1073741824\ntotal_inactive_file 0\n",
		}, probes.Warn, "(95.0%)", 1020054732, 1020054732.0 / gib * 100},
		{"no cgroup to be found", map[string]string{
			"proc/self/cgroup": "0::/\n",
		}, probes.Pass, "", -1, -1},
		{"no /proc/self/cgroup: the mount's root", map[string]string{
			"cgroup/memory.max":     "1073741824\n",
			"cgroup/memory.current": "536870912\n",
		}, probes.Pass, "", 512 * mib, 50},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := fakeTree(t, tt.files)
			c, err := New()
			if err != nil {
				t.Fatal(err)
			}
			c.root, c.proc = filepath.Join(dir, "cgroup"), filepath.Join(dir, "proc")
			obs, err := testutil.CheckOnce(c, time.Second)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			got, ok := testutil.Observed(obs, "cgroupWorkingSet")
			if tt.workingSet < 0 && ok || tt.workingSet >= 0 && (!ok || got != tt.workingSet) {
				t.Errorf("cgroupWorkingSet: got %v (observed %t), want %v", got, ok, tt.workingSet)
			}
			got, ok = testutil.Observed(obs, "cgroupUtilization")
			if tt.percent < 0 && ok || tt.percent >= 0 && (!ok || math.Abs(got-tt.percent) > 1e-9) {
				t.Errorf("cgroupUtilization: got %v (observed %t), want %v", got, ok, tt.percent)
			}
		})
	}
}

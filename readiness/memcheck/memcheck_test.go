package memcheck_test

import (
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/memcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// cgroupDir writes the given cgroup files ("memory.max": "max\n", ...) in a
// temporary directory.
func cgroupDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// memoryLimit sets the runtime's memory limit (GOMEMLIMIT) for the test and
// puts the old one back when it ends. Tests that call it do not run in
// parallel: the limit belongs to the process.
func memoryLimit(t *testing.T, limit int64) {
	t.Helper()
	old := debug.SetMemoryLimit(limit)
	t.Cleanup(func() { debug.SetMemoryLimit(old) })
}

const mib = 1 << 20

func TestCgroup(t *testing.T) {
	memoryLimit(t, math.MaxInt64) // no GOMEMLIMIT: only the cgroup decides
	for _, tt := range []struct {
		name       string
		files      map[string]string
		opts       []memcheck.Option
		status     probes.Status
		want       string  // in the error
		workingSet float64 // observed
		percent    float64 // observed; -1: no limit, so not observed
	}{
		{"no limit passes", map[string]string{"memory.max": "max\n", "memory.current": "943718400\n"}, nil,
			probes.Pass, "", 900 * mib, -1},
		{"half the limit passes", map[string]string{"memory.max": "1073741824\n", "memory.current": "536870912\n"}, nil,
			probes.Pass, "", 512 * mib, 50},
		{"above 90% warns", map[string]string{"memory.max": "1073741824\n", "memory.current": "1020054732\n"}, nil,
			probes.Warn, "cgroup memory 972.8 MiB of memory.max 1 GiB (95.0%), above 90%", 1020054732, 1020054732.0 / (1 << 30) * 100},
		{"inactive file cache does not count", map[string]string{"memory.max": "1073741824\n", "memory.current": "1020054732\n",
			"memory.stat": "anon 500000000\nfile 520054732\nactive_file 100000000\ninactive_file 420054732\n"}, nil,
			probes.Pass, "", 600000000, 600000000.0 / (1 << 30) * 100},
		{"above WarnAbove warns", map[string]string{"memory.max": "1000\n", "memory.current": "600\n"}, []memcheck.Option{memcheck.WarnAbove(0.5)},
			probes.Warn, "above 50%", 600, 60},
		{"above FailAbove fails", map[string]string{"memory.max": "1000\n", "memory.current": "990\n"}, []memcheck.Option{memcheck.FailAbove(0.95)},
			probes.Fail, "cgroup memory 990 B of memory.max 1000 B (99.0%), above 95%", 990, 99},
		{"at the limit only warns by default", map[string]string{"memory.max": "1000\n", "memory.current": "1000\n"}, nil,
			probes.Warn, "(100.0%)", 1000, 100},
		{"cgroup v1 files", map[string]string{"memory.limit_in_bytes": "1000\n", "memory.usage_in_bytes": "950\n"}, nil,
			probes.Warn, "cgroup memory 950 B of memory.limit_in_bytes 1000 B (95.0%)", 950, 95},
		{"cgroup v1 files, unlimited", map[string]string{"memory.limit_in_bytes": "9223372036854771712\n", "memory.usage_in_bytes": "950\n"}, nil,
			probes.Pass, "", 950, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := memcheck.New(append([]memcheck.Option{memcheck.CgroupDir(cgroupDir(t, tt.files))}, tt.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			obs, err := testutil.CheckOnce(c, time.Second)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			if got, ok := testutil.Observed(obs, "cgroupWorkingSet"); !ok || got != tt.workingSet {
				t.Errorf("cgroupWorkingSet: got %v (observed %t), want %v", got, ok, tt.workingSet)
			}
			got, ok := testutil.Observed(obs, "cgroupUtilization")
			if tt.percent < 0 && ok || tt.percent >= 0 && (!ok || math.Abs(got-tt.percent) > 1e-9) {
				t.Errorf("cgroupUtilization: got %v (observed %t), want %v", got, ok, tt.percent)
			}
			if _, ok := testutil.Observed(obs, "goUtilization"); ok {
				t.Error("goUtilization observed without GOMEMLIMIT")
			}
		})
	}
}

func TestCgroupFilesBroken(t *testing.T) {
	memoryLimit(t, math.MaxInt64)
	for _, tt := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no memory.max", map[string]string{"memory.current": "1\n"}, "memory.max: no such file"},
		{"no memory.current", map[string]string{"memory.max": "max\n"}, "memory.current: no such file"},
		{"memory.max not a number", map[string]string{"memory.max": "lots\n", "memory.current": "1\n"}, `memory.max: want a number of bytes, got "lots"`},
		{"memory.current not a number", map[string]string{"memory.max": "max\n", "memory.current": "-1\n"}, `memory.current: want a number of bytes, got "-1"`},
		{"memory.stat not a number", map[string]string{"memory.max": "max\n", "memory.current": "1\n", "memory.stat": "inactive_file x\n"}, `memory.stat inactive_file: want a number of bytes, got "x"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := memcheck.New(memcheck.CgroupDir(cgroupDir(t, tt.files)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = testutil.CheckOnce(c, time.Second)
			if probes.StatusOf(err) != probes.Fail || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a failure containing %q", err, tt.want)
			}
		})
	}
}

// goMemory is what the runtime counts against its memory limit, as the
// checker reads it.
func goMemory() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// The limits are set a wide margin away from the thresholds: the runtime's
// figure moves a little between the test's reading and the check's.
func TestGoMemoryLimit(t *testing.T) {
	noLimit := cgroupDir(t, map[string]string{"memory.max": "max\n", "memory.current": "1\n"})
	for _, tt := range []struct {
		name   string
		limit  float64 // times the memory in use; 0: none
		opts   []memcheck.Option
		status probes.Status
		want   string
	}{
		{"no GOMEMLIMIT passes", 0, nil, probes.Pass, ""},
		{"far below GOMEMLIMIT passes", 4, nil, probes.Pass, ""},
		{"above WarnAbove warns", 1.5, []memcheck.Option{memcheck.WarnAbove(0.5)}, probes.Warn, "Go runtime memory "},
		{"above FailAbove fails", 1.3, []memcheck.Option{memcheck.WarnAbove(0.5), memcheck.FailAbove(0.6)}, probes.Fail, "of GOMEMLIMIT "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := memcheck.New(append([]memcheck.Option{memcheck.CgroupDir(noLimit)}, tt.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			limit := int64(math.MaxInt64)
			if tt.limit > 0 {
				limit = int64(float64(goMemory()) * tt.limit)
			}
			memoryLimit(t, limit)
			obs, err := testutil.CheckOnce(c, time.Second)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			if got, ok := testutil.Observed(obs, "goMemory"); !ok || got <= 0 {
				t.Errorf("goMemory: got %v (observed %t), want a positive number of bytes", got, ok)
			}
			got, ok := testutil.Observed(obs, "goUtilization")
			if want := 100 / tt.limit; tt.limit == 0 && ok || tt.limit > 0 && (!ok || math.Abs(got-want) > want/5) {
				t.Errorf("goUtilization: got %v (observed %t), want about %v", got, ok, want)
			}
		})
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []memcheck.Option
		want string
	}{
		{"empty dir", []memcheck.Option{memcheck.CgroupDir("")}, `memcheck: CgroupDir("")`},
		{"warn 0", []memcheck.Option{memcheck.WarnAbove(0)}, "memcheck: WarnAbove(0)"},
		{"warn above 1", []memcheck.Option{memcheck.WarnAbove(1.5)}, "WarnAbove(1.5)"},
		{"fail NaN", []memcheck.Option{memcheck.FailAbove(math.NaN())}, "FailAbove(NaN)"},
		{"fail below warn", []memcheck.Option{memcheck.FailAbove(0.8)}, "FailAbove(0.8): below WarnAbove(0.9)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := memcheck.New(tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// On the machine the tests run on, the default finds whatever cgroup the
// process is in (v1 or v2, a container's or a unit's, or none) and reads it
// without error: with the default options the check passes or warns.
func TestDefaultOnThisMachine(t *testing.T) {
	c, err := memcheck.New()
	if err != nil {
		t.Fatal(err)
	}
	obs, err := testutil.CheckOnce(c, time.Second)
	if !probes.StatusOf(err).OK() {
		t.Errorf("got %v, want a pass or a warning", err)
	}
	t.Logf("observed %v (%v)", obs, err)
}

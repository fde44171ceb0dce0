// Package memcheck is a readiness check of the memory a service uses
// against the limits it will be stopped at: its cgroup's memory.max (the
// container's memory limit, past which the kernel's OOM killer ends it) and
// the Go runtime's soft limit, GOMEMLIMIT (past which the garbage collector
// runs ever more often). It lives in a package of its own so that a service
// that does not use it never compiles it.
//
// At each execution it reads cgroup v2's memory.current, memory.stat and
// memory.max under a directory (CgroupDir, default /sys/fs/cgroup, where a
// container sees its own cgroup), and the runtime's own figures
// (runtime/metrics; the limit through debug.SetMemoryLimit(-1)). The
// cgroup's usage is its working set, memory.current less the inactive file
// cache of memory.stat, which the kernel reclaims before it kills anything
// (the kubelet counts it so too). A limit of "max" means none.
//
// Observed values: "cgroupWorkingSet" (bytes) and, with a limit,
// "cgroupUtilization" (% of memory.max); "goMemory" (bytes, what the
// runtime counts against GOMEMLIMIT: memory it has mapped and not returned
// to the system) and, with a limit, "goUtilization" (% of GOMEMLIMIT).
//
// The check warns above WarnAbove (default 0.9) of either limit. It does
// not fail unless told (FailAbove): taking an instance out of rotation frees
// none of its memory, and its load moves to its peers, which are as close to
// their limits. A warning says, in time, that the kill is coming.
//
// Memory is the instance's own, so add the check with probes.Local():
//
//	mem, err := memcheck.New()
//	...
//	err = ready.Add("memory", mem, probes.Local(), probes.ComponentType("system"))
//
// Memory belongs to readiness, never to liveness: a restart only repeats
// what the OOM killer would do, earlier, and for every replica at once when
// a spike of load hits them all.
package memcheck

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// Defaults of the options.
const (
	DefaultCgroupDir = "/sys/fs/cgroup"
	DefaultWarnAbove = 0.9
)

// Option configures a Checker.
type Option func(*config) error

type config struct {
	dir        string
	dirSet     bool
	warn, fail float64 // fail 0: off
}

// CgroupDir sets the directory holding the cgroup v2 memory files
// (memory.current, memory.max, memory.stat). Default DefaultCgroupDir
// (/sys/fs/cgroup). Where the default holds no memory.max (cgroup v1, or
// no container) the check leaves the cgroup out; a directory set with
// CgroupDir must hold the files, and the check fails when they are missing.
func CgroupDir(dir string) Option {
	return func(c *config) error {
		if dir == "" {
			return errors.New(`CgroupDir(""): need a directory`)
		}
		c.dir, c.dirSet = dir, true
		return nil
	}
}

// WarnAbove makes the check warn when more than ratio of a limit is in use.
// Default DefaultWarnAbove (0.9).
func WarnAbove(ratio float64) Option {
	return func(c *config) error {
		if !(ratio > 0 && ratio <= 1) {
			return fmt.Errorf("WarnAbove(%v): the ratio must be in (0, 1]", ratio)
		}
		c.warn = ratio
		return nil
	}
}

// FailAbove makes the check fail when more than ratio of a limit is in use;
// it must not be below WarnAbove. Default off (see the package doc for
// why).
func FailAbove(ratio float64) Option {
	return func(c *config) error {
		if !(ratio > 0 && ratio <= 1) {
			return fmt.Errorf("FailAbove(%v): the ratio must be in (0, 1]", ratio)
		}
		c.fail = ratio
		return nil
	}
}

// Checker checks memory against the cgroup's limit and GOMEMLIMIT. Create
// one with New.
type Checker struct {
	cfg config
}

var _ probes.Checker = (*Checker)(nil)

// New returns a Checker. It returns an error naming the option when an
// option is invalid, and when FailAbove is below WarnAbove.
func New(opts ...Option) (*Checker, error) {
	cfg := config{dir: DefaultCgroupDir, warn: DefaultWarnAbove}
	if err := opt.Apply("memcheck", &cfg, opts); err != nil {
		return nil, err
	}
	if cfg.fail != 0 && cfg.fail < cfg.warn {
		return nil, fmt.Errorf("memcheck: FailAbove(%v): below WarnAbove(%v)", cfg.fail, cfg.warn)
	}
	return &Checker{cfg: cfg}, nil
}

// reading is one source's usage against its limit; limit 0 means none.
type reading struct {
	what         string // "cgroup memory", "Go runtime memory"
	limitName    string // "memory.max", "GOMEMLIMIT"
	used, limit  uint64
	observeUsed  string
	observeRatio string
}

// Check reads both sources, observes them, and compares them with the
// thresholds.
func (c *Checker) Check(ctx context.Context) error {
	var readings []reading
	cg, ok, err := c.cgroup()
	if err != nil {
		return err
	}
	if ok {
		readings = append(readings, cg)
	}
	readings = append(readings, goRuntime())

	var fails, warns []string
	for _, r := range readings {
		probes.Observe(ctx, probes.Observation{Measurement: r.observeUsed, Value: float64(r.used), Unit: "bytes"})
		if r.limit == 0 {
			continue
		}
		ratio := float64(r.used) / float64(r.limit)
		probes.Observe(ctx, probes.Observation{Measurement: r.observeRatio, Value: ratio * 100, Unit: "%"})
		msg := fmt.Sprintf("%s %s of %s %s (%.1f%%)", r.what, formatBytes(r.used), r.limitName, formatBytes(r.limit), ratio*100)
		switch {
		case c.cfg.fail != 0 && ratio > c.cfg.fail:
			fails = append(fails, fmt.Sprintf("%s, above %g%%", msg, c.cfg.fail*100))
		case ratio > c.cfg.warn:
			warns = append(warns, fmt.Sprintf("%s, above %g%%", msg, c.cfg.warn*100))
		}
	}
	switch {
	case len(fails) > 0:
		return errors.New(strings.Join(append(fails, warns...), "; "))
	case len(warns) > 0:
		return fmt.Errorf("%s: %w", strings.Join(warns, "; "), probes.ErrWarn)
	}
	return nil
}

// cgroup reads the cgroup's working set and limit; ok is false when the
// default directory has no cgroup v2 memory controller.
func (c *Checker) cgroup() (r reading, ok bool, err error) {
	r = reading{what: "cgroup memory", limitName: "memory.max", observeUsed: "cgroupWorkingSet", observeRatio: "cgroupUtilization"}
	maxText, err := os.ReadFile(filepath.Join(c.cfg.dir, "memory.max"))
	if errors.Is(err, fs.ErrNotExist) && !c.cfg.dirSet {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if s := strings.TrimSpace(string(maxText)); s != "max" {
		if r.limit, err = parse("memory.max", s); err != nil {
			return r, false, err
		}
	}
	current, err := os.ReadFile(filepath.Join(c.cfg.dir, "memory.current"))
	if err != nil {
		return r, false, err
	}
	if r.used, err = parse("memory.current", strings.TrimSpace(string(current))); err != nil {
		return r, false, err
	}
	// memory.stat may be missing (a test's directory, an odd kernel): then
	// the working set is memory.current itself, the cautious figure.
	if stat, err := os.ReadFile(filepath.Join(c.cfg.dir, "memory.stat")); err == nil {
		inactive, err := statField(stat, "inactive_file")
		if err != nil {
			return r, false, err
		}
		r.used -= min(inactive, r.used)
	}
	return r, true, nil
}

func parse(file, s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: want a number of bytes, got %q", file, s)
	}
	return n, nil
}

// statField returns the value of the line "name <bytes>" of memory.stat, 0
// when there is none.
func statField(stat []byte, name string) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
			return parse("memory.stat "+name, strings.TrimSpace(v))
		}
	}
	return 0, nil
}

// goRuntime reads what the runtime counts against its memory limit.
func goRuntime() reading {
	s := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	metrics.Read(s)
	r := reading{what: "Go runtime memory", limitName: "GOMEMLIMIT", observeUsed: "goMemory", observeRatio: "goUtilization"}
	r.used = s[0].Value.Uint64() - min(s[1].Value.Uint64(), s[0].Value.Uint64())
	if l := debug.SetMemoryLimit(-1); l != math.MaxInt64 && l > 0 {
		r.limit = uint64(l)
	}
	return r
}

// formatBytes writes n in binary units: "512 B", "7.5 MiB".
func formatBytes(n uint64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	exp := min(int(math.Log2(float64(n))/10), 6)
	return fmt.Sprintf("%.4g %ciB", float64(n)/math.Pow(1024, float64(exp)), "KMGTPE"[exp-1])
}

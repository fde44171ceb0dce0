// Package memcheck is a readiness check of the memory a service uses
// against the limits it will be stopped at: its cgroup's memory.max (the
// container's memory limit, past which the kernel's OOM killer ends it) and
// the Go runtime's soft limit, GOMEMLIMIT (past which the garbage collector
// runs ever more often). It lives in a package of its own so that a service
// that does not use it never compiles it.
//
// At each execution it reads the process's cgroup and the runtime's own
// figures (runtime/metrics; the limit through debug.SetMemoryLimit(-1)).
// The cgroup is the one /proc/self/cgroup names, under /sys/fs/cgroup:
// cgroup v2's memory.max, memory.current and memory.stat, or cgroup v1's
// memory.limit_in_bytes, memory.usage_in_bytes and memory.stat under
// /sys/fs/cgroup/memory. So a container's limit is found (it sees its own
// cgroup at the root), and so is a systemd unit's MemoryMax (its cgroup
// is /sys/fs/cgroup/system.slice/<unit>); of the cgroup and its ancestors
// under the mount (a slice's limit covers its units), the one nearest its
// limit is reported. The cgroup's usage is its working set, the usage less
// the inactive file cache of memory.stat, which the kernel reclaims before
// it kills anything (the kubelet counts it so too). A limit of "max"
// (v2), or v1's "unlimited" (9223372036854771712, any value from 2^62 up),
// means none; v1's hierarchical_memory_limit (an ancestor's limit the
// mount does not show) counts as a limit. CgroupDir names one directory
// instead.
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
	"path"
	"path/filepath"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/format"
	"github.com/probekit/probes/internal/opt"
)

// Defaults of the options. DefaultCgroupDir is where the default looks for
// the process's cgroup.
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

// CgroupDir sets the one directory holding the cgroup's memory files:
// cgroup v2's (memory.max, memory.current, memory.stat) or, when it has no
// memory.max but a memory.limit_in_bytes, cgroup v1's
// (memory.limit_in_bytes, memory.usage_in_bytes, memory.stat). It must
// hold them: the check fails when they are missing. Default: the process's
// own cgroup as /proc/self/cgroup names it, under DefaultCgroupDir
// (/sys/fs/cgroup) for v2 or its memory directory for v1, and its
// ancestors there (see the package doc); where none is found (no cgroup
// memory controller, not Linux) the check leaves the cgroup out.
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
	// Where the default looks; tests point them at fake trees.
	root string // the cgroup filesystem: DefaultCgroupDir
	proc string // procfs: /proc
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
	return &Checker{cfg: cfg, root: DefaultCgroupDir, proc: "/proc"}, nil
}

// reading is one source's usage against its limit; limit 0 means none.
type reading struct {
	what         string // "cgroup memory", "Go runtime memory"
	limitName    string // "memory.max", "GOMEMLIMIT"
	used, limit  uint64
	observeUsed  string
	observeRatio string
}

// ratio is used over limit, 0 without a limit.
func (r reading) ratio() float64 {
	if r.limit == 0 {
		return 0
	}
	return float64(r.used) / float64(r.limit)
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
		ratio := r.ratio()
		probes.Observe(ctx, probes.Observation{Measurement: r.observeRatio, Value: ratio * 100, Unit: "%"})
		msg := fmt.Sprintf("%s %s of %s %s (%.1f%%)", r.what, format.Bytes(r.used), r.limitName, format.Bytes(r.limit), ratio*100)
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
// default finds no cgroup memory controller.
func (c *Checker) cgroup() (r reading, ok bool, err error) {
	if c.cfg.dirSet {
		v1 := false
		if _, err := os.Stat(filepath.Join(c.cfg.dir, "memory.max")); errors.Is(err, fs.ErrNotExist) {
			_, err := os.Stat(filepath.Join(c.cfg.dir, "memory.limit_in_bytes"))
			v1 = err == nil
		}
		return readCgroup(c.cfg.dir, v1, true)
	}
	mount, leaf, v1 := c.locate()
	// The process's cgroup and each of its ancestors visible under the
	// mount may hold a limit (a systemd slice's MemoryMax covers the units
	// in it); the one nearest its limit is the one the kernel acts on
	// first. Levels missing from the mount (a container seeing only its
	// own cgroup) are skipped.
	var found, nearest *reading
	for p := leaf; ; p = path.Dir(p) {
		r, ok, err := readCgroup(filepath.Join(mount, filepath.FromSlash(p)), v1, false)
		if err != nil {
			return r, false, err
		}
		if ok {
			if found == nil {
				found = &r
			} else {
				r.what += " (" + p + ")" // an ancestor's
			}
			if r.limit > 0 && (nearest == nil || r.ratio() > nearest.ratio()) {
				nearest = &r
			}
		}
		if p == "/" {
			break
		}
	}
	switch {
	case nearest != nil:
		return *nearest, true, nil
	case found != nil:
		return *found, true, nil
	}
	return reading{}, false, nil
}

// locate finds the process's memory cgroup from /proc/self/cgroup: the
// mount its path is under and the path (clean, absolute, so that it stays
// under the mount), and whether it is cgroup v1's memory controller. v1's
// is preferred where both are listed (a hybrid system, whose v2 hierarchy
// has no memory controller). Without the file: v2, the mount's root.
func (c *Checker) locate() (mount, cgPath string, v1 bool) {
	text, err := os.ReadFile(filepath.Join(c.proc, "self", "cgroup"))
	if err != nil {
		return c.root, "/", false
	}
	mount, cgPath = c.root, "/"
	for line := range strings.Lines(string(text)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case slices.Contains(strings.Split(parts[1], ","), "memory"):
			return filepath.Join(c.root, "memory"), path.Clean("/" + parts[2]), true
		case parts[0] == "0" && parts[1] == "":
			cgPath = path.Clean("/" + parts[2])
		}
	}
	return mount, cgPath, false
}

// v1Unlimited is where cgroup v1 limits mean none: the kernel writes
// LONG_MAX rounded down to its page size (9223372036854771712 with 4 KiB
// pages).
const v1Unlimited = 1 << 62

// readCgroup reads one cgroup directory: cgroup v2's memory.max,
// memory.current and memory.stat, or v1's memory.limit_in_bytes,
// memory.usage_in_bytes and memory.stat. ok is false when the directory
// has no limit file or usage file, unless must, when that is an error.
func readCgroup(dir string, v1 bool, must bool) (r reading, ok bool, err error) {
	r = reading{what: "cgroup memory", limitName: "memory.max", observeUsed: "cgroupWorkingSet", observeRatio: "cgroupUtilization"}
	limitFile, usageFile, inactive := "memory.max", "memory.current", []string{"inactive_file"}
	if v1 {
		r.limitName = "memory.limit_in_bytes"
		limitFile, usageFile, inactive = "memory.limit_in_bytes", "memory.usage_in_bytes", []string{"total_inactive_file", "inactive_file"}
	}
	limitText, err := os.ReadFile(filepath.Join(dir, limitFile))
	if errors.Is(err, fs.ErrNotExist) && !must {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if s := strings.TrimSpace(string(limitText)); s != "max" {
		if r.limit, err = parse(limitFile, s); err != nil {
			return r, false, err
		}
	}
	usage, err := os.ReadFile(filepath.Join(dir, usageFile))
	if errors.Is(err, fs.ErrNotExist) && !must {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if r.used, err = parse(usageFile, strings.TrimSpace(string(usage))); err != nil {
		return r, false, err
	}
	// memory.stat may be missing (a test's directory, an odd kernel): then
	// the working set is the usage itself, the cautious figure.
	if stat, err := os.ReadFile(filepath.Join(dir, "memory.stat")); err == nil {
		for _, name := range inactive {
			n, present, err := statField(stat, name)
			if err != nil {
				return r, false, err
			}
			if present {
				r.used -= min(n, r.used)
				break
			}
		}
		if v1 {
			// A limit of an ancestor the mount does not show.
			h, present, err := statField(stat, "hierarchical_memory_limit")
			if err != nil {
				return r, false, err
			}
			if present && h < v1Unlimited && (r.limit == 0 || r.limit >= v1Unlimited || h < r.limit) {
				r.limit, r.limitName = h, "hierarchical_memory_limit"
			}
		}
	}
	if r.limit >= v1Unlimited {
		r.limit = 0
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

// statField returns the value of the line "name <bytes>" of memory.stat,
// and whether there is one.
func statField(stat []byte, name string) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(stat))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), " "); ok && k == name {
			n, err := parse("memory.stat "+name, strings.TrimSpace(v))
			return n, true, err
		}
	}
	return 0, false, nil
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

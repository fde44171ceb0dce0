// Package diskcheck is a readiness check of the free space of the
// filesystem that holds a path, such as the directory a service writes its
// spool, cache or uploads to. It lives in a package of its own so that a
// service that does not use it never compiles it.
//
// The check reads the filesystem's statistics (statfs(2)) at each
// execution and reports "free" (bytes available to the service, as df
// shows them), "freePercent" (of the filesystem's size) and, where the
// filesystem counts them, "inodesFreePercent", since a filesystem out of
// inodes refuses new files as a full one does. It warns below WarnBelow
// and fails below FailBelow.
//
// A disk is the instance's own, so add the check with probes.Local():
//
//	spool, err := diskcheck.New("/var/spool/app", diskcheck.FailBelow(diskcheck.Bytes(64<<20)))
//	...
//	err = ready.Add("spool-disk", spool, probes.Local(), probes.ComponentType("system"))
//
// Disk space belongs to readiness, never to liveness: restarting a
// container frees no disk (a volume outlives it), so a liveness check on it
// only turns a full disk into a crash loop.
//
// On systems without statfs(2) (Windows, and Unix systems whose statfs this
// package does not read) New works and every check fails saying so.
package diskcheck

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/opt"
)

// defaultWarnBelow is the default of WarnBelow: warn below 10 % free. A
// variable, unexported: a Threshold cannot be a constant.
var defaultWarnBelow = Fraction(0.10)

// Threshold is an amount of free space: a fraction of the filesystem's size
// (Fraction) or a number of bytes (Bytes).
type Threshold struct {
	fraction float64
	bytes    uint64
	isBytes  bool
}

// Fraction is a threshold of f of the filesystem's size, f in [0, 1]; it
// also applies to the filesystem's inodes.
func Fraction(f float64) Threshold { return Threshold{fraction: f} }

// Bytes is a threshold of n bytes.
func Bytes(n uint64) Threshold { return Threshold{bytes: n, isBytes: true} }

// String formats t as it was made: "10%" or "64 MiB".
func (t Threshold) String() string {
	if t.isBytes {
		return formatBytes(t.bytes)
	}
	return fmt.Sprintf("%g%%", t.fraction*100)
}

func (t Threshold) valid() bool {
	return t.isBytes || (t.fraction >= 0 && t.fraction <= 1) // NaN fails both
}

// below reports whether u is below t.
func (t Threshold) below(u usage) bool {
	if t.isBytes {
		return u.free < t.bytes
	}
	return u.freeFraction() < t.fraction || (u.files > 0 && u.inodesFreeFraction() < t.fraction)
}

// Option configures a Checker.
type Option func(*config) error

type config struct {
	warn, fail *Threshold
}

// WarnBelow makes the check warn when less than t is free. Default
// Fraction(0.10), 10 %; Bytes(0) turns it off.
func WarnBelow(t Threshold) Option {
	return func(c *config) error {
		if !t.valid() {
			return fmt.Errorf("WarnBelow(%s): a fraction must be in [0, 1]", t)
		}
		c.warn = &t
		return nil
	}
}

// FailBelow makes the check fail when less than t is free. Default off: a
// disk that fills on every replica at once (logs written at the same rate,
// say) would otherwise take the whole fleet out of rotation. Set it when
// the service cannot serve without room to write, and leave a margin (a
// few MiB) so that it fails before writes do.
func FailBelow(t Threshold) Option {
	return func(c *config) error {
		if !t.valid() {
			return fmt.Errorf("FailBelow(%s): a fraction must be in [0, 1]", t)
		}
		c.fail = &t
		return nil
	}
}

// Checker checks the free space of one filesystem. Create one with New.
type Checker struct {
	path string
	cfg  config
}

var _ probes.Checker = (*Checker)(nil)

// New returns a Checker of the filesystem holding path. It returns an error
// naming the option when an option is invalid, and when path is empty. The
// path need not exist yet: a check fails while it does not.
func New(path string, opts ...Option) (*Checker, error) {
	if path == "" {
		return nil, errors.New(`diskcheck: New(""): need a path`)
	}
	w := defaultWarnBelow
	cfg := config{warn: &w}
	if err := opt.Apply("diskcheck", &cfg, opts); err != nil {
		return nil, err
	}
	return &Checker{path: path, cfg: cfg}, nil
}

// usage is what statfs tells of a filesystem.
type usage struct {
	size, free   uint64 // bytes; free is what an unprivileged writer may use
	files, ffree uint64 // inodes; files is 0 where the filesystem has no count
}

func (u usage) freeFraction() float64 {
	if u.size == 0 {
		return 0
	}
	return float64(u.free) / float64(u.size)
}

func (u usage) inodesFreeFraction() float64 {
	if u.files == 0 {
		return 1
	}
	return float64(u.ffree) / float64(u.files)
}

// Check reads the filesystem's statistics, observes them, and compares
// them with the thresholds.
func (c *Checker) Check(ctx context.Context) error {
	u, err := statfs(c.path)
	if err != nil {
		return err
	}
	probes.Observe(ctx, probes.Observation{Measurement: "free", Value: float64(u.free), Unit: "bytes"})
	probes.Observe(ctx, probes.Observation{Measurement: "freePercent", Value: u.freeFraction() * 100, Unit: "%"})
	if u.files > 0 {
		probes.Observe(ctx, probes.Observation{Measurement: "inodesFreePercent", Value: u.inodesFreeFraction() * 100, Unit: "%"})
	}
	switch {
	case c.cfg.fail != nil && c.cfg.fail.below(u):
		return fmt.Errorf("%s: %s, below %s", c.path, u.describe(), c.cfg.fail)
	case c.cfg.warn != nil && c.cfg.warn.below(u):
		return fmt.Errorf("%s: %s, below %s: %w", c.path, u.describe(), c.cfg.warn, probes.ErrWarn)
	}
	return nil
}

// describe says how much is free, and how many inodes when they run short.
func (u usage) describe() string {
	s := fmt.Sprintf("%s free of %s (%.1f%%)", formatBytes(u.free), formatBytes(u.size), u.freeFraction()*100)
	if u.files > 0 && u.inodesFreeFraction() < u.freeFraction() {
		s += fmt.Sprintf(", %d of %d inodes free (%.1f%%)", u.ffree, u.files, u.inodesFreeFraction()*100)
	}
	return s
}

// formatBytes writes n in binary units: "512 B", "7.5 MiB".
func formatBytes(n uint64) string {
	if n < 1<<10 {
		return fmt.Sprintf("%d B", n)
	}
	exp := int(math.Log2(float64(n)) / 10)
	exp = min(exp, 6)
	return fmt.Sprintf("%.4g %ciB", float64(n)/math.Pow(1024, float64(exp)), "KMGTPE"[exp-1])
}

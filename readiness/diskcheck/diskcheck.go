// Package diskcheck is a readiness check of the free space of the
// filesystem that holds a path, such as the directory a service writes its
// spool, cache or uploads to. It lives in a package of its own so that a
// service that does not use it never compiles it.
//
// The check reads the filesystem's statistics (statfs(2)) at each
// execution and reports "free" (bytes available to the service, as df
// shows them), "freePercent" (of the filesystem's size) and, where the
// filesystem counts them, "inodesFree" and "inodesFreePercent", since a
// filesystem out of inodes refuses new files as a full one does. It warns
// below WarnBelow or WarnInodesBelow (both 10 % by default) and fails
// below FailBelow or FailInodesBelow (off by default).
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
	"strings"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/format"
	"github.com/probekit/probes/internal/opt"
)

// defaultWarnBelow is the default of WarnBelow and of WarnInodesBelow:
// warn below 10 % free. A variable, unexported: a Threshold cannot be a
// constant.
var defaultWarnBelow = Fraction(0.10)

// Threshold is an amount of free space or of free inodes: a fraction of
// the filesystem's size or inodes (Fraction), a number of bytes (Bytes),
// or a number of inodes (Inodes).
type Threshold struct {
	fraction float64
	n        uint64
	unit     unit
}

type unit uint8

const (
	ofTotal unit = iota // a Fraction
	bytes
	inodes
)

// Fraction is a threshold of f of the filesystem's size (for WarnBelow
// and FailBelow) or of its inodes (for WarnInodesBelow and
// FailInodesBelow), f in [0, 1].
func Fraction(f float64) Threshold { return Threshold{fraction: f} }

// Bytes is a threshold of n bytes, for WarnBelow and FailBelow.
func Bytes(n uint64) Threshold { return Threshold{n: n, unit: bytes} }

// Inodes is a threshold of n inodes, for WarnInodesBelow and
// FailInodesBelow.
func Inodes(n uint64) Threshold { return Threshold{n: n, unit: inodes} }

// String formats t as it was made: "10%", "64 MiB" or "1000 inodes".
func (t Threshold) String() string {
	switch t.unit {
	case bytes:
		return format.Bytes(t.n)
	case inodes:
		return fmt.Sprintf("%d inodes", t.n)
	}
	return fmt.Sprintf("%g%%", t.fraction*100)
}

// check says what is wrong with t as a threshold in unit want (bytes for
// space, inodes for inodes), or "".
func (t Threshold) check(want unit) string {
	switch {
	case t.unit == ofTotal && !(t.fraction >= 0 && t.fraction <= 1): // NaN too
		return "a fraction must be in [0, 1]"
	case t.unit != ofTotal && t.unit != want && want == bytes:
		return "a threshold of space is Bytes or Fraction"
	case t.unit != ofTotal && t.unit != want:
		return "a threshold of inodes is Inodes or Fraction"
	}
	return ""
}

// spaceBelow reports whether u's free space is below t.
func (t Threshold) spaceBelow(u usage) bool {
	if t.unit == bytes {
		return u.free < t.n
	}
	return u.freeFraction() < t.fraction
}

// inodesBelow reports whether u's free inodes are below t; never where
// the filesystem does not count them.
func (t Threshold) inodesBelow(u usage) bool {
	switch {
	case u.files == 0:
		return false
	case t.unit == inodes:
		return u.ffree < t.n
	}
	return u.inodesFreeFraction() < t.fraction
}

// Option configures a Checker.
type Option func(*config) error

type config struct {
	warn, fail             *Threshold
	warnInodes, failInodes *Threshold
}

// WarnBelow makes the check warn when less than t of space is free, t
// made with Bytes or Fraction. Default Fraction(0.10), 10 %; Bytes(0)
// turns it off.
func WarnBelow(t Threshold) Option {
	return func(c *config) error {
		if msg := t.check(bytes); msg != "" {
			return fmt.Errorf("WarnBelow(%s): %s", t, msg)
		}
		c.warn = &t
		return nil
	}
}

// FailBelow makes the check fail when less than t of space is free, t
// made with Bytes or Fraction. Default off: a disk that fills on every
// replica at once (logs written at the same rate, say) would otherwise
// take the whole fleet out of rotation. Set it when the service cannot
// serve without room to write, and leave a margin (a few MiB) so that it
// fails before writes do.
func FailBelow(t Threshold) Option {
	return func(c *config) error {
		if msg := t.check(bytes); msg != "" {
			return fmt.Errorf("FailBelow(%s): %s", t, msg)
		}
		c.fail = &t
		return nil
	}
}

// WarnInodesBelow makes the check warn when fewer than t of the
// filesystem's inodes are free, t made with Inodes or Fraction (of its
// inodes). Default: WarnBelow's threshold when that is a Fraction (so 10 %
// by default), else Fraction(0.10); Inodes(0) turns it off. A filesystem
// that does not count inodes (statfs reports none) is never below it.
func WarnInodesBelow(t Threshold) Option {
	return func(c *config) error {
		if msg := t.check(inodes); msg != "" {
			return fmt.Errorf("WarnInodesBelow(%s): %s", t, msg)
		}
		c.warnInodes = &t
		return nil
	}
}

// FailInodesBelow makes the check fail when fewer than t of the
// filesystem's inodes are free, t made with Inodes or Fraction (of its
// inodes). Default: FailBelow's threshold when that is a Fraction, else
// off, for the reason FailBelow is off by default.
func FailInodesBelow(t Threshold) Option {
	return func(c *config) error {
		if msg := t.check(inodes); msg != "" {
			return fmt.Errorf("FailInodesBelow(%s): %s", t, msg)
		}
		c.failInodes = &t
		return nil
	}
}

// Checker checks the free space of one filesystem. Create one with New.
type Checker struct {
	path   string
	cfg    config
	statfs func(path string) (usage, error) // the system's; tests give their own
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
	if cfg.warnInodes == nil {
		w := defaultWarnBelow
		if cfg.warn.unit == ofTotal {
			w = *cfg.warn
		}
		cfg.warnInodes = &w
	}
	if cfg.failInodes == nil && cfg.fail != nil && cfg.fail.unit == ofTotal {
		f := *cfg.fail
		cfg.failInodes = &f
	}
	return &Checker{path: path, cfg: cfg, statfs: statfs}, nil
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
	u, err := c.statfs(c.path)
	if err != nil {
		return err
	}
	probes.Observe(ctx, probes.Observation{Measurement: "free", Value: float64(u.free), Unit: "bytes"})
	probes.Observe(ctx, probes.Observation{Measurement: "freePercent", Value: u.freeFraction() * 100, Unit: "%"})
	if u.files > 0 {
		probes.Observe(ctx, probes.Observation{Measurement: "inodesFree", Value: float64(u.ffree), Unit: "inodes"})
		probes.Observe(ctx, probes.Observation{Measurement: "inodesFreePercent", Value: u.inodesFreeFraction() * 100, Unit: "%"})
	}
	if reasons := c.below(u, c.cfg.fail, c.cfg.failInodes); reasons != "" {
		return fmt.Errorf("%s: %s", c.path, reasons)
	}
	if reasons := c.below(u, c.cfg.warn, c.cfg.warnInodes); reasons != "" {
		return fmt.Errorf("%s: %s: %w", c.path, reasons, probes.ErrWarn)
	}
	return nil
}

// below says which of space and inodes are below their thresholds (a nil
// threshold is off), or "" when neither is.
func (c *Checker) below(u usage, space, inodes *Threshold) string {
	var reasons []string
	if space != nil && space.spaceBelow(u) {
		reasons = append(reasons, fmt.Sprintf("%s free of %s (%.1f%%), below %s",
			format.Bytes(u.free), format.Bytes(u.size), u.freeFraction()*100, space))
	}
	if inodes != nil && inodes.inodesBelow(u) {
		reasons = append(reasons, fmt.Sprintf("%d of %d inodes free (%.1f%%), below %s",
			u.ffree, u.files, u.inodesFreeFraction()*100, inodes))
	}
	return strings.Join(reasons, "; ")
}

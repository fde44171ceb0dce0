package diskcheck_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness/diskcheck"
)

// tmpfs mounts a tmpfs of size bytes and at most inodes inodes in a
// temporary directory for the test, and unmounts it when the test ends. It
// skips when mounting is not possible (not root, no CAP_SYS_ADMIN), and
// fails then under CI=true, where the tests run as root.
func tmpfs(t *testing.T, size, inodes int) string {
	t.Helper()
	dir := t.TempDir()
	data := "size=" + strconv.Itoa(size) + ",nr_inodes=" + strconv.Itoa(inodes)
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, data); err != nil {
		msg := "cannot mount a tmpfs (the test needs root or CAP_SYS_ADMIN): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// fill writes a file of n bytes and files more empty files under dir.
func fill(t *testing.T, dir string, n, files int) {
	t.Helper()
	if n > 0 {
		if err := os.WriteFile(filepath.Join(dir, "fill"), make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i := range files {
		if err := os.WriteFile(filepath.Join(dir, "f"+strconv.Itoa(i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

const mib = 1 << 20

func TestFilesystem(t *testing.T) {
	for _, tt := range []struct {
		name         string
		inodes       int
		fillBytes    int
		fillFiles    int
		opts         []diskcheck.Option
		status       probes.Status
		want         string // in the error
		free         float64
		freePercent  float64
		inodePercent float64
	}{
		{"empty passes", 64, 0, 0, nil, probes.Pass, "", 8 * mib, 100, 63.0 / 64 * 100},
		{"half full passes", 64, 4 * mib, 0, nil, probes.Pass, "", 4 * mib, 50, 62.0 / 64 * 100},
		{"under 10% free warns by default", 64, 7.5 * mib, 0, nil, probes.Warn, "512 KiB free of 8 MiB (6.2%), below 10%", 0.5 * mib, 6.25, 62.0 / 64 * 100},
		{"under FailBelow in bytes fails", 64, 7.5 * mib, 0, []diskcheck.Option{diskcheck.FailBelow(diskcheck.Bytes(mib))}, probes.Fail, "below 1 MiB", 0.5 * mib, 6.25, 62.0 / 64 * 100},
		{"under FailBelow as a fraction fails", 64, 5 * mib, 0, []diskcheck.Option{diskcheck.FailBelow(diskcheck.Fraction(0.5))}, probes.Fail, "3 MiB free of 8 MiB (37.5%), below 50%", 3 * mib, 37.5, 62.0 / 64 * 100},
		{"above both thresholds passes", 64, 5 * mib, 0, []diskcheck.Option{diskcheck.WarnBelow(diskcheck.Bytes(2 * mib)), diskcheck.FailBelow(diskcheck.Bytes(mib))}, probes.Pass, "", 3 * mib, 37.5, 62.0 / 64 * 100},
		{"warning off", 64, 7.5 * mib, 0, []diskcheck.Option{diskcheck.WarnBelow(diskcheck.Bytes(0))}, probes.Pass, "", 0.5 * mib, 6.25, 62.0 / 64 * 100},
		{"out of inodes warns", 16, 0, 15, nil, probes.Warn, "0 of 16 inodes free (0.0%)", 8 * mib, 100, 0},
		{"out of inodes fails below a fraction", 16, 0, 14, []diskcheck.Option{diskcheck.FailBelow(diskcheck.Fraction(0.1))}, probes.Fail, "1 of 16 inodes free", 8 * mib, 100, 1.0 / 16 * 100},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := tmpfs(t, 8*mib, tt.inodes)
			fill(t, dir, tt.fillBytes, tt.fillFiles)
			c, err := diskcheck.New(dir, tt.opts...)
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
			for _, o := range []struct {
				name string
				want float64
			}{{"free", tt.free}, {"freePercent", tt.freePercent}, {"inodesFreePercent", tt.inodePercent}} {
				if got, ok := testutil.Observed(obs, o.name); !ok || got != o.want {
					t.Errorf("%s: got %v (observed %t), want %v", o.name, got, ok, o.want)
				}
			}
		})
	}
}

// A rotated log, a cleaned spool: the check follows the filesystem at each
// execution, both ways.
func TestFillsAndFrees(t *testing.T) {
	dir := tmpfs(t, 8*mib, 64)
	c, err := diskcheck.New(dir, diskcheck.FailBelow(diskcheck.Bytes(mib)))
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name   string
		act    func()
		status probes.Status
	}{
		{"empty", func() {}, probes.Pass},
		{"filled", func() { fill(t, dir, 7.5*mib, 0) }, probes.Fail},
		{"freed", func() {
			if err := os.Remove(filepath.Join(dir, "fill")); err != nil {
				t.Fatal(err)
			}
		}, probes.Pass},
	} {
		step.act()
		if _, err := testutil.CheckOnce(c, time.Second); probes.StatusOf(err) != step.status {
			t.Errorf("%s: got %s (%v), want %s", step.name, probes.StatusOf(err), err, step.status)
		}
	}
}

func TestMissingPath(t *testing.T) {
	c, err := diskcheck.New(filepath.Join(t.TempDir(), "gone"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = testutil.CheckOnce(c, time.Second)
	if !errors.Is(err, os.ErrNotExist) || probes.StatusOf(err) != probes.Fail {
		t.Errorf("got %v, want a failure wrapping ErrNotExist", err)
	}
}

// Once for real, on the test's temporary directory, whatever filesystem
// holds it: space and, where the filesystem counts them, inodes are read
// and observed, and with the default options the check passes or warns.
func TestTempDir(t *testing.T) {
	dir := t.TempDir()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	c, err := diskcheck.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := testutil.CheckOnce(c, time.Second)
	if !probes.StatusOf(err).OK() {
		t.Errorf("got %v, want a pass or a warning", err)
	}
	for _, name := range []string{"free", "freePercent", "inodesFree", "inodesFreePercent"} {
		_, ok := testutil.Observed(obs, name)
		if want := !strings.HasPrefix(name, "inodes") || st.Files > 0; ok != want {
			t.Errorf("%s: observed %t, want %t (the filesystem counts %d inodes)", name, ok, want, st.Files)
		}
	}
	if got, ok := testutil.Observed(obs, "inodesFree"); ok && (got <= 0 || got > float64(st.Files)) {
		t.Errorf("inodesFree: got %v, want between 1 and %d", got, st.Files)
	}
	t.Logf("%s: observed %v (%v)", dir, obs, err)
}

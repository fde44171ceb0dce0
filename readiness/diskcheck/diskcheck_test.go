package diskcheck_test

import (
	"math"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/probekit/probes/readiness/diskcheck"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNewRejectsBadInput(t *testing.T) {
	for _, tt := range []struct {
		name string
		path string
		opts []diskcheck.Option
		want string
	}{
		{"no path", "", nil, `New("")`},
		{"warn fraction above 1", "/", []diskcheck.Option{diskcheck.WarnBelow(diskcheck.Fraction(1.5))}, "WarnBelow(150%)"},
		{"fail fraction below 0", "/", []diskcheck.Option{diskcheck.FailBelow(diskcheck.Fraction(-0.1))}, "FailBelow(-10%)"},
		{"NaN", "/", []diskcheck.Option{diskcheck.FailBelow(diskcheck.Fraction(math.NaN()))}, "FailBelow(NaN%)"},
		{"inodes for space", "/", []diskcheck.Option{diskcheck.WarnBelow(diskcheck.Inodes(10))}, "WarnBelow(10 inodes): a threshold of space is Bytes or Fraction"},
		{"bytes for inodes", "/", []diskcheck.Option{diskcheck.FailInodesBelow(diskcheck.Bytes(10))}, "FailInodesBelow(10 B): a threshold of inodes is Inodes or Fraction"},
		{"inode fraction above 1", "/", []diskcheck.Option{diskcheck.WarnInodesBelow(diskcheck.Fraction(2))}, "diskcheck: WarnInodesBelow(200%): a fraction must be in [0, 1]"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := diskcheck.New(tt.path, tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

func TestThresholdString(t *testing.T) {
	for _, tt := range []struct {
		t    diskcheck.Threshold
		want string
	}{
		{diskcheck.Fraction(0.1), "10%"},
		{diskcheck.Bytes(512), "512 B"},
		{diskcheck.Bytes(64 << 20), "64 MiB"},
		{diskcheck.Bytes(3 << 29), "1.5 GiB"},
		{diskcheck.Inodes(1000), "1000 inodes"},
	} {
		if got := tt.t.String(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}

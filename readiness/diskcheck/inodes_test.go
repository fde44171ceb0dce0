package diskcheck

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
)

// fixed is a statfs that reports u for every path.
func fixed(u usage) func(string) (usage, error) {
	return func(string) (usage, error) { return u, nil }
}

const gib = 1 << 30

// Free inodes are watched whatever the space thresholds are made of: a
// filesystem out of inodes refuses new files as a full one does.
func TestInodes(t *testing.T) {
	plenty := usage{size: 100 * gib, free: 50 * gib, files: 1000, ffree: 900}
	fewInodes := usage{size: 100 * gib, free: 50 * gib, files: 1000, ffree: 50}
	for _, tt := range []struct {
		name   string
		u      usage
		opts   []Option
		status probes.Status
		want   string // in the error
	}{
		{"plenty of both passes", plenty, nil, probes.Pass, ""},
		{"under 10% of inodes warns by default", fewInodes, nil, probes.Warn, "50 of 1000 inodes free (5.0%), below 10%"},
		{"under 10% of inodes warns beside a space threshold in bytes", fewInodes,
			[]Option{WarnBelow(Bytes(gib)), FailBelow(Bytes(gib / 2))}, probes.Warn, "50 of 1000 inodes free (5.0%)"},
		{"a FailBelow fraction applies to inodes", fewInodes, []Option{FailBelow(Fraction(0.1))}, probes.Fail, "50 of 1000 inodes free (5.0%), below 10%"},
		{"a WarnBelow fraction applies to inodes", usage{size: 100 * gib, free: 50 * gib, files: 1000, ffree: 150},
			[]Option{WarnBelow(Fraction(0.2))}, probes.Warn, "150 of 1000 inodes free (15.0%), below 20%"},
		{"a FailBelow in bytes leaves inodes to warn", fewInodes, []Option{FailBelow(Bytes(gib))}, probes.Warn, "50 of 1000 inodes free"},
		{"under FailInodesBelow in inodes fails", fewInodes, []Option{FailInodesBelow(Inodes(100))}, probes.Fail,
			"/data: 50 of 1000 inodes free (5.0%), below 100 inodes"},
		{"under FailInodesBelow as a fraction fails", fewInodes, []Option{FailInodesBelow(Fraction(0.06))}, probes.Fail, "below 6%"},
		{"above FailInodesBelow only warns", fewInodes, []Option{FailInodesBelow(Inodes(10))}, probes.Warn, "below 10%"},
		{"under WarnInodesBelow in inodes warns", plenty, []Option{WarnInodesBelow(Inodes(1000))}, probes.Warn, "900 of 1000 inodes free (90.0%), below 1000 inodes"},
		{"inode warning off", fewInodes, []Option{WarnInodesBelow(Inodes(0))}, probes.Pass, ""},
		{"space and inodes both short", usage{size: 100 * gib, free: gib, files: 1000, ffree: 50}, nil, probes.Warn,
			"/data: 1 GiB free of 100 GiB (1.0%), below 10%; 50 of 1000 inodes free (5.0%), below 10%"},
		{"space failing, inodes warning: the failure", usage{size: 100 * gib, free: gib, files: 1000, ffree: 50},
			[]Option{FailBelow(Bytes(2 * gib))}, probes.Fail, "/data: 1 GiB free of 100 GiB (1.0%), below 2 GiB"},
		{"a filesystem without inode counts never runs short of them", usage{size: 100 * gib, free: 50 * gib},
			[]Option{FailInodesBelow(Inodes(100))}, probes.Pass, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New("/data", tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			c.statfs = fixed(tt.u)
			obs, err := testutil.CheckOnce(c, time.Second)
			if got := probes.StatusOf(err); got != tt.status {
				t.Errorf("status: got %s (%v), want %s", got, err, tt.status)
			}
			if tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("error: got %v, want it to contain %q", err, tt.want)
			}
			got, ok := testutil.Observed(obs, "inodesFree")
			if tt.u.files == 0 && ok || tt.u.files > 0 && (!ok || got != float64(tt.u.ffree)) {
				t.Errorf("inodesFree: got %v (observed %t), want %d", got, ok, tt.u.ffree)
			}
		})
	}
}

func TestStatfsFails(t *testing.T) {
	c, err := New("/data")
	if err != nil {
		t.Fatal(err)
	}
	broken := errors.New("statfs /data: input/output error")
	c.statfs = func(string) (usage, error) { return usage{}, broken }
	obs, err := testutil.CheckOnce(c, time.Second)
	if !errors.Is(err, broken) || probes.StatusOf(err) != probes.Fail || len(obs) != 0 {
		t.Errorf("got %v, observed %v; want the failure, nothing observed", err, obs)
	}
}

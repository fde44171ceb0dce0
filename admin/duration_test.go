package admin_test

import (
	"testing"
	"time"

	"github.com/probekit/probes/admin"
)

func TestParseDuration(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want time.Duration
		ok   bool
	}{
		{"minutes", "30m", 30 * time.Minute, true},
		{"hours and minutes", "1h30m", 90 * time.Minute, true},
		{"as time.Duration.String writes it", "168h0m0s", 168 * time.Hour, true},
		{"seven days, the longest cordon", "7d", 7 * 24 * time.Hour, true},
		{"a day and a half", "1d12h", 36 * time.Hour, true},
		{"a fraction of a day", "1.5d", 36 * time.Hour, true},
		{"days after hours", "12h1d", 36 * time.Hour, true},
		{"microseconds", "1µs", time.Microsecond, true},
		{"negative", "-1d", -24 * time.Hour, true},
		{"zero", "0", 0, true},
		{"empty", "", 0, false},
		{"a sign alone", "-", 0, false},
		{"no unit", "7", 0, false},
		{"no unit after days", "1d0", 0, false},
		{"a unit alone", "d", 0, false},
		{"unknown unit", "1w", 0, false},
		{"days twice over", "1dd", 0, false},
		{"too many days", "200000d", 0, false},
		{"the sum overflows", "100000d100000d", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := admin.ParseDuration(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseDuration(%q): got %v, %v; want %v, ok %t", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"30m", "7d", "1d12h", "1.5d", "-1d", "0", "", "1dd", "9223372036854775807ns", "-9223372036854775808ns", "-2562047h47m16.854775808s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Whatever time.ParseDuration reads, ParseDuration reads alike.
		want, werr := time.ParseDuration(s)
		if werr != nil {
			return
		}
		if d, err := admin.ParseDuration(s); err != nil || d != want {
			t.Errorf("ParseDuration(%q) = %v, %v; time.ParseDuration says %v", s, d, err, want)
		}
	})
}

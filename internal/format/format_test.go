package format

import (
	"testing"
	"time"
)

func TestBytes(t *testing.T) {
	for _, tt := range []struct {
		n    uint64
		want string
	}{
		{0, "0 B"}, {1023, "1023 B"}, {1024, "1 KiB"}, {7864320, "7.5 MiB"}, {1 << 62, "4 EiB"}, {^uint64(0), "16 EiB"},
	} {
		if got := Bytes(tt.n); got != tt.want {
			t.Errorf("Bytes(%d): got %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestStamp(t *testing.T) {
	if got := Stamp(time.Time{}); got != "" {
		t.Errorf("Stamp(zero): got %q, want empty", got)
	}
	at := time.Date(2026, 12, 1, 10, 45, 0, 5, time.FixedZone("x", 3600))
	if got, want := Stamp(at), "2026-12-01T09:45:00.000000005Z"; got != want {
		t.Errorf("Stamp: got %q, want %q", got, want)
	}
}

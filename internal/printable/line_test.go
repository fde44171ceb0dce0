package printable

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestLine(t *testing.T) {
	refused := "127.0.0.1:5432 (127.0.0.1): dial error: dial tcp 127.0.0.1:5432: connect: connection refused"
	tests := []struct {
		name, in, want string
	}{
		{"one line", "dial tcp 127.0.0.1:5432: connect: connection refused", "dial tcp 127.0.0.1:5432: connect: connection refused"},
		{"empty", "", ""},
		{"pgconn, two attempts alike (sslmode=prefer)",
			"failed to connect to `user=app database=items`:\n\t" + refused + "\n\t" + refused,
			"failed to connect to `user=app database=items`: " + refused},
		{"pgconn, two hosts",
			"failed to connect to `user=app database=items`:\n\t[::1]:5432 (localhost): refused\n\t127.0.0.1:5432 (localhost): refused",
			"failed to connect to `user=app database=items`: [::1]:5432 (localhost): refused; 127.0.0.1:5432 (localhost): refused"},
		{"errors.Join", "first\nsecond", "first; second"},
		{"errors.Join of the same error", "timeout\ntimeout", "timeout"},
		{"carriage returns and blank lines", "a\r\n\r\nb\r\n", "a; b"},
		{"other line breaks", "a\vb\fc\u0085d\u2028e\u2029f", "a; b; c; d; e; f"},
		{"wrapped with its own text", "ping: connection refused: connection refused", "ping: connection refused"},
		{"a chain wrapped with its own text", "ping: dial: refused: dial: refused", "ping: dial: refused"},
		{"three times", "x: a: a: a", "x: a"},
		{"a part alike elsewhere stays", "a: b: a", "a: b: a"},
		{"a colon without a space stays", "dial tcp 127.0.0.1:5432: refused", "dial tcp 127.0.0.1:5432: refused"},
		{"too many parts to search", strings.Repeat("a: ", maxParts) + "a", strings.Repeat("a: ", maxParts) + "a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Line(tt.in); got != tt.want {
				t.Errorf("Line(%q)\ngot  %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestLineError(t *testing.T) {
	if LineError(nil) != nil {
		t.Error("LineError(nil): got an error, want nil")
	}
	one := errors.New("connection refused")
	if got := LineError(one); got != one {
		t.Errorf("a one-line error: got %#v, want it as it is", got)
	}
	sentinel := errors.New("sentinel")
	err := LineError(fmt.Errorf("first\nsecond: %w", sentinel))
	if got, want := err.Error(), "first; second: sentinel"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if !errors.Is(err, sentinel) {
		t.Errorf("errors.Is(%v, sentinel): got false, want true", err)
	}
}

package printable

import (
	"strings"
	"testing"
)

func TestEscape(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"disk swap", "disk swap"},
		{"two\nlines", `two\nlines`},
		{"\x1b[2Jred", `\x1b[2Jred`},
		{"tab\there", `tab\there`},
		{"bidi\u202eevil", `bidi\u202eevil`},
		{"bad \xff byte", `bad \xff byte`},
		{"é is fine", "é is fine"},
		{"ok \ufffd as sent", "ok \ufffd as sent"},
	} {
		if got := Escape(c.in, 40); got != c.want {
			t.Errorf("Escape(%q, 40) = %q, want %q", c.in, got, c.want)
		}
	}
	for _, c := range []struct{ in, want string }{
		{strings.Repeat("é", 6), "éééé..."}, // 9 bytes would split the fifth
		{strings.Repeat("x", 12), "xxxxxxxxx..."},
		{"ab\x1bcdefgh", `ab\x1bcde...`}, // the escape counts as its 4 bytes
		{"abcdefgh\n", `abcdefgh...`},    // an escape is never cut in half
	} {
		if got := Escape(c.in, 9); got != c.want {
			t.Errorf("Escape(%q, 9) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEscapeCleanTextAllocatesNothing(t *testing.T) {
	s := "readiness/postgres: connection refused"
	if n := testing.AllocsPerRun(100, func() { _ = Escape(s, 200) }); n != 0 {
		t.Errorf("%v allocations for clean text, want 0", n)
	}
}

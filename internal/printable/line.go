package printable

import (
	"slices"
	"strings"
)

// Line returns s on one line, for a line-based form such as the probes'
// text form: s's lines (broken at \n, \r, \v, \f, U+0085, U+2028 or
// U+2029), trimmed of the space around them, without the empty ones and
// the repeats of an earlier one, joined by a space after a line that ends
// in ":" and by "; " otherwise; then a run of ": "-separated parts that
// comes twice in a row (": x: x", from an error wrapped with its own text)
// is said once. pgconn's "failed to connect to ...:" followed by one
// indented line per attempt, two alike under sslmode=prefer, becomes
// "failed to connect to ...: <the error>". Text that needs none of it comes
// back as it is.
func Line(s string) string {
	if strings.IndexFunc(s, lineBreak) >= 0 {
		s = joinLines(s)
	}
	if !strings.Contains(s, ": ") {
		return s
	}
	return onceInARow(s)
}

// maxParts bounds the ": "-separated parts Line looks for repeats in: an
// error text is a handful; beyond that it is left as it is rather than
// searched in quadratic time.
const maxParts = 64

func joinLines(s string) string {
	var b strings.Builder
	var seen []string
	for _, l := range strings.FieldsFunc(s, lineBreak) {
		l = strings.TrimSpace(l)
		if l == "" || slices.Contains(seen, l) {
			continue
		}
		seen = append(seen, l)
		switch {
		case b.Len() == 0:
		case strings.HasSuffix(b.String(), ":"):
			b.WriteByte(' ')
		default:
			b.WriteString("; ")
		}
		b.WriteString(l)
	}
	return b.String()
}

// onceInARow drops every run of ": "-separated parts that repeats the run
// right before it.
func onceInARow(s string) string {
	if strings.Count(s, ": ") >= maxParts {
		return s
	}
	parts := strings.Split(s, ": ")
	n := len(parts)
	for k := 1; 2*k <= len(parts); k++ {
		for i := 0; i+2*k <= len(parts); {
			if slices.Equal(parts[i:i+k], parts[i+k:i+2*k]) {
				parts = slices.Delete(parts, i+k, i+2*k)
				continue // the next run may repeat it a third time
			}
			i++
		}
	}
	if len(parts) == n {
		return s
	}
	return strings.Join(parts, ": ")
}

func lineBreak(r rune) bool {
	switch r {
	case '\n', '\r', '\v', '\f', '\u0085', '\u2028', '\u2029':
		return true
	}
	return false
}

// LineError returns err with its text made one line by Line, still
// wrapping err for errors.Is and errors.As; err itself when its text is
// one line already, and nil for nil.
func LineError(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	if line := Line(msg); line != msg {
		return &lineError{msg: line, err: err}
	}
	return err
}

type lineError struct {
	msg string
	err error
}

func (e *lineError) Error() string { return e.msg }
func (e *lineError) Unwrap() error { return e.err }

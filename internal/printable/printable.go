// Package printable makes text from elsewhere (a server's body, an
// instance's notes, an operator's reason) safe to print on one line of a
// terminal, a log or a line-based protocol.
package printable

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Escape returns s with every character that is not printable escaped as
// strconv.Quote escapes it (\x1b, \n, \t, \u202e, and \xff for a byte that
// is not UTF-8), so that it cannot drive a terminal or break a line, cut
// between characters to at most max bytes with "..." after. Text that
// needs neither comes back as it is, without allocating.
func Escape(s string, max int) string {
	if len(s) <= max && clean(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		piece := string(r)
		switch {
		case r == utf8.RuneError:
			if _, w := utf8.DecodeRuneInString(s[i:]); w == 1 {
				piece = fmt.Sprintf(`\x%02x`, s[i])
			}
		case !unicode.IsPrint(r):
			q := strconv.QuoteRune(r)
			piece = q[1 : len(q)-1]
		}
		if b.Len()+len(piece) > max {
			b.WriteString("...")
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

// clean reports whether every character of s is printable UTF-8.
func clean(s string) bool {
	for i, r := range s {
		if r == utf8.RuneError {
			if _, w := utf8.DecodeRuneInString(s[i:]); w == 1 {
				return false // a byte that is not UTF-8
			}
		} else if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

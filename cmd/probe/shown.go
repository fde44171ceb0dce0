package main

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/probekit/probes/redact"
)

// maxShown bounds each piece of server text the probe prints, in bytes: a
// probe's output lands in container logs and Kubernetes events.
const maxShown = 200

// shown is server text (a body, a header, a status, an error) as the probe
// prints it: secrets masked, every character that is not printable escaped
// as strconv.Quote escapes it (\x1b, \t, \u202e, \xff for a byte that is
// not UTF-8), so that it cannot drive the terminal, and cut to maxShown
// bytes with "..." after.
func shown(s string) string {
	s = redact.String(s)
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
		if b.Len()+len(piece) > maxShown {
			b.WriteString("...")
			break
		}
		b.WriteString(piece)
	}
	return b.String()
}

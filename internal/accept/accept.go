// Package accept picks the representation of a probe or page answer by
// RFC 9110 content negotiation, for every surface that offers more than one
// (the probe handlers, the deep view and its page, the page's stream).
package accept

import (
	"strconv"
	"strings"
)

// Form is a representation an answer can take.
type Form uint8

// The forms, in the order a tie is broken: health+json first.
const (
	JSON   Form = iota // application/health+json (application/json asks for it too)
	Text               // text/plain: the Kubernetes text form
	HTML               // text/html (or application/xhtml+xml): the status page
	Events             // text/event-stream: the page's live stream
)

// Negotiate returns the form among offers that the Accept header values
// prefer: each form takes the q-value of the most specific media range that
// matches it (type/subtype over type/* over */*), media types compare
// case-insensitively, a form at q=0 is never chosen, and a tie goes to the
// form offered first. With no acceptable form it returns offers[0], as a
// probe answers health+json to an Accept it cannot meet. The kubelet's
// Accept: */* and a missing header take a fast path.
func Negotiate(accept []string, offers ...Form) Form {
	if len(accept) == 0 || len(accept) == 1 && (accept[0] == "*/*" || accept[0] == "") {
		return offers[0]
	}
	var m [4]match
	ranges := 0
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			if ranges++; ranges > maxRanges {
				break // a flood of ranges costs no more than a browser's header
			}
			mediaType, params, _ := strings.Cut(part, ";")
			typ, sub, ok := strings.Cut(strings.TrimSpace(mediaType), "/")
			if !ok {
				continue
			}
			q := quality(params)
			m[JSON].offer(typ, sub, q, "application", "health+json")
			m[JSON].offer(typ, sub, q, "application", "json")
			m[Text].offer(typ, sub, q, "text", "plain")
			m[HTML].offer(typ, sub, q, "text", "html")
			m[HTML].offer(typ, sub, q, "application", "xhtml+xml")
			m[Events].offer(typ, sub, q, "text", "event-stream")
		}
	}
	best := offers[0]
	for _, f := range offers[1:] {
		if m[f].q > m[best].q {
			best = f
		}
	}
	return best
}

// maxRanges bounds the media ranges Negotiate reads: a browser sends fewer
// than ten; a header of thousands is read no further.
const maxRanges = 32

// match tracks the most specific media range that matches a form.
type match struct {
	specificity int // 0 none, 1 */*, 2 type/*, 3 type/subtype
	q           float64
}

func (m *match) offer(typ, sub string, q float64, wantType, wantSub string) {
	s := 0
	switch {
	case typ == "*" && sub == "*":
		s = 1
	case strings.EqualFold(typ, wantType) && sub == "*":
		s = 2
	case strings.EqualFold(typ, wantType) && strings.EqualFold(sub, wantSub):
		s = 3
	}
	if s > m.specificity || s == m.specificity && s > 0 && q > m.q {
		m.specificity, m.q = s, q
	}
}

// quality returns the q parameter of a media range's parameters: 1 if
// absent, 0 if malformed or out of range.
func quality(params string) float64 {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil || !(q >= 0 && q <= 1) {
				return 0
			}
			return q
		}
	}
	return 1
}

package server

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// wantsText reports whether the client prefers the Kubernetes text form to
// health+json, by RFC 9110 content negotiation: each representation takes
// the q-value of the most specific media range that matches it (type/subtype
// over type/* over */*), media types compare case-insensitively, and a tie
// goes to health+json. application/json counts as asking for health+json.
// The kubelet's Accept: */* and a missing header take a fast path.
func wantsText(r *http.Request) bool {
	accept := r.Header["Accept"]
	if len(accept) == 0 || len(accept) == 1 && (accept[0] == "*/*" || accept[0] == "") {
		return false
	}
	var text, json match
	for _, header := range accept {
		for part := range strings.SplitSeq(header, ",") {
			mediaType, params, _ := strings.Cut(part, ";")
			typ, sub, ok := strings.Cut(strings.TrimSpace(mediaType), "/")
			if !ok {
				continue
			}
			q := quality(params)
			text.offer(typ, sub, q, "text", "plain")
			json.offer(typ, sub, q, "application", "health+json")
			json.offer(typ, sub, q, "application", "json")
		}
	}
	return text.q > 0 && text.q > json.q
}

// match tracks the most specific media range that matches a representation.
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

// Bounds on what a query may make a response echo.
const (
	maxExcludes     = 64 // names of ?exclude= looked at
	maxEchoed       = 8  // unknown names echoed back
	maxEchoedLength = 64 // bytes of one echoed name
)

// query is what a probe request's query string asks for.
type query struct {
	verbose bool
	exclude []string
}

// parseQuery reads ?verbose and ?exclude=, keeping every well-formed pair
// when others are malformed, as the apiserver does. It stops looking at
// ?exclude= after maxExcludes names, so a long query costs little.
func parseQuery(raw string) query {
	if raw == "verbose" { // what people and dashboards send
		return query{verbose: true}
	}
	var q query
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if strings.Contains(pair, ";") {
			continue // as url.ParseQuery: not a separator, not a pair
		}
		key, val, _ := strings.Cut(pair, "=")
		if strings.ContainsAny(key, "%+") {
			var err error
			if key, err = url.QueryUnescape(key); err != nil {
				continue
			}
		}
		if key != "verbose" && (key != "exclude" || len(q.exclude) == maxExcludes) {
			continue
		}
		v, err := url.QueryUnescape(val)
		switch {
		case err != nil: // the pair is malformed
		case key == "verbose":
			q.verbose = true
		default:
			q.exclude = append(q.exclude, v)
		}
	}
	return q
}

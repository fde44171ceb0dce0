package server

import (
	"net/url"
	"strings"
)

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

package main

import (
	"github.com/probekit/probes/internal/printable"
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
func shown(s string) string { return printable.Escape(redact.String(s), maxShown) }

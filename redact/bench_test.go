package redact_test

import (
	"testing"

	"github.com/probekit/probes/redact"
)

// BenchmarkString masks error texts as checks return them: one with a
// password, one with a key in a URL's query, one without a secret.
func BenchmarkString(b *testing.B) {
	for _, bc := range []struct{ name, in string }{
		{"secret", "check \"postgres\": failed to connect to `host=db user=app database=items`: " +
			"dial postgres://app:hunter2@db.internal:5432/items?sslmode=disable: connect: connection refused"},
		{"query", "check \"upstream\": Get \"https://api.example.com/v1/items?limit=10&api_key=5f4dcc3b5aa765d61d8327deb882cf99\": " +
			"401 Unauthorized (3 failures in a row, last ok 12s ago)"},
		{"clean", "check \"upstream\": Get \"http://10.0.0.7:8080/readyz\": dial tcp 10.0.0.7:8080: " +
			"connect: connection refused (3 failures in a row, last ok 12s ago)"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				redact.String(bc.in)
			}
		})
	}
}

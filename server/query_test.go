package server

import (
	"net/url"
	"slices"
	"testing"
)

// parseQuery reads what url.ParseQuery reads, without its cost.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"verbose", "exclude=a&exclude=b", "verbose&exclude=a%20b", "exclude=%zz&verbose=1",
		"a;b&exclude=x", "ex%63lude=y", "exclude=a+b", "verbose=&&exclude", "%zz=1&verbose", "verbose=%"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got := parseQuery(raw)
		v, _ := url.ParseQuery(raw)
		_, verbose := v["verbose"]
		want := v["exclude"]
		if len(want) > maxExcludes {
			want = want[:maxExcludes]
		}
		if got.verbose != verbose || !slices.Equal(got.exclude, want) {
			t.Errorf("parseQuery(%q) = %v %q, want %v %q", raw, got.verbose, got.exclude, verbose, want)
		}
	})
}

package probes_test

import (
	"testing"

	"github.com/probekit/probes"
)

func result(t *testing.T, r *probes.Runner, name string) probes.Result {
	t.Helper()
	res, ok := r.Result(name)
	if !ok {
		t.Fatalf("no check %q", name)
	}
	return res
}

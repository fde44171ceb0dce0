package probes_test

import (
	"context"
	"testing"
	"time"

	"github.com/probekit/probes"
)

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// running starts fn(ctx) in a goroutine and stops it (cancel and wait) when
// the test ends.
func running(t *testing.T, fn func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = fn(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func result(t *testing.T, r *probes.Runner, name string) probes.Result {
	t.Helper()
	res, ok := r.Result(name)
	if !ok {
		t.Fatalf("no check %q", name)
	}
	return res
}

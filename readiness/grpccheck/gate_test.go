package grpccheck_test

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/probekit/probes"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
)

const (
	gateInterval = 100 * time.Millisecond
	gateTimeout  = 300 * time.Millisecond
)

// hangable is grpc-go's health server whose Check can be made to hang.
type hangable struct {
	*health.Server
	hang atomic.Bool
}

func (h *hangable) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if h.hang.Load() {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return h.Server.Check(ctx, req)
}

// gate runs a readiness gate with the check "billing" (local) on c until
// the test ends.
func gate(t *testing.T, c probes.Checker) *readiness.Gate {
	t.Helper()
	return testutil.ReadyGate(t, "billing", c, probes.Every(gateInterval), probes.Timeout(gateTimeout), probes.Local())
}

// Through a running gate: an upstream that stops, and one whose health
// handler hangs, fail readiness, and both pass it again when they return
// (a restarted server after the connection's reconnect backoff, about a
// second by default). The times are logged; they are about the interval
// for a stop (the refusal is immediate) and interval plus timeout for a
// hang.
func TestGateSeesOutages(t *testing.T) {
	ln := testutil.Listen(t)
	addr := ln.Addr().String()
	hs := &hangable{Server: health.NewServer()}
	hs.SetServingStatus("items", healthpb.HealthCheckResponse_SERVING)
	start := func(ln net.Listener) func() {
		gs := grpc.NewServer()
		healthpb.RegisterHealthServer(gs, hs)
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = gs.Serve(ln)
		}()
		return func() { // harmless twice
			gs.Stop()
			<-done
		}
	}
	stop := start(ln)
	t.Cleanup(func() { stop() })
	ready := gate(t, newChecker(t, addr))
	wait := func(what string, want probes.Status, within time.Duration) time.Duration {
		t.Helper()
		return testutil.WaitStatus(t, ready, what, want, within)
	}
	wait("start", probes.Pass, 5*time.Second)

	// Generous bounds, for a loaded machine: the times are logged.
	hs.hang.Store(true)
	hung := wait("hang", probes.Fail, testutil.Deadline)
	hs.hang.Store(false)
	unhung := wait("unhang", probes.Pass, testutil.Deadline)

	stop()
	down := wait("stop", probes.Fail, testutil.Deadline)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	stop = start(ln2)
	up := wait("restart", probes.Pass, 10*time.Second)

	t.Logf("interval %s, timeout %s: a hung handler failed readiness after %s, passed %s after it answered again; "+
		"a stopped server failed it after %s, passed %s after the restart",
		gateInterval, gateTimeout, hung.Round(time.Millisecond), unhung.Round(time.Millisecond), down.Round(time.Millisecond), up.Round(time.Millisecond))
}

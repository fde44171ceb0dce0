package grpchealth_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/startup"
)

// serveHealth serves hs on loopback and returns a client of it.
func serveHealth(b *testing.B, register func(*grpc.Server)) healthpb.HealthClient {
	gs := grpc.NewServer()
	register(gs)
	ln := testutil.Listen(b)
	go gs.Serve(ln) //nolint:errcheck // stopped at cleanup
	b.Cleanup(gs.Stop)
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// BenchmarkCheck is Check over a real loopback connection: this package's
// Health ("probes") against grpc-go's own health server ("grpc-go", the
// floor), both answering SERVING for "".
func BenchmarkCheck(b *testing.B) {
	run := func(b *testing.B, client healthpb.HealthClient) {
		ctx := context.Background()
		req := &healthpb.HealthCheckRequest{}
		b.ReportAllocs()
		for b.Loop() {
			res, err := client.Check(ctx, req)
			if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				b.Fatalf("Check: %v, %v", res, err)
			}
		}
	}
	b.Run("grpc-go", func(b *testing.B) {
		run(b, serveHealth(b, func(gs *grpc.Server) { healthpb.RegisterHealthServer(gs, health.NewServer()) }))
	})
	b.Run("probes", func(b *testing.B) {
		lc := probes.NewLifecycle()
		if _, err := readiness.New(lc); err != nil {
			b.Fatal(err)
		}
		testutil.Ready(b, lc)
		h, err := grpchealth.New(lc)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(h.Close)
		run(b, serveHealth(b, h.Register))
	})
}

// BenchmarkWatchLatency is the time from a phase move (Ready to Warming,
// a Rewarm) to a Watch client receiving NOT_SERVING, over loopback. Each
// op also lets the Rewarm finish and waits for SERVING, which is not timed.
func BenchmarkWatchLatency(b *testing.B) {
	lc := probes.NewLifecycle()
	warm, err := startup.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	load := make(chan struct{})
	if err := warm.Task("cache", func(ctx context.Context, _ *startup.Progress) error {
		select {
		case <-load:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}); err != nil {
		b.Fatal(err)
	}
	if _, err := readiness.New(lc); err != nil {
		b.Fatal(err)
	}
	h, err := grpchealth.New(lc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(h.Close)
	client := serveHealth(b, h.Register)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lc.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	load <- struct{}{}
	testutil.Eventually(b, "ready", func() bool { return lc.Phase() == probes.Ready })
	stream, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		b.Fatal(err)
	}
	next := func(want healthpb.HealthCheckResponse_ServingStatus) {
		for {
			res, err := stream.Recv()
			if err != nil {
				b.Fatal(err)
			}
			if res.GetStatus() == want {
				return
			}
		}
	}
	next(healthpb.HealthCheckResponse_SERVING)
	b.ResetTimer()
	for range b.N {
		rewarmed := make(chan error, 1)
		go func() { rewarmed <- warm.Rewarm(ctx, "bench") }() // moves to Warming at once
		next(healthpb.HealthCheckResponse_NOT_SERVING)
		b.StopTimer()
		load <- struct{}{}
		if err := <-rewarmed; err != nil {
			b.Fatal(err)
		}
		next(healthpb.HealthCheckResponse_SERVING)
		b.StartTimer()
	}
}

package grpchealth_test

import (
	"context"
	"net"
	"os"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/server"
)

// serveBounded runs a ready gRPC-only service with the given options and
// returns its address.
func serveBounded(t *testing.T, gsOpts []grpc.ServerOption, newOpts []grpchealth.Option, serveOpts ...grpchealth.ServeOption) string {
	t.Helper()
	lc := probes.NewLifecycle()
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	h, err := grpchealth.New(lc, newOpts...)
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer(gsOpts...)
	h.Register(gs)
	ln := testutil.Listen(t)
	peer, err := grpchealth.Serving(gs, ln, h, serveOpts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(nil, lc, server.Also("grpc", peer), server.DrainDelay(0), server.Signals())
	if err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	testutil.Background(t, srv.Run)
	return ln.Addr().String()
}

func healthClient(t *testing.T, addr string) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// Connections that never speak cannot take the process's descriptors, and
// a probe's new connection still gets its answer.
func TestSilentConnectionFlood(t *testing.T) {
	const bound, flood = 32, 400
	// grpc-go's own handshake timeout (120 s) left as it is: the bound
	// alone must hold the flood.
	addr := serveBounded(t, nil, nil, grpchealth.MaxConns(bound))
	before := openFDs(t)
	for i := range flood {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		t.Cleanup(func() { c.Close() })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := healthClient(t, addr).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("Check with %d silent connections held: %v, %v; want SERVING", flood, res.GetStatus(), err)
	}
	// This process holds the flood's client ends; the server's ends are
	// what the bound keeps down. Evicted ones close as their server
	// goroutines notice.
	testutil.Eventually(t, "the server holding at most its bound", func() bool {
		return openFDs(t)-before <= flood+bound+8
	})
}

// Watch streams beyond the bound fail at once; closing one makes room.
func TestWatchersBounded(t *testing.T) {
	addr := serveBounded(t, grpchealth.ServerOptions(), []grpchealth.Option{grpchealth.MaxWatchers(3)})
	client := healthClient(t, addr)
	var cancels []context.CancelFunc
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cancels = append(cancels, cancel)
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil {
			t.Fatalf("watcher %d: %v", i, err)
		}
	}
	over := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		w, err := client.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		_, err = w.Recv()
		return err
	}
	if err := over(); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a fourth Watch: got %v, want RESOURCE_EXHAUSTED", err)
	}
	cancels[0]()
	testutil.Eventually(t, "room for a Watch once one ended", func() bool { return over() == nil })
}

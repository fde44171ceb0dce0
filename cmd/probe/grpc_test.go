package main

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testenv/testutil"
	"github.com/probekit/probes/liveness"
	"github.com/probekit/probes/readiness"
)

func TestGRPC(t *testing.T) {
	lc := probes.NewLifecycle()
	if _, err := liveness.New(lc); err != nil {
		t.Fatal(err)
	}
	if _, err := readiness.New(lc); err != nil {
		t.Fatal(err)
	}
	testutil.Ready(t, lc)
	h, err := grpchealth.New(lc)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	var agent atomic.Value
	gs := grpc.NewServer(grpc.UnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, next grpc.UnaryHandler) (any, error) {
		md, _ := metadata.FromIncomingContext(ctx)
		agent.Store(strings.Join(md.Get("user-agent"), " "))
		return next(ctx, req)
	}))
	h.Register(gs)
	ln := testutil.Listen(t)
	go gs.Serve(ln) //nolint:errcheck // stopped below
	defer gs.Stop()
	addr := ln.Addr().String()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	tests := []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"serving", []string{"-grpc", addr}, 0, `service "": SERVING`},
		{"a gate by name", []string{"-grpc", "-service", "liveness", addr}, 0, `service "liveness": SERVING`},
		{"unknown service", []string{"-grpc", "-service", "nope", addr}, 1, "NotFound"},
		{"never answers", []string{"-grpc", "-timeout", "200ms", silent.Addr().String()}, 1, "DeadlineExceeded"},
		{"not host:port", []string{"-grpc", "http://x/readyz"}, 1, "not host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out strings.Builder
			if code := run(tt.args, &out); code != tt.code || !strings.Contains(out.String(), tt.out) {
				t.Errorf("got %d %q, want %d and %q", code, out.String(), tt.code, tt.out)
			}
		})
	}
	if a, _ := agent.Load().(string); !strings.HasPrefix(a, "kube-probe/") {
		t.Errorf("user agent %q, want kube-probe/...", a)
	}
	if err := lc.Drain("test"); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if code := run([]string{"-grpc", addr}, &out); code != 1 || !strings.Contains(out.String(), "NOT_SERVING") {
		t.Errorf("while draining: %d %q, want 1 and NOT_SERVING", code, out.String())
	}
}

// hostileHealth answers every check with an error whose message holds a
// secret and terminal escapes.
type hostileHealth struct {
	healthpb.UnimplementedHealthServer
}

func (hostileHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return nil, status.Error(codes.Unavailable, "postgres://app:s3cret@db \x1b[31mdown\x1b[0m "+strings.Repeat("y", 5000))
}

func TestGRPCServerTextShown(t *testing.T) {
	gs := grpc.NewServer()
	healthpb.RegisterHealthServer(gs, hostileHealth{})
	ln := testutil.Listen(t)
	go gs.Serve(ln) //nolint:errcheck // stopped below
	defer gs.Stop()

	var out strings.Builder
	code := run([]string{"-grpc", ln.Addr().String()}, &out)
	if want := `Unavailable: postgres://app:xxxxx@db \x1b[31mdown\x1b[0m yyy`; code != 1 || !strings.Contains(out.String(), want) {
		t.Errorf("got %d %q, want 1 and %q", code, out.String(), want)
	}
	checkShown(t, out.String())
}

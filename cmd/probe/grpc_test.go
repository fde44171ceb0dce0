package main

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/probekit/probes"
	"github.com/probekit/probes/grpchealth"
	"github.com/probekit/probes/internal/testutil"
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

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// probeGRPC checks grpc.health.v1 at addr as the kubelet does and returns
// the exit code.
func probeGRPC(addr, service string, timeout time.Duration, out io.Writer) int {
	if _, port, err := net.SplitHostPort(addr); err != nil || !validPort(port) {
		fmt.Fprintf(out, "probe: %q is not host:port\n", addr)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	conn, err := grpc.NewClient("passthrough:///"+addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUserAgent("kube-probe/probes-probe"))
	if err != nil {
		fmt.Fprintf(out, "probe: %s\n", shown(err.Error()))
		return 1
	}
	defer conn.Close()
	res, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service}, grpc.WaitForReady(true))
	if err != nil {
		st := status.Convert(err)
		// The message comes from the server.
		fmt.Fprintf(out, "probe: grpc %s service %q: %s: %s\n", addr, service, st.Code(), shown(st.Message()))
		return 1
	}
	fmt.Fprintf(out, "probe: grpc %s service %q: %s\n", addr, service, res.GetStatus())
	if res.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return 1
	}
	return 0
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n > 0 && n < 1<<16
}

package grpccheck_test

import (
	"context"
	"fmt"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/probekit/probes"
	"github.com/probekit/probes/readiness"
	"github.com/probekit/probes/readiness/grpccheck"
)

func ExampleNew() {
	// An upstream on loopback with grpc-go's own health service.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(ln) }()
	defer func() { gs.Stop(); <-served }()
	hs.SetServingStatus("billing.v1.Billing", healthpb.HealthCheckResponse_SERVING)

	// The service's own connection to it.
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	billing, err := grpccheck.New(conn, "billing.v1.Billing")
	if err != nil {
		panic(err)
	}
	ready, err := readiness.New(probes.NewLifecycle())
	if err != nil {
		panic(err)
	}
	if err := ready.Add("billing", billing, probes.Timeout(time.Second)); err != nil {
		panic(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	fmt.Println(billing.Check(ctx))
	hs.SetServingStatus("billing.v1.Billing", healthpb.HealthCheckResponse_NOT_SERVING)
	fmt.Println(billing.Check(ctx))
	// Output:
	// <nil>
	// health of service "billing.v1.Billing": NOT_SERVING
}

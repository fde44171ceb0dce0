package grpchealth

import (
	"errors"
	"fmt"
	"net"

	"google.golang.org/grpc"

	"github.com/probekit/probes/app"
	"github.com/probekit/probes/server"
)

// Part is the assembly's part (app.Part) for gRPC: it registers the health
// service of the lifecycle's gates (New, with opts) on gs and serves gs on
// addr beside the HTTP server, through the same drain (Serving), bound when
// Run begins; the App's GRPCAddr says where, for its DeploySpec. Build gs
// with ServerOptions() among its options, and register the service's own
// services on it before Run.
func Part(gs *grpc.Server, addr string, opts ...Option) app.Part {
	return app.NewPart("grpchealth.Part", func(a *app.App) error {
		if gs == nil {
			return errors.New("grpchealth: Part(nil, ...): need a *grpc.Server")
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return fmt.Errorf("grpchealth: Part: address %q: %w", addr, err)
		}
		h, err := New(a.Lifecycle, opts...)
		if err != nil {
			return err
		}
		h.Register(gs)
		a.GRPCAddr = addr
		a.Serve("grpc", func() (server.Peer, error) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, fmt.Errorf("grpc: %w", err)
			}
			peer, err := Serving(gs, ln, h)
			if err != nil {
				ln.Close()
				return nil, err
			}
			return peer, nil
		})
		return nil
	})
}
